package main

import (
	"encoding/json"
	"net/url"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// restartable is a hark serve that a test stops and starts again on the
// same address and data dir, as an operator restarts hark under its clients.
type restartable struct {
	dataDir, addr string
	env           []string // HARK_SERVER and HARK_TOKEN
	proc          *harkProc
}

func startRestartable(t *testing.T) *restartable {
	t.Helper()
	r := &restartable{dataDir: filepath.Join(t.TempDir(), "data")}
	r.proc = launch(t, r.dataDir, "HARK_ADMIN_TOKEN=test-admin-token")
	base, _ := r.proc.waitListening(t)
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	r.addr = u.Host
	r.env = []string{"HARK_SERVER=" + base, "HARK_TOKEN=test-admin-token"}
	return r
}

// restart stops the server — gracefully, or with SIGKILL, which drops the
// connections without a word — runs between while it is down, and starts
// it again on the same address.
func (r *restartable) restart(t *testing.T, kill bool, between func()) {
	t.Helper()
	if kill {
		if err := r.proc.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = r.proc.wait(t)
	} else if err := r.proc.stop(t); err != nil {
		t.Fatalf("hark after SIGTERM: %v; stderr:\n%s", err, r.proc.stderr)
	}
	between()
	r.proc = launchWith(t, r.dataDir, []string{"--listen", r.addr}, "HARK_ADMIN_TOKEN=test-admin-token")
	r.proc.waitListening(t)
}

// streamIDs reads JSON lines from a stream until every id in want has been
// printed, counting how often each id was printed; id reads a line's id.
func streamIDs(t *testing.T, h *harkStream, counts map[string]int, id func(line string) string, want ...string) {
	t.Helper()
	deadline := time.After(procTimeout)
	missing := func() []string {
		var out []string
		for _, w := range want {
			if counts[w] == 0 {
				out = append(out, w)
			}
		}
		return out
	}
	for len(missing()) > 0 {
		select {
		case line, ok := <-h.lines:
			if !ok {
				<-h.done
				t.Fatalf("hark %s exited (%v) before printing %v; stderr:\n%s", strings.Join(h.cmd.Args[1:], " "), h.err, missing(), h.stderr)
			}
			counts[id(line)]++
		case <-deadline:
			t.Fatalf("hark %s did not print %v; stderr:\n%s", strings.Join(h.cmd.Args[1:], " "), missing(), h.stderr)
		}
	}
}

// stopStream interrupts a stream as Ctrl-C does, reads what it printed
// until it exits into counts, and wants exit 0.
func stopStream(t *testing.T, h *harkStream, counts map[string]int, id func(line string) string) {
	t.Helper()
	if err := h.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	for line := range h.lines {
		counts[id(line)]++
	}
	select {
	case <-h.done:
	case <-time.After(procTimeout):
		t.Fatal("the stream did not exit after SIGINT")
	}
	if h.err != nil {
		t.Fatalf("hark %s after SIGINT: %v, want exit 0; stderr:\n%s", strings.Join(h.cmd.Args[1:], " "), h.err, h.stderr)
	}
}

// wantStderrCount waits until the stream's stderr holds want at least n
// times.
func wantStderrCount(t *testing.T, h *harkStream, want string, n int) {
	t.Helper()
	if !waitFor(procTimeout, func() bool { return strings.Count(h.stderr.String(), want) >= n }) {
		t.Fatalf("stderr of hark %s holds %q fewer than %d times:\n%s", strings.Join(h.cmd.Args[1:], " "), want, n, h.stderr)
	}
}

// TestCLIRunsWatchSurvivesRestart restarts the server, gracefully and then
// with SIGKILL, under a running hark runs watch: it reconnects from the last
// cursor it printed, says so on stderr, prints the runs created after each
// restart, and prints no run twice.
func TestCLIRunsWatchSurvivesRestart(t *testing.T) {
	t.Parallel()
	s := startRestartable(t)
	mustHark(t, s.env, "workflows", "create", "welcome")
	mustHark(t, s.env, "users", "identify", "u1", "--env", "development")
	trigger := func() string {
		var r struct {
			WorkflowRunID string `json:"workflowRunId"`
		}
		harkJSON(t, s.env, &r, "workflows", "trigger", "welcome", "--env", "development", "--recipients", "u1")
		return r.WorkflowRunID
	}
	runID := func(line string) string {
		var m struct{ WorkflowRun jsonRun }
		if err := json.Unmarshal([]byte(line), &m); err != nil || m.WorkflowRun.ID == "" {
			t.Fatalf("runs watch printed %q: %v", line, err)
		}
		return m.WorkflowRun.ID
	}

	stored := trigger()
	w := startStream(t, s.env, "runs", "watch", "--env", "development", "-o", "json")
	counts := map[string]int{}
	streamIDs(t, w, counts, runID, stored)
	live := trigger()
	streamIDs(t, w, counts, runID, live)
	all := []string{stored, live}
	for i, kill := range []bool{false, true} {
		s.restart(t, kill, func() { wantStderrCount(t, w, "connection lost", i+1) })
		after := []string{trigger(), trigger()}
		streamIDs(t, w, counts, runID, after...)
		wantStderrCount(t, w, "reconnected", i+1)
		all = append(all, after...)
	}
	stopStream(t, w, counts, runID)
	for _, id := range all {
		if counts[id] != 1 {
			t.Errorf("run %s printed %d times, want once", id, counts[id])
		}
	}
	if len(counts) != len(all) {
		t.Errorf("runs watch printed %v, want exactly %v", counts, all)
	}
	wantContains(t, "stderr", w.stderr.String(), "reconnecting in ")
}

// TestCLIEventsTailSurvivesRestart restarts the server under a running hark
// events tail: it reconnects, prints the events logged after the restart —
// also those logged before it had reconnected, which the live tail alone
// would miss — and prints no event twice.
func TestCLIEventsTailSurvivesRestart(t *testing.T) {
	t.Parallel()
	s := startRestartable(t)
	var src jsonSource
	harkJSON(t, s.env, &src, "sources", "create", "--type", "segment", "--name", "Tailed")
	n := 0
	send := func() string {
		n++
		var r jsonReceived
		harkJSON(t, s.env, &r, "send", "--env", "development", "--source", src.ID,
			writeFile(t, "event.json", `{"type":"track","event":"Tailed `+string(rune('A'+n))+`","userId":"u1"}`))
		if len(r.Events) != 1 || r.Events[0].ID == "" {
			t.Fatalf("send: %+v", r)
		}
		return r.Events[0].ID
	}
	eventID := func(line string) string {
		var m struct{ SourceEvent jsonEvent }
		if err := json.Unmarshal([]byte(line), &m); err != nil || m.SourceEvent.ID == "" {
			t.Fatalf("events tail printed %q: %v", line, err)
		}
		return m.SourceEvent.ID
	}

	tail := startStream(t, s.env, "events", "tail", "--env", "development", "-o", "json")
	wantStderrCount(t, tail, "Following events", 1)
	// The tail shows events logged after it subscribed, and nothing tells
	// when that is; send until one shows up.
	counts := map[string]int{}
	var before, after []string // sent before the tail was live (maybe), and after it was
	for i := 0; ; i++ {
		id := send()
		if line, ok := tail.waitLine(t, id, time.Second); ok {
			counts[eventID(line)]++
			after = append(after, id)
			break
		}
		before = append(before, id)
		if i == 30 {
			t.Fatalf("events tail printed no event; stderr:\n%s", tail.stderr)
		}
	}
	for i, kill := range []bool{false, true} {
		s.restart(t, kill, func() { wantStderrCount(t, tail, "connection lost", i+1) })
		early := send() // most likely while the tail waits to reconnect
		streamIDs(t, tail, counts, eventID, early)
		wantStderrCount(t, tail, "reconnected", i+1)
		later := send()
		streamIDs(t, tail, counts, eventID, later)
		after = append(after, early, later)
	}
	stopStream(t, tail, counts, eventID)
	for _, id := range after {
		if counts[id] != 1 {
			t.Errorf("event %s printed %d times, want once", id, counts[id])
		}
	}
	for _, id := range before {
		if counts[id] > 1 {
			t.Errorf("event %s printed %d times, want at most once", id, counts[id])
		}
	}
}
