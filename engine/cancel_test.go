package engine_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/harkhq/hark/engine"
	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// TestCancelRunsStoredWithoutRecipientStates: runs stored before hark kept
// a status per recipient (written here as they were) read with every
// recipient in the run's status, and a per-recipient cancel of one works
// as of a new run.
func TestCancelRunsStoredWithoutRecipientStates(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e, store := newEngine(t, withRequired)
	if _, err := e.CreateWorkflow(ctx, &harkv1.CreateWorkflowRequest{Key: "wf"}); err != nil {
		t.Fatal(err)
	}
	created := timestamppb.New(time.Now().Add(-time.Hour))
	cancelledAt := timestamppb.New(time.Now().Add(-time.Minute))
	old := []*harkv1.WorkflowRun{
		{Id: "run_01active", Environment: "development", WorkflowKey: "wf", Recipients: []string{"u1", "u2"}, CancellationKey: "k",
			Status: harkv1.WorkflowRunStatus_WORKFLOW_RUN_STATUS_ACTIVE, CreatedAt: created, UpdatedAt: created},
		{Id: "run_02cancelled", Environment: "development", WorkflowKey: "wf", Recipients: []string{"u1", "u2"}, CancellationKey: "k",
			Status: harkv1.WorkflowRunStatus_WORKFLOW_RUN_STATUS_CANCELLED, CreatedAt: created, UpdatedAt: cancelledAt},
	}
	err := store.Update(ctx, func(tx engine.Tx) error {
		for _, r := range old {
			if err := tx.PutWorkflowRun(r, time.Now().Add(time.Hour)); err != nil {
				return err
			}
			if _, err := tx.AppendRunFeed("development", r.GetId(), time.Now().Add(time.Hour)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	run, err := e.GetWorkflowRun(ctx, "development", "run_02cancelled")
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range run.GetRecipientStates() {
		if st.GetStatus() != harkv1.WorkflowRunStatus_WORKFLOW_RUN_STATUS_CANCELLED || !st.GetCancelledAt().AsTime().Equal(cancelledAt.AsTime()) {
			t.Errorf("old cancelled run's recipient %v, want CANCELLED at the run's updatedAt", st)
		}
	}
	if len(run.GetRecipientStates()) != 2 {
		t.Fatalf("old cancelled run's recipient states = %v, want u1 and u2", run.GetRecipientStates())
	}

	res, err := e.CancelWorkflow(ctx, &harkv1.CancelWorkflowRequest{Environment: "development", Key: "wf", CancellationKey: "k", Recipients: []string{"u2"}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.GetWorkflowRunIds(), []string{"run_01active"}) {
		t.Fatalf("cancel u2 = %v, want only the old active run", res.GetWorkflowRunIds())
	}
	run, err = e.GetWorkflowRun(ctx, "development", "run_01active")
	if err != nil {
		t.Fatal(err)
	}
	states := run.GetRecipientStates()
	if run.GetStatus() != harkv1.WorkflowRunStatus_WORKFLOW_RUN_STATUS_ACTIVE || len(states) != 2 ||
		states[0].GetStatus() != harkv1.WorkflowRunStatus_WORKFLOW_RUN_STATUS_ACTIVE ||
		states[1].GetStatus() != harkv1.WorkflowRunStatus_WORKFLOW_RUN_STATUS_CANCELLED {
		t.Fatalf("old active run after cancelling u2 = %v, want ACTIVE with u1 active and u2 cancelled", run)
	}
}
