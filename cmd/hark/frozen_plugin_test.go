package main

import (
	"bytes"
	"net/http"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// A frozen plugin (issue 12.1): the Segment plugin of a real `hark serve`
// is stopped with SIGSTOP, as `kill -STOP` does. It keeps its sockets open
// and answers nothing, which is worse than a crash: nothing tells hark it is
// gone.

// frozenClient bounds each delivery generously: a hark that leaves a
// delivery hanging fails the test instead of the run.
var frozenClient = &http.Client{Timeout: 60 * time.Second}

// post delivers body and returns the status code (0 with no answer).
func post(t *testing.T, ingestURL string, body []byte) int {
	t.Helper()
	res, err := frozenClient.Post(ingestURL, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Logf("delivery got no answer: %v", err)
		return 0
	}
	res.Body.Close()
	return res.StatusCode
}

// startFrozen starts hark with a Segment source, delivers one event, and
// freezes the Segment plugin; it returns the server, the ingest URL and the
// frozen pid (SIGKILLed when the test ends, whatever happens).
func startFrozen(t *testing.T) (*relServer, string, int) {
	t.Helper()
	s := startRelServer(t, filepath.Join(t.TempDir(), "data"))
	ingest := s.ingestURL(t, setupSource(t, s))
	if got := post(t, ingest, newSentEvent("before-freeze", 0).raw); got != http.StatusOK {
		t.Fatalf("delivery before the freeze: HTTP %d, want 200", got)
	}
	pid := segmentPlugin(t, s.pid())
	if pid == 0 {
		t.Fatalf("hark (pid %d) runs no Segment plugin", s.pid())
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatalf("SIGSTOP the plugin %d: %v", pid, err)
	}
	if !waitFor(10*time.Second, func() bool { _, state, _ := procStat(pid); return state == "T" }) {
		t.Fatalf("the plugin %d did not stop after SIGSTOP", pid)
	}
	return s, ingest, pid
}

// TestFrozenPluginAnswers503 delivers to a frozen plugin: the delivery is
// answered 503 (Segment retries) instead of hanging, and once hark has
// replaced the plugin, deliveries are accepted again.
func TestFrozenPluginAnswers503(t *testing.T) {
	t.Parallel()
	s, ingest, frozen := startFrozen(t)
	began := time.Now()
	got := post(t, ingest, newSentEvent("during-freeze", 1).raw)
	t.Logf("kill -STOP to the first answer of a delivery: %v (HTTP %d)", time.Since(began), got)
	if got != http.StatusServiceUnavailable {
		t.Fatalf("delivery to a frozen plugin: HTTP %d, want 503", got)
	}
	if !waitFor(20*time.Second, func() bool {
		pid := segmentPlugin(t, s.pid())
		return pid != 0 && pid != frozen && segmentServing(t, s)
	}) {
		t.Fatalf("hark did not replace the frozen plugin %d within 20s; stderr:\n%s", frozen, s.p.stderr)
	}
	t.Logf("kill -STOP to a new plugin serving: %v", time.Since(began))
	if got := post(t, ingest, newSentEvent("after-freeze", 2).raw); got != http.StatusOK {
		t.Fatalf("delivery after the plugin was replaced: HTTP %d, want 200", got)
	}
	plugins := childPIDs(t, s.pid())
	if err := s.p.stop(t); err != nil {
		t.Errorf("hark after SIGTERM: %v, want exit status 0; stderr:\n%s", err, s.p.stderr)
	}
	reapPlugins(t, plugins, "hark's graceful shutdown")
}

// TestFrozenPluginSIGTERM sends SIGTERM to hark while its plugin is frozen
// and a delivery to it is in flight: hark answers the delivery, exits
// cleanly, and leaves no plugin process behind.
func TestFrozenPluginSIGTERM(t *testing.T) {
	t.Parallel()
	s, ingest, frozen := startFrozen(t)
	answer := make(chan int, 1)
	go func() { answer <- post(t, ingest, newSentEvent("in-flight", 1).raw) }()
	time.Sleep(100 * time.Millisecond) // the delivery reaches the plugin
	plugins := childPIDs(t, s.pid())
	began := time.Now()
	if err := s.p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	err := s.p.wait(t)
	t.Logf("SIGTERM to exit with a frozen plugin: %v", time.Since(began))
	if err != nil {
		t.Errorf("hark after SIGTERM: %v, want exit status 0; stderr:\n%s", err, s.p.stderr)
	}
	if got := <-answer; got != http.StatusServiceUnavailable {
		t.Errorf("the delivery in flight at SIGTERM: HTTP %d, want 503", got)
	}
	if !waitFor(exitGrace, func() bool { return len(alive([]int{frozen})) == 0 }) {
		t.Errorf("the frozen plugin %d outlived hark", frozen)
	}
	reapPlugins(t, plugins, "hark's graceful shutdown")
}
