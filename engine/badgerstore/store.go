// Package badgerstore is hark's embedded store: Badger as a kvstore.DB, so
// the keyspace and the tables are kvstore's (engine/kvstore), and what is
// Badger's alone lives here — sizing and durability, the disk guard,
// read-only start and reopen, value-log GC, schema migration, backups.
//
// # Durability and memory
//
// Writes are synced to disk before Update returns (SyncWrites). Badger's
// defaults reserve over 600 MB (five 64 MB memtables, a 256 MB block cache);
// Open sizes them for a small service instead (see openBadger). A
// background loop, stopped by Close, runs value-log garbage collection.
package badgerstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"

	"github.com/harkhq/hark/engine"
	"github.com/harkhq/hark/engine/kvstore"
)

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

// Store is a Badger-backed engine.Store: kvstore's tables (View, Update
// and Watch are kvstore.Store's) over Badger (db.go). It is safe for
// concurrent use.
type Store struct {
	*kvstore.Store

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

	// watchers are kvDB.Watch's registrations.
	watchers kvstore.Watchers
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
	s.Store = kvstore.New(kvDB{s})
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
	// A directory lock held a moment longer than its holder: a process
	// forked (a plugin starting) while the lock's file was open holds a
	// copy of it until it executes the plugin, though the store that took
	// the lock has closed it. Reopening at once, as a restart does, can
	// meet it; a lock held for real is still held a second later.
	for deadline := time.Now().Add(time.Second); err != nil && isLocked(err) && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		db, err = badger.Open(bopts)
	}
	if err != nil {
		return nil, fmt.Errorf("open badger in %s: %w", opts.Dir, err)
	}
	return db, nil
}

// isLocked reports whether err is Badger's refusal to open a directory
// another process holds (Badger has no error value for it).
func isLocked(err error) bool {
	return strings.Contains(err.Error(), "Cannot acquire directory lock")
}

// migrate brings a store written by an older hark up to
// kvstore.SchemaVersion, in one transaction per step, before anything else
// reads it. A new store is marked current at once.
func (s *Store) migrate() error {
	var version uint64
	empty := true
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{})
		it.Rewind()
		empty = !it.Valid()
		it.Close()
		item, err := txn.Get(kvstore.SchemaKey())
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
	if version > kvstore.SchemaVersion {
		return fmt.Errorf("the data dir was written by a newer hark (schema %d; this one knows %d)", version, kvstore.SchemaVersion)
	}
	if version < 2 && !empty {
		if err := s.indexCancellations(); err != nil {
			return fmt.Errorf("migrate to schema 2: %w", err)
		}
	}
	return s.db.Update(func(txn *badger.Txn) error {
		return txn.Set(kvstore.SchemaKey(), binary.BigEndian.AppendUint64(nil, kvstore.SchemaVersion))
	})
}

// indexCancellations writes the cancellation index of every stored active
// run with a cancellation key (schema 1 had none), a write batch at a time.
// Each entry expires with its run, which a kvstore.Txn cannot tell: so this
// step reads Badger directly.
func (s *Store) indexCancellations() error {
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: kvstore.RunPrefix(), PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			var k []byte
			if err := item.Value(func(v []byte) (err error) { k, err = kvstore.CancellationIndexKey(v); return err }); err != nil {
				return fmt.Errorf("run %x: %w", item.Key(), err)
			}
			if k == nil {
				continue
			}
			e := badger.NewEntry(k, nil)
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

// badgerLogger sends Badger's logs to slog. Badger is chatty at Info (every
// compaction), so Info goes to Debug.
type badgerLogger struct{ log *slog.Logger }

func (l badgerLogger) Errorf(f string, a ...any)   { l.log.Error("badger: " + fmt.Sprintf(f, a...)) }
func (l badgerLogger) Warningf(f string, a ...any) { l.log.Warn("badger: " + fmt.Sprintf(f, a...)) }
func (l badgerLogger) Infof(f string, a ...any)    { l.log.Debug("badger: " + fmt.Sprintf(f, a...)) }
func (l badgerLogger) Debugf(f string, a ...any)   { l.log.Debug("badger: " + fmt.Sprintf(f, a...)) }
