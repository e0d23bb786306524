package engine

import (
	"sync"
	"sync/atomic"

	"github.com/harkhq/hark/engine/delivery"
	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// catalogCache keeps what the ingest path reads of the catalog on every
// delivery and run — which source environment a webhook token belongs to,
// the workflows, an environment's destinations — so they cost no store
// read. Every change to the catalog the store reports (sources, their
// environments and tokens, environments, workflows, destinations: see
// ChangeCatalog) bumps the generation, and an entry of an older generation
// is not used: a
// reader takes the generation before it reads the store, so an entry read
// across a write is never believed. Only what exists is cached, so its size
// is bounded by the catalog.
type catalogCache struct {
	gen          atomic.Uint64
	tokens       sync.Map // token → *cachedToken
	workflows    sync.Map // key → *cachedWorkflow
	destinations sync.Map // environment → *cachedDestinations
	destination  sync.Map // environment 00 id → *cachedDestination
}

type cachedDestination struct {
	gen     uint64
	d       *harkv1.Destination
	secrets delivery.Secrets
}

type cachedWorkflow struct {
	gen uint64
	wf  *harkv1.Workflow
}

type cachedDestinations struct {
	gen   uint64
	dests []*harkv1.Destination
}

type cachedToken struct {
	gen uint64
	src *harkv1.Source
	se  *harkv1.SourceEnvironment
}

func (c *catalogCache) generation() uint64 { return c.gen.Load() }

// invalidate forgets everything cached.
func (c *catalogCache) invalidate() {
	c.gen.Add(1)
	c.tokens.Clear()
	c.workflows.Clear()
	c.destinations.Clear()
	c.destination.Clear()
}

// destination reads a destination and its secrets through the cache, for
// the senders. The destination is shared and must not be changed.
func (e *Engine) destination(tx Tx, env, id string) (*harkv1.Destination, delivery.Secrets, error) {
	gen := e.catalog.generation()
	k := env + "\x00" + id
	if v, ok := e.catalog.destination.Load(k); ok {
		if c := v.(*cachedDestination); c.gen == gen {
			return c.d, c.secrets, nil
		}
	}
	d, secrets, err := tx.Destination(env, id)
	if err != nil {
		return nil, delivery.Secrets{}, err
	}
	e.catalog.destination.Store(k, &cachedDestination{gen: gen, d: d, secrets: secrets})
	return d, secrets, nil
}

// workflow reads a workflow through the cache. The returned workflow is
// shared and must not be changed.
func (e *Engine) workflow(tx Tx, key string) (*harkv1.Workflow, error) {
	gen := e.catalog.generation()
	if v, ok := e.catalog.workflows.Load(key); ok {
		if c := v.(*cachedWorkflow); c.gen == gen {
			return c.wf, nil
		}
	}
	wf, err := tx.Workflow(key)
	if err != nil {
		return nil, err
	}
	e.catalog.workflows.Store(key, &cachedWorkflow{gen: gen, wf: wf})
	return wf, nil
}

// destinations reads an environment's destinations through the cache (a
// store scan inside the ingest commit, with its pending writes, was a
// twentieth of its CPU). The list is shared and must not be changed.
func (e *Engine) destinations(tx Tx, env string) ([]*harkv1.Destination, error) {
	gen := e.catalog.generation()
	if v, ok := e.catalog.destinations.Load(env); ok {
		if c := v.(*cachedDestinations); c.gen == gen {
			return c.dests, nil
		}
	}
	dests, err := tx.Destinations(env, "", maxDestinations)
	if err != nil {
		return nil, err
	}
	e.catalog.destinations.Store(env, &cachedDestinations{gen: gen, dests: dests})
	return dests, nil
}
