package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// actionSetup gives development a Segment source with the group and
// delete toggles set and one trigger of each action family (users,
// objects, tenants, subscriptions, audiences, workflows_cancel, and a
// workflows_trigger once per recipient), through the CLI as users make
// them.
func actionSetup(t *testing.T, env []string) (sourceID string) {
	t.Helper()
	var src jsonSource
	harkJSON(t, env, &src, "sources", "create", "--type", "segment", "--name", "Shop")
	mustHark(t, env, "sources", "settings", src.ID, "--env", "development", "--identify=on", "--group=on", "--delete=off")
	mustHark(t, env, "workflows", "create", "welcome")
	create := func(args ...string) {
		mustHark(t, env, append([]string{"triggers", "create", "--env", "development", "--source", src.ID}, args...)...)
	}
	create("--event", "Signed Up", "--workflow", "welcome", "--frequency", "once_per_recipient")
	create("--event", "Signed Up", "--action", "users_identify", "--map", "properties={name: properties.name}")
	create("--event", "Signed Up", "--action", "tenants_set", "--map", "id=properties.company.id",
		"--map", "properties={name: properties.company.name}")
	create("--event", "Project Created", "--action", "objects_set", "--map", `collection="projects"`,
		"--map", "id=properties.project_id", "--map", "properties={name: properties.title}")
	create("--event", "Project Created", "--action", "objects_subscribe", "--map", `collection="projects"`,
		"--map", "id=properties.project_id")
	create("--event", "Beta Joined", "--action", "audiences_add_member", "--map", `audience_key="beta"`,
		"--map", "tenant=properties.company.id")
	create("--event", "Account Closed", "--workflow", "welcome", "--action", "workflows_cancel",
		"--cancellation-key", "userId", "--recipients", "userId")
	return src.ID
}

// TestConfigActionsRoundTrip: a trigger of every action family, with its
// action, action mapping and frequency, and the source's group and delete
// toggles, survive export → apply to an empty environment → export
// byte for byte; a second apply changes nothing; an edited action mapping
// is planned as an update of that field.
func TestConfigActionsRoundTrip(t *testing.T) {
	t.Parallel()
	s := startCLIServer(t)
	env := s.env
	actionSetup(t, env)
	dir := t.TempDir()
	devFile := filepath.Join(dir, "dev.yaml")
	mustHark(t, env, "export", "--env", "development", "-o", devFile)
	dev := readText(t, devFile)
	wantContains(t, "export", dev, "groupEnabled: true", "deleteEnabled: false",
		"action: tenants_set", "actionMapping:\n      id: properties.company.id\n      properties: '{name: properties.company.name}'",
		"action: users_identify", "action: objects_set", "action: objects_subscribe", "action: audiences_add_member",
		"audienceKey: '\"beta\"'", "action: workflows_cancel", "cancellationKey: userId", "frequency: once_per_recipient")
	// The defaults are left out: a plain trigger reads as before actions.
	for _, unwanted := range []string{"action: workflows_trigger", "every_time", "mapping: {}", "actionMapping: {}"} {
		if strings.Contains(dev, unwanted) {
			t.Errorf("export holds %q:\n%s", unwanted, dev)
		}
	}
	wantSchemaValid(t, dev)

	mustHark(t, env, "env", "create", "staging")
	plan := mustHark(t, env, "apply", "-f", devFile, "--env", "staging", "--dry-run")
	wantContains(t, "plan", plan, `+ create trigger Shop track "Signed Up" → tenants_set`,
		`+ create trigger Shop track "Signed Up" → welcome`, `+ create trigger Shop track "Account Closed" → workflows_cancel welcome`,
		"actionMapping.id: properties.company.id", "frequency: once_per_recipient", "groupEnabled: false → true",
		"deleteEnabled: (none) → false", "7 to create, 1 to update, 0 to delete")
	mustHark(t, env, "apply", "-f", devFile, "--env", "staging", "--yes")
	if staging := mustHark(t, env, "export", "--env", "staging"); staging != dev {
		t.Fatalf("export of staging after applying development's export differs:\n%s\nwant:\n%s", staging, dev)
	}
	wantContains(t, "second apply", mustHark(t, env, "apply", "-f", devFile, "--env", "staging", "--yes"), "No changes")

	// An edited action mapping is an update of that trigger, field by
	// field; leaving deleteEnabled out returns it to following identify.
	edited := strings.Replace(dev, "id: properties.company.id\n      properties: '{name: properties.company.name}'",
		"id: properties.org.id\n      properties: '{name: properties.company.name}'", 1)
	edited = strings.Replace(edited, "    deleteEnabled: false\n", "", 1)
	if edited == dev {
		t.Fatal("the edit changed nothing")
	}
	plan = mustHark(t, env, "apply", "-f", writeFile(t, "edited.yaml", edited), "--env", "staging", "--dry-run")
	want := `Plan for staging:
  ~ update source Shop
      deleteEnabled: false → (none)
  ~ update trigger Shop track "Signed Up" → tenants_set
      actionMapping.id: properties.company.id → properties.org.id
0 to create, 2 to update, 0 to delete.
`
	if plan != want {
		t.Fatalf("plan of the edited action mapping:\n%s\nwant:\n%s", plan, want)
	}
}

// TestConfigPromoteAction: promote copies a tenants_set trigger (which
// names no workflow) to production, where it fires: a Signed Up event
// there creates the tenant it maps.
func TestConfigPromoteAction(t *testing.T) {
	t.Parallel()
	s := startCLIServer(t)
	env := s.env
	srcID := actionSetup(t, env)
	plan := mustHark(t, env, "promote", "--from", "development", "--to", "production", "--only", "workflows,triggers", "--yes")
	wantContains(t, "promote", plan, `+ create trigger Shop track "Signed Up" → tenants_set`, "action: tenants_set")
	var triggers struct {
		Triggers []jsonTrigger `json:"triggers"`
	}
	harkJSON(t, env, &triggers, "triggers", "list", "--env", "production")
	if len(triggers.Triggers) != 7 {
		t.Fatalf("production has %d triggers after promote, want 7", len(triggers.Triggers))
	}
	wantContains(t, "tenants get before the event", wantFail(t, env, "tenants", "get", "acme", "--env", "production"), "not found")
	event := writeFile(t, "event.json", `{"type":"track","event":"Signed Up","userId":"u1","messageId":"m-1",`+
		`"properties":{"name":"Ada","company":{"id":"acme","name":"Acme Inc."}}}`)
	wantContains(t, "send", mustHark(t, env, "send", "--env", "production", "--source", srcID, event), "processed")
	wantContains(t, "tenants get", mustHark(t, env, "tenants", "get", "acme", "--env", "production"), "Acme Inc.")
	if out := runHark(t, env, "tenants", "get", "acme", "--env", "development"); out.code == 0 {
		t.Fatalf("the event sent to production set the tenant in development: %s", out)
	}
}

// TestConfigActionBadInput: a wrong action type, a mapping field the action
// does not read, a missing required one, a frequency or workflow on an
// action that starts no run, and two actions a file cannot tell apart are
// refused before anything is applied, at their line.
func TestConfigActionBadInput(t *testing.T) {
	t.Parallel()
	s := startCLIServer(t)
	env := s.env
	actionSetup(t, env)
	before := mustHark(t, env, "export", "--env", "development")
	head := "apiVersion: hark/v1\ntriggers:\n  - source: Shop\n    event: A\n"
	tests := []struct {
		name, doc string
		wants     []string
	}{
		{"unknown action", head + "    action: tenant_set\n",
			[]string{`bad.yaml:5: triggers[0].action: "tenant_set" is not an action type (one of users_identify, users_delete, objects_set`}},
		{"field the action does not read", head + "    action: tenants_set\n    actionMapping:\n      id: userId\n      users: userId\n",
			[]string{"bad.yaml:8: triggers[0].actionMapping.users: is not read by tenants_set actions"}},
		{"missing required field", head + "    action: objects_set\n    actionMapping:\n      id: userId\n",
			[]string{"bad.yaml:7: triggers[0].actionMapping.collection: is required for objects_set actions"}},
		{"action mapping on a workflow trigger", head + "    workflowKey: welcome\n    actionMapping:\n      id: userId\n",
			[]string{"bad.yaml:7: triggers[0].actionMapping.id: is not read by workflows_trigger actions; they read mapping"}},
		{"frequency on an action", head + "    action: tenants_set\n    frequency: once_per_recipient\n    actionMapping:\n      id: userId\n",
			[]string{"bad.yaml:6: triggers[0].frequency: is only for workflows_trigger, not tenants_set"}},
		{"unknown frequency", head + "    workflowKey: welcome\n    frequency: once\n",
			[]string{`bad.yaml:6: triggers[0].frequency: "once" is not a frequency (one of every_time, once_per_recipient, once_per_recipient_per_tenant)`}},
		{"workflow on an action", head + "    action: tenants_delete\n    workflowKey: welcome\n    actionMapping:\n      id: userId\n",
			[]string{"bad.yaml:6: triggers[0].workflowKey: is only for workflows_trigger and workflows_cancel, not tenants_delete"}},
		{"cancel without a workflow", head + "    action: workflows_cancel\n    mapping:\n      cancellationKey: userId\n",
			[]string{"bad.yaml:3: triggers[0].workflowKey: is required"}},
		{"two tenants_set on one event", head + "    action: tenants_set\n    actionMapping:\n      id: userId\n" +
			"  - source: Shop\n    event: A\n    action: tenants_set\n    actionMapping:\n      id: properties.company\n",
			[]string{`bad.yaml:8: triggers[1]: trigger Shop track "A" → tenants_set is listed twice (also triggers[0])`}},
		{"typo in an action expression", head + "    action: tenants_set\n    actionMapping:\n      id: propertes.company\n",
			[]string{"bad.yaml:7: triggers[0].actionMapping.id:", "did you mean"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "bad.yaml")
			if err := os.WriteFile(file, []byte(tc.doc), 0o600); err != nil {
				t.Fatal(err)
			}
			stderr := wantFail(t, env, "apply", "-f", file, "--yes")
			for _, w := range tc.wants {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
			if !slices.ContainsFunc(tc.wants, func(w string) bool { return strings.HasPrefix(w, "bad.yaml") }) {
				t.Fatal("a case without a line")
			}
		})
	}
	if after := mustHark(t, env, "export", "--env", "development"); after != before {
		t.Errorf("refused documents changed development:\n%s", after)
	}
}
