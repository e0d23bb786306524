package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/harkhq/hark/engine"
	"github.com/harkhq/hark/engine/badgerstore"
	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// trackTranslator stands in for a source plugin: each delivery's body is one
// track event, {"event": name, "userId": id, "messageId": key}. The engine's
// watch is what is under test here, not translation.
type trackTranslator struct{}

func (trackTranslator) Translate(_ context.Context, _ string, ds []engine.Delivery) ([]engine.Translation, error) {
	out := make([]engine.Translation, len(ds))
	for i, d := range ds {
		var ev struct {
			Event     string          `json:"event"`
			UserID    string          `json:"userId"`
			MessageID json.RawMessage `json:"messageId"`
		}
		if err := json.Unmarshal(d.Body, &ev); err != nil {
			out[i].Err = &engine.DeliveryError{Kind: engine.BadRequest, Message: err.Error()}
			continue
		}
		out[i].Events = []engine.InEvent{{
			Type: "track", Name: ev.Event, UserID: ev.UserID, IdempotencyKey: ev.MessageID,
			Timestamp: time.Now(), Data: json.RawMessage(`{}`), Original: d.Body,
		}}
	}
	return out, nil
}

// twoEngines opens one Badger store and two engines on it, the nodes of a
// cluster in one process, with a Segment source type and translator.
func twoEngines(t *testing.T, translator engine.Translator) (a, b *engine.Engine) {
	t.Helper()
	store, err := badgerstore.Open(badgerstore.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	node := func() *engine.Engine {
		e, err := engine.New(context.Background(), engine.Config{Store: store, SourceTypes: oneSourceType{&harkv1.SourceType{Type: "segment"}}, Translator: translator})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Close() })
		return e
	}
	return node(), node()
}

// TestTwoEnginesOnOneStore runs two engines on one store, as two nodes share
// one in cluster mode: what one writes to the catalog and the triggers takes
// effect in the other through the store's watch, and run watchers on one wake
// for runs the other starts.
func TestTwoEnginesOnOneStore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, b := twoEngines(t, trackTranslator{})

	src, err := a.CreateSource(ctx, &harkv1.CreateSourceRequest{Name: "s", Type: "segment"})
	if err != nil {
		t.Fatal(err)
	}
	token := tokenOf(t, src, "development")
	if _, err := a.CreateWorkflow(ctx, &harkv1.CreateWorkflowRequest{Key: "welcome"}); err != nil {
		t.Fatal(err)
	}
	// B resolves the token, caching the source environment.
	if _, _, err := b.ResolveIngestToken(ctx, token); err != nil {
		t.Fatalf("node B resolves the token node A created: %v", err)
	}

	runs := make(chan *harkv1.WorkflowRun, 4)
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	watching := make(chan struct{})
	go b.WatchWorkflowRuns(watchCtx, &harkv1.WatchWorkflowRunsRequest{Environment: "development"},
		func() error { close(watching); return nil },
		func(r *harkv1.WorkflowRun) error { runs <- r; return nil })
	<-watching

	trg, err := a.CreateTrigger(ctx, &harkv1.CreateTriggerRequest{
		Environment: "development", WorkflowKey: "welcome", SourceId: src.GetId(), Event: "Signed Up",
		Mapping: &harkv1.TriggerMapping{Recipients: `{"id": userId}`}, Status: harkv1.TriggerStatus_TRIGGER_STATUS_ACTIVE,
	})
	if err != nil {
		t.Fatal(err)
	}
	// Node B fires the trigger node A created, and B's watcher sees the run.
	receive(t, b, token, `{"event":"Signed Up","userId":"u1","messageId":"m1"}`)
	select {
	case r := <-runs:
		if r.GetTriggerId() != trg.GetId() || r.GetWorkflowKey() != "welcome" {
			t.Fatalf("run = %v, want one of trigger %s", r, trg.GetId())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("node B's run watcher saw no run for the event node B received")
	}

	// A deletes the trigger: B no longer fires it.
	if err := a.DeleteTrigger(ctx, "development", trg.GetId()); err != nil {
		t.Fatal(err)
	}
	receive(t, b, token, `{"event":"Signed Up","userId":"u2","messageId":"m2"}`)
	list, err := b.ListWorkflowRuns(ctx, &harkv1.ListWorkflowRunsRequest{Environment: "development"})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(list.GetWorkflowRuns()); n != 1 {
		t.Fatalf("%d runs after the trigger was deleted on node A, want the 1 from before", n)
	}

	// A rotates the token: B stops taking the old one at once (its cache of
	// the source environment was invalidated by the change).
	if _, err := a.RotateSourceToken(ctx, src.GetId(), "development"); err != nil {
		t.Fatal(err)
	}
	var nf *engine.NotFoundError
	if _, _, err := b.ResolveIngestToken(ctx, token); !errors.As(err, &nf) {
		t.Fatalf("node B resolves the token node A rotated away: err = %v, want NotFound", err)
	}
}

func receive(t *testing.T, e *engine.Engine, token, body string) {
	t.Helper()
	resp, err := e.Receive(context.Background(), token, engine.Delivery{Body: []byte(body), ContentType: "application/json"})
	if err != nil {
		t.Fatalf("receive %s: %v", body, err)
	}
	if evs := resp.GetEvents(); len(evs) != 1 || evs[0].GetStatus() == harkv1.SourceEventStatus_SOURCE_EVENT_STATUS_REJECTED {
		t.Fatalf("receive %s: %v", body, resp)
	}
}

// TestLayoutAcrossEngines creates sources on one engine while the other
// creates environments, on one store: neither engine's lock sees the other,
// so a gap can open, and the watch closes it — every source ends with a
// configuration in every environment.
func TestLayoutAcrossEngines(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, b := twoEngines(t, nil)
	const n = 20
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range n {
			if _, err := a.CreateSource(ctx, &harkv1.CreateSourceRequest{Name: fmt.Sprint("s", i), Type: "segment"}); err != nil {
				t.Error(err)
			}
		}
	})
	wg.Go(func() {
		for i := range n {
			if _, err := b.CreateEnvironment(ctx, &harkv1.CreateEnvironmentRequest{Slug: fmt.Sprint("env-", i)}); err != nil {
				t.Error(err)
			}
		}
	})
	wg.Wait()
	want := n + len(engine.DefaultEnvironments)
	var short []string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		list, err := b.ListSources(ctx, &harkv1.ListSourcesRequest{PageSize: 100})
		if err != nil {
			t.Fatal(err)
		}
		short = short[:0]
		for _, src := range list.GetSources() {
			if got := len(src.GetEnvironments()); got != want {
				short = append(short, fmt.Sprintf("%s has %d", src.GetName(), got))
			}
		}
		if len(list.GetSources()) == n && len(short) == 0 {
			return
		}
	}
	t.Fatalf("sources still missing environments (want %d each): %v", want, short)
}
