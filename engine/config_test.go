package engine_test

import (
	"context"
	"errors"
	"testing"

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
