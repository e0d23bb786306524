package natsstore_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/harkhq/hark/engine"
	"github.com/harkhq/hark/engine/kvstore"
)

// TestRunFeedReadAsALogPages: a feed read from a cursor (ReadLogAfter)
// returns as many entries as asked for, in order, across the log's pages.
func TestRunFeedReadAsALogPages(t *testing.T) {
	s := kvstore.New(openDBs(t, 0)[0])
	ctx := context.Background()
	const size = 2500
	for i := 0; i < size; i += 500 {
		err := s.Update(ctx, func(tx engine.Tx) error {
			for j := i; j < i+500; j++ {
				if _, err := tx.AppendRunFeed("dev", fmt.Sprint("run-", j), time.Now().Add(time.Hour)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	var entries []engine.RunFeedEntry
	err := s.View(ctx, func(tx engine.Tx) (err error) {
		entries, err = tx.RunFeed("dev", 10, 2000)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2000 {
		t.Fatalf("%d entries after cursor 10, want 2000", len(entries))
	}
	for i, e := range entries {
		if e.Cursor != uint64(11+i) || e.RunID != fmt.Sprint("run-", 10+i) {
			t.Fatalf("entry %d is %d/%s, want %d/run-%d", i, e.Cursor, e.RunID, 11+i, 10+i)
		}
	}
}

// TestFeedAppendsOfTwoNodesDoNotConflict: two nodes appending to one run
// feed at once run each append once. With a counter that every append
// rewrote, their commits conflicted nearly every time; each node now
// issues cursors from a block of its own (kvstore.CursorIssuer).
func TestFeedAppendsOfTwoNodesDoNotConflict(t *testing.T) {
	dbs := openDBs(t, 0, 1)
	const appends = 100
	runs := make([]atomic.Int64, len(dbs))
	var wg sync.WaitGroup
	for n, db := range dbs {
		s := kvstore.New(db)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range appends {
				err := s.Update(t.Context(), func(tx engine.Tx) error {
					runs[n].Add(1)
					_, err := tx.AppendRunFeed("dev", fmt.Sprintf("run-%d-%d", n, i), time.Now().Add(time.Hour))
					return err
				})
				if err != nil {
					t.Errorf("node %d, append %d: %v", n, i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for n := range dbs {
		if got := runs[n].Load(); got != appends {
			t.Errorf("node %d ran its %d appends %d times: they conflicted", n, appends, got)
		}
	}
}

// BenchmarkRunFeedTail reads the newest entries of a long run feed, as a
// run watcher does each time it wakes: from the cursor it stopped at. With
// the feed read as a log (kvstore.LogReader) the cost is that of the tail;
// listed, it was that of the whole feed.
func BenchmarkRunFeedTail(b *testing.B) {
	for _, size := range []int{100, 3000} {
		b.Run(fmt.Sprint("feed=", size), func(b *testing.B) {
			s := kvstore.New(openDBs(b, 0)[0])
			ctx := context.Background()
			expires := time.Now().Add(time.Hour)
			for i := 0; i < size; i += 100 {
				err := s.Update(ctx, func(tx engine.Tx) error {
					for j := i; j < min(size, i+100); j++ {
						if _, err := tx.AppendRunFeed("dev", fmt.Sprint("run-", j), expires); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			after := uint64(size - 10)
			b.ResetTimer()
			for b.Loop() {
				err := s.View(ctx, func(tx engine.Tx) error {
					entries, err := tx.RunFeed("dev", after, 100)
					if err == nil && len(entries) != 10 {
						err = fmt.Errorf("%d entries after %d, want 10", len(entries), after)
					}
					return err
				})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
