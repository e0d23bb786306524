package main

// The outbox crash test (issue 13, "Done when"): hark is SIGKILLed while
// webhook deliveries are pending (their receiver failed them) and in flight
// (their receiver is still answering), restarted on the same data dir, and
// every run must then reach the receiver — verified with the official
// Standard Webhooks library — under one webhook-id, the same before and
// after the kill.

import (
	"context"
	"fmt"
	"hash/fnv"
	"maps"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// crashSchedule is the retry schedule of the crash test: quick retries,
// then one every 2 s, 24 attempts in about 40 s, so a delivery the receiver
// keeps failing before the kill (which comes within 20 s, however slow the
// machine) is still pending at it, never FAILED, and is retried within 2 s
// once the receiver is healthy.
var crashSchedule = "0s,100ms,200ms,500ms,1s" + strings.Repeat(",2s", 19)

// crashSlowAnswer is how long the receiver takes over a slow delivery: long
// enough that a kill finds some in flight.
const crashSlowAnswer = 1500 * time.Millisecond

// crashReceiver decides what the webhook receiver answers. Until it is
// healthy, each delivery (by webhook-id) is one of three kinds: failing (a
// 500, then a reset connection, alternately, on every attempt), slow (the
// first attempt answers 200 after crashSlowAnswer, unless the kill cuts it
// short) or fine (200 at once). Once healthy, everything gets a 200.
type crashReceiver struct {
	healthy atomic.Bool
	killed  chan struct{} // closed after the SIGKILL: ends the slow answers

	mu      sync.Mutex
	failing map[string]bool // webhook-ids answered 500 or reset, never 200
	cut     map[string]bool // webhook-ids whose slow answer the kill cut short
}

func newCrashReceiver() *crashReceiver {
	return &crashReceiver{killed: make(chan struct{}), failing: map[string]bool{}, cut: map[string]bool{}}
}

// kind sorts a webhook-id into one of the three kinds, by its hash: the
// ids are random, so each kind gets about a third.
func kind(id string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(id))
	return h.Sum32() % 3
}

func (c *crashReceiver) answer(w http.ResponseWriter, r *http.Request, got receivedWebhook) {
	if c.healthy.Load() {
		fmt.Fprintln(w, "ok")
		return
	}
	switch kind(got.ID) {
	case 0:
		c.mu.Lock()
		c.failing[got.ID] = true
		c.mu.Unlock()
		if got.Seen%2 == 1 {
			resetConnection(w)
			return
		}
		http.Error(w, "down for maintenance", http.StatusInternalServerError)
	case 1:
		if got.Seen == 0 {
			select {
			case <-time.After(crashSlowAnswer):
			case <-c.killed:
				c.markCut(got.ID)
				return
			case <-r.Context().Done(): // hark went away: killed
				c.markCut(got.ID)
				return
			}
		}
		fmt.Fprintln(w, "ok")
	default:
		fmt.Fprintln(w, "ok")
	}
}

func (c *crashReceiver) markCut(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cut[id] = true
}

// failingIDs returns the webhook-ids answered only with failures so far.
func (c *crashReceiver) failingIDs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Sorted(maps.Keys(c.failing))
}

// resetConnection closes the request's connection with a TCP reset,
// answering nothing.
func resetConnection(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		http.Error(w, "cannot reset", http.StatusInternalServerError)
		return
	}
	if tcp, ok := conn.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0) // close sends RST, not FIN
	}
	_ = conn.Close()
}

// startOutboxServer starts hark serve for the crash test: relToken, the
// short schedule, private destinations allowed (the receiver is on
// loopback).
func startOutboxServer(t *testing.T, dataDir string) *relServer {
	t.Helper()
	p := launchWith(t, dataDir, []string{"--allow-private-destinations", "--delivery-retry-schedule", crashSchedule}, "HARK_ADMIN_TOKEN="+relToken)
	base, _ := p.waitListening(t)
	return &relServer{p: p, base: base}
}

// listAllDeliveries pages through the deliveries to destination over REST.
func (s *relServer) listAllDeliveries(t *testing.T, destination string) []jsonDelivery {
	t.Helper()
	var out []jsonDelivery
	for token := ""; ; {
		q := url.Values{"destinationId": {destination}, "pageSize": {"1000"}, "pageToken": {token}}
		var page jsonDeliveries
		s.api(t, http.MethodGet, "/v1/environments/"+relEnv+"/deliveries?"+q.Encode(), nil, &page)
		out = append(out, page.Deliveries...)
		if token = page.NextPageToken; token == "" {
			return out
		}
	}
}

// TestOutboxSurvivesSIGKILL kills hark while deliveries are pending and in
// flight, restarts it, heals the receiver, and checks that every run
// stored before the kill — every run of an event answered 200 among them —
// is delivered at least once, under one webhook-id, the same on every
// attempt before and after the kill.
func TestOutboxSurvivesSIGKILL(t *testing.T) {
	t.Parallel()
	dataDir := filepath.Join(t.TempDir(), "data")
	s := startOutboxServer(t, dataDir)
	sourceID := setupSource(t, s)

	crash := newCrashReceiver()
	rcv := startReceiver(t, crash.answer)
	var dest jsonDestination
	s.api(t, http.MethodPost, "/v1/environments/"+relEnv+"/destinations",
		map[string]any{"name": "Crash receiver", "type": "webhook", "url": rcv.url("/hooks")}, &dest)
	rcv.trust(t, dest.SigningSecret)

	// Runs, from events through the webhook URL, while the receiver fails,
	// stalls and answers a mix; the kill comes once some deliveries are in
	// flight and some have failed, the load possibly still going.
	plugins := childPIDs(t, s.pid())
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	l := startLoad(t, ctx, s.ingestURL(t, sourceID), loadOptions{senders: 3, maxRequests: 30, pause: 30 * time.Millisecond, prefix: "outbox"})
	ready := waitFor(20*time.Second, func() bool {
		return l.ok.Load() >= 30 && len(rcv.inFlightIDs()) > 0 && len(crash.failingIDs()) > 0
	})
	if !ready {
		t.Fatalf("no moment with deliveries both pending and in flight: %s; %d in flight, %d failing; hark stderr:\n%s",
			l, len(rcv.inFlightIDs()), len(crash.failingIDs()), s.p.stderr)
	}
	inFlight, failing := rcv.inFlightIDs(), crash.failingIDs()
	killedAt := time.Now()
	s.kill(t)
	crash.healthy.Store(true)
	close(crash.killed)
	l.wait()
	cancel()
	reapPlugins(t, plugins, "a SIGKILLed hark")
	l.problems.report(t, "the load's answers")
	before := rcv.received(func(g receivedWebhook) bool { return g.At.Before(killedAt) })
	t.Logf("SIGKILL with %d deliveries in flight and %d failed and pending; %s; the receiver had %d requests",
		len(inFlight), len(failing), l, len(before))

	// Restart on the same data dir; the receiver is healthy now.
	s = startOutboxServer(t, dataDir)
	restartedAt := time.Now()
	v := s.readLog(t, sourceID)
	runs := v.runs
	var problems problems
	acked := 0
	for _, ev := range l.events {
		if ev.out != outOK || ev.name != relTracked {
			continue
		}
		acked++
		e, ok := v.byID[ev.id]
		switch {
		case !ok:
			problems.add("event %s answered 200 as %s is not in the log", ev.msgID, ev.id)
		case len(e.Actions) != 1 || runs[e.Actions[0].WorkflowRunID].ID == "":
			problems.add("event %s (%s) answered 200 has actions %+v, want one with a stored run", ev.msgID, ev.id, e.Actions)
		}
	}
	problems.report(t, "the runs of the events answered 200")
	if acked == 0 || len(runs) < acked {
		t.Fatalf("%d runs stored for %d tracked events answered 200", len(runs), acked)
	}

	// Wait for the outbox to drain: every delivery SUCCEEDED, none FAILED.
	deadline := time.Now().Add(2 * deliveryWait)
	var deliveries []jsonDelivery
	for {
		deliveries = s.listAllDeliveries(t, dest.ID)
		pending, failed := 0, 0
		for _, d := range deliveries {
			switch d.Status {
			case deliveryPending:
				pending++
			case deliveryFailed:
				failed++
			}
		}
		if failed > 0 {
			t.Fatalf("%d deliveries FAILED after the restart: %+v", failed, deliveries)
		}
		if pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d deliveries still pending %v after the restart", pending, len(deliveries), 2*deliveryWait)
		}
		time.Sleep(100 * time.Millisecond)
	}
	drained := time.Since(restartedAt)

	// One delivery per run, each SUCCEEDED, and the receiver got each run
	// under that delivery's id only, on every attempt.
	byRun := map[string]jsonDelivery{}
	for _, d := range deliveries {
		if _, dup := byRun[d.WorkflowRunID]; dup {
			problems.add("run %s has two deliveries to the destination: %s and %s", d.WorkflowRunID, byRun[d.WorkflowRunID].ID, d.ID)
		}
		byRun[d.WorkflowRunID] = d
		if runs[d.WorkflowRunID].ID == "" {
			problems.add("delivery %s carries run %s, which is not stored", d.ID, d.WorkflowRunID)
		}
	}
	got := map[string]map[string]int{} // run → webhook-id → requests
	for _, g := range rcv.received(nil) {
		if got[g.RunID] == nil {
			got[g.RunID] = map[string]int{}
		}
		got[g.RunID][g.ID]++
	}
	for id := range runs {
		d, ok := byRun[id]
		ids := slices.Sorted(maps.Keys(got[id]))
		switch {
		case !ok:
			problems.add("run %s has no delivery", id)
		case len(ids) != 1 || ids[0] != d.ID:
			problems.add("run %s reached the receiver under webhook-ids %v, want only its delivery's id %s", id, ids, d.ID)
		}
	}
	for run := range got {
		if runs[run].ID == "" {
			problems.add("the receiver got run %s, which is not stored", run)
		}
	}
	problems.report(t, "the deliveries after the restart")
	rcv.report(t)

	// What the restart sent again: every delivery whose answer hark did not
	// get, the ones the kill cut short among them.
	after := map[string]bool{}
	for _, g := range rcv.received(func(g receivedWebhook) bool { return g.At.After(killedAt) }) {
		after[g.ID] = true
	}
	resent, firstTime := 0, 0
	seenBefore := map[string]bool{}
	for _, g := range before {
		seenBefore[g.ID] = true
	}
	for id := range after {
		if seenBefore[id] {
			resent++
		} else {
			firstTime++
		}
	}
	crash.mu.Lock()
	cut := slices.Sorted(maps.Keys(crash.cut))
	crash.mu.Unlock()
	for _, id := range cut {
		if !after[id] {
			t.Errorf("delivery %s was in flight when hark was killed and was not sent again after the restart", id)
		}
	}
	for _, id := range failing {
		if !after[id] {
			t.Errorf("delivery %s had only failed before the kill and was not sent again after the restart", id)
		}
	}
	if len(cut) == 0 {
		t.Errorf("the kill cut no delivery short: none was in flight")
	}
	t.Logf("%d runs (%d of events answered 200), one delivery each; after the restart %d deliveries were sent again (%d of them cut short by the kill, %d failed before it) and %d for the first time; the outbox drained %v after the restart",
		len(runs), acked, resent, len(cut), len(failing), firstTime, drained.Round(time.Millisecond))

	plugins = childPIDs(t, s.pid())
	if err := s.p.stop(t); err != nil {
		t.Errorf("hark after SIGTERM: %v, want exit status 0; stderr:\n%s", err, s.p.stderr)
	}
	reapPlugins(t, plugins, "hark's graceful shutdown")
}
