package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// cliTimeout bounds one CLI run; streams are stopped by the test long before.
const cliTimeout = 60 * time.Second

// cliServer is a `hark serve` subprocess with a known admin token, and the
// environment that points the CLI at it.
type cliServer struct {
	base, token, dataDir string
	env                  []string // HARK_SERVER and HARK_TOKEN
	proc                 *harkProc
}

// startCLIServer starts hark serve on 127.0.0.1:0 with a temp data dir and
// the admin token "test-admin-token".
func startCLIServer(t *testing.T) *cliServer {
	t.Helper()
	dataDir := filepath.Join(t.TempDir(), "data")
	p := launch(t, dataDir, "HARK_ADMIN_TOKEN=test-admin-token")
	base, _ := p.waitListening(t)
	return &cliServer{
		base: base, token: "test-admin-token", dataDir: dataDir,
		env:  []string{"HARK_SERVER=" + base, "HARK_TOKEN=test-admin-token"},
		proc: p,
	}
}

// cliResult is what one CLI run printed and how it exited.
type cliResult struct {
	args           []string
	stdout, stderr string
	code           int
}

func (r cliResult) String() string {
	return fmt.Sprintf("hark %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(r.args, " "), r.code, r.stdout, r.stderr)
}

// runHark runs the CLI with the environment env (and no other HARK_*
// variable) in a fresh directory, so no ./hark-data is found by accident.
func runHark(t *testing.T, env []string, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), cliTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, harkBin, args...)
	cmd.Env = serveEnv(env...)
	cmd.Dir = t.TempDir()
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := cliResult{args: args, stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		res.code = exit.ExitCode()
	default:
		t.Fatalf("hark %s: %v", strings.Join(args, " "), err)
	}
	if ctx.Err() != nil {
		t.Fatalf("hark %s did not finish within %v", strings.Join(args, " "), cliTimeout)
	}
	return res
}

// mustHark runs the CLI and fails the test unless it exits 0.
func mustHark(t *testing.T, env []string, args ...string) string {
	t.Helper()
	res := runHark(t, env, args...)
	if res.code != 0 {
		t.Fatalf("want exit 0; %s", res)
	}
	return res.stdout
}

// harkJSON runs the CLI with -o json and decodes its output into v.
func harkJSON(t *testing.T, env []string, v any, args ...string) {
	t.Helper()
	out := mustHark(t, env, append(args, "-o", "json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("hark %s -o json: %v; output:\n%s", strings.Join(args, " "), err, out)
	}
}

// wantFail runs the CLI, wants a non-zero exit, and returns stderr.
func wantFail(t *testing.T, env []string, args ...string) string {
	t.Helper()
	res := runHark(t, env, args...)
	if res.code == 0 {
		t.Fatalf("want a non-zero exit; %s", res)
	}
	if !strings.HasPrefix(res.stderr, "hark: ") {
		t.Fatalf("want stderr to start with \"hark: \"; %s", res)
	}
	return res.stderr
}

func wantContains(t *testing.T, what, got string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(got, w) {
			t.Fatalf("%s lacks %q:\n%s", what, w, got)
		}
	}
}

// The JSON shapes the tests read: protojson's lowerCamelCase names.
type (
	jsonSourceEnv struct {
		Environment        string            `json:"environment"`
		IngestURL          string            `json:"ingestUrl"`
		IdentifyEnabled    bool              `json:"identifyEnabled"`
		IdempotencyEnabled bool              `json:"idempotencyEnabled"`
		IdempotencyWindow  string            `json:"idempotencyWindow"`
		PluginSettings     map[string]string `json:"pluginSettings"`
	}
	jsonSource struct {
		ID           string          `json:"id"`
		Name         string          `json:"name"`
		Type         string          `json:"type"`
		Environments []jsonSourceEnv `json:"environments"`
	}
	jsonTrigger struct {
		ID          string `json:"id"`
		WorkflowKey string `json:"workflowKey"`
		SourceID    string `json:"sourceId"`
		Event       string `json:"event"`
		Status      string `json:"status"`
		Mapping     struct {
			Recipients string `json:"recipients"`
		} `json:"mapping"`
	}
	jsonAction struct {
		Type          string `json:"type"`
		Status        string `json:"status"`
		WorkflowRunID string `json:"workflowRunId"`
		Reason        string `json:"reason"`
	}
	jsonEvent struct {
		ID      string       `json:"id"`
		Type    string       `json:"type"`
		Name    string       `json:"name"`
		UserID  string       `json:"userId"`
		Status  string       `json:"status"`
		Actions []jsonAction `json:"actions"`
	}
	jsonRun struct {
		ID            string   `json:"id"`
		Cursor        string   `json:"cursor"`
		WorkflowKey   string   `json:"workflowKey"`
		TriggerID     string   `json:"triggerId"`
		SourceEventID string   `json:"sourceEventId"`
		Recipients    []string `json:"recipients"`
	}
	jsonUser struct {
		ID         string         `json:"id"`
		Name       string         `json:"name"`
		Email      string         `json:"email"`
		Properties map[string]any `json:"properties"`
	}
	jsonReceived struct {
		Events []struct {
			Index  int    `json:"index"`
			ID     string `json:"id"`
			Status string `json:"status"`
		} `json:"events"`
	}
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestCLIDoneWhen is issue 6's "Done when" flow, against a running server
// with HARK_SERVER and HARK_TOKEN set.
func TestCLIDoneWhen(t *testing.T) {
	t.Parallel()
	s := startCLIServer(t)
	env := s.env

	var created jsonSource
	harkJSON(t, env, &created, "sources", "create", "--type", "segment", "--name", "X")
	src := created
	if !strings.HasPrefix(src.ID, "src_") || src.Name != "X" || src.Type != "segment" {
		t.Fatalf("sources create -o json: source %+v", src)
	}
	if len(src.Environments) < 2 {
		t.Fatalf("sources create -o json: environments %+v, want development and production", src.Environments)
	}
	for _, e := range src.Environments {
		if !strings.HasPrefix(e.IngestURL, s.base+"/integrations/receive/") {
			t.Fatalf("environment %s: ingestUrl %q", e.Environment, e.IngestURL)
		}
	}

	list := mustHark(t, env, "sources", "list")
	lines := strings.Split(strings.TrimSpace(list), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "ID") || !strings.Contains(lines[0], "NAME") {
		t.Fatalf("sources list is not a table of one source:\n%s", list)
	}
	if f := strings.Fields(lines[1]); len(f) < 3 || f[0] != src.ID || f[1] != "X" || f[2] != "segment" {
		t.Fatalf("sources list row %q, want %s X segment", lines[1], src.ID)
	}

	out := mustHark(t, env, "sources", "settings", src.ID, "--env", "development", "--identify=on", "--idempotency=on")
	wantContains(t, "sources settings", out, "Identify:", "on", "Idempotency:")
	var se jsonSourceEnv
	harkJSON(t, env, &se, "sources", "settings", src.ID, "--env", "development")
	if !se.IdentifyEnabled || !se.IdempotencyEnabled {
		t.Fatalf("after --identify=on --idempotency=on: %+v", se)
	}

	mustHark(t, env, "workflows", "create", "new-comment", "--name", "New comment")
	mustHark(t, env, "users", "identify", "u1", "--env", "development", "--name", "Ada", "--email", "ada@example.com")
	mustHark(t, env, "users", "identify", "u2", "--env", "development", "--name", "Grace")

	var trg jsonTrigger
	harkJSON(t, env, &trg, "triggers", "create", "--env", "development", "--workflow", "new-comment",
		"--source", src.ID, "--event", "Comment Posted", "--recipients", "properties.recipients")
	if !strings.HasPrefix(trg.ID, "trg_") || trg.Mapping.Recipients != "properties.recipients" || trg.Status != "TRIGGER_STATUS_ACTIVE" {
		t.Fatalf("triggers create -o json: %+v", trg)
	}

	file := writeFile(t, "file.json", `{"type":"track","event":"Comment Posted","userId":"u3","messageId":"m-1",
		"properties":{"recipients":["u1","u2"],"text":"hi"}}`)
	out = mustHark(t, env, "send", "--env", "development", "--source", src.ID, file)
	wantContains(t, "send", out, "processed")

	var events struct {
		SourceEvents []jsonEvent `json:"sourceEvents"`
	}
	harkJSON(t, env, &events, "events", "list", "--env", "development", "--source", src.ID, "--name", "Comment Posted", "--status", "processed")
	if len(events.SourceEvents) != 1 {
		t.Fatalf("events list: %+v, want the one event sent", events.SourceEvents)
	}
	ev := events.SourceEvents[0]
	if ev.Status != "SOURCE_EVENT_STATUS_PROCESSED" || len(ev.Actions) != 1 || ev.Actions[0].Status != "ACTION_STATUS_SUCCESS" || ev.Actions[0].WorkflowRunID == "" {
		t.Fatalf("event %+v: want processed with a successful trigger action and its run", ev)
	}

	var runs struct {
		WorkflowRuns []jsonRun `json:"workflowRuns"`
	}
	harkJSON(t, env, &runs, "runs", "list", "--env", "development", "--workflow", "new-comment")
	if len(runs.WorkflowRuns) != 1 {
		t.Fatalf("runs list: %+v, want one run", runs.WorkflowRuns)
	}
	run := runs.WorkflowRuns[0]
	if run.ID != ev.Actions[0].WorkflowRunID || run.SourceEventID != ev.ID || run.TriggerID != trg.ID || !slices.Equal(run.Recipients, []string{"u1", "u2"}) {
		t.Fatalf("run %+v, want run %s of event %s for u1 and u2", run, ev.Actions[0].WorkflowRunID, ev.ID)
	}

	// Sent again, the event is a duplicate (idempotency is on): logged,
	// no second run.
	out = mustHark(t, env, "send", "--env", "development", "--source", src.ID, file)
	wantContains(t, "send again", out, "idempotent")
	harkJSON(t, env, &runs, "runs", "list", "--env", "development")
	if len(runs.WorkflowRuns) != 1 {
		t.Fatalf("after a duplicate, runs list: %+v, want still one run", runs.WorkflowRuns)
	}
}

// harkStream is a CLI subprocess that streams (events tail, runs watch).
type harkStream struct {
	cmd    *exec.Cmd
	lines  chan string
	stderr *syncBuffer
	done   chan struct{}
	err    error
}

// startStream starts the CLI and reads its stdout line by line. It is
// stopped (SIGTERM, then SIGKILL) when the test ends, if it still runs.
func startStream(t *testing.T, env []string, args ...string) *harkStream {
	t.Helper()
	cmd := exec.Command(harkBin, args...)
	cmd.Env = serveEnv(env...)
	cmd.Dir = t.TempDir()
	h := &harkStream{cmd: cmd, lines: make(chan string, 256), stderr: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stderr = h.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			h.lines <- sc.Text()
		}
		close(h.lines)
		h.err = cmd.Wait()
		close(h.done)
	}()
	t.Cleanup(func() {
		for _, sig := range []os.Signal{syscall.SIGTERM, os.Kill} {
			select {
			case <-h.done:
				return
			default:
			}
			_ = cmd.Process.Signal(sig)
			select {
			case <-h.done:
				return
			case <-time.After(procTimeout / 2):
			}
		}
	})
	return h
}

// waitLine returns the first line containing want, waiting up to wait.
// ok is false when it did not come in time.
func (h *harkStream) waitLine(t *testing.T, want string, wait time.Duration) (line string, ok bool) {
	t.Helper()
	deadline := time.After(wait)
	for {
		select {
		case line, open := <-h.lines:
			if !open {
				<-h.done
				t.Fatalf("hark %s exited (%v) before printing %q; stderr:\n%s", strings.Join(h.cmd.Args[1:], " "), h.err, want, h.stderr)
			}
			if strings.Contains(line, want) {
				return line, true
			}
		case <-deadline:
			return "", false
		}
	}
}

// interrupt sends SIGINT, as Ctrl-C does, and wants a clean exit.
func (h *harkStream) interrupt(t *testing.T) {
	t.Helper()
	if err := h.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case <-h.done:
	case <-time.After(procTimeout):
		t.Fatalf("hark %s did not exit after SIGINT", strings.Join(h.cmd.Args[1:], " "))
	}
	for range h.lines {
	}
	if h.err != nil {
		t.Fatalf("hark %s after SIGINT: %v, want exit 0; stderr:\n%s", strings.Join(h.cmd.Args[1:], " "), h.err, h.stderr)
	}
}

// TestCLICommands runs every client command's happy path, in table and JSON
// output, against one server.
func TestCLICommands(t *testing.T) {
	t.Parallel()
	s := startCLIServer(t)
	env := s.env

	// env
	wantContains(t, "env list", mustHark(t, env, "env", "list"), "SLUG", "development", "production")
	wantContains(t, "env create", mustHark(t, env, "env", "create", "staging", "--name", "Staging"), "staging", "Staging")
	var envs struct {
		Environments []struct{ Slug string } `json:"environments"`
	}
	harkJSON(t, env, &envs, "env", "list")
	if len(envs.Environments) != 3 {
		t.Fatalf("env list -o json: %+v, want three environments", envs)
	}

	// sources
	wantContains(t, "sources types", mustHark(t, env, "sources", "types"), "TYPE", "segment", "serving", "shared_secret")
	var types struct {
		SourceTypes []struct{ Type string } `json:"sourceTypes"`
	}
	harkJSON(t, env, &types, "sources", "types")
	if len(types.SourceTypes) == 0 || types.SourceTypes[0].Type == "" {
		t.Fatalf("sources types -o json: %+v", types)
	}
	out := mustHark(t, env, "sources", "create", "--type", "segment", "--name", "Web app")
	wantContains(t, "sources create", out, "WEBHOOK URL", "development", "production", "staging", s.base+"/integrations/receive/")
	webID := strings.Fields(strings.SplitN(out, "\n", 2)[0])[1]
	var created jsonSource
	harkJSON(t, env, &created, "sources", "create", "--type", "segment", "--name", "Mobile")
	src := created
	wantContains(t, "sources get", mustHark(t, env, "sources", "get", src.ID), src.ID, "Mobile", src.Environments[0].IngestURL)
	var got jsonSource
	harkJSON(t, env, &got, "sources", "get", src.ID)
	if got.ID != src.ID || len(got.Environments) != 3 {
		t.Fatalf("sources get -o json: %+v", got)
	}
	var sources struct {
		Sources []jsonSource `json:"sources"`
	}
	harkJSON(t, env, &sources, "sources", "list")
	if len(sources.Sources) != 2 {
		t.Fatalf("sources list -o json: %+v, want two", sources.Sources)
	}
	out = mustHark(t, env, "sources", "settings", src.ID, "--env", "production", "--window", "48h", "--set", "shared_secret=s3cr3t", "--identify")
	wantContains(t, "sources settings", out, "Window:", "2d", "shared_secret", "Identify:")
	if strings.Contains(out, "s3cr3t") {
		t.Fatalf("sources settings printed the secret:\n%s", out)
	}
	var se jsonSourceEnv
	harkJSON(t, env, &se, "sources", "settings", src.ID, "--env", "production", "--idempotency=on", "--identify=off")
	if got := se; got.IdentifyEnabled || !got.IdempotencyEnabled || got.IdempotencyWindow != "172800s" || got.PluginSettings["shared_secret"] == "" {
		t.Fatalf("sources settings -o json: %+v", got)
	}
	harkJSON(t, env, &se, "sources", "settings", src.ID, "--env", "development", "--identify=on")
	if !se.IdentifyEnabled {
		t.Fatalf("sources settings --identify=on: %+v", se)
	}
	// An unsigned delivery to production, which has a shared secret, is
	// refused and shows in the refusal log.
	for _, e := range src.Environments {
		if e.Environment != "production" {
			continue
		}
		res, err := http.Post(e.IngestURL, "application/json", strings.NewReader(`{"type":"track","event":"Unsigned","userId":"u1"}`))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("unsigned delivery to production: %d, want 401", res.StatusCode)
		}
	}
	wantContains(t, "sources refusals", mustHark(t, env, "sources", "refusals", src.ID, "--env", "production"), "STATUS", "401", "X-Signature")
	var refusals struct {
		Refusals []struct {
			StatusCode int `json:"statusCode"`
		} `json:"refusals"`
	}
	harkJSON(t, env, &refusals, "sources", "refusals", src.ID, "--env", "development")
	if len(refusals.Refusals) != 0 {
		t.Fatalf("sources refusals of development -o json: %+v, want none", refusals)
	}

	var rotated jsonSourceEnv
	harkJSON(t, env, &rotated, "sources", "rotate-token", src.ID, "--env", "staging")
	for _, e := range src.Environments {
		if e.Environment == "staging" && e.IngestURL == rotated.IngestURL {
			t.Fatalf("rotate-token kept the webhook URL %s", e.IngestURL)
		}
	}
	wantContains(t, "sources rotate-token", mustHark(t, env, "sources", "rotate-token", src.ID, "--env", "staging"), "/integrations/receive/")
	wantContains(t, "sources delete", mustHark(t, env, "sources", "delete", webID), "Deleted source "+webID)
	wantContains(t, "sources get of a deleted source", wantFail(t, env, "sources", "get", webID), "not found")

	// workflows
	wantContains(t, "workflows create", mustHark(t, env, "workflows", "create", "welcome", "--name", "Welcome", "--description", "hello"), "welcome", "Welcome", "yes")
	wantContains(t, "workflows get", mustHark(t, env, "workflows", "get", "welcome"), "KEY", "welcome")
	var wf struct {
		Key    string `json:"key"`
		Name   string `json:"name"`
		Active bool   `json:"active"`
	}
	harkJSON(t, env, &wf, "workflows", "get", "welcome")
	if wf.Key != "welcome" || wf.Name != "Welcome" || !wf.Active {
		t.Fatalf("workflows get -o json: %+v, want the workflow itself", wf)
	}
	mustHark(t, env, "workflows", "create", "doomed")
	var wfs struct {
		Workflows []struct {
			Key    string `json:"key"`
			Active bool   `json:"active"`
		} `json:"workflows"`
	}
	harkJSON(t, env, &wfs, "workflows", "list")
	if len(wfs.Workflows) != 2 {
		t.Fatalf("workflows list -o json: %+v, want two", wfs)
	}
	wantContains(t, "workflows delete", mustHark(t, env, "workflows", "delete", "doomed"), "Deleted workflow doomed")
	wantContains(t, "workflows list", mustHark(t, env, "workflows", "list"), "welcome")

	// users
	out = mustHark(t, env, "users", "identify", "u1", "--env", "development", "--name", "Ada", "--email", "ada@example.com",
		"--phone", "+441234", "--set", "plan=pro", "--set-json", "seats=3")
	wantContains(t, "users identify", out, "Ada", "ada@example.com", "+441234", `"seats": 3`)
	var user jsonUser
	harkJSON(t, env, &user, "users", "identify", "u1", "--env", "development", "--set", "team=core")
	if user.Name != "Ada" || user.Properties["plan"] != "pro" || user.Properties["team"] != "core" {
		t.Fatalf("users identify merges: %+v", user)
	}
	wantContains(t, "users get", mustHark(t, env, "users", "get", "u1", "--env", "development"), "Ada", "team")
	harkJSON(t, env, &user, "users", "get", "u1", "--env", "development")
	if user.ID != "u1" || user.Email != "ada@example.com" {
		t.Fatalf("users get -o json: %+v, want the user itself", user)
	}
	mustHark(t, env, "users", "identify", "u9", "--env", "development")
	var users struct {
		Users []jsonUser `json:"users"`
	}
	harkJSON(t, env, &users, "users", "list", "--env", "development")
	if len(users.Users) != 2 {
		t.Fatalf("users list -o json: %+v, want two", users.Users)
	}
	wantContains(t, "users list", mustHark(t, env, "users", "list", "--env", "development"), "EMAIL", "u1", "u9")
	wantContains(t, "users delete", mustHark(t, env, "users", "delete", "u9", "--env", "development"), "Deleted user u9")
	wantFail(t, env, "users", "get", "u9", "--env", "development")

	// triggers
	var trg jsonTrigger
	harkJSON(t, env, &trg, "triggers", "create", "--env", "development", "--workflow", "welcome", "--source", src.ID,
		"--event", "Signed Up", "--condition", `properties.plan == "pro"`, "--data", "properties", "--actor", "userId")
	id := trg.ID
	out = mustHark(t, env, "triggers", "create", "--env", "development", "--workflow", "welcome", "--source", src.ID, "--event", "Other")
	wantContains(t, "triggers create", out, "ID:", "trg_", "Other", "(default: userId)")
	otherID := strings.Fields(strings.SplitN(out, "\n", 2)[0])[1]
	wantContains(t, "triggers get", mustHark(t, env, "triggers", "get", id, "--env", "development"), id, `properties.plan == "pro"`, "Signed Up")
	var one jsonTrigger
	harkJSON(t, env, &one, "triggers", "get", id, "--env", "development")
	if one.ID != id || one.Event != "Signed Up" {
		t.Fatalf("triggers get -o json: %+v", one)
	}
	pro := writeFile(t, "pro.json", `{"type":"track","event":"Signed Up","userId":"u1","properties":{"plan":"pro"}}`)
	free := writeFile(t, "free.json", `{"type":"track","event":"Signed Up","userId":"u1","properties":{"plan":"free"}}`)
	var test struct {
		ConditionResult    bool     `json:"conditionResult"`
		ResolvedRecipients []string `json:"resolvedRecipients"`
		Status             string   `json:"status"`
	}
	harkJSON(t, env, &test, "triggers", "test", id, "--env", "development", "--event-file", pro)
	if !test.ConditionResult || test.Status != "ACTION_STATUS_SUCCESS" || !slices.Equal(test.ResolvedRecipients, []string{"u1"}) {
		t.Fatalf("triggers test ID: %+v", test)
	}
	out = mustHark(t, env, "triggers", "test", "--env", "development", "--workflow", "welcome", "--source", src.ID,
		"--event", "Signed Up", "--condition", `properties.plan == "pro"`, "--event-file", free)
	wantContains(t, "triggers test (unsaved)", out, "Condition:", "false", "skipped")
	wantContains(t, "triggers deactivate", mustHark(t, env, "triggers", "deactivate", id, "--env", "development"), "inactive")
	var triggers struct {
		Triggers []jsonTrigger `json:"triggers"`
	}
	harkJSON(t, env, &triggers, "triggers", "list", "--env", "development")
	for _, tr := range triggers.Triggers {
		if tr.ID == id && tr.Status != "TRIGGER_STATUS_INACTIVE" {
			t.Fatalf("after deactivate, triggers list -o json shows %+v", tr)
		}
	}
	wantLine(t, mustHark(t, env, "triggers", "list", "--env", "development"), id, "inactive")
	wantContains(t, "triggers activate", mustHark(t, env, "triggers", "activate", id, "--env", "development"), "active")
	wantLine(t, mustHark(t, env, "triggers", "list", "--env", "development", "--event", "Signed Up"), id, "active")
	wantContains(t, "triggers delete", mustHark(t, env, "triggers", "delete", otherID, "--env", "development"), "Deleted trigger")
	harkJSON(t, env, &triggers, "triggers", "list", "--env", "development")
	if len(triggers.Triggers) != 1 {
		t.Fatalf("after delete, triggers list: %+v", triggers.Triggers)
	}

	// send, events
	tail := startStream(t, env, "events", "tail", "--env", "development", "-o", "json")
	var received jsonReceived
	harkJSON(t, env, &received, "send", "--env", "development", "--source", src.ID, pro)
	if len(received.Events) != 1 || received.Events[0].Status != "SOURCE_EVENT_STATUS_PROCESSED" {
		t.Fatalf("send -o json: %+v", received)
	}
	evID := received.Events[0].ID
	// The tail shows events logged after it subscribed, and nothing tells
	// when that is; send until one shows up.
	for i := 0; ; i++ {
		if _, ok := tail.waitLine(t, `"Tail me"`, time.Second); ok {
			break
		}
		if i == 30 {
			t.Fatalf("events tail printed no event; stderr:\n%s", tail.stderr)
		}
		mustHark(t, env, "send", "--env", "development", "--source", src.ID, writeFile(t, "tail.json", `{"type":"track","event":"Tail me","userId":"u1"}`))
	}
	tail.interrupt(t)

	wantContains(t, "events list", mustHark(t, env, "events", "list", "--env", "development", "--name", "Signed Up"), "STATUS", evID, "processed", "welcome: success")
	wantContains(t, "events get", mustHark(t, env, "events", "get", evID, "--env", "development"), evID, "Signed Up", "trigger_workflow", "Original event:")
	var evGot jsonEvent
	harkJSON(t, env, &evGot, "events", "get", evID, "--env", "development")
	if evGot.ID != evID || len(evGot.Actions) != 1 || evGot.Actions[0].WorkflowRunID == "" {
		t.Fatalf("events get -o json: %+v", evGot)
	}
	runID := evGot.Actions[0].WorkflowRunID
	wantLine(t, mustHark(t, env, "events", "types", "--env", "development", "--source", src.ID), "Signed Up", "track")
	var evTypes struct {
		EventTypes []struct {
			Name  string `json:"name"`
			Count string `json:"count"`
		} `json:"eventTypes"`
	}
	harkJSON(t, env, &evTypes, "events", "types", "--env", "development", "--source", src.ID)
	if len(evTypes.EventTypes) == 0 {
		t.Fatal("events types -o json lists nothing")
	}

	// workflows trigger, runs
	var started struct {
		WorkflowRunID string `json:"workflowRunId"`
	}
	harkJSON(t, env, &started, "workflows", "trigger", "welcome", "--env", "development", "--recipients", "u1",
		"--data", `{"a":1}`, "--actor", "u1", "--tenant", "acme", "--cancellation-key", "c1", "--idempotency-key", "k1")
	out = mustHark(t, env, "workflows", "trigger", "welcome", "--env", "development", "--recipients", "u1",
		"--data", `{"a":1}`, "--actor", "u1", "--tenant", "acme", "--cancellation-key", "c1", "--idempotency-key", "k1")
	wantContains(t, "workflows trigger (replay)", out, "Already started", started.WorkflowRunID)

	var runs struct {
		WorkflowRuns []jsonRun `json:"workflowRuns"`
	}
	harkJSON(t, env, &runs, "runs", "list", "--env", "development")
	if len(runs.WorkflowRuns) != 2 || runs.WorkflowRuns[0].ID != started.WorkflowRunID || runs.WorkflowRuns[1].ID != runID {
		t.Fatalf("runs list -o json: %+v, want %s then %s", runs.WorkflowRuns, started.WorkflowRunID, runID)
	}
	wantContains(t, "runs list", mustHark(t, env, "runs", "list", "--env", "development", "--workflow", "welcome"), "RECIPIENTS", runID, "(api)")
	wantContains(t, "runs get", mustHark(t, env, "runs", "get", started.WorkflowRunID, "--env", "development"), "acme", "c1", `"a": 1`)
	var run jsonRun
	harkJSON(t, env, &run, "runs", "get", runID, "--env", "development")
	if run.ID != runID || run.SourceEventID != evID {
		t.Fatalf("runs get -o json: %+v", run)
	}

	// runs watch from the first run's cursor shows the second, as JSON lines.
	first := runs.WorkflowRuns[1]
	watch := startStream(t, env, "runs", "watch", "--env", "development", "-o", "json", "--from", cursorOf(t, env, first.ID))
	line, ok := watch.waitLine(t, started.WorkflowRunID, procTimeout)
	if !ok {
		t.Fatalf("runs watch --from did not show run %s; stderr:\n%s", started.WorkflowRunID, watch.stderr)
	}
	var streamed struct{ WorkflowRun jsonRun }
	if err := json.Unmarshal([]byte(line), &streamed); err != nil || streamed.WorkflowRun.ID != started.WorkflowRunID {
		t.Fatalf("runs watch -o json line %q: %v", line, err)
	}
	watch.interrupt(t)

	wantContains(t, "completion bash", mustHark(t, env, "completion", "bash"), "__start_hark")
}

// cursorOf returns the cursor of a run, read from `runs watch` (lists do
// not carry cursors: they belong to the feed).
func cursorOf(t *testing.T, env []string, runID string) string {
	t.Helper()
	w := startStream(t, env, "runs", "watch", "--env", "development", "-o", "json")
	line, ok := w.waitLine(t, runID, procTimeout)
	if !ok {
		t.Fatalf("runs watch did not show run %s", runID)
	}
	w.interrupt(t)
	var r struct{ WorkflowRun jsonRun }
	if err := json.Unmarshal([]byte(line), &r); err != nil || r.WorkflowRun.Cursor == "" {
		t.Fatalf("runs watch line %q: no cursor (%v)", line, err)
	}
	return r.WorkflowRun.Cursor
}

// wantLine wants a line of a table holding every one of wants.
func wantLine(t *testing.T, out string, wants ...string) {
	t.Helper()
	for line := range strings.SplitSeq(out, "\n") {
		fs := strings.Fields(line)
		all := true
		for _, w := range wants {
			// One word must be a whole cell ("active" is not "inactive").
			if !slices.Contains(fs, w) && !(strings.Contains(w, " ") && strings.Contains(line, w)) {
				all = false
			}
		}
		if all {
			return
		}
	}
	t.Fatalf("no line holds %q:\n%s", wants, out)
}

// TestCLIErrors checks what a user sees when something is wrong: the exit
// status, "hark: <message>", and a hint where one helps.
func TestCLIErrors(t *testing.T) {
	t.Parallel()
	s := startCLIServer(t)
	env := s.env
	var created jsonSource
	harkJSON(t, env, &created, "sources", "create", "--type", "segment", "--name", "X")
	src := created.ID
	mustHark(t, env, "workflows", "create", "welcome")

	t.Run("wrong token", func(t *testing.T) {
		stderr := wantFail(t, []string{"HARK_SERVER=" + s.base, "HARK_TOKEN=wrong"}, "sources", "list")
		wantContains(t, "stderr", stderr, "admin token", "hint:", "--token", "HARK_TOKEN")
		stderr = wantFail(t, []string{"HARK_SERVER=" + s.base}, "--token", "wrong", "env", "list", "-o", "json")
		wantContains(t, "stderr", stderr, "admin token", "HARK_TOKEN")
	})
	t.Run("no token", func(t *testing.T) {
		stderr := wantFail(t, []string{"HARK_SERVER=" + s.base}, "env", "list")
		wantContains(t, "stderr", stderr, "no token was sent", "HARK_TOKEN")
	})
	t.Run("expression error", func(t *testing.T) {
		res := runHark(t, env, "triggers", "create", "--env", "development", "--workflow", "welcome", "--source", src,
			"--event", "Comment Posted", "--condition", "properties.post.id ==")
		if res.code == 0 {
			t.Fatalf("want a non-zero exit; %s", res)
		}
		wantContains(t, "stderr", res.stderr, "hark: condition: 1:21: ", "    properties.post.id ==\n")
		caret := "    " + strings.Repeat(" ", 20) + "^\n"
		wantContains(t, "stderr", res.stderr, caret)
		// The same error in a mapping, through triggers test.
		stderr := wantFail(t, env, "triggers", "test", "--env", "development", "--workflow", "welcome", "--source", src,
			"--event", "Comment Posted", "--recipients", "properties.(")
		wantContains(t, "stderr", stderr, "recipients", "1:", "^")
	})
	t.Run("server down", func(t *testing.T) {
		stderr := wantFail(t, []string{"HARK_SERVER=http://127.0.0.1:1", "HARK_TOKEN=x"}, "env", "list")
		wantContains(t, "stderr", stderr, "hint: is hark serve running at http://127.0.0.1:1")
	})
	t.Run("not found", func(t *testing.T) {
		wantContains(t, "stderr", wantFail(t, env, "sources", "get", "src_nope"), `hark: source "src_nope" not found`)
		wantContains(t, "stderr", wantFail(t, env, "triggers", "get", "trg_nope", "--env", "nope"), "nope")
	})
	t.Run("send refused", func(t *testing.T) {
		bad := writeFile(t, "bad.json", `{"type":"track","userId":"u1"}`)
		stderr := wantFail(t, env, "send", "--env", "development", "--source", src, bad)
		wantContains(t, "stderr", stderr, "400", "event")
		if strings.Contains(stderr, `"code"`) {
			t.Fatalf("send printed the raw error body:\n%s", stderr)
		}
		wantFail(t, env, "send", "--env", "nowhere", "--source", src, bad)
		wantFail(t, env, "send", "--env", "development", "--source", src, filepath.Join(t.TempDir(), "missing.json"))
	})
	t.Run("send signed", func(t *testing.T) {
		mustHark(t, env, "sources", "settings", src, "--env", "production", "--set", "shared_secret=s3cr3t")
		ok := writeFile(t, "ok.json", `[{"type":"track","event":"A","userId":"u1"}, {"type":"track","event":"B","userId":"u1"}]`)
		wantContains(t, "stderr", wantFail(t, env, "send", "--env", "production", "--source", src, ok), "401")
		wantContains(t, "send --secret", mustHark(t, env, "send", "--env", "production", "--source", src, "--secret", "s3cr3t", ok), "processed")
	})
	t.Run("usage", func(t *testing.T) {
		wantContains(t, "stderr", wantFail(t, env, "env", "list", "-o", "yaml"), "table or json")
		wantContains(t, "stderr", wantFail(t, env, "events", "list", "--status", "done"), "processed")
		wantContains(t, "stderr", wantFail(t, env, "sources", "settings", src, "--identify=maybe"), "on or off")
		wantContains(t, "stderr", wantFail(t, env, "sources", "list", "--nope"), "unknown flag", "hint: see 'hark sources list --help'")
		wantContains(t, "stderr", wantFail(t, env, "sources", "create", "--name", "X"), "type")
	})
	t.Run("durations in the CLI's units", func(t *testing.T) {
		stderr := wantFail(t, env, "sources", "settings", src, "--env", "development", "--window", "45d")
		wantContains(t, "stderr", stderr, "between 60s and 2592000s (1m to 30d)")
		if strings.Contains(stderr, "0m0s") {
			t.Fatalf("an error shows Go's duration form:\n%s", stderr)
		}
		mustHark(t, env, "env", "list", "--timeout", "1d")
		if res := runHark(t, append(env, "HARK_TIMEOUT=2d"), "env", "list"); res.code != 0 || res.stderr != "" {
			t.Fatalf("HARK_TIMEOUT=2d: %s", res)
		}
		wantContains(t, "env list --help", mustHark(t, env, "env", "list", "--help"), "(default 30s)")
	})
}

// TestCLITokenFromDataDir checks the token fallback: without --token or
// HARK_TOKEN, a client of a local server reads <data-dir>/admin-token.
func TestCLITokenFromDataDir(t *testing.T) {
	t.Parallel()
	dataDir := filepath.Join(t.TempDir(), "data")
	p := launch(t, dataDir)
	base, token := p.waitListening(t)
	if token == "" {
		t.Fatal("hark serve generated no token")
	}
	wantContains(t, "env list", mustHark(t, []string{"HARK_SERVER=" + base, "HARK_DATA_DIR=" + dataDir}, "env", "list"), "development")
	localhost := strings.Replace(base, "127.0.0.1", "localhost", 1)
	wantContains(t, "env list", mustHark(t, nil, "--server", localhost, "--data-dir", dataDir, "env", "list"), "development")
	// An explicit token wins over the file.
	wantFail(t, []string{"HARK_SERVER=" + base, "HARK_DATA_DIR=" + dataDir, "HARK_TOKEN=wrong"}, "env", "list")
}

// TestServeDemo checks hark serve --demo: it seeds what it promises, the
// commands it prints produce a run, and a second start seeds nothing more.
func TestServeDemo(t *testing.T) {
	t.Parallel()
	dataDir := filepath.Join(t.TempDir(), "data")
	p := launchWith(t, dataDir, []string{"--demo"})
	base, _ := p.waitListening(t)
	stdout := strings.Join(p.stdout, "\n")
	wantContains(t, "hark serve --demo", stdout, "Demo seeded", "hark send --env development --source src_", "hark runs watch --env development")

	env, commands := demoCommands(t, stdout)
	if !slices.Contains(env, "HARK_SERVER="+base) {
		t.Fatalf("the demo's exports %q do not point at %s", env, base)
	}

	var triggers struct {
		Triggers []jsonTrigger `json:"triggers"`
	}
	harkJSON(t, env, &triggers, "triggers", "list", "--env", "development")
	if len(triggers.Triggers) != 1 || triggers.Triggers[0].WorkflowKey != "welcome" || triggers.Triggers[0].Event != "Signed Up" || triggers.Triggers[0].Status != "TRIGGER_STATUS_ACTIVE" {
		t.Fatalf("triggers list -o json after --demo: %+v", triggers.Triggers)
	}
	var se jsonSourceEnv
	harkJSON(t, env, &se, "sources", "settings", triggers.Triggers[0].SourceID, "--env", "development")
	if !se.IdentifyEnabled || !se.IdempotencyEnabled {
		t.Fatalf("demo source in development: %+v, want identify and idempotency on", se)
	}

	// Follow the printed commands: watch, send, list.
	var send, list []string
	for _, c := range commands {
		switch {
		case slices.Contains(c, "send"):
			send = c
		case slices.Contains(c, "list"):
			list = c
		}
	}
	if send == nil || list == nil {
		t.Fatalf("the demo printed no send or runs list command:\n%s", stdout)
	}
	watch := startStream(t, env, "runs", "watch", "--env", "development")
	wantContains(t, "send", mustHark(t, env, send...), "processed")
	var runs struct {
		WorkflowRuns []jsonRun `json:"workflowRuns"`
	}
	harkJSON(t, env, &runs, append(list, "-o", "json")...)
	if len(runs.WorkflowRuns) != 1 || runs.WorkflowRuns[0].WorkflowKey != "welcome" || !slices.Equal(runs.WorkflowRuns[0].Recipients, []string{"demo-user"}) {
		t.Fatalf("runs after the demo's send: %+v", runs.WorkflowRuns)
	}
	if _, ok := watch.waitLine(t, runs.WorkflowRuns[0].ID, procTimeout); !ok {
		t.Fatalf("runs watch did not show run %s; stderr:\n%s", runs.WorkflowRuns[0].ID, watch.stderr)
	}
	watch.interrupt(t)
	// Sent again, the batch is a duplicate.
	wantContains(t, "send again", mustHark(t, env, send...), "idempotent")

	if err := p.stop(t); err != nil {
		t.Fatalf("hark after SIGTERM: %v; stderr:\n%s", err, p.stderr)
	}

	// A second start prints the hints again and creates nothing.
	p = launchWith(t, dataDir, []string{"--demo"})
	p.waitListening(t)
	stdout = strings.Join(p.stdout, "\n")
	if strings.Contains(stdout, "Demo seeded") {
		t.Fatalf("second start seeded again:\n%s", stdout)
	}
	env, _ = demoCommands(t, stdout)
	wantContains(t, "second start", stdout, "hark send --env development --source "+triggers.Triggers[0].SourceID)
	var sources struct {
		Sources []jsonSource `json:"sources"`
	}
	harkJSON(t, env, &sources, "sources", "list")
	harkJSON(t, env, &triggers, "triggers", "list", "--env", "development")
	if len(sources.Sources) != 1 || len(triggers.Triggers) != 1 {
		t.Fatalf("after a second --demo start: %d sources, %d triggers; want one of each", len(sources.Sources), len(triggers.Triggers))
	}
	if err := p.stop(t); err != nil {
		t.Fatalf("hark after SIGTERM: %v; stderr:\n%s", err, p.stderr)
	}
}

// demoCommands reads the demo's indented command lines: the exports become
// the environment, the hark commands their arguments (comments dropped).
func demoCommands(t *testing.T, stdout string) (env []string, commands [][]string) {
	t.Helper()
	for line := range strings.SplitSeq(stdout, "\n") {
		if !strings.HasPrefix(line, "    ") {
			continue
		}
		line = strings.TrimSpace(line)
		if i := strings.Index(line, " #"); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		switch {
		case strings.HasPrefix(line, "export "):
			kv := strings.TrimPrefix(line, "export ")
			k, v, _ := strings.Cut(kv, "=")
			env = append(env, k+"="+strings.Trim(v, `'"`))
		case strings.HasPrefix(line, "hark "), strings.HasPrefix(line, harkBin+" "): // the demo names the CLI as it was started
			commands = append(commands, strings.Fields(line)[1:])
		}
	}
	if len(commands) == 0 {
		t.Fatalf("no commands in the demo's output:\n%s", stdout)
	}
	return env, commands
}
