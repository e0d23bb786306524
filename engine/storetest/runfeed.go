package storetest

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/harkhq/hark/engine"
	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// maxAppendAttempts bounds how often an appender retries an append the
// store gave up on.
const maxAppendAttempts = 100

// testRunFeed: the run feed's cursors, its paging, and its bounds.
func testRunFeed(t *testing.T, open opener) {
	t.Run("ConcurrentAppends", func(t *testing.T) {
		t.Parallel()
		testConcurrentAppends(t, open(t))
	})
	t.Run("Bounds", func(t *testing.T) {
		t.Parallel()
		testRunFeedBounds(t, open(t))
	})
	t.Run("AfterTheGreatestCursor", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		update(t, s, func(tx engine.Tx) error {
			_, err := appendRunFeed(tx, "dev", "run1", farFuture())
			return err
		})
		view(t, s, func(tx engine.Tx) error {
			entries, err := tx.RunFeed("dev", math.MaxUint64, 10)
			if err != nil {
				return err
			}
			if len(entries) != 0 {
				t.Errorf("RunFeed after cursor %d returned %v, want nothing", uint64(math.MaxUint64), entries)
			}
			return nil
		})
	})
}

// testRunFeedBounds: an environment's feed lists its own entries only,
// and a limit of fewer entries than the feed holds is honoured.
func testRunFeedBounds(t *testing.T, s engine.Store) {
	update(t, s, func(tx engine.Tx) error {
		for _, env := range []string{"dev", "de", "dev2"} {
			for i := range 3 {
				if _, err := appendRunFeed(tx, env, fmt.Sprintf("%s-run%d", env, i), farFuture()); err != nil {
					return err
				}
			}
		}
		return nil
	})
	view(t, s, func(tx engine.Tx) error {
		entries, err := tx.RunFeed("dev", 0, 100)
		if err != nil {
			return err
		}
		var ids []string
		for _, e := range entries {
			ids = append(ids, e.RunID)
		}
		if want := []string{"dev-run0", "dev-run1", "dev-run2"}; !slices.Equal(ids, want) {
			t.Errorf("dev's feed lists %q, want %q", ids, want)
		}
		first, err := tx.RunFeed("dev", 0, 2)
		if err != nil {
			return err
		}
		if len(first) != 2 || first[0] != entries[0] || first[1] != entries[1] {
			t.Errorf("dev's feed with limit 2: %v, want %v", first, entries[:2])
		}
		last, err := tx.RunFeed("dev", entries[2].Cursor, 100)
		if err != nil {
			return err
		}
		if len(last) != 0 {
			t.Errorf("dev's feed after its last cursor: %v, want nothing", last)
		}
		empty, err := tx.RunFeed("other", 0, 100)
		if err != nil {
			return err
		}
		if len(empty) != 0 {
			t.Errorf("an environment without runs has feed %v", empty)
		}
		return nil
	})
}

// testConcurrentAppends: concurrent appenders get strictly increasing,
// unique cursors; RunFeed pages through every entry in order from any
// cursor; and a reader polling the feed never sees a cursor appear below
// one it has already read, so resuming after the last cursor read misses
// nothing.
func testConcurrentAppends(t *testing.T, s engine.Store) {
	const (
		env       = "dev"
		appenders = 8
		appends   = 50
		total     = appenders * appends
	)

	// The reader: every poll reads the whole feed; a cursor it has not
	// seen before must lie above every cursor it has.
	done := make(chan struct{})
	var readerWG sync.WaitGroup
	readerWG.Add(1)
	go func() {
		defer readerWG.Done()
		seen := map[uint64]bool{}
		var highest uint64
		for last := false; !last; {
			select {
			case <-done:
				last = true
			default:
			}
			var entries []engine.RunFeedEntry
			if err := s.View(t.Context(), func(tx engine.Tx) (err error) {
				entries, err = tx.RunFeed(env, 0, total+1)
				return err
			}); err != nil {
				t.Errorf("reader: %v", err)
				return
			}
			pollHighest := highest
			for _, e := range entries {
				if !seen[e.Cursor] {
					if e.Cursor <= highest {
						t.Errorf("cursor %d (run %s) appeared after the reader had read cursor %d", e.Cursor, e.RunID, highest)
						return
					}
					seen[e.Cursor] = true
				}
				pollHighest = max(pollHighest, e.Cursor)
			}
			highest = pollHighest
		}
	}()

	// The appenders, each append its own Update.
	cursors := make([][]uint64, appenders)
	var gaveUp atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for a := range appenders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := range appends {
				run := fmt.Sprintf("run-%d-%03d", a, i)
				var (
					cursor uint64
					err    error
				)
				// A store may give up on a write that keeps conflicting
				// with ErrUnavailable, which marks a failure worth
				// retrying (the engine queues its feed writers, and
				// Badger gives up after a few conflicts); the properties
				// below hold for the appends that commit.
				for range maxAppendAttempts {
					err = s.Update(t.Context(), func(tx engine.Tx) (err error) {
						if cursor, err = appendRunFeed(tx, env, run, farFuture()); err != nil {
							return err
						}
						// More of the transaction after the cursor, as
						// the engine's run changes have (the run, its
						// deliveries): a store that hands out cursors
						// outside its commit order shows it here.
						runtime.Gosched()
						return tx.PutWorkflowRun(&harkv1.WorkflowRun{Environment: env, Id: run, WorkflowKey: "wf"}, farFuture())
					})
					if !errors.Is(err, engine.ErrUnavailable) {
						break
					}
					gaveUp.Add(1)
				}
				if err != nil {
					t.Errorf("append %s: %v", run, err)
					return
				}
				cursors[a] = append(cursors[a], cursor)
			}
		}()
	}
	close(start)
	wg.Wait()
	close(done)
	readerWG.Wait()
	t.Logf("%d appends by %d appenders at once; the store gave up %d times (ErrUnavailable) and the append was retried", total, appenders, gaveUp.Load())
	if t.Failed() {
		return
	}

	// Each appender's cursors increase; together they are unique.
	byCursor := map[uint64]string{}
	for a, cs := range cursors {
		for i, c := range cs {
			if i > 0 && c <= cs[i-1] {
				t.Errorf("appender %d got cursor %d after %d", a, c, cs[i-1])
			}
			run := fmt.Sprintf("run-%d-%03d", a, i)
			if other, dup := byCursor[c]; dup {
				t.Errorf("cursor %d was returned for %s and %s", c, other, run)
			}
			byCursor[c] = run
		}
	}
	all := make([]uint64, 0, len(byCursor))
	for c := range byCursor {
		all = append(all, c)
	}
	slices.Sort(all)

	// Paging with a small limit returns exactly the appended entries, in
	// cursor order, from the start and from any cursor.
	page := func(after uint64, limit int) []engine.RunFeedEntry {
		t.Helper()
		var out []engine.RunFeedEntry
		view(t, s, func(tx engine.Tx) error {
			for {
				entries, err := tx.RunFeed(env, after, limit)
				if err != nil {
					return err
				}
				if len(entries) > limit {
					return fmt.Errorf("RunFeed(%d, %d) returned %d entries", after, limit, len(entries))
				}
				if len(entries) == 0 {
					return nil
				}
				out = append(out, entries...)
				after = entries[len(entries)-1].Cursor
			}
		})
		return out
	}
	check := func(from int, got []engine.RunFeedEntry) {
		t.Helper()
		want := all[from:]
		if len(got) != len(want) {
			t.Errorf("paging after position %d returned %d entries, want %d", from, len(got), len(want))
			return
		}
		for i, e := range got {
			if e.Cursor != want[i] || e.RunID != byCursor[want[i]] {
				t.Errorf("paging after position %d: entry %d is %d/%s, want %d/%s", from, i, e.Cursor, e.RunID, want[i], byCursor[want[i]])
				return
			}
		}
	}
	check(0, page(0, 7))
	for _, from := range []int{1, 57, total / 2, total - 1, total} {
		check(from, page(all[from-1], 13))
	}
}
