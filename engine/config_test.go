package engine_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/protobuf/types/known/structpb"

	"github.com/harkhq/hark/engine"
	"github.com/harkhq/hark/engine/badgerstore"
	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// TestApplyConfigStoreFailure: a store write that fails after others of
// the same apply (the destination, written after the workflow, the source's
// settings and the trigger) leaves everything as it was: an apply is one
// transaction, and the trigger registry changes only after its commit.
func TestApplyConfigStoreFailure(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bs, err := badgerstore.Open(badgerstore.Options{Dir: t.TempDir(), MinFreeBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bs.Close() })
	store := &faultStore{Store: bs}
	e, err := engine.New(ctx, engine.Config{Store: store, SourceTypes: oneSourceType{withRequired}, Translator: noTranslator{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	if _, err := e.CreateSource(ctx, &harkv1.CreateSourceRequest{Name: "s", Type: "needs-key"}); err != nil {
		t.Fatal(err)
	}
	before, err := e.ExportConfig(ctx, &harkv1.ExportConfigRequest{Environment: "development"})
	if err != nil {
		t.Fatal(err)
	}
	doc := &harkv1.ConfigDocument{
		ApiVersion: engine.ConfigAPIVersion,
		Workflows:  []*harkv1.ConfigWorkflow{{Key: "wf"}},
		Sources:    []*harkv1.ConfigSource{{Name: "s", Settings: map[string]string{"api_key": "k", "region": "eu"}}},
		Triggers:   []*harkv1.ConfigTrigger{{Source: "s", Event: "E", WorkflowKey: "wf"}},
		Destinations: []*harkv1.ConfigDestination{{Name: "d", Type: "knock", Settings: map[string]string{"api_key": "sk"},
			Status: "paused"}},
	}
	boom := errors.New("disk on fire")
	store.onPutDestination = func(*harkv1.Destination) error { return boom }
	if _, err := e.ApplyConfig(ctx, &harkv1.ApplyConfigRequest{Environment: "development", Document: doc}); !errors.Is(err, boom) {
		t.Fatalf("apply with a failing write: %v, want the store's error", err)
	}
	after, err := e.ExportConfig(ctx, &harkv1.ExportConfigRequest{Environment: "development"})
	if err != nil {
		t.Fatal(err)
	}
	if len(after.GetWorkflows()) != 0 || len(after.GetTriggers()) != 0 || len(after.GetDestinations()) != 0 ||
		len(after.GetSources()[0].GetSettings()) != len(before.GetSources()[0].GetSettings()) {
		t.Fatalf("a failed apply left %v, want %v", after, before)
	}

	// The same document applies once the store works, and plans nothing
	// more afterwards.
	store.onPutDestination = nil
	changes, err := e.ApplyConfig(ctx, &harkv1.ApplyConfigRequest{Environment: "development", Document: doc})
	if err != nil || len(changes) != 4 {
		t.Fatalf("apply: %d changes, %v; want 4", len(changes), err)
	}
	if changes, err := e.PlanConfig(ctx, &harkv1.PlanConfigRequest{Environment: "development", Document: doc}); err != nil || len(changes) != 0 {
		t.Fatalf("plan after apply: %v, %v; want no changes", changes, err)
	}
}

// TestDeleteDestinationFailsEveryHeldChunk: more held deliveries than one
// chunk of the loop DeleteDestination and a configuration prune share are
// all FAILED, saying why, by both — DeleteDestination over several
// commits, the prune in the apply's one transaction — and both
// destinations are gone.
func TestDeleteDestinationFailsEveryHeldChunk(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e, _, first := outboxEngine(t, func(http.ResponseWriter, *http.Request) {}, nil)
	paused := harkv1.DestinationStatus_DESTINATION_STATUS_PAUSED
	if _, err := e.UpdateDestination(ctx, &harkv1.UpdateDestinationRequest{Environment: "development", Id: first.GetId(), Status: &paused}); err != nil {
		t.Fatal(err)
	}
	second, err := e.CreateDestination(ctx, &harkv1.CreateDestinationRequest{Environment: "development", Name: "pruned", Type: "webhook",
		Url: first.GetUrl(), Status: paused})
	if err != nil {
		t.Fatal(err)
	}
	const runs = 300 // more than one chunk (256)
	for range runs {
		_, _, err := e.TriggerWorkflow(ctx, &harkv1.TriggerWorkflowRequest{
			Environment: "development", Key: "wf", Recipients: []*structpb.Value{structpb.NewStringValue("u1")},
		}, "")
		if err != nil {
			t.Fatal(err)
		}
	}
	count := func(destID string, status harkv1.DeliveryStatus) int {
		t.Helper()
		n, token := 0, ""
		for {
			page, err := e.ListDeliveries(ctx, &harkv1.ListDeliveriesRequest{Environment: "development", DestinationId: destID,
				Status: status, PageSize: 1000, PageToken: token})
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range page.GetDeliveries() {
				if status != harkv1.DeliveryStatus_DELIVERY_STATUS_FAILED {
					continue
				}
				// The list leaves attempts out; the delivery has them.
				got, err := e.GetDelivery(ctx, "development", d.GetId())
				if err != nil {
					t.Fatal(err)
				}
				if a := got.GetAttempts(); len(a) != 1 || !strings.Contains(a[0].GetError(), "deleted") {
					t.Fatalf("delivery %v failed without saying the destination was deleted", got)
				}
			}
			n += len(page.GetDeliveries())
			if token = page.GetNextPageToken(); token == "" {
				return n
			}
		}
	}
	pending, failed := harkv1.DeliveryStatus_DELIVERY_STATUS_PENDING, harkv1.DeliveryStatus_DELIVERY_STATUS_FAILED
	for _, d := range []*harkv1.Destination{first, second} {
		if n := count(d.GetId(), pending); n != runs {
			t.Fatalf("destination %s holds %d deliveries, want %d", d.GetName(), n, runs)
		}
	}

	if err := e.DeleteDestination(ctx, "development", first.GetId()); err != nil {
		t.Fatal(err)
	}
	doc := &harkv1.ConfigDocument{ApiVersion: engine.ConfigAPIVersion, Destinations: []*harkv1.ConfigDestination{}}
	changes, err := e.ApplyConfig(ctx, &harkv1.ApplyConfigRequest{Environment: "development", Document: doc, Prune: true, Only: []string{engine.SectionDestinations}})
	if err != nil || len(changes) != 1 || changes[0].GetName() != "pruned" || changes[0].GetAction() != harkv1.ConfigChangeAction_CONFIG_CHANGE_ACTION_DELETE {
		t.Fatalf("prune: %v, %v; want the deletion of pruned", changes, err)
	}
	for _, d := range []*harkv1.Destination{first, second} {
		if n, f := count(d.GetId(), pending), count(d.GetId(), failed); n != 0 || f != runs {
			t.Fatalf("deleted destination %s: %d deliveries pending, %d failed; want 0 and %d", d.GetName(), n, f, runs)
		}
		if _, err := e.GetDestination(ctx, "development", d.GetId()); !errors.As(err, new(*engine.NotFoundError)) {
			t.Fatalf("get deleted destination %s: %v, want not found", d.GetName(), err)
		}
	}
}
