package natsstore_test

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/harkhq/hark/engine"
	"github.com/harkhq/hark/engine/kvstore"
	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// TestEventTypeCountsPerNode: two nodes counting one event type at once
// run each commit once (each adds to a record of its own, kvstore.PerNode),
// and folding the nodes' records into the event type's — while they keep
// counting — loses no count and counts none twice.
func TestEventTypeCountsPerNode(t *testing.T) {
	dbs := openDBs(t, 0, 1)
	stores := []*kvstore.Store{kvstore.New(dbs[0]), kvstore.New(dbs[1])}
	count := func(s *kvstore.Store, runs *atomic.Int64, n int) {
		t.Helper()
		for range n {
			err := s.Update(t.Context(), func(tx engine.Tx) error {
				runs.Add(1)
				now := timestamppb.Now()
				return tx.CountEventType(&harkv1.EventType{SourceId: "src", Environment: "dev", Type: "track", Name: "Paid", Count: 1, FirstReceivedAt: now, LastReceivedAt: now})
			})
			if err != nil {
				t.Error(err)
				return
			}
		}
	}
	total := func() int64 {
		t.Helper()
		var n int64
		err := stores[1].View(t.Context(), func(tx engine.Tx) error {
			et, err := tx.EventType("src", "dev", "track", "Paid")
			n = et.GetCount()
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	const each = 80
	runs := make([]atomic.Int64, 2)
	var wg sync.WaitGroup
	for i, s := range stores {
		wg.Go(func() { count(s, &runs[i], each) })
	}
	wg.Wait()
	for i := range runs {
		if got := runs[i].Load(); got != each {
			t.Errorf("node %d ran its %d counts %d times: they conflicted", i, each, got)
		}
	}
	if got := total(); got != 2*each {
		t.Fatalf("count %d after %d from each node, want %d", got, each, 2*each)
	}

	// Folding everything while both nodes count on.
	stop := make(chan struct{})
	var folds, folded atomic.Int64
	var fw sync.WaitGroup
	fw.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			n, err := stores[0].FoldEventTypeCounts(t.Context(), time.Now().Add(time.Hour))
			if err != nil {
				t.Error(err)
				return
			}
			folds.Add(1)
			folded.Add(int64(n))
		}
	})
	for i, s := range stores {
		wg.Go(func() { count(s, &runs[i], each) })
	}
	wg.Wait()
	close(stop)
	fw.Wait()
	t.Logf("%d folds took in %d node records while the nodes counted", folds.Load(), folded.Load())
	if folded.Load() == 0 {
		t.Error("no fold took in a node record")
	}
	// A fold that meets nodes counting at every moment runs again until
	// they pause (here: the end); the loop in Store folds only records
	// quiet for minutes.
	if got := total(); got != 4*each {
		t.Fatalf("count %d after folding while counting, want %d", got, 4*each)
	}
	// Once both nodes are done, a fold takes in what is left (if the
	// fold above did not finish last), and a second finds nothing.
	for i := range 2 {
		n, err := stores[1].FoldEventTypeCounts(t.Context(), time.Now().Add(time.Hour))
		if err != nil || i == 1 && n != 0 {
			t.Fatalf("fold %d took in %d records (%v)", i+1, n, err)
		}
		if got := total(); got != 4*each {
			t.Fatalf("count %d after fold %d, want %d", got, i+1, 4*each)
		}
	}
}
