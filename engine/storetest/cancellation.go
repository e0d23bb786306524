package storetest

import (
	"slices"
	"testing"

	"github.com/harkhq/hark/engine"
	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// testCancellationIndex: CancellableRuns lists the ACTIVE runs of a
// workflow with a cancellation key, in id order, until a run is stored
// with another status; a key that extends another ("k" and "k\x00b": a
// cancellation key is a mapped value and may hold a NUL) is another key.
func testCancellationIndex(t *testing.T, open opener) {
	s := open(t)
	const (
		env    = "dev"
		active = harkv1.WorkflowRunStatus_WORKFLOW_RUN_STATUS_ACTIVE
	)
	runs := []*harkv1.WorkflowRun{
		{Id: "r3", WorkflowKey: "wf", CancellationKey: "k", Status: active},
		{Id: "r1", WorkflowKey: "wf", CancellationKey: "k", Status: active},
		{Id: "r2", WorkflowKey: "wf", CancellationKey: "k", Status: active},
		{Id: "r4", WorkflowKey: "wf", CancellationKey: "k", Status: harkv1.WorkflowRunStatus_WORKFLOW_RUN_STATUS_CANCELLED},
		{Id: "r5", WorkflowKey: "wf", CancellationKey: "k\x00b", Status: active},
		{Id: "r6", WorkflowKey: "wf", CancellationKey: "kb", Status: active},
		{Id: "r7", WorkflowKey: "wf2", CancellationKey: "k", Status: active},
		{Id: "r8", WorkflowKey: "wf", Status: active},
	}
	update(t, s, func(tx engine.Tx) error {
		for _, r := range runs {
			r.Environment = env
			if err := tx.PutWorkflowRun(r, farFuture()); err != nil {
				return err
			}
		}
		// dev2 beside dev.
		return tx.PutWorkflowRun(&harkv1.WorkflowRun{Environment: "dev2", Id: "r0", WorkflowKey: "wf", CancellationKey: "k", Status: active}, farFuture())
	})
	check := func(when, key, after string, limit int, want ...string) {
		t.Helper()
		view(t, s, func(tx engine.Tx) error {
			got, err := tx.CancellableRuns(env, "wf", key, after, limit)
			if err != nil {
				return err
			}
			if len(got) == 0 {
				got = nil
			}
			if !slices.Equal(got, want) {
				t.Errorf("%s: cancellable runs of wf/%q after %q, limit %d: %q, want %q", when, key, after, limit, got, want)
			}
			return nil
		})
	}
	check("as written", "k", "", 10, "r1", "r2", "r3")
	check("as written", "k", "", 2, "r1", "r2")
	check("as written", "k", "r2", 10, "r3")
	check("as written", "k\x00b", "", 10, "r5")
	check("as written", "kb", "", 10, "r6")

	update(t, s, func(tx engine.Tx) error {
		r := runs[2] // r2
		r.Status = harkv1.WorkflowRunStatus_WORKFLOW_RUN_STATUS_CANCELLED
		return tx.PutWorkflowRun(r, farFuture())
	})
	check("after r2 is cancelled", "k", "", 10, "r1", "r3")
}
