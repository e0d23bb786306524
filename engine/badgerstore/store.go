// Package badgerstore is the embedded Badger implementation of engine.Store.
//
// # Keyspace
//
// Every key starts with a one-byte table prefix. Segments after it are
// joined with 0x00, which cannot occur in ids, slugs or keys (the engine
// validates them), so a prefix scan of one parent never runs into another.
// Values are the binary-encoded hark.v1 messages.
//
//	0x01 environment      01 | slug                       → hark.v1.Environment
//	0x02 source           02 | source_id                  → hark.v1.Source (without environments)
//	0x03 source env       03 | source_id 00 env           → hark.v1.SourceEnvironment (without ingest_url)
//	0x04 ingest token     04 | source_id 00 env           → token (raw bytes)
//	0x05 token index      05 | sha256(token)              → source_id 00 env
//	0x06 workflow         06 | key                        → hark.v1.Workflow
//	0x07 (retired)        07                              → was the layout guard; never reused
//	0x10 source event     10 | env 00 event_id            → hark.v1.SourceEvent (TTL: event retention)
//	0x11 event type       11 | env 00 source_id 00 type 00 name → hark.v1.EventType
//	0x12 idempotency key  12 | env 00 source_id 00 type 00 key → expiry (8-byte big-endian Unix ns) | original event id
//	                                                          (TTL: the source environment's window)
//	0x13 user             13 | env 00 user_id             → hark.v1.User
//	0x14 trigger          14 | env 00 trigger_id          → hark.v1.Trigger
//	0x15 workflow run     15 | env 00 run_id              → hark.v1.WorkflowRun (TTL: run retention)
//	0x16 run feed         16 | env 00 cursor (8-byte BE)  → run_id (TTL: run retention)
//	0x17 run cursor       17 | env                        → last cursor (8-byte BE)
//	0x18 API trigger key  18 | env 00 key                 → expiry (8-byte BE ns) | digest len (1) | digest | run_id (TTL 24h)
//	0x19 cancellation     19 | env 00 workflow 00 cancellation_key 00 run_id → empty (TTL: run retention)
//	                         an ACTIVE run with a cancellation key; PutWorkflowRun keeps it
//	0x08 schema version   08                              → version (8-byte BE); see migrate
//	0x1A destination      1A | env 00 destination_id      → uvarint len | hark.v1.Destination | secrets (outbox.go)
//	0x1B delivery         1B | env 00 delivery_id         → uvarint len | hark.v1.Delivery | hark.v1.WorkflowRun as of the change
//	                                                          (TTL: run retention)
//	0x1C due delivery     1C | next attempt (8-byte BE Unix ns) | env 00 delivery_id → empty: the dispatcher's queue
//	0x1D held delivery    1D | env 00 destination_id 00 delivery_id → empty: pending while its destination is
//	                                                          paused or disabled
//	0x1E trigger fired    1E | env 00 trigger_id 00 tenant 00 recipient → run_id: a once-per-recipient
//	                         trigger's recipients (tenant "" for once per recipient); no TTL,
//	                         DeleteTrigger removes them
//	0x20 tenant           20 | env 00 tenant_id           → hark.v1.Tenant
//	0x21 object           21 | env 00 collection 00 object_id → hark.v1.Object
//	0x22 subscription     22 | env 00 collection 00 object_id 00 recipient → hark.v1.Subscription
//	                         object → recipients, in recipient order: the fan-out reads keys only
//	0x23 recipient subs   23 | env 00 recipient 00 collection 00 object_id → empty: recipient → objects,
//	                                                          so a user's deletion finds their subscriptions
//	0x24 audience member  24 | env 00 audience 00 user_id 00 tenant → hark.v1.AudienceMember
//	0x25 user audiences   25 | env 00 user_id 00 audience 00 tenant → empty: user → audiences
//
// Both index records of a subscription or membership are written and
// deleted in one transaction. Tenant, object and audience ids and
// collections hold no NUL (the engine refuses one); nor do the user ids
// that are subscribed or members, so every segment of those keys ends at
// the next separator. (A membership without a tenant ends in a separator.)
//
// Event ids are lowercase ULIDs behind a fixed prefix, so byte order is time
// order: the log is read newest first by iterating 0x10|env in reverse.
// Tokens are found by the SHA-256 of the token, never by comparing token
// bytes, so lookup time says nothing about how close a guess was.
// Cursors are fixed-width big-endian integers, so byte order is numeric order.
//
// # Durability and memory
//
// Writes are synced to disk before Update returns (SyncWrites). Badger's
// defaults reserve over 600 MB (five 64 MB memtables, a 256 MB block cache);
// Open sizes them for a small service instead (see openBadger). A background loop, stopped by
// Close, runs value-log garbage collection.
package badgerstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"google.golang.org/protobuf/proto"

	"github.com/harkhq/hark/engine"
	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// Table prefixes; see the package doc.
const (
	tableEnvironment byte = 0x01
	tableSource      byte = 0x02
	tableSourceEnv   byte = 0x03
	tableToken       byte = 0x04
	tableTokenIndex  byte = 0x05
	tableWorkflow    byte = 0x06
	tableEvent       byte = 0x10
	tableEventType   byte = 0x11
	tableIdempotency byte = 0x12
	tableUser        byte = 0x13
	tableTrigger     byte = 0x14
	tableRun         byte = 0x15
	tableRunFeed     byte = 0x16
	tableRunCursor   byte = 0x17
	tableTriggerReq  byte = 0x18
	tableCancelIndex byte = 0x19
	tableSchema      byte = 0x08

	tableDestination  byte = 0x1A
	tableDelivery     byte = 0x1B
	tableDueDelivery  byte = 0x1C
	tableHeldDelivery byte = 0x1D
	tableTriggerFired byte = 0x1E
)

const sep = 0x00

// Options configure Open.
type Options struct {
	// Dir is the Badger directory; it is created if missing.
	Dir string
	// Logger receives Badger's warnings and errors; nil discards them.
	Logger *slog.Logger
	// GCInterval is how often value-log GC runs; 0 means 5 minutes.
	GCInterval time.Duration
	// MinFreeBytes is the free space on Dir's file system below which
	// writes are refused (see disk.go); 0 means DefaultMinFreeBytes,
	// negative turns the guard off.
	MinFreeBytes int64
}

// Store is a Badger-backed engine.Store. It is safe for concurrent use.
type Store struct {
	opts Options
	log  *slog.Logger
	stop chan struct{}
	wg   sync.WaitGroup

	guard    *diskGuard
	readOnly atomic.Bool
	// mu guards db: transactions hold it for reading, reopen (the swap
	// from read-only to read-write) for writing.
	mu sync.RWMutex
	db *badger.DB

	// watchMu guards watchers, keyed by registration so stop removes one.
	watchMu  sync.Mutex
	watchers map[int]func([]engine.Change)
	watchSeq int
}

var _ engine.Store = (*Store)(nil)

// Open opens (or creates) the store in opts.Dir. It never deletes or repairs
// data on failure: a lost idempotency ledger would send duplicate
// notifications, so a store that does not open is an error for a human.
//
// When the disk is short of MinFreeBytes it opens Badger read-only (see
// disk.go) and reopens it for writes once the space is there.
func Open(opts Options) (*Store, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MinFreeBytes == 0 {
		opts.MinFreeBytes = DefaultMinFreeBytes
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", opts.Dir, err)
	}
	s := &Store{opts: opts, log: opts.Logger, stop: make(chan struct{}), guard: &diskGuard{dir: opts.Dir, min: opts.MinFreeBytes}}
	free, low, err := s.guard.state()
	if err != nil {
		return nil, fmt.Errorf("read the free space of %s: %w", opts.Dir, err)
	}
	readOnly := low && opts.MinFreeBytes > 0
	if readOnly {
		s.log.Error("the data disk is short of space: starting read-only until it has room",
			"free_mib", free>>20, "needed_mib", opts.MinFreeBytes>>20, "dir", opts.Dir)
	}
	db, err := openBadger(opts, readOnly)
	if err != nil {
		if readOnly {
			return nil, fmt.Errorf("%w (the disk has %d MiB free, hark needs %d MiB to open it for writes: free some space)", err, free>>20, opts.MinFreeBytes>>20)
		}
		return nil, err
	}
	s.db = db
	s.readOnly.Store(readOnly)
	if !readOnly {
		if err := s.migrate(); err != nil {
			db.Close()
			return nil, err
		}
	}
	interval := opts.GCInterval
	if interval <= 0 {
		interval = 5 * time.Minute
	}
	s.wg.Add(1)
	go s.gcLoop(interval)
	if readOnly {
		s.wg.Add(1)
		go s.reopenLoop()
	}
	return s, nil
}

// openBadger opens Badger in opts.Dir with hark's sizes.
func openBadger(opts Options, readOnly bool) (*badger.DB, error) {
	bopts := badger.DefaultOptions(opts.Dir).
		WithReadOnly(readOnly).
		WithLogger(badgerLogger{opts.Logger}).
		WithSyncWrites(true).
		// Memory for a small service: 2 × 16 MiB memtables instead of
		// 5 × 64 MiB and a bounded index cache, so table indexes do not
		// grow with the data. No block cache and no compression: hark's
		// reads are point lookups of recent keys (mostly still in a
		// memtable) and its big values — events' JSON — live in the value
		// log, which Badger never compresses; Snappy buffers for every table
		// flushed cost 30 MiB of heap and CPU for keys that barely shrink.
		// A transaction may hold 15% of a memtable (2.4 MiB); values over
		// 512 bytes count only as a pointer, and the engine commits a
		// delivery too large for one transaction in parts.
		WithMemTableSize(16 << 20).
		WithNumMemtables(2).
		WithValueThreshold(512).
		WithNumLevelZeroTables(3).
		WithNumLevelZeroTablesStall(8).
		WithCompression(options.None).
		WithBlockCacheSize(0).
		WithIndexCacheSize(16 << 20).
		WithValueLogFileSize(64 << 20).
		WithNumCompactors(2)
	db, err := badger.Open(bopts)
	if err != nil {
		return nil, fmt.Errorf("open badger in %s: %w", opts.Dir, err)
	}
	return db, nil
}

// schemaVersion is the keyspace version this code writes. 2 added the
// cancellation index (0x19).
const schemaVersion = 2

// migrate brings a store written by an older hark up to schemaVersion, in
// one transaction per step, before anything else reads it. A new store is
// marked current at once.
func (s *Store) migrate() error {
	var version uint64
	empty := true
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{})
		it.Rewind()
		empty = !it.Valid()
		it.Close()
		item, err := txn.Get([]byte{tableSchema})
		if errors.Is(err, badger.ErrKeyNotFound) {
			version = 1
			return nil
		}
		if err != nil {
			return err
		}
		return item.Value(func(v []byte) error {
			if len(v) != 8 {
				return fmt.Errorf("schema version record is malformed")
			}
			version = binary.BigEndian.Uint64(v)
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if version > schemaVersion {
		return fmt.Errorf("the data dir was written by a newer hark (schema %d; this one knows %d)", version, schemaVersion)
	}
	if version < 2 && !empty {
		if err := s.indexCancellations(); err != nil {
			return fmt.Errorf("migrate to schema 2: %w", err)
		}
	}
	return s.db.Update(func(txn *badger.Txn) error {
		return txn.Set([]byte{tableSchema}, binary.BigEndian.AppendUint64(nil, schemaVersion))
	})
}

// indexCancellations writes the cancellation index of every stored active
// run with a cancellation key (schema 1 had none), a write batch at a time.
func (s *Store) indexCancellations() error {
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{tableRun}, PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			run := &harkv1.WorkflowRun{}
			if err := item.Value(func(v []byte) error { return proto.Unmarshal(v, run) }); err != nil {
				return fmt.Errorf("decode run %x: %w", item.Key(), err)
			}
			if run.GetCancellationKey() == "" || run.GetStatus() != harkv1.WorkflowRunStatus_WORKFLOW_RUN_STATUS_ACTIVE {
				continue
			}
			e := badger.NewEntry(cancelIndexKey(run.GetEnvironment(), run.GetWorkflowKey(), run.GetCancellationKey(), run.GetId()), nil)
			e.ExpiresAt = item.ExpiresAt()
			if err := wb.SetEntry(e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return wb.Flush()
}

// gcLoop runs value-log GC until Close. Badger asks callers to repeat
// RunValueLogGC while it rewrites a file, so one tick may run it many times.
func (s *Store) gcLoop(interval time.Duration) {
	defer s.wg.Done()
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-ticker.C:
			s.runGC()
		}
	}
}

// runGC runs value-log GC until Badger has nothing to rewrite. GC writes
// before it frees, so it waits while the disk is low or read-only.
func (s *Store) runGC() {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if _, low, _ := s.guard.state(); low || s.readOnly.Load() {
		return
	}
	for {
		err := s.db.RunValueLogGC(0.5)
		if err != nil {
			if !errors.Is(err, badger.ErrNoRewrite) && !errors.Is(err, badger.ErrRejected) {
				s.log.Warn("value log gc", "err", err)
			}
			return
		}
	}
}

// Close stops the GC loop and closes Badger, flushing memtables.
func (s *Store) Close() error {
	close(s.stop)
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.db.Close()
}

// Backup writes a full, consistent backup of the store to w (Badger's backup
// stream) while the store stays open for reads and writes.
func (s *Store) Backup(w io.Writer) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, err := s.db.Backup(w, 0)
	return err
}

// Restore loads a backup written by Backup into a new store in dir, which
// must not hold one already: restoring over live data would mix two
// ledgers.
func Restore(dir string, r io.Reader, log *slog.Logger) error {
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return fmt.Errorf("restore: %s is not empty; restore into a new data dir", dir)
	}
	s, err := Open(Options{Dir: dir, Logger: log})
	if err != nil {
		return err
	}
	// 256 pending writes bounds the memory the load holds at once.
	if err := s.db.Load(r, 256); err != nil {
		s.Close()
		return fmt.Errorf("restore: %w", err)
	}
	return s.Close()
}

// Size returns the on-disk size of the LSM tree and the value log, as Badger
// last computed it (it refreshes them every minute).
func (s *Store) Size() (lsm, vlog int64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.db.Size()
}

// View implements engine.Store.
func (s *Store) View(ctx context.Context, fn func(engine.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.db.View(func(txn *badger.Txn) error { return fn(tx{txn: txn}) })
}

// maxConflictRetries bounds how often Update reruns a function whose reads
// were overwritten by a concurrent commit. Writers that share hot keys queue
// in the engine (one ingest committer, a mutex for the runs feed), so
// conflicts are rare: an API write to a user the committer also touches.
const maxConflictRetries = 10

// Update implements engine.Store.
func (s *Store) Update(ctx context.Context, fn func(engine.Tx) error) error {
	changes, err := s.update(ctx, fn)
	if err != nil {
		return err
	}
	// Outside s.mu: a watcher reads the store again, and a second read lock
	// behind a waiting reopen would deadlock.
	s.notify(changes)
	return nil
}

// update runs and commits fn, returning what its writes changed.
func (s *Store) update(ctx context.Context, fn func(engine.Tx) error) ([]engine.Change, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.readOnly.Load() {
		return nil, errReadOnly
	}
	if free, low, _ := s.guard.state(); low {
		return nil, errDiskLow(free, s.opts.MinFreeBytes)
	}
	for attempt := range maxConflictRetries {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var changes []engine.Change
		err := s.db.Update(func(txn *badger.Txn) error {
			changes = changes[:0]
			return fn(tx{txn: txn, changes: &changes})
		})
		if err == nil {
			return changes, nil
		}
		if errors.Is(err, badger.ErrTxnTooBig) {
			return nil, fmt.Errorf("%w: %v", engine.ErrTooLarge, err)
		}
		if !errors.Is(err, badger.ErrConflict) {
			return nil, err
		}
		// Back off a little, more each time and at random, so writers that
		// collided do not collide again in lockstep.
		time.Sleep(time.Duration(attempt+1) * time.Duration(rand.Int64N(int64(time.Millisecond))))
	}
	return nil, fmt.Errorf("commit: %w: too many write conflicts", engine.ErrUnavailable)
}

// Watch implements engine.Store. Badger is opened by one process only, so
// every change it commits goes through Update, which reports it to the
// watchers after the commit and before it returns.
func (s *Store) Watch(fn func([]engine.Change)) (stop func()) {
	s.watchMu.Lock()
	defer s.watchMu.Unlock()
	if s.watchers == nil {
		s.watchers = map[int]func([]engine.Change){}
	}
	s.watchSeq++
	id := s.watchSeq
	s.watchers[id] = fn
	return func() {
		s.watchMu.Lock()
		defer s.watchMu.Unlock()
		delete(s.watchers, id)
	}
}

// notify reports one commit's changes to the watchers.
func (s *Store) notify(changes []engine.Change) {
	if len(changes) == 0 {
		return
	}
	s.watchMu.Lock()
	fns := make([]func([]engine.Change), 0, len(s.watchers))
	for _, fn := range s.watchers {
		fns = append(fns, fn)
	}
	s.watchMu.Unlock()
	for _, fn := range fns {
		fn(changes)
	}
}

// tx implements engine.Tx over one Badger transaction. changes collects
// what an Update's writes change for the watchers (nil in View).
type tx struct {
	txn     *badger.Txn
	changes *[]engine.Change
}

// changed records a change for the watchers, told once the commit holds.
func (t tx) changed(kind engine.ChangeKind, env, id string) {
	*t.changes = append(*t.changes, engine.Change{Kind: kind, Environment: env, ID: id})
}

func key(table byte, parts ...string) []byte {
	k := []byte{table}
	for i, p := range parts {
		if i > 0 {
			k = append(k, sep)
		}
		k = append(k, p...)
	}
	return k
}

// get reads and decodes one record into m, or returns a *engine.NotFoundError.
func get[M proto.Message](t tx, k []byte, m M, resource, id string) (M, error) {
	item, err := t.txn.Get(k)
	if errors.Is(err, badger.ErrKeyNotFound) {
		var zero M
		return zero, &engine.NotFoundError{Resource: resource, ID: id}
	}
	if err != nil {
		var zero M
		return zero, fmt.Errorf("read %s: %w", resource, err)
	}
	err = item.Value(func(v []byte) error { return proto.Unmarshal(v, m) })
	if err != nil {
		var zero M
		return zero, fmt.Errorf("decode %s %q: %w", resource, id, err)
	}
	return m, nil
}

// put encodes and writes one record.
func put(t tx, k []byte, m proto.Message) error {
	v, err := proto.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	return t.txn.Set(k, v)
}

// list decodes up to limit records under prefix whose key suffix sorts after
// `after`.
func list[M proto.Message](t tx, prefix []byte, after string, limit int, newM func() M) ([]M, error) {
	it := t.txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true, PrefetchSize: min(limit, 100)})
	defer it.Close()
	start := append(bytes.Clone(prefix), after...)
	var out []M
	for it.Seek(start); it.Valid() && len(out) < limit; it.Next() {
		item := it.Item()
		if after != "" && bytes.Equal(item.Key(), start) {
			continue
		}
		m := newM()
		if err := item.Value(func(v []byte) error { return proto.Unmarshal(v, m) }); err != nil {
			return nil, fmt.Errorf("decode %x: %w", item.Key(), err)
		}
		out = append(out, m)
	}
	return out, nil
}

// deletePrefix removes every key under prefix.
func deletePrefix(t tx, prefix []byte) error {
	it := t.txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
	var keys [][]byte
	for it.Rewind(); it.Valid(); it.Next() {
		keys = append(keys, it.Item().KeyCopy(nil))
	}
	it.Close()
	for _, k := range keys {
		if err := t.txn.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

func (t tx) Environment(slug string) (*harkv1.Environment, error) {
	return get(t, key(tableEnvironment, slug), &harkv1.Environment{}, "environment", slug)
}

func (t tx) Environments(after string, limit int) ([]*harkv1.Environment, error) {
	return list(t, []byte{tableEnvironment}, after, limit, func() *harkv1.Environment { return &harkv1.Environment{} })
}

func (t tx) PutEnvironment(env *harkv1.Environment) error {
	t.changed(engine.ChangeLayout, env.GetSlug(), "")
	return put(t, key(tableEnvironment, env.GetSlug()), env)
}

func (t tx) Source(id string) (*harkv1.Source, error) {
	return get(t, key(tableSource, id), &harkv1.Source{}, "source", id)
}

func (t tx) Sources(after string, limit int) ([]*harkv1.Source, error) {
	return list(t, []byte{tableSource}, after, limit, func() *harkv1.Source { return &harkv1.Source{} })
}

func (t tx) PutSource(src *harkv1.Source) error {
	t.changed(engine.ChangeLayout, "", src.GetId())
	stored := proto.CloneOf(src)
	stored.Environments = nil
	return put(t, key(tableSource, src.GetId()), stored)
}

func (t tx) DeleteSource(id string) error {
	t.changed(engine.ChangeCatalog, "", id)
	ses, err := t.SourceEnvironments(id)
	if err != nil {
		return err
	}
	for _, se := range ses {
		if err := t.dropToken(id, se.GetEnvironment()); err != nil {
			return err
		}
	}
	if err := deletePrefix(t, append(key(tableSourceEnv, id), sep)); err != nil {
		return err
	}
	return t.txn.Delete(key(tableSource, id))
}

func (t tx) SourceEnvironment(sourceID, env string) (*harkv1.SourceEnvironment, error) {
	return get(t, key(tableSourceEnv, sourceID, env), &harkv1.SourceEnvironment{}, "source environment", sourceID+"/"+env)
}

func (t tx) SourceEnvironments(sourceID string) ([]*harkv1.SourceEnvironment, error) {
	prefix := append(key(tableSourceEnv, sourceID), sep)
	var out []*harkv1.SourceEnvironment
	err := engine.ForEach(func(after string, limit int) ([]*harkv1.SourceEnvironment, error) {
		return list(t, prefix, after, limit, func() *harkv1.SourceEnvironment { return &harkv1.SourceEnvironment{} })
	}, (*harkv1.SourceEnvironment).GetEnvironment, func(se *harkv1.SourceEnvironment) error {
		out = append(out, se)
		return nil
	})
	return out, err
}

func (t tx) PutSourceEnvironment(se *harkv1.SourceEnvironment) error {
	t.changed(engine.ChangeCatalog, se.GetEnvironment(), se.GetSourceId())
	stored := proto.CloneOf(se)
	stored.IngestUrl = ""
	return put(t, key(tableSourceEnv, se.GetSourceId(), se.GetEnvironment()), stored)
}

func (t tx) IngestToken(sourceID, env string) (string, error) {
	item, err := t.txn.Get(key(tableToken, sourceID, env))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return "", &engine.NotFoundError{Resource: "ingest token", ID: sourceID + "/" + env}
	}
	if err != nil {
		return "", err
	}
	v, err := item.ValueCopy(nil)
	return string(v), err
}

func (t tx) SetIngestToken(sourceID, env, token string) error {
	t.changed(engine.ChangeCatalog, env, sourceID)
	if err := t.dropToken(sourceID, env); err != nil {
		return err
	}
	if err := t.txn.Set(key(tableToken, sourceID, env), []byte(token)); err != nil {
		return err
	}
	return t.txn.Set(tokenIndexKey(token), []byte(sourceID+string(rune(sep))+env))
}

// dropToken removes a source environment's token and its index entry.
func (t tx) dropToken(sourceID, env string) error {
	old, err := t.IngestToken(sourceID, env)
	if errors.Is(err, engine.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := t.txn.Delete(tokenIndexKey(old)); err != nil {
		return err
	}
	return t.txn.Delete(key(tableToken, sourceID, env))
}

func (t tx) ResolveIngestToken(token string) (string, string, error) {
	item, err := t.txn.Get(tokenIndexKey(token))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return "", "", &engine.NotFoundError{Resource: "ingest token", ID: "(token)"}
	}
	if err != nil {
		return "", "", err
	}
	v, err := item.ValueCopy(nil)
	if err != nil {
		return "", "", err
	}
	sourceID, env, ok := bytes.Cut(v, []byte{sep})
	if !ok {
		return "", "", fmt.Errorf("token index entry %x is malformed", v)
	}
	return string(sourceID), string(env), nil
}

func tokenIndexKey(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return append([]byte{tableTokenIndex}, sum[:]...)
}

func (t tx) Workflow(k string) (*harkv1.Workflow, error) {
	return get(t, key(tableWorkflow, k), &harkv1.Workflow{}, "workflow", k)
}

func (t tx) Workflows(after string, limit int) ([]*harkv1.Workflow, error) {
	return list(t, []byte{tableWorkflow}, after, limit, func() *harkv1.Workflow { return &harkv1.Workflow{} })
}

func (t tx) PutWorkflow(wf *harkv1.Workflow) error {
	t.changed(engine.ChangeCatalog, "", wf.GetKey())
	return put(t, key(tableWorkflow, wf.GetKey()), wf)
}

func (t tx) DeleteWorkflow(k string) error {
	t.changed(engine.ChangeCatalog, "", k)
	return t.txn.Delete(key(tableWorkflow, k))
}

// eventRecord marks the event log's record form: 0x00, then uvarint-prefixed
// the SourceEvent's encoding (without event, data, traits), the original
// event's JSON and its data's, then its traits'. A protobuf encoding never
// starts with 0x00 (field 0 does not exist), so records written before the
// JSON was kept as received — a plain encoding — still read.
const eventRecord = 0x00

func (t tx) PutSourceEvent(env, id string, meta []byte, raw engine.EventJSON, expiresAt time.Time) error {
	v := make([]byte, 0, 1+len(meta)+len(raw.Event)+len(raw.Data)+len(raw.Traits)+12)
	v = append(v, eventRecord)
	for _, part := range [][]byte{meta, raw.Event, raw.Data} {
		v = binary.AppendUvarint(v, uint64(len(part)))
		v = append(v, part...)
	}
	v = append(v, raw.Traits...)
	return t.txn.SetEntry(expiring(key(tableEvent, env, id), v, expiresAt))
}

// decodeEvent reads an event log record: the event without its JSON parts,
// and the parts.
func decodeEvent(v []byte) (*harkv1.SourceEvent, engine.EventJSON, error) {
	ev := &harkv1.SourceEvent{}
	if len(v) == 0 || v[0] != eventRecord {
		return ev, engine.EventJSON{}, proto.Unmarshal(v, ev) // the older form
	}
	v = v[1:]
	var parts [3][]byte
	for i := range parts {
		n, k := binary.Uvarint(v)
		if k <= 0 || uint64(len(v)-k) < n {
			return nil, engine.EventJSON{}, errors.New("event record is malformed")
		}
		parts[i] = v[k : k+int(n)]
		v = v[k+int(n):]
	}
	if err := proto.Unmarshal(parts[0], ev); err != nil {
		return nil, engine.EventJSON{}, err
	}
	raw := engine.EventJSON{Event: parts[1], Data: parts[2], Traits: v}
	for _, p := range []*[]byte{&raw.Event, &raw.Data, &raw.Traits} {
		if len(*p) == 0 {
			*p = nil
		}
	}
	return ev, raw, nil
}

// withJSON gives ev the Structs of its JSON parts (an event of the older
// form has them already).
func withJSON(ev *harkv1.SourceEvent, raw engine.EventJSON) error {
	var err error
	if raw.Event != nil {
		if ev.Event, err = engine.StructFromJSON(raw.Event); err != nil {
			return err
		}
	}
	if raw.Data != nil {
		if ev.Data, err = engine.StructFromJSON(raw.Data); err != nil {
			return err
		}
	}
	if raw.Traits != nil {
		ev.Traits, err = engine.StructFromJSON(raw.Traits)
	}
	return err
}

func (t tx) SourceEvent(env, id string) (*harkv1.SourceEvent, error) {
	item, err := t.txn.Get(key(tableEvent, env, id))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, &engine.NotFoundError{Resource: "event", ID: id}
	}
	if err != nil {
		return nil, fmt.Errorf("read event: %w", err)
	}
	var ev *harkv1.SourceEvent
	err = item.Value(func(v []byte) error {
		e, raw, err := decodeEvent(v)
		if err == nil {
			err = withJSON(e, raw)
		}
		ev = e
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("decode event %q: %w", id, err)
	}
	return ev, nil
}

func (t tx) SourceEvents(env, before string, limit, scanLimit int, filter engine.EventFilter) ([]*harkv1.SourceEvent, string, error) {
	return scanNewest(t, append(key(tableEvent, env), sep), before, limit, scanLimit, func(v []byte) (*harkv1.SourceEvent, error) {
		ev, raw, err := decodeEvent(v)
		if err != nil || !filter.Match(ev) {
			return nil, err
		}
		return ev, withJSON(ev, raw)
	})
}

// scanNewest lists records under prefix newest first (keys are time-ordered
// ids), starting below `before`, at most limit of those decode returns (nil
// for one the filter drops), reading at most scanLimit records. It returns
// the id of the last record read when the scan limit cut the walk short.
func scanNewest[M any](t tx, prefix []byte, before string, limit, scanLimit int, decode func(v []byte) (*M, error)) ([]*M, string, error) {
	it := t.txn.NewIterator(badger.IteratorOptions{Prefix: prefix, Reverse: true, PrefetchValues: true, PrefetchSize: min(limit, 100)})
	defer it.Close()
	// In reverse, Seek finds the largest key <= the target: start at the
	// record before `before`, or at the newest (prefix followed by 0xFF).
	start := append(bytes.Clone(prefix), 0xFF)
	if before != "" {
		start = append(bytes.Clone(prefix), before...)
	}
	var (
		out     []*M
		scanned int
		last    []byte
	)
	for it.Seek(start); it.Valid() && len(out) < limit; it.Next() {
		item := it.Item()
		if before != "" && bytes.Equal(item.Key(), start) {
			continue
		}
		if scanned == scanLimit {
			return out, string(last[len(prefix):]), nil
		}
		scanned++
		last = item.KeyCopy(last[:0])
		var m *M
		if err := item.Value(func(v []byte) (err error) { m, err = decode(v); return err }); err != nil {
			return nil, "", fmt.Errorf("decode %q: %w", item.Key()[len(prefix):], err)
		}
		if m != nil {
			out = append(out, m)
		}
	}
	return out, "", nil
}

func eventTypeKey(sourceID, env, typ, name string) []byte {
	return key(tableEventType, env, sourceID, typ, name)
}

func (t tx) EventType(sourceID, env, typ, name string) (*harkv1.EventType, error) {
	return get(t, eventTypeKey(sourceID, env, typ, name), &harkv1.EventType{}, "event type", typ+" "+name)
}

func (t tx) EventTypes(sourceID, env, after string, limit int) ([]*harkv1.EventType, error) {
	prefix := append(key(tableEventType, env, sourceID), sep)
	return list(t, prefix, after, limit, func() *harkv1.EventType { return &harkv1.EventType{} })
}

func (t tx) PutEventType(et *harkv1.EventType) error {
	return put(t, eventTypeKey(et.GetSourceId(), et.GetEnvironment(), et.GetType(), et.GetName()), et)
}

func (t tx) User(env, id string) (*harkv1.User, error) {
	return get(t, key(tableUser, env, id), &harkv1.User{}, "user", id)
}

func (t tx) Users(env, after string, limit int) ([]*harkv1.User, error) {
	return list(t, append(key(tableUser, env), sep), after, limit, func() *harkv1.User { return &harkv1.User{} })
}

func (t tx) PutUser(u *harkv1.User) error {
	return put(t, key(tableUser, u.GetEnvironment(), u.GetId()), u)
}

func (t tx) DeleteUser(env, id string) error {
	return t.txn.Delete(key(tableUser, env, id))
}

func (t tx) IdempotencyRecord(env, sourceID, typ, k string) (string, time.Time, error) {
	item, err := t.txn.Get(key(tableIdempotency, env, sourceID, typ, k))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return "", time.Time{}, &engine.NotFoundError{Resource: "idempotency key", ID: k}
	}
	if err != nil {
		return "", time.Time{}, fmt.Errorf("read idempotency key: %w", err)
	}
	v, err := item.ValueCopy(nil)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("read idempotency key: %w", err)
	}
	if len(v) < 8 {
		return "", time.Time{}, fmt.Errorf("idempotency record %q is malformed", k)
	}
	return string(v[8:]), time.Unix(0, int64(binary.BigEndian.Uint64(v[:8]))), nil
}

func (t tx) PutIdempotencyRecord(env, sourceID, typ, k, originalID string, expiresAt time.Time) error {
	v := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(originalID)), uint64(expiresAt.UnixNano()))
	v = append(v, originalID...)
	return t.txn.SetEntry(expiring(key(tableIdempotency, env, sourceID, typ, k), v, expiresAt))
}

func (t tx) Trigger(env, id string) (*harkv1.Trigger, error) {
	return get(t, key(tableTrigger, env, id), &harkv1.Trigger{}, "trigger", id)
}

func (t tx) Triggers(env, after string, limit int) ([]*harkv1.Trigger, error) {
	return list(t, append(key(tableTrigger, env), sep), after, limit, func() *harkv1.Trigger { return &harkv1.Trigger{} })
}

func (t tx) PutTrigger(tr *harkv1.Trigger) error {
	t.changed(engine.ChangeTrigger, tr.GetEnvironment(), tr.GetId())
	return put(t, key(tableTrigger, tr.GetEnvironment(), tr.GetId()), tr)
}

func (t tx) DeleteTrigger(env, id string) error {
	t.changed(engine.ChangeTrigger, env, id)
	if err := deletePrefix(t, append(key(tableTriggerFired, env, id), sep)); err != nil {
		return err
	}
	return t.txn.Delete(key(tableTrigger, env, id))
}

func (t tx) TriggerFired(env, triggerID, tenant, recipient string) (string, error) {
	item, err := t.txn.Get(key(tableTriggerFired, env, triggerID, tenant, recipient))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return "", &engine.NotFoundError{Resource: "trigger firing", ID: recipient}
	}
	if err != nil {
		return "", err
	}
	v, err := item.ValueCopy(nil)
	return string(v), err
}

func (t tx) PutTriggerFired(env, triggerID, tenant, recipient, runID string) error {
	return t.txn.Set(key(tableTriggerFired, env, triggerID, tenant, recipient), []byte(runID))
}

func (t tx) WorkflowRun(env, id string) (*harkv1.WorkflowRun, error) {
	return get(t, key(tableRun, env, id), &harkv1.WorkflowRun{}, "workflow run", id)
}

func (t tx) PutWorkflowRun(run *harkv1.WorkflowRun, expiresAt time.Time) error {
	v, err := proto.Marshal(run)
	if err != nil {
		return fmt.Errorf("encode run: %w", err)
	}
	if err := t.txn.SetEntry(expiring(key(tableRun, run.GetEnvironment(), run.GetId()), v, expiresAt)); err != nil {
		return err
	}
	if run.GetCancellationKey() == "" {
		return nil
	}
	k := cancelIndexKey(run.GetEnvironment(), run.GetWorkflowKey(), run.GetCancellationKey(), run.GetId())
	if run.GetStatus() == harkv1.WorkflowRunStatus_WORKFLOW_RUN_STATUS_ACTIVE {
		return t.txn.SetEntry(expiring(k, nil, expiresAt))
	}
	return t.txn.Delete(k)
}

// cancelIndexKey is a run's entry in the cancellation index. A
// cancellation key is a mapped value and may hold a NUL, so one key can
// extend another ("a" and "a\x00b"); CancellableRuns tells them apart by
// the run id at the end, which never holds one.
func cancelIndexKey(env, workflow, cancellationKey, runID string) []byte {
	return key(tableCancelIndex, env, workflow, cancellationKey, runID)
}

func (t tx) CancellableRuns(env, workflow, cancellationKey, after string, limit int) ([]string, error) {
	prefix := append(key(tableCancelIndex, env, workflow, cancellationKey), sep)
	it := t.txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
	defer it.Close()
	start := append(bytes.Clone(prefix), after...)
	var out []string
	for it.Seek(start); it.Valid() && len(out) < limit; it.Next() {
		k := it.Item().Key()
		if after != "" && bytes.Equal(k, start) {
			continue
		}
		id := k[len(prefix):]
		if bytes.IndexByte(id, sep) >= 0 {
			// A longer cancellation key that extends this one with a NUL.
			continue
		}
		out = append(out, string(id))
	}
	return out, nil
}

func (t tx) WorkflowRuns(env, before string, limit, scanLimit int, filter engine.RunFilter) ([]*harkv1.WorkflowRun, string, error) {
	return scanNewest(t, append(key(tableRun, env), sep), before, limit, scanLimit, func(v []byte) (*harkv1.WorkflowRun, error) {
		r := &harkv1.WorkflowRun{}
		if err := proto.Unmarshal(v, r); err != nil || !filter.Match(r) {
			return nil, err
		}
		return r, nil
	})
}

func (t tx) AppendRunFeed(env, runID string, expiresAt time.Time) (uint64, error) {
	// The counter is read and rewritten, so concurrent appenders conflict
	// and commit in cursor order (the engine queues its own on runMu).
	k := key(tableRunCursor, env)
	var n uint64
	item, err := t.txn.Get(k)
	switch {
	case err == nil:
		if err := item.Value(func(v []byte) error {
			if len(v) != 8 {
				return fmt.Errorf("run cursor of %s is malformed", env)
			}
			n = binary.BigEndian.Uint64(v)
			return nil
		}); err != nil {
			return 0, err
		}
	case !errors.Is(err, badger.ErrKeyNotFound):
		return 0, err
	}
	n++
	if err := t.txn.Set(k, binary.BigEndian.AppendUint64(nil, n)); err != nil {
		return 0, err
	}
	t.changed(engine.ChangeRuns, env, runID)
	return n, t.txn.SetEntry(expiring(runFeedKey(env, n), []byte(runID), expiresAt))
}

func runFeedKey(env string, cursor uint64) []byte {
	return binary.BigEndian.AppendUint64(append(key(tableRunFeed, env), sep), cursor)
}

func (t tx) RunFeed(env string, after uint64, limit int) ([]engine.RunFeedEntry, error) {
	prefix := append(key(tableRunFeed, env), sep)
	it := t.txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true, PrefetchSize: min(limit, 100)})
	defer it.Close()
	var out []engine.RunFeedEntry
	for it.Seek(runFeedKey(env, after+1)); it.Valid() && len(out) < limit; it.Next() {
		item := it.Item()
		k := item.Key()
		if len(k) != len(prefix)+8 {
			return nil, fmt.Errorf("run feed key %x is malformed", k)
		}
		v, err := item.ValueCopy(nil)
		if err != nil {
			return nil, err
		}
		out = append(out, engine.RunFeedEntry{Cursor: binary.BigEndian.Uint64(k[len(prefix):]), RunID: string(v)})
	}
	return out, nil
}

func (t tx) TriggerRequest(env, k string) ([]byte, string, time.Time, error) {
	item, err := t.txn.Get(key(tableTriggerReq, env, k))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, "", time.Time{}, &engine.NotFoundError{Resource: "idempotency key", ID: k}
	}
	if err != nil {
		return nil, "", time.Time{}, err
	}
	v, err := item.ValueCopy(nil)
	if err != nil {
		return nil, "", time.Time{}, err
	}
	if len(v) < 9 || len(v) < 9+int(v[8]) {
		return nil, "", time.Time{}, fmt.Errorf("trigger request record %q is malformed", k)
	}
	n := int(v[8])
	return v[9 : 9+n], string(v[9+n:]), time.Unix(0, int64(binary.BigEndian.Uint64(v[:8]))), nil
}

func (t tx) PutTriggerRequest(env, k string, digest []byte, runID string, expiresAt time.Time) error {
	if len(digest) > 255 {
		return fmt.Errorf("digest of %d bytes is too long", len(digest))
	}
	v := binary.BigEndian.AppendUint64(nil, uint64(expiresAt.UnixNano()))
	v = append(v, byte(len(digest)))
	v = append(v, digest...)
	v = append(v, runID...)
	return t.txn.SetEntry(expiring(key(tableTriggerReq, env, k), v, expiresAt))
}

// expiring is an entry Badger removes after expiresAt. The time comes from
// the engine's clock; the store reads none. Badger's expiry has second
// granularity: round up, so a record never disappears before the engine
// considers it expired.
func expiring(k, v []byte, expiresAt time.Time) *badger.Entry {
	e := badger.NewEntry(k, v)
	secs := expiresAt.Unix()
	if expiresAt.Nanosecond() > 0 {
		secs++
	}
	e.ExpiresAt = uint64(max(secs, 1))
	return e
}

// badgerLogger sends Badger's logs to slog. Badger is chatty at Info (every
// compaction), so Info goes to Debug.
type badgerLogger struct{ log *slog.Logger }

func (l badgerLogger) Errorf(f string, a ...any)   { l.log.Error("badger: " + fmt.Sprintf(f, a...)) }
func (l badgerLogger) Warningf(f string, a ...any) { l.log.Warn("badger: " + fmt.Sprintf(f, a...)) }
func (l badgerLogger) Infof(f string, a ...any)    { l.log.Debug("badger: " + fmt.Sprintf(f, a...)) }
func (l badgerLogger) Debugf(f string, a ...any)   { l.log.Debug("badger: " + fmt.Sprintf(f, a...)) }
