package main

import (
	"testing"
)

// TestCLICancelRecipients cancels one recipient of a run with `hark
// workflows cancel --recipients`, then the other, and reads each recipient's
// status back from `hark runs get` and `hark runs list`.
func TestCLICancelRecipients(t *testing.T) {
	t.Parallel()
	s := startCLIServer(t)
	env := s.env
	mustHark(t, env, "workflows", "create", "digest")
	mustHark(t, env, "users", "identify", "u1", "--env", "development")
	mustHark(t, env, "users", "identify", "u2", "--env", "development")
	var started struct {
		WorkflowRunID string `json:"workflowRunId"`
	}
	harkJSON(t, env, &started, "workflows", "trigger", "digest", "--env", "development", "--recipients", "u1,u2", "--cancellation-key", "week-1")
	runID := started.WorkflowRunID

	out := mustHark(t, env, "workflows", "cancel", "digest", "--env", "development", "--cancellation-key", "week-1", "--recipients", "u1")
	wantLine(t, out, "RUN", "CANCELLED", "FOR", "STATUS")
	wantLine(t, out, runID, "u1", "active")
	out = mustHark(t, env, "runs", "get", runID, "--env", "development")
	wantLine(t, out, "Status:", "active")
	wantLine(t, out, "RECIPIENT", "STATUS", "CANCELLED", "BY")
	wantLine(t, out, "u1", "cancelled", "CancelWorkflow")
	wantLine(t, out, "u2", "active", "-", "-")
	wantLine(t, mustHark(t, env, "runs", "list", "--env", "development"), runID, "u1 (cancelled),u2", "active")

	out = mustHark(t, env, "workflows", "cancel", "digest", "--env", "development", "--cancellation-key", "week-1", "--recipients", "u2")
	wantLine(t, out, runID, "u2", "cancelled")
	out = mustHark(t, env, "runs", "get", runID, "--env", "development")
	wantLine(t, out, "Status:", "cancelled")
	wantLine(t, out, "u2", "cancelled", "CancelWorkflow")
	wantContains(t, "cancelling again", mustHark(t, env, "workflows", "cancel", "digest", "--env", "development", "--cancellation-key", "week-1"), "nothing cancelled")

	var res struct {
		Cancellations []struct {
			WorkflowRunID string   `json:"workflowRunId"`
			Recipients    []string `json:"recipients"`
		} `json:"cancellations"`
	}
	harkJSON(t, env, &started, "workflows", "trigger", "digest", "--env", "development", "--recipients", "u1,u2", "--cancellation-key", "week-2")
	harkJSON(t, env, &res, "workflows", "cancel", "digest", "--env", "development", "--cancellation-key", "week-2")
	if len(res.Cancellations) != 1 || res.Cancellations[0].WorkflowRunID != started.WorkflowRunID || len(res.Cancellations[0].Recipients) != 2 {
		t.Fatalf("workflows cancel -o json = %+v, want run %s cancelled for u1 and u2", res, started.WorkflowRunID)
	}
	wantFail(t, env, "workflows", "cancel", "digest", "--env", "development")
}
