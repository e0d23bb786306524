package main

import "testing"

// TestCLITriggersUpdate checks hark triggers update: it changes only the
// fields whose flags are given — a mapping flag keeps the rest of the
// mapping — prints the trigger, and refuses a bad expression, a call with
// nothing to change and --active with --inactive.
func TestCLITriggersUpdate(t *testing.T) {
	t.Parallel()
	s := startCLIServer(t)
	env := s.env
	var src jsonSource
	harkJSON(t, env, &src, "sources", "create", "--type", "segment", "--name", "X")
	mustHark(t, env, "workflows", "create", "welcome")
	mustHark(t, env, "workflows", "create", "upgraded")

	type trigger struct {
		ID          string `json:"id"`
		WorkflowKey string `json:"workflowKey"`
		SourceID    string `json:"sourceId"`
		EventType   string `json:"eventType"`
		Event       string `json:"event"`
		Condition   string `json:"condition"`
		Status      string `json:"status"`
		Mapping     struct {
			Recipients string `json:"recipients"`
			Actor      string `json:"actor"`
			Data       string `json:"data"`
		} `json:"mapping"`
	}
	var trg trigger
	harkJSON(t, env, &trg, "triggers", "create", "--env", "development", "--workflow", "welcome", "--source", src.ID,
		"--event", "Signed Up", "--condition", `properties.plan == "pro"`, "--actor", "userId", "--data", "properties")
	id := trg.ID

	var got trigger
	harkJSON(t, env, &got, "triggers", "update", id, "--env", "development", "--recipients", "properties.team")
	if got.ID != id || got.Mapping.Recipients != "properties.team" || got.Mapping.Actor != "userId" || got.Mapping.Data != "properties" ||
		got.Condition != `properties.plan == "pro"` || got.WorkflowKey != "welcome" || got.Event != "Signed Up" || got.Status != "TRIGGER_STATUS_ACTIVE" {
		t.Fatalf("after --recipients alone: %+v; want only the recipients changed", got)
	}

	harkJSON(t, env, &got, "triggers", "update", id, "--env", "development",
		"--workflow", "upgraded", "--event", "Upgraded", "--condition", "", "--inactive")
	if got.WorkflowKey != "upgraded" || got.Event != "Upgraded" || got.Condition != "" || got.Status != "TRIGGER_STATUS_INACTIVE" ||
		got.Mapping.Recipients != "properties.team" || got.EventType != "track" || got.SourceID != src.ID {
		t.Fatalf("after --workflow --event --condition '' --inactive: %+v", got)
	}
	wantContains(t, "triggers update --active", mustHark(t, env, "triggers", "update", id, "--env", "development", "--active"),
		"Status:", "active", "Upgraded")

	stderr := wantFail(t, env, "triggers", "update", id, "--env", "development", "--condition", "properties.(")
	wantContains(t, "a bad condition", stderr, "condition: 1:", "^")
	harkJSON(t, env, &got, "triggers", "get", id, "--env", "development")
	if got.Condition != "" || got.Status != "TRIGGER_STATUS_ACTIVE" {
		t.Fatalf("a refused update changed the trigger: %+v", got)
	}

	wantContains(t, "nothing to change", wantFail(t, env, "triggers", "update", id, "--env", "development"),
		"nothing to change", "usage: hark triggers update ID")
	wantContains(t, "both --active and --inactive", wantFail(t, env, "triggers", "update", id, "--env", "development", "--active", "--inactive"),
		"--active", "--inactive")
	wantContains(t, "an unknown trigger", wantFail(t, env, "triggers", "update", "trg_nope", "--env", "development", "--actor", "userId"),
		"not found")
}
