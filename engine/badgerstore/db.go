package badgerstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/harkhq/hark/engine/kvstore"
)

// kvDB is the Store's Badger as a kvstore.DB: transactions under the
// Store's lock (see reopen), the disk guard's refusals, conflict retries,
// and the watch of this process's commits.
type kvDB struct{ s *Store }

var _ kvstore.DB = kvDB{}

// View implements kvstore.DB.
func (d kvDB) View(ctx context.Context, fn func(kvstore.Txn) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s := d.s
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.db.View(func(btxn *badger.Txn) error { return fn(&txn{txn: btxn}) })
}

// maxConflictRetries bounds how often Update reruns a function whose reads
// were overwritten by a concurrent commit. Writers that share hot keys queue
// in the engine (one ingest committer, a mutex for the runs feed), so
// conflicts are rare: an API write to a user the committer also touches.
const maxConflictRetries = 10

// Update implements kvstore.DB. It refuses writes while the store is
// read-only or the disk is low (see disk.go).
func (d kvDB) Update(ctx context.Context, fn func(kvstore.Txn) error) error {
	keys, err := d.s.update(ctx, fn)
	if err != nil {
		return err
	}
	// Outside s.mu: a watcher reads the store again, and a second read lock
	// behind a waiting reopen would deadlock.
	d.s.watchers.Notify(keys)
	return nil
}

// update runs and commits fn, returning the keys it wrote.
func (s *Store) update(ctx context.Context, fn func(kvstore.Txn) error) ([][]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.readOnly.Load() {
		return nil, errReadOnly
	}
	if free, low, _ := s.guard.state(); low {
		return nil, errDiskLow(free, s.opts.MinFreeBytes)
	}
	t := &txn{}
	for attempt := range maxConflictRetries {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		err := s.db.Update(func(btxn *badger.Txn) error {
			t.txn, t.written = btxn, t.written[:0]
			return fn(t)
		})
		if err == nil {
			return t.written, nil
		}
		if errors.Is(err, badger.ErrTxnTooBig) {
			return nil, fmt.Errorf("%w: %v", kvstore.ErrTooLarge, err)
		}
		if !errors.Is(err, badger.ErrConflict) {
			return nil, err
		}
		// Back off a little, more each time and at random, so writers that
		// collided do not collide again in lockstep.
		time.Sleep(time.Duration(attempt+1) * time.Duration(rand.Int64N(int64(time.Millisecond))))
	}
	return nil, kvstore.ErrConflict
}

// Watch implements kvstore.DB. Badger is opened by one process only, so
// every write it commits goes through Update, which reports its keys to the
// watchers after the commit and before it returns; a watch never resets.
func (d kvDB) Watch(prefixes [][]byte, fn func(keys [][]byte, reset bool)) (stop func()) {
	return d.s.watchers.Add(prefixes, fn)
}

// Close implements kvstore.DB: it closes the Store.
func (d kvDB) Close() error { return d.s.Close() }

// txn is one Badger transaction as a kvstore.Txn.
type txn struct {
	txn *badger.Txn
	// value holds what Get returned last: kvstore.Txn lets a value handed
	// out die at the next call, so one buffer serves every Get. (A value
	// Badger hands out inside item.Value may be a view of a value-log file
	// that GC can remove after the callback: it must be copied.)
	value []byte
	// written collects the keys of the sets and deletes, for the watchers
	// (kvstore.Txn lets keys passed in be kept).
	written [][]byte
}

// Get implements kvstore.Txn.
func (t *txn) Get(k []byte) ([]byte, error) {
	item, err := t.txn.Get(k)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, kvstore.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	t.value, err = item.ValueCopy(t.value[:0])
	return t.value, err
}

// Set implements kvstore.Txn.
func (t *txn) Set(k, v []byte) error {
	if err := t.txn.Set(k, v); err != nil {
		return err
	}
	t.written = append(t.written, k)
	return nil
}

// SetExpiring implements kvstore.Txn. Badger's expiry has second
// granularity: it rounds up, so a record never disappears before the
// engine considers it expired. The time comes from the engine's clock; the
// store reads none.
func (t *txn) SetExpiring(k, v []byte, expiresAt time.Time) error {
	if err := t.txn.SetEntry(expiring(k, v, expiresAt)); err != nil {
		return err
	}
	t.written = append(t.written, k)
	return nil
}

// expiring is an entry Badger removes after expiresAt (see SetExpiring).
func expiring(k, v []byte, expiresAt time.Time) *badger.Entry {
	e := badger.NewEntry(k, v)
	secs := expiresAt.Unix()
	if expiresAt.Nanosecond() > 0 {
		secs++
	}
	e.ExpiresAt = uint64(max(secs, 1))
	return e
}

// Delete implements kvstore.Txn.
func (t *txn) Delete(k []byte) error {
	if err := t.txn.Delete(k); err != nil {
		return err
	}
	t.written = append(t.written, k)
	return nil
}

// scanPrefetch is how many items a scan that reads values reads ahead, each
// on its own goroutine: Badger's default. A scan does not know how many
// items its caller wants: the engine's walks (engine.ForEach) take pages
// of 1,000 and want them all, an API page of 50 reads up to 50 more than it
// keeps.
const scanPrefetch = 100

// Scan implements kvstore.Txn over a Badger iterator, whose items (keys
// and values) are valid until it moves on, as kvstore.Txn promises.
func (t *txn) Scan(prefix, from []byte, reverse, keysOnly bool, fn func(k, v []byte) (bool, error)) error {
	opts := badger.IteratorOptions{Prefix: prefix, Reverse: reverse, PrefetchValues: !keysOnly, PrefetchSize: scanPrefetch}
	// In reverse, Seek finds the largest key <= its target. From the last
	// key under prefix, the target is prefix's successor, which the scan
	// steps past if it is stored: so the iterator's prefix (which Badger
	// uses to pick tables, and Valid checks) is the part prefix and its
	// successor share, and the loop checks prefix itself.
	fromLast := reverse && (from == nil || !bytes.HasPrefix(from, prefix) && bytes.Compare(from, prefix) > 0)
	var succ []byte
	if fromLast {
		succ = successor(prefix)
		opts.Prefix = nil
		if succ != nil {
			opts.Prefix = succ[:len(succ)-1]
		}
	}
	it := t.txn.NewIterator(opts)
	defer it.Close()
	switch {
	case !reverse:
		if bytes.Compare(from, prefix) < 0 {
			from = prefix
		}
		it.Seek(from)
	case !fromLast:
		it.Seek(from)
	case succ == nil:
		it.Rewind()
	default:
		it.Seek(succ)
		if it.ValidForPrefix(succ) {
			it.Next()
		}
	}
	for ; it.ValidForPrefix(prefix); it.Next() {
		item := it.Item()
		var (
			more bool
			err  error
		)
		if keysOnly {
			more, err = fn(item.Key(), nil)
		} else if verr := item.Value(func(v []byte) error { more, err = fn(item.Key(), v); return nil }); verr != nil {
			return verr
		}
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// successor is the smallest key above every key that starts with prefix,
// or nil when there is none (prefix is empty or all 0xFF).
func successor(prefix []byte) []byte {
	for i := len(prefix) - 1; i >= 0; i-- {
		if prefix[i] != 0xFF {
			s := bytes.Clone(prefix[:i+1])
			s[i]++
			return s
		}
	}
	return nil
}
