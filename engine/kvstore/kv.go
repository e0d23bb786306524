// Package kvstore implements engine.Store on any ordered key-value database
// that commits transactions atomically: the keyspace, the record encodings
// and every table live here once, and a backend supplies only DB. Badger
// (engine/badgerstore) is one; NATS JetStream (engine/natsstore), where
// every node shares one cluster, is the other.
//
// A backend's promises, which the conformance suite (engine/storetest)
// checks through engine.Store:
//   - Update is atomic: all of fn's writes commit, or none do.
//   - Update is serializable for the keys fn reads and then writes: when
//     another commit changed such a key after fn read it, the commit fails
//     with ErrConflict (Update then runs fn again, a few times), so a
//     read-check-write such as the idempotency ledger's executes once.
//   - A key set with an expiry disappears some time after it (the backend's
//     clock); never before the engine's clock would call it expired is not
//     promised, which is why the engine compares expiry times itself.
//   - Watch reports every committed write under the watched prefixes, this
//     node's before its Update returns, other nodes' as they arrive.
package kvstore

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is what Txn.Get returns for an absent (or expired) key.
var ErrNotFound = errors.New("kvstore: key not found")

// ErrConflict is what a DB's Update returns when a concurrent commit
// changed a key that fn read and wrote, after its retries.
var ErrConflict = errors.New("kvstore: transaction conflict")

// ErrUnavailable wraps what a DB returns when it cannot reach its data
// (a shared backend's servers are down or unreachable): transient, so the
// engine answers 503 and senders retry.
var ErrUnavailable = errors.New("kvstore: store unavailable")

// ErrTooLarge is what a DB's Update returns when fn wrote more than one
// transaction can hold; nothing was written.
var ErrTooLarge = errors.New("kvstore: transaction too large")

// DB is an ordered key-value database with atomic transactions.
type DB interface {
	// View runs fn with read access.
	View(ctx context.Context, fn func(Txn) error) error
	// Update runs fn and commits its writes atomically. It runs fn again
	// (a bounded number of times) when the commit conflicts; fn must not
	// keep effects outside the transaction from a run that did not commit.
	Update(ctx context.Context, fn func(Txn) error) error
	// Watch calls fn with the keys of the writes (sets and deletes) of each
	// commit that touch one of the prefixes, until stop is called: this
	// process's commits before their Update returns, other processes'
	// (on a shared backend) as they arrive. reset is true, and keys nil,
	// when the watch may have missed writes (it reconnected): the watcher
	// reads everything again. fn may run on several goroutines at once and
	// must not call Update.
	Watch(prefixes [][]byte, fn func(keys [][]byte, reset bool)) (stop func())
	// Close releases the database.
	Close() error
}

// Prefetcher is a Txn that can read many keys in one request (a remote
// backend); the values wait for the Gets that follow.
type Prefetcher interface {
	Prefetch(keys [][]byte) error
}

// OthersWatcher is a DB shared by several processes that can report the
// writes of the others alone: what Watch reports of other processes,
// without this process's own commits.
type OthersWatcher interface {
	WatchOthers(prefixes [][]byte, fn func(keys [][]byte, reset bool)) (stop func())
}

// LogReader is a Txn that can read a log — a prefix whose keys are each
// written once, such as the run feed — in the order its entries were
// committed, from just after one of them, without reading what comes
// before it (a backend without range scans).
type LogReader interface {
	// ReadLogAfter calls fn for the keys under prefix committed after the
	// key after (nil: from the log's first entry), in commit order, until
	// fn returns false or an error. found is false, and fn not called,
	// when after is not stored (expired, never written) or the transaction
	// wrote under the prefix.
	ReadLogAfter(prefix, after []byte, fn func(key, value []byte) (more bool, err error)) (found bool, err error)
}

// CursorIssuer is a Txn of a DB shared by several processes that hands out
// a log's cursors itself, so that appending to the log writes no key that
// every other process's appends write too: two nodes whose every commit
// rewrites one counter conflict on it at every commit, and the one that
// loses can lose for seconds. The counter's value is the greatest cursor
// handed out, 8-byte big-endian; an issuer takes cursors from it in
// blocks, with a commit of its own, so cursors are unique and increase
// within one process, but interleave across processes: a log keyed by
// them is read in commit order (the Txn is a LogReader too), never in key
// order.
type CursorIssuer interface {
	IssueCursor(counter []byte) (uint64, error)
}

// PerNode is a Txn of a DB shared by several processes that keeps a
// count every commit adds to — an event type's — per process, summed on
// read: one key for all of them would be written by every process's
// commits, which would conflict at every commit. Node names the process,
// unique among all that ever open the DB (a new name each time one
// starts); Store.FoldEventTypeCounts takes the counts of processes gone
// quiet into the shared record, so they do not pile up as nodes come
// and go.
type PerNode interface {
	Node() string
}

// Txn reads and writes inside one transaction. Reads see the
// transaction's own writes. Keys and values passed in may be kept; keys
// and values handed out are valid only until fn returns or the next call,
// unless copied.
type Txn interface {
	// Get returns a key's value, or ErrNotFound.
	Get(key []byte) ([]byte, error)
	// Set writes a key that never expires.
	Set(key, value []byte) error
	// SetExpiring writes a key that expires at expiresAt.
	SetExpiring(key, value []byte, expiresAt time.Time) error
	// Delete removes a key; an absent one is no error.
	Delete(key []byte) error
	// Scan calls fn for the keys that start with prefix, in byte order
	// (descending when reverse), from the first key at or after from (at
	// or before it when reverse; nil: from the first, or the last), until
	// fn returns false or an error, which Scan returns. With keysOnly, fn
	// gets nil values and the backend may skip reading them.
	Scan(prefix, from []byte, reverse, keysOnly bool, fn func(key, value []byte) (more bool, err error)) error
}
