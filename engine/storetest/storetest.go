// Package storetest is the conformance suite every engine.Store backend
// passes: the Badger store today, the NATS JetStream store next (DESIGN §13).
// A backend's test calls Run with a function that opens a fresh, empty
// store:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) engine.Store {
//			s, err := open(t.TempDir())
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
//
// Each property of engine.Store and engine.Tx is a subtest named after it,
// run in parallel with the others on its own store. The suite asserts what
// store.go promises and nothing a backend may choose otherwise: it compares
// records by their stored fields, watch changes by kind (and, where Change
// says so, environment and id), and it never reads a store's keys.
//
// The suite reaches the run feed and the three newest-first scans through
// one helper each (appendRunFeed, sourceEvents, workflowRuns, deliveries),
// so the interface changes under way — one call for the feed's cursor and
// append, no keep callbacks — change one place here.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/harkhq/hark/engine"
	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// opener returns a fresh, empty store for one subtest; it closes the store
// with t.Cleanup.
type opener = func(t *testing.T) engine.Store

// Option tells the suite what a backend chooses where engine.Store lets it.
type Option int

const (
	// ReadCommitted: a View reads each record as last committed when it
	// reads it, not as of one moment (a shared backend without
	// snapshots). Commits stay atomic: a reader that saw one record of a
	// commit sees the rest of it in every later read.
	ReadCommitted Option = iota + 1
)

// Run runs the conformance suite against the stores open returns. Every
// subtest opens its own store and runs in parallel with the others.
func Run(t *testing.T, open func(t *testing.T) engine.Store, opts ...Option) {
	rc := slices.Contains(opts, ReadCommitted)
	for _, c := range []struct {
		name string
		run  func(*testing.T, opener)
	}{
		{"Atomicity", func(t *testing.T, open opener) { testAtomicity(t, open, rc) }},
		{"ReadYourWrites", testReadYourWrites},
		{"ExactlyOnceLedger", testExactlyOnceLedger},
		{"Expiry", testExpiry},
		{"RunFeed", testRunFeed},
		{"Watch", testWatch},
		{"OrderedListings", testOrderedListings},
		{"NewestFirstScans", testNewestFirstScans},
		{"Outbox", testOutbox},
		{"CancellationIndex", testCancellationIndex},
		{"IngestTokens", testIngestTokens},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.run(t, open)
		})
	}
}

// appendRunFeed appends runID to env's run feed and returns its cursor: the
// one place the suite writes the feed.
func appendRunFeed(tx engine.Tx, env, runID string, expiresAt time.Time) (uint64, error) {
	return tx.AppendRunFeed(env, runID, expiresAt)
}

// sourceEvents, workflowRuns and deliveries are the one place the suite
// calls each newest-first scan, with a filter that keeps every record.
func sourceEvents(tx engine.Tx, env, before string, limit, scanLimit int) ([]*harkv1.SourceEvent, string, error) {
	return tx.SourceEvents(env, before, limit, scanLimit, engine.EventFilter{})
}

func workflowRuns(tx engine.Tx, env, before string, limit, scanLimit int) ([]*harkv1.WorkflowRun, string, error) {
	return tx.WorkflowRuns(env, before, limit, scanLimit, engine.RunFilter{})
}

func deliveries(tx engine.Tx, env, before string, limit, scanLimit int) ([]*harkv1.Delivery, string, error) {
	return tx.Deliveries(env, before, limit, scanLimit, engine.DeliveryFilter{})
}

// update commits fn or fails the test; only for the test's goroutine.
func update(t *testing.T, s engine.Store, fn func(engine.Tx) error) {
	t.Helper()
	if err := s.Update(context.Background(), fn); err != nil {
		t.Fatalf("update: %v", err)
	}
}

// view runs fn in a View or fails the test; only for the test's goroutine.
func view(t *testing.T, s engine.Store, fn func(engine.Tx) error) {
	t.Helper()
	if err := s.View(context.Background(), fn); err != nil {
		t.Fatalf("view: %v", err)
	}
}

// notFound reports whether err is the *engine.NotFoundError store.go
// promises for an absent record.
func notFound(err error) bool {
	var nf *engine.NotFoundError
	return errors.As(err, &nf)
}

// checkNotFound describes err unless it is a *engine.NotFoundError.
func checkNotFound(what string, err error) error {
	switch {
	case err == nil:
		return fmt.Errorf("%s: found, want *engine.NotFoundError", what)
	case !notFound(err):
		return fmt.Errorf("%s: %v (%T), want *engine.NotFoundError", what, err, err)
	}
	return nil
}

// farFuture is an expiry no test outlives.
func farFuture() time.Time { return time.Now().Add(time.Hour) }
