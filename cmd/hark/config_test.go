package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// configSetup gives development a source with a secret, two workflows, a
// trigger with a condition and a paused Knock destination (paused: tests
// send nothing off the machine), through the CLI.
func configSetup(t *testing.T, env []string) (sourceID string) {
	t.Helper()
	var src jsonSource
	harkJSON(t, env, &src, "sources", "create", "--type", "segment", "--name", "Shop")
	mustHark(t, env, "sources", "settings", src.ID, "--env", "development", "--identify=on", "--window", "36h", "--set", "shared_secret=dev-secret")
	mustHark(t, env, "workflows", "create", "welcome", "--name", "Welcome")
	mustHark(t, env, "workflows", "create", "upgraded")
	mustHark(t, env, "triggers", "create", "--env", "development", "--workflow", "welcome", "--source", src.ID,
		"--event", "Signed Up", "--condition", `properties.plan == "free"`)
	mustHark(t, env, "destinations", "create", "--env", "development", "--type", "knock", "--name", "Knock",
		"--set", "api_key=sk_dev", "--paused", "--workflow", "welcome")
	return src.ID
}

// TestConfigRoundTrip: export → apply to an empty environment → export
// again gives the same bytes; applying twice changes nothing the second
// time; a plan shows exactly the edits made to the file.
func TestConfigRoundTrip(t *testing.T) {
	t.Parallel()
	s := startCLIServer(t)
	env := s.env
	configSetup(t, env)
	dir := t.TempDir()
	devFile := filepath.Join(dir, "dev.yaml")
	mustHark(t, env, "export", "--env", "development", "-o", devFile)
	dev := readText(t, devFile)
	wantContains(t, "export", dev, "apiVersion: hark/v1", "shared_secret: ${SHOP_SHARED_SECRET}", "api_key: ${KNOCK_API_KEY}",
		"idempotencyWindow: 36h", `condition: properties.plan == "free"`, "status: paused")
	if strings.Contains(dev, "dev-secret") || strings.Contains(dev, "sk_dev") {
		t.Fatalf("export shows a secret:\n%s", dev)
	}
	wantSchemaValid(t, dev)
	if again := mustHark(t, env, "export", "--env", "development"); again != dev {
		t.Fatalf("a second export differs:\n%s\nfirst:\n%s", again, dev)
	}

	mustHark(t, env, "env", "create", "staging")
	secrets := append(slices.Clone(env), "SHOP_SHARED_SECRET=staging-secret", "KNOCK_API_KEY=sk_staging")
	plan := mustHark(t, secrets, "apply", "-f", devFile, "--env", "staging", "--dry-run")
	wantContains(t, "dry-run plan", plan, "~ update source Shop", "settings.shared_secret: (none) → (secret)",
		`+ create trigger Shop track "Signed Up" → welcome`, "+ create destination Knock", "2 to create, 1 to update, 0 to delete")
	if out := mustHark(t, env, "export", "--env", "staging"); strings.Contains(out, "Signed Up") {
		t.Fatalf("--dry-run applied something:\n%s", out)
	}
	wantContains(t, "apply", mustHark(t, secrets, "apply", "-f", devFile, "--env", "staging", "--yes"), "Applied 2 to create, 1 to update, 0 to delete to staging")
	if staging := mustHark(t, env, "export", "--env", "staging"); staging != dev {
		t.Fatalf("export of staging after applying development's export differs:\n%s\nwant:\n%s", staging, dev)
	}
	wantContains(t, "second apply", mustHark(t, secrets, "apply", "-f", devFile, "--env", "staging", "--yes"), "No changes: staging already matches the document.")
	var srcs struct{ Sources []jsonSource }
	harkJSON(t, env, &srcs, "sources", "list")
	for _, se := range srcs.Sources[0].Environments {
		if se.Environment == "staging" && (se.PluginSettings["shared_secret"] != "********" || !se.IdentifyEnabled) {
			t.Fatalf("staging's Shop configuration %+v, want the secret set and identify on", se)
		}
	}

	// Edit the file: one expression changes, a trigger is added.
	edited := strings.Replace(dev, `properties.plan == "free"`, `properties.plan == "pro"`, 1)
	edited = strings.Replace(edited, "triggers:\n", `triggers:
  - source: Shop
    eventType: track
    event: Plan Upgraded
    workflowKey: upgraded
    mapping:
      recipients: |-
        [userId,
         properties.manager]
    status: active
`, 1)
	editedFile := writeFile(t, "edited.yaml", edited)
	plan = mustHark(t, secrets, "apply", "-f", editedFile, "--env", "staging", "--dry-run")
	want := `Plan for staging:
  + create trigger Shop track "Plan Upgraded" → upgraded
      source: Shop
      eventType: track
      event: Plan Upgraded
      workflowKey: upgraded
      mapping.recipients:
        + [userId,
        +  properties.manager]
      status: active
  ~ update trigger Shop track "Signed Up" → welcome
      condition: properties.plan == "free" → properties.plan == "pro"
1 to create, 1 to update, 0 to delete.
`
	if plan != want {
		t.Fatalf("plan of the edited file:\n%s\nwant:\n%s", plan, want)
	}
	mustHark(t, secrets, "apply", "-f", editedFile, "--env", "staging", "--yes")
	wantSchemaValid(t, edited)
	if got := mustHark(t, env, "export", "--env", "staging"); got != edited {
		t.Fatalf("export after applying the edited file:\n%s\nwant the file:\n%s", got, edited)
	}

	// Prune: a file without the new trigger and the destination deletes
	// them; workflows and sources are never deleted.
	pruned := strings.Replace(dev, `properties.plan == "free"`, `properties.plan == "pro"`, 1)
	pruned = pruned[:strings.Index(pruned, "destinations:")] + "destinations: []\n"
	prunedFile := writeFile(t, "pruned.yaml", pruned)
	plan = mustHark(t, secrets, "apply", "-f", prunedFile, "--env", "staging", "--dry-run")
	wantContains(t, "plan without --prune", plan, "No changes")
	plan = mustHark(t, secrets, "apply", "-f", prunedFile, "--env", "staging", "--prune", "--yes")
	wantContains(t, "apply --prune", plan, `- delete trigger Shop track "Plan Upgraded" → upgraded`, "- delete destination Knock", "0 to create, 0 to update, 2 to delete")
	wantSchemaValid(t, pruned)
	if got := mustHark(t, env, "export", "--env", "staging"); got != pruned {
		t.Fatalf("export after prune:\n%s\nwant:\n%s", got, pruned)
	}
}

// TestConfigApplyAtomic: a document whose third object fails (a trigger
// expression that does not compile) changes nothing, although the objects
// before it are fine; without --yes and without a terminal, nothing is
// applied either.
func TestConfigApplyAtomic(t *testing.T) {
	t.Parallel()
	s := startCLIServer(t)
	env := s.env
	configSetup(t, env)
	before := mustHark(t, env, "export", "--env", "development")
	file := writeFile(t, "bad.yaml", `apiVersion: hark/v1
workflows:
  - key: brand-new
triggers:
  - source: Shop
    event: Signed Up
    workflowKey: welcome
    condition: properties.plan == "team"
  - source: Shop
    event: Other
    workflowKey: brand-new
    condition: |-
      properties.plan ==
        == "x"
`)
	stderr := wantFail(t, env, "apply", "-f", file, "--yes")
	wantContains(t, "apply of a failing document", stderr, "bad.yaml:14: triggers[1].condition: 2:3:", "nothing was applied")
	if after := mustHark(t, env, "export", "--env", "development"); after != before {
		t.Fatalf("a failed apply changed development:\n%s\nwas:\n%s", after, before)
	}
	good := writeFile(t, "good.yaml", strings.Replace(readText(t, file), "properties.plan ==\n        == \"x\"", "true", 1))
	res := runHark(t, env, "apply", "-f", good)
	if res.code == 0 || !strings.Contains(res.stderr, "not applied") || !strings.Contains(res.stdout, "+ create workflow brand-new") {
		t.Fatalf("apply without --yes and without a terminal: %s", res)
	}
	if after := mustHark(t, env, "export", "--env", "development"); after != before {
		t.Fatalf("an unconfirmed apply changed development:\n%s", after)
	}
}

// TestConfigBadInput: what the CLI refuses before anything is applied,
// each with the file's line and the field.
func TestConfigBadInput(t *testing.T) {
	t.Parallel()
	s := startCLIServer(t)
	env := s.env
	configSetup(t, env)
	before := mustHark(t, env, "export", "--env", "development")
	tests := []struct {
		name, doc string
		wants     []string
	}{
		{"unknown key", "apiVersion: hark/v1\nworkflows:\n  - key: a\n    titel: A\n",
			[]string{"bad.yaml:4: workflows[0].titel: unknown field (workflows[0] takes key, name, description, active)"}},
		{"wrong type", "apiVersion: hark/v1\nsources:\n  - name: Shop\n    identifyEnabled: yes please\n",
			[]string{`bad.yaml:4: sources[0].identifyEnabled: must be true or false, not the string "yes please"`}},
		{"number for a string", "apiVersion: hark/v1\ntriggers:\n  - source: Shop\n    event: 42\n    workflowKey: welcome\n",
			[]string{"bad.yaml:4: triggers[0].event: must be a string, not a number (42) (quote it)"}},
		{"duplicate workflow", "apiVersion: hark/v1\nworkflows:\n  - key: a\n  - key: a\n",
			[]string{`bad.yaml:4: workflows[1].key: workflow "a" is listed twice (also workflows[0])`}},
		{"duplicate trigger", "apiVersion: hark/v1\ntriggers:\n  - source: Shop\n    event: A\n    workflowKey: welcome\n  - source: Shop\n    event: A\n    workflowKey: welcome\n",
			[]string{`bad.yaml:6: triggers[1]: trigger Shop track "A" → welcome is listed twice (also triggers[0])`}},
		{"repeated key", "apiVersion: hark/v1\nworkflows:\n  - key: a\n    key: b\n",
			[]string{"bad.yaml:4: workflows[0].key: is given twice"}},
		{"missing variable", "apiVersion: hark/v1\nsources:\n  - name: Shop\n    settings:\n      shared_secret: ${HARK_TEST_UNSET_VARIABLE}\n",
			[]string{"bad.yaml:5: sources[0].settings.shared_secret: environment variable HARK_TEST_UNSET_VARIABLE is not set"}},
		{"unknown workflow and source", "apiVersion: hark/v1\ntriggers:\n  - source: Shop\n    event: A\n    workflowKey: nope\n  - source: Nope\n    event: B\n    workflowKey: welcome\n",
			[]string{`bad.yaml:5: triggers[0].workflowKey: no workflow has the key "nope", in the file or in hark`,
				`bad.yaml:6: triggers[1].source: no source is named "Nope", in the file or in hark`}},
		{"bad setting", "apiVersion: hark/v1\nsources:\n  - name: Shop\n    settings:\n      colour: blue\n",
			[]string{`bad.yaml:5: sources[0].settings.colour: is not a setting of source type "segment"`}},
		{"type change", "apiVersion: hark/v1\nsources:\n  - name: Shop\n    type: http\n",
			[]string{`bad.yaml:4: sources[0].type: source "Shop" is of type "segment"; a source's type cannot change`}},
		{"version", "apiVersion: hark/v2\nworkflows: []\n",
			[]string{`bad.yaml:1: apiVersion: must be "hark/v1", not "hark/v2"`}},
		{"no version", "workflows: []\n", []string{`bad.yaml:1: apiVersion: is required: "hark/v1"`}},
		{"not a mapping", "apiVersion: hark/v1\nworkflows:\n  key: a\n", []string{"bad.yaml:3: workflows: must be a list, not a mapping"}},
		{"two documents", "apiVersion: hark/v1\nworkflows: []\n---\napiVersion: hark/v1\n", []string{"bad.yaml:3: holds more than one document"}},
		{"bad status", "apiVersion: hark/v1\ntriggers:\n  - source: Shop\n    event: A\n    workflowKey: welcome\n    status: on\n",
			[]string{`bad.yaml:6: triggers[0].status: must be "active" or "inactive", not "on"`}},
		{"boolean for a string", "apiVersion: hark/v1\ntriggers:\n  - source: Shop\n    event: true\n    workflowKey: welcome\n",
			[]string{"bad.yaml:4: triggers[0].event: must be a string, not a boolean (true) (quote it)"}},
	}
	t.Run("cases", func(t *testing.T) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				file := filepath.Join(t.TempDir(), "bad.yaml")
				if err := os.WriteFile(file, []byte(tc.doc), 0o600); err != nil {
					t.Fatal(err)
				}
				stderr := wantFail(t, env, "apply", "-f", file, "--yes")
				for _, w := range tc.wants {
					if !strings.Contains(stderr, filepath.Dir(file)+string(filepath.Separator)+w) {
						t.Errorf("stderr lacks %q:\n%s", w, stderr)
					}
				}
			})
		}
	})
	if after := mustHark(t, env, "export", "--env", "development"); after != before {
		t.Errorf("refused documents changed development:\n%s", after)
	}
}

// TestConfigPromote: promote copies development's triggers to production,
// where they fire: an event sent there starts a run of the promoted
// trigger. Secrets stay the target's own.
func TestConfigPromote(t *testing.T) {
	t.Parallel()
	s := startCLIServer(t)
	env := s.env
	srcID := configSetup(t, env)

	plan := mustHark(t, env, "promote", "--from", "development", "--to", "production", "--only", "triggers", "--dry-run")
	wantContains(t, "promote --dry-run", plan, `+ create trigger Shop track "Signed Up" → welcome`, "1 to create, 0 to update, 0 to delete")
	wantContains(t, "promote", mustHark(t, env, "promote", "--from", "development", "--to", "production", "--only", "triggers", "--yes"),
		"Applied 1 to create, 0 to update, 0 to delete to production")
	wantContains(t, "promote again", mustHark(t, env, "promote", "--from", "development", "--to", "production", "--only", "triggers", "--yes"), "No changes")

	var triggers struct {
		Triggers []jsonTrigger `json:"triggers"`
	}
	harkJSON(t, env, &triggers, "triggers", "list", "--env", "production")
	if len(triggers.Triggers) != 1 || triggers.Triggers[0].Event != "Signed Up" || triggers.Triggers[0].SourceID != srcID {
		t.Fatalf("production's triggers after promote: %+v", triggers.Triggers)
	}
	mustHark(t, env, "users", "identify", "u1", "--env", "production", "--name", "Ada")
	event := writeFile(t, "event.json", `{"type":"track","event":"Signed Up","userId":"u1","messageId":"m-1","properties":{"plan":"free"}}`)
	wantContains(t, "send", mustHark(t, env, "send", "--env", "production", "--source", srcID, event), "processed")
	var runs struct {
		WorkflowRuns []jsonRun `json:"workflowRuns"`
	}
	harkJSON(t, env, &runs, "runs", "list", "--env", "production", "--workflow", "welcome")
	if len(runs.WorkflowRuns) != 1 || runs.WorkflowRuns[0].TriggerID != triggers.Triggers[0].ID || !slices.Equal(runs.WorkflowRuns[0].Recipients, []string{"u1"}) {
		t.Fatalf("production's runs after the event: %+v, want one run of the promoted trigger for u1", runs.WorkflowRuns)
	}

	// The source's toggles come along; development's secret does not.
	plan = mustHark(t, env, "promote", "--from", "development", "--to", "production", "--only", "workflows,sources,triggers", "--yes")
	wantContains(t, "promote sources", plan, "~ update source Shop", "identifyEnabled: false → true", "idempotencyWindow: 24h → 36h")
	if strings.Contains(plan, "shared_secret") {
		t.Fatalf("promote changed a secret:\n%s", plan)
	}
	var srcs struct{ Sources []jsonSource }
	harkJSON(t, env, &srcs, "sources", "list")
	for _, se := range srcs.Sources[0].Environments {
		if se.Environment == "production" && len(se.PluginSettings) != 0 {
			t.Fatalf("production's secret after promote: %+v", se)
		}
	}
	// A destination whose secret production lacks cannot be promoted: the
	// error names the field, and nothing is applied.
	stderr := wantFail(t, env, "promote", "--from", "development", "--to", "production", "--yes")
	wantContains(t, "promote of a destination without its secret", stderr, "destinations[0].settings.api_key: is required for knock destinations", "nothing was applied")
}

func readText(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
