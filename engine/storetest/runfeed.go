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

// testConcurrentAppends: concurrent appenders get unique cursors, each
// appender's entries are in the feed in the order it appended them; the
// feed is a log — a reader polling it finds each poll beginning with what
// the one before read, so resuming after the last cursor read misses
// nothing — and RunFeed pages through every entry after any cursor, in
// the feed's order. (Cursors need not increase along the feed: a store
// shared by several nodes issues each node's from a block of its own.)
func testConcurrentAppends(t *testing.T, s engine.Store) {
	const (
		env       = "dev"
		appenders = 8
		appends   = 50
		total     = appenders * appends
	)

	// The reader: every poll reads the whole feed, which must begin with
	// the feed the previous poll read.
	done := make(chan struct{})
	var readerWG sync.WaitGroup
	readerWG.Add(1)
	go func() {
		defer readerWG.Done()
		var before []engine.RunFeedEntry
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
			if len(entries) < len(before) || !slices.Equal(entries[:len(before)], before) {
				t.Errorf("the feed read %v after it read %v: a poll must begin with the one before", entries, before)
				return
			}
			before = entries
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

	// The whole feed holds each append once, at its cursor, each
	// appender's in its order.
	var all []engine.RunFeedEntry
	view(t, s, func(tx engine.Tx) (err error) {
		all, err = tx.RunFeed(env, 0, total+1)
		return err
	})
	checkFeedHolds(t, all, cursors)

	// Paging with a small limit returns exactly the feed's entries after
	// the cursor, in its order, from the start and from any cursor.
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
		if want := all[from:]; !slices.Equal(got, want) {
			t.Errorf("paging after position %d returned %d entries, want the feed's %d after it (got %v)", from, len(got), len(want), got)
		}
	}
	check(0, page(0, 7))
	for _, from := range []int{1, 57, total / 2, total - 1, total} {
		check(from, page(all[from-1].Cursor, 13))
	}
}

// checkFeedHolds checks that feed holds the appends of each appender once —
// the run named run-<appender>-<i> at the cursor it got, cursors[appender][i]
// — in the order each appender made them, and nothing else.
func checkFeedHolds(t *testing.T, feed []engine.RunFeedEntry, cursors [][]uint64) {
	t.Helper()
	next := make([]int, len(cursors)) // each appender's next append
	byCursor := map[uint64]string{}
	want := 0
	for _, cs := range cursors {
		want += len(cs)
	}
	if len(feed) != want {
		t.Errorf("the feed holds %d entries, want the %d appended", len(feed), want)
	}
	for _, e := range feed {
		if other, dup := byCursor[e.Cursor]; dup {
			t.Errorf("cursor %d is in the feed for %s and %s", e.Cursor, other, e.RunID)
			return
		}
		byCursor[e.Cursor] = e.RunID
		var a, i int
		if _, err := fmt.Sscanf(e.RunID, "run-%d-%d", &a, &i); err != nil || a < 0 || a >= len(cursors) {
			t.Errorf("the feed holds %s, which no appender appended", e.RunID)
			return
		}
		if i != next[a] || i >= len(cursors[a]) || cursors[a][i] != e.Cursor {
			t.Errorf("the feed holds %s at cursor %d where appender %d's append %d was due", e.RunID, e.Cursor, a, next[a])
			return
		}
		next[a]++
	}
}
