package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

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
