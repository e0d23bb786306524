package engine

import (
	"context"

	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// Store is the state behind the engine. Every method of Tx sees a consistent
// snapshot; Update commits all of a function's writes at once, durably, or
// none of them. Getters return a *NotFoundError when the record is absent.
//
// Records are the hark.v1 messages. Derived fields are not stored: a
// SourceEnvironment is stored without ingest_url (the engine builds it from
// the token and the public URL), and a Source without its environments.
type Store interface {
	// View runs fn in a read-only transaction.
	View(ctx context.Context, fn func(Tx) error) error
	// Update runs fn in a read-write transaction and commits it. It may run
	// fn more than once when a concurrent write conflicts.
	Update(ctx context.Context, fn func(Tx) error) error
	// Close flushes and releases the store.
	Close() error
}

// Tx reads and writes records inside one transaction. List methods return
// records whose key sorts after `after` (empty: from the start), at most
// limit of them.
type Tx interface {
	Environment(slug string) (*harkv1.Environment, error)
	Environments(after string, limit int) ([]*harkv1.Environment, error)
	PutEnvironment(env *harkv1.Environment) error

	Source(id string) (*harkv1.Source, error)
	Sources(after string, limit int) ([]*harkv1.Source, error)
	PutSource(src *harkv1.Source) error
	// DeleteSource removes a source with its environments and tokens.
	DeleteSource(id string) error

	SourceEnvironment(sourceID, env string) (*harkv1.SourceEnvironment, error)
	// SourceEnvironments returns a source's configurations ordered by
	// environment slug.
	SourceEnvironments(sourceID string) ([]*harkv1.SourceEnvironment, error)
	PutSourceEnvironment(se *harkv1.SourceEnvironment) error

	// IngestToken returns the secret token of a source environment.
	IngestToken(sourceID, env string) (string, error)
	// SetIngestToken sets a source environment's token; the previous token
	// stops resolving in the same commit.
	SetIngestToken(sourceID, env, token string) error
	// ResolveIngestToken finds the source environment a token belongs to.
	ResolveIngestToken(token string) (sourceID, env string, err error)

	Workflow(key string) (*harkv1.Workflow, error)
	Workflows(after string, limit int) ([]*harkv1.Workflow, error)
	PutWorkflow(wf *harkv1.Workflow) error
	DeleteWorkflow(key string) error
}
