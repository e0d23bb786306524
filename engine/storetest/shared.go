package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/harkhq/hark/engine"
	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// RunShared runs the properties of a store shared by several nodes: open
// returns two handles on one new, empty store (a backend of one process
// returns the same store twice).
func RunShared(t *testing.T, open func(t *testing.T) (a, b engine.Store)) {
	t.Run("WatchedReadsAreCurrent", func(t *testing.T) {
		t.Parallel()
		testWatchedReadsAreCurrent(t, open)
	})
	t.Run("OneFeedForAllNodes", func(t *testing.T) {
		t.Parallel()
		testOneFeedForAllNodes(t, open)
	})
	t.Run("EventTypeCountsOfAllNodes", func(t *testing.T) {
		t.Parallel()
		testEventTypeCountsOfAllNodes(t, open)
	})
}

// testEventTypeCountsOfAllNodes: two nodes counting one event type at once
// lose no count: either reads the sum, by key and listed, with the
// earliest first time and the latest last time.
func testEventTypeCountsOfAllNodes(t *testing.T, open func(t *testing.T) (a, b engine.Store)) {
	a, b := open(t)
	const env, counts = "dev", 60
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	nodes := []engine.Store{a, b}
	var wg sync.WaitGroup
	for n, s := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range counts {
				at := timestamppb.New(base.Add(time.Duration(2*i+n) * time.Second))
				add := &harkv1.EventType{SourceId: "src", Environment: env, Type: "track", Name: "Signed Up", Count: 2, FirstReceivedAt: at, LastReceivedAt: at}
				var err error
				for range maxAppendAttempts { // Badger opened twice gives up after a few conflicts
					if err = s.Update(t.Context(), func(tx engine.Tx) error { return tx.CountEventType(add) }); !errors.Is(err, engine.ErrUnavailable) {
						break
					}
				}
				if err != nil {
					t.Errorf("node %d, count %d: %v", n, i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	want := &harkv1.EventType{SourceId: "src", Environment: env, Type: "track", Name: "Signed Up", Count: 2 * 2 * counts,
		FirstReceivedAt: timestamppb.New(base), LastReceivedAt: timestamppb.New(base.Add(time.Duration(2*counts-1) * time.Second))}
	for n, s := range nodes {
		view(t, s, func(tx engine.Tx) error {
			got, err := tx.EventType("src", env, "track", "Signed Up")
			if err != nil {
				return err
			}
			if !proto.Equal(got, want) {
				t.Errorf("node %d reads %v, want %v", n, got, want)
			}
			listed, err := tx.EventTypes("src", env, "", 10)
			if err != nil {
				return err
			}
			if len(listed) != 1 || !proto.Equal(listed[0], want) {
				t.Errorf("node %d lists %v, want %v", n, listed, want)
			}
			return nil
		})
	}
}

// testOneFeedForAllNodes: two nodes appending to one run feed at once make
// one log — read the same through either handle, each node's appends in
// its order, every cursor once — and a reader that read part of it
// through one node resumes from its last cursor through the other and
// finds exactly the rest.
func testOneFeedForAllNodes(t *testing.T, open func(t *testing.T) (a, b engine.Store)) {
	a, b := open(t)
	const env, appends = "dev", 120
	nodes := []engine.Store{a, b}
	cursors := make([][]uint64, len(nodes))
	var wg sync.WaitGroup
	for n, s := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range appends {
				var (
					cursor uint64
					err    error
				)
				// Badger, one store opened twice, gives up after a few
				// conflicts (ErrUnavailable); the engine queues its own
				// appenders.
				for range maxAppendAttempts {
					err = s.Update(t.Context(), func(tx engine.Tx) (err error) {
						cursor, err = appendRunFeed(tx, env, fmt.Sprintf("run-%d-%03d", n, i), farFuture())
						return err
					})
					if !errors.Is(err, engine.ErrUnavailable) {
						break
					}
				}
				if err != nil {
					t.Errorf("node %d, append %d: %v", n, i, err)
					return
				}
				cursors[n] = append(cursors[n], cursor)
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	feeds := make([][]engine.RunFeedEntry, len(nodes))
	for n, s := range nodes {
		view(t, s, func(tx engine.Tx) (err error) {
			feeds[n], err = tx.RunFeed(env, 0, 2*appends+1)
			return err
		})
	}
	if !slices.Equal(feeds[0], feeds[1]) {
		t.Fatalf("the two nodes read different feeds:\n%v\n%v", feeds[0], feeds[1])
	}
	checkFeedHolds(t, feeds[0], cursors)
	for _, from := range []int{1, appends / 3, appends, 2*appends - 1} {
		var rest []engine.RunFeedEntry
		view(t, nodes[from%2], func(tx engine.Tx) (err error) {
			rest, err = tx.RunFeed(env, feeds[0][from-1].Cursor, 2*appends)
			return err
		})
		if want := feeds[0][from:]; !slices.Equal(rest, want) {
			t.Errorf("resumed after entry %d on node %d: %d entries, want the %d after it", from, from%2, len(rest), len(want))
		}
	}
}

// testWatchedReadsAreCurrent: a read that b's watcher makes in answer to a
// change a committed sees that change — by a key read and by a scan —
// never an older version. The engine's registries rely on it: a watcher
// that read the trigger as it was before the change would keep it so,
// since no second notification comes.
func testWatchedReadsAreCurrent(t *testing.T, open func(t *testing.T) (a, b engine.Store)) {
	a, b := open(t)
	const env, id, rounds = "dev", "trg1", 60
	type seen struct {
		trigger string // the workflow key read, "" when the trigger was absent
		listed  []string
		feed    []string
		err     error
	}
	got := make(chan seen, 2*rounds)
	stop := b.Watch(func(changes []engine.Change) {
		for _, c := range changes {
			var s seen
			switch c.Kind {
			case engine.ChangeTrigger:
				s.err = b.View(t.Context(), func(tx engine.Tx) error {
					trg, err := tx.Trigger(env, id)
					if err != nil && !notFound(err) {
						return err
					}
					s.trigger = trg.GetWorkflowKey()
					all, err := tx.Triggers(env, "", 10)
					for _, trg := range all {
						s.listed = append(s.listed, trg.GetWorkflowKey())
					}
					return err
				})
			case engine.ChangeRuns:
				s.err = b.View(t.Context(), func(tx engine.Tx) error {
					entries, err := tx.RunFeed(env, 0, 2*rounds)
					for _, e := range entries {
						s.feed = append(s.feed, e.RunID)
					}
					return err
				})
			default:
				continue
			}
			got <- s
		}
	})
	t.Cleanup(stop)
	next := func(what string) seen {
		t.Helper()
		select {
		case s := <-got:
			if s.err != nil {
				t.Fatalf("%s: the watcher's read: %v", what, s.err)
			}
			return s
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: the other handle's watch reported nothing in 10s", what)
			return seen{}
		}
	}
	for i := range rounds {
		wf := fmt.Sprint("wf-", i)
		update(t, a, func(tx engine.Tx) error {
			return tx.PutTrigger(&harkv1.Trigger{Environment: env, Id: id, WorkflowKey: wf})
		})
		if s := next("trigger " + wf); s.trigger != wf || !slices.Equal(s.listed, []string{wf}) {
			t.Fatalf("round %d: a watcher told of the trigger's change read %q and listed %q, want %q", i, s.trigger, s.listed, wf)
		}
		run := fmt.Sprint("run-", i)
		update(t, a, func(tx engine.Tx) error {
			_, err := appendRunFeed(tx, env, run, farFuture())
			return err
		})
		if s := next("feed entry " + run); !slices.Contains(s.feed, run) {
			t.Fatalf("round %d: a watcher told of the run feed's growth read %q, without %s", i, s.feed, run)
		}
	}
}
