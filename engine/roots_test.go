package engine_test

import (
	"context"
	"errors"
	"testing"

	"github.com/harkhq/hark/engine"
	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// TestStoredTriggerWithUnknownRoot checks what happens to a trigger saved
// before roots were checked, whose condition starts from a typo: it can
// still be paused, since the update does not touch its expressions, but an
// update that gives them again, or a test, reports the typo.
func TestStoredTriggerWithUnknownRoot(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e, store := newEngine(t, &harkv1.SourceType{Type: "segment"})
	src, err := e.CreateSource(ctx, &harkv1.CreateSourceRequest{Name: "s", Type: "segment"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.CreateWorkflow(ctx, &harkv1.CreateWorkflowRequest{Key: "wf"}); err != nil {
		t.Fatal(err)
	}
	legacy := &harkv1.Trigger{
		Id: "trg_legacy", Environment: "development", WorkflowKey: "wf", SourceId: src.GetId(),
		EventType: "track", Event: "E", Condition: `propertes.plan == "pro"`,
		Mapping: &harkv1.TriggerMapping{}, Status: harkv1.TriggerStatus_TRIGGER_STATUS_ACTIVE,
	}
	if err := store.Update(ctx, func(tx engine.Tx) error { return tx.PutTrigger(legacy) }); err != nil {
		t.Fatal(err)
	}
	wantTypo := func(t *testing.T, err error, field string) {
		t.Helper()
		var xe *engine.ExpressionError
		if !errors.As(err, &xe) || xe.Field != field || xe.Message != "unknown name propertes; did you mean properties?" {
			t.Fatalf("err = %v, want an ExpressionError in %s suggesting properties", err, field)
		}
	}

	inactive := harkv1.TriggerStatus_TRIGGER_STATUS_INACTIVE
	if _, err := e.UpdateTrigger(ctx, &harkv1.UpdateTriggerRequest{Environment: "development", Id: "trg_legacy", Status: &inactive}); err != nil {
		t.Fatalf("pause the stored trigger: %v", err)
	}
	same := legacy.GetCondition()
	_, err = e.UpdateTrigger(ctx, &harkv1.UpdateTriggerRequest{Environment: "development", Id: "trg_legacy", Condition: &same})
	wantTypo(t, err, "condition")
	srcID := src.GetId()
	_, err = e.UpdateTrigger(ctx, &harkv1.UpdateTriggerRequest{Environment: "development", Id: "trg_legacy", SourceId: &srcID})
	wantTypo(t, err, "condition")
	_, err = e.TestTrigger(ctx, &harkv1.TestTriggerRequest{Environment: "development", TriggerId: "trg_legacy"})
	wantTypo(t, err, "condition")
}
