package main

import (
	"os"
	"path/filepath"
	"testing"
)

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

// TestCLITriggerActions checks the action flags of hark triggers create and
// update: --action with --map sets a non-workflow action, --map on update
// changes one field and keeps the others, --frequency sets a workflow
// trigger's frequency, and bad values are refused with the choices.
func TestCLITriggerActions(t *testing.T) {
	t.Parallel()
	s := startCLIServer(t)
	env := s.env
	var src jsonSource
	harkJSON(t, env, &src, "sources", "create", "--type", "segment", "--name", "X")
	mustHark(t, env, "workflows", "create", "welcome")

	type trigger struct {
		ID            string `json:"id"`
		ActionType    string `json:"actionType"`
		Frequency     string `json:"frequency"`
		ActionMapping struct {
			Collection string `json:"collection"`
			ID         string `json:"id"`
			Properties string `json:"properties"`
		} `json:"actionMapping"`
	}
	var trg trigger
	harkJSON(t, env, &trg, "triggers", "create", "--env", "development", "--source", src.ID, "--event", "Project Joined",
		"--action", "objects_set", "--map", `collection="projects"`, "--map", "id=properties.project.id")
	if trg.ActionType != "TRIGGER_ACTION_TYPE_OBJECTS_SET" || trg.ActionMapping.Collection != `"projects"` || trg.ActionMapping.ID != "properties.project.id" {
		t.Fatalf("created %+v, want objects_set of projects", trg)
	}
	harkJSON(t, env, &trg, "triggers", "update", trg.ID, "--env", "development", "--map", "properties={\"title\": properties.title}")
	if trg.ActionMapping.Collection != `"projects"` || trg.ActionMapping.Properties != `{"title": properties.title}` {
		t.Fatalf("after --map properties=…: %+v, want the other fields kept", trg)
	}
	wantContains(t, "triggers get", mustHark(t, env, "triggers", "get", trg.ID, "--env", "development"),
		"Action:", "objects_set", "Action mapping:", `collection="projects"`)
	wantContains(t, "triggers list", mustHark(t, env, "triggers", "list", "--env", "development"), "ACTION", "objects_set")

	var wf trigger
	harkJSON(t, env, &wf, "triggers", "create", "--env", "development", "--source", src.ID, "--event", "Signed Up",
		"--workflow", "welcome", "--frequency", "once_per_recipient")
	if wf.ActionType != "TRIGGER_ACTION_TYPE_UNSPECIFIED" || wf.Frequency != "TRIGGER_FREQUENCY_ONCE_PER_RECIPIENT" || wf.ActionMapping.ID != "" {
		t.Fatalf("created %+v, want a workflow trigger once per recipient", wf)
	}

	eventFile := filepath.Join(t.TempDir(), "event.json")
	if err := os.WriteFile(eventFile, []byte(`{"type":"track","event":"Project Joined","userId":"u1","properties":{"project":{"id":"p9"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	wantContains(t, "triggers test of an unsaved action", mustHark(t, env, "triggers", "test", "--env", "development", "--source", src.ID,
		"--event", "Project Joined", "--action", "objects_subscribe", "--map", `collection="projects"`, "--map", "id=properties.project.id",
		"--event-file", eventFile), "Action:", "objects_subscribe", "Mapped id:", `"p9"`, "Mapped recipients:", `"u1"`)

	wantContains(t, "an unknown action", wantFail(t, env, "triggers", "create", "--env", "development", "--source", src.ID,
		"--event", "E", "--action", "objects_explode"), "objects_set")
	wantContains(t, "an unknown --map field", wantFail(t, env, "triggers", "create", "--env", "development", "--source", src.ID,
		"--event", "E", "--action", "tenants_set", "--map", "colour=1"), "colour", "audience_key")
	wantContains(t, "a field the action does not read", wantFail(t, env, "triggers", "create", "--env", "development", "--source", src.ID,
		"--event", "E", "--action", "tenants_set", "--map", "id=userId", "--map", `collection="c"`), "actionMapping.collection", "not read by tenants_set")
	wantContains(t, "a typo'd root", wantFail(t, env, "triggers", "create", "--env", "development", "--source", src.ID,
		"--event", "E", "--action", "users_delete", "--map", "id=usrId"), "actionMapping.id", "did you mean")
}
