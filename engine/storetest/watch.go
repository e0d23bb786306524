package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/harkhq/hark/engine"
	"github.com/harkhq/hark/engine/delivery"
	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// watcher collects the changes a Store.Watch reports; fn may be called
// from several goroutines at once.
type watcher struct {
	mu      sync.Mutex
	changes []engine.Change
}

func (w *watcher) fn(cs []engine.Change) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.changes = append(w.changes, cs...)
}

// take returns what was reported since the last take, leaving out
// ChangeReset: a shared backend may send one whenever its watch reconnects.
func (w *watcher) take() []engine.Change {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := slices.DeleteFunc(w.changes, func(c engine.Change) bool { return c.Kind == engine.ChangeReset })
	w.changes = nil
	return out
}

// wantChange says whether changes hold one that matches want: of its
// kind, and for ChangeTrigger its environment and id, for ChangeRuns its
// environment (the fields Change promises for them).
func wantChange(changes []engine.Change, want engine.Change) bool {
	return slices.ContainsFunc(changes, func(c engine.Change) bool {
		switch {
		case c.Kind != want.Kind:
			return false
		case want.Kind == engine.ChangeTrigger:
			return c.Environment == want.Environment && c.ID == want.ID
		case want.Kind == engine.ChangeRuns:
			return c.Environment == want.Environment
		}
		return true
	})
}

// testWatch: Watch reports the watched changes of every committed Update
// before the Update returns, nothing for a failed Update or a View, and
// nothing after stop.
func testWatch(t *testing.T, open opener) {
	s := open(t)
	const env = "dev"
	w := &watcher{}
	stop := sync.OnceFunc(s.Watch(w.fn))
	t.Cleanup(stop)

	catalog := engine.Change{Kind: engine.ChangeCatalog}
	layout := engine.Change{Kind: engine.ChangeLayout}
	trigger := engine.Change{Kind: engine.ChangeTrigger, Environment: env, ID: "trg1"}
	runs := engine.Change{Kind: engine.ChangeRuns, Environment: env}
	dest := &harkv1.Destination{Environment: env, Id: "dst1", Type: "webhook", Url: "https://example.com"}
	writes := []struct {
		name  string
		write func(engine.Tx) error
		want  engine.Change
	}{
		{"PutEnvironment", func(tx engine.Tx) error { return tx.PutEnvironment(&harkv1.Environment{Slug: env}) }, layout},
		{"PutSource", func(tx engine.Tx) error { return tx.PutSource(&harkv1.Source{Id: "src", Type: "segment"}) }, layout},
		{"PutSourceEnvironment", func(tx engine.Tx) error {
			return tx.PutSourceEnvironment(&harkv1.SourceEnvironment{SourceId: "src", Environment: env})
		}, catalog},
		{"SetIngestToken", func(tx engine.Tx) error { return tx.SetIngestToken("src", env, "tok_1") }, catalog},
		{"DeleteSource", func(tx engine.Tx) error { return tx.DeleteSource("src") }, catalog},
		{"PutWorkflow", func(tx engine.Tx) error { return tx.PutWorkflow(&harkv1.Workflow{Key: "wf"}) }, catalog},
		{"DeleteWorkflow", func(tx engine.Tx) error { return tx.DeleteWorkflow("wf") }, catalog},
		{"PutDestination", func(tx engine.Tx) error { return tx.PutDestination(dest, delivery.Secrets{Current: "whsec"}) }, catalog},
		{"DeleteDestination", func(tx engine.Tx) error { return tx.DeleteDestination(env, "dst1") }, catalog},
		{"PutTrigger", func(tx engine.Tx) error {
			return tx.PutTrigger(&harkv1.Trigger{Environment: env, Id: "trg1", WorkflowKey: "wf"})
		}, trigger},
		{"DeleteTrigger", func(tx engine.Tx) error { return tx.DeleteTrigger(env, "trg1") }, trigger},
		{"AppendRunFeed", func(tx engine.Tx) error {
			_, err := appendRunFeed(tx, env, "run1", farFuture())
			return err
		}, runs},
	}
	for _, c := range writes {
		update(t, s, c.write)
		// No waiting: the changes must be there when Update returns.
		if got := w.take(); !wantChange(got, c.want) {
			t.Errorf("%s: Watch reported %v before Update returned, want a change %+v", c.name, got, c.want)
		}
	}

	// A failed Update reports nothing, though it wrote every watched kind.
	errBoom := errors.New("boom")
	err := s.Update(t.Context(), func(tx engine.Tx) error {
		for _, c := range writes {
			if err := c.write(tx); err != nil {
				return fmt.Errorf("%s: %w", c.name, err)
			}
		}
		return errBoom
	})
	if !errors.Is(err, errBoom) {
		t.Fatalf("Update returned %v, want fn's error", err)
	}
	if got := w.take(); len(got) != 0 {
		t.Errorf("a failed Update reported %v", got)
	}

	// A View reports nothing.
	view(t, s, func(tx engine.Tx) error {
		_, err := tx.Workflow("wf")
		if err != nil && !notFound(err) {
			return err
		}
		_, err = tx.RunFeed(env, 0, 10)
		return err
	})
	if got := w.take(); len(got) != 0 {
		t.Errorf("a View reported %v", got)
	}

	// After stop, one watcher hears nothing while another still hears the
	// change.
	other := &watcher{}
	stopOther := s.Watch(other.fn)
	t.Cleanup(stopOther)
	stop()
	update(t, s, func(tx engine.Tx) error { return tx.PutWorkflow(&harkv1.Workflow{Key: "wf2"}) })
	if got := w.take(); len(got) != 0 {
		t.Errorf("a stopped watcher was told %v", got)
	}
	if got := other.take(); !wantChange(got, catalog) {
		t.Errorf("the remaining watcher was told %v, want a catalog change", got)
	}
}
