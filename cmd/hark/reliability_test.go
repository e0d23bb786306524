package main

// Reliability tests (issue 8): they do the damage for real to `hark serve`
// subprocesses — SIGKILL mid-load, SIGKILL of the Segment plugin under load,
// SIGTERM under load — and then check, through the REST API and by
// redelivering, that no acknowledged event was lost or doubled and that no
// workflow run was lost or doubled.
//
// Every test talks to 127.0.0.1 only, bounds its load by time and by request
// count, and stops every process it starts: hark through launch's cleanup,
// and plugin processes that outlived a killed hark by killing them itself.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

const (
	// relToken is the admin token of the servers these tests start.
	relToken = "reliability-admin-token"
	// relWorkflow is the workflow the trigger starts.
	relWorkflow = "crash-test"
	// relTracked is the track event the trigger matches; relUntracked is a
	// track event no trigger matches, so the run count is checked against
	// the events that matched, not against all events.
	relTracked   = "Crash Test"
	relUntracked = "Other Event"
	// relEnv is the environment all tests ingest into.
	relEnv = "development"
	// redeliverBatch is how many events one redelivery request carries.
	redeliverBatch = 200
	// Event statuses, as protojson spells them.
	statusProcessed  = "SOURCE_EVENT_STATUS_PROCESSED"
	statusIdempotent = "SOURCE_EVENT_STATUS_IDEMPOTENT"
)

// relAPI is the client of the admin API calls; each is bounded.
var relAPI = &http.Client{Timeout: 30 * time.Second}

// relServer is one `hark serve` of a reliability test.
type relServer struct {
	p    *harkProc
	base string
}

// startRelServer starts hark serve on dataDir with relToken and waits for
// it to listen.
func startRelServer(t *testing.T, dataDir string) *relServer {
	t.Helper()
	p := launch(t, dataDir, "HARK_ADMIN_TOKEN="+relToken)
	base, _ := p.waitListening(t)
	return &relServer{p: p, base: base}
}

func (s *relServer) pid() int { return s.p.cmd.Process.Pid }

// kill SIGKILLs hark and waits for it; its plugin processes die with it
// (Pdeathsig), which the caller checks with reapPlugins.
func (s *relServer) kill(t *testing.T) {
	t.Helper()
	if err := s.p.cmd.Process.Kill(); err != nil {
		t.Fatalf("SIGKILL hark: %v", err)
	}
	_ = s.p.wait(t)
}

// reapPlugins fails the test if any of pids outlives exitGrace, and kills
// those so that the test leaves nothing behind.
func reapPlugins(t *testing.T, pids []int, what string) {
	t.Helper()
	if left := alive(pids); len(left) > 0 {
		for _, pid := range left {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		t.Errorf("plugin processes %v outlived %s by %v (killed them now)", left, what, exitGrace)
	}
}

// api calls the REST API with the admin token and decodes a 200 answer into
// out; any other answer fails the test.
func (s *relServer) api(t *testing.T, method, path string, in, out any) {
	t.Helper()
	status, body := s.apiStatus(t, method, path, in)
	if status != http.StatusOK {
		t.Fatalf("%s %s = %d, want 200; body %s", method, path, status, body)
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, path, body, err)
		}
	}
}

func (s *relServer) apiStatus(t *testing.T, method, path string, in any) (int, []byte) {
	t.Helper()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, s.base+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+relToken)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := relAPI.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return res.StatusCode, b
}

// setupSource creates, as a user would over REST, a Segment source with
// idempotency on in relEnv, the workflow relWorkflow, and a trigger that
// starts it for every track relTracked with the sender as an inline
// recipient, so every such event starts exactly one run. It returns the
// source id.
func setupSource(t *testing.T, s *relServer) string {
	t.Helper()
	var src jsonSource
	s.api(t, http.MethodPost, "/v1/sources", map[string]any{"name": "Reliability", "type": "segment"}, &src)
	var se jsonSourceEnv
	s.api(t, http.MethodPatch, "/v1/sources/"+src.ID+"/environments/"+relEnv, map[string]any{"idempotencyEnabled": true}, &se)
	if !se.IdempotencyEnabled {
		t.Fatalf("after turning idempotency on: %+v", se)
	}
	s.api(t, http.MethodPost, "/v1/workflows", map[string]any{"key": relWorkflow, "name": "Crash test"}, nil)
	var trg jsonTrigger
	s.api(t, http.MethodPost, "/v1/environments/"+relEnv+"/triggers", map[string]any{
		"workflowKey": relWorkflow, "sourceId": src.ID, "eventType": "track", "event": relTracked,
		"mapping": map[string]any{"recipients": `{"id": userId}`},
	}, &trg)
	if trg.Status != "TRIGGER_STATUS_ACTIVE" {
		t.Fatalf("created trigger %+v, want it active", trg)
	}
	return src.ID
}

// ingestURL reads the source's webhook URL in relEnv. It names the server's
// public URL, so it changes with the port on every restart.
func (s *relServer) ingestURL(t *testing.T, sourceID string) string {
	t.Helper()
	var src jsonSource
	s.api(t, http.MethodGet, "/v1/sources/"+sourceID, nil, &src)
	for _, e := range src.Environments {
		if e.Environment == relEnv {
			if !strings.HasPrefix(e.IngestURL, s.base+"/integrations/receive/") {
				t.Fatalf("ingest URL %q does not point at this server (%s)", e.IngestURL, s.base)
			}
			return e.IngestURL
		}
	}
	t.Fatalf("source %s has no %s environment: %+v", sourceID, relEnv, src)
	return ""
}

// outcome is what the delivery of an event was answered.
type outcome int

const (
	outNotSent     outcome = iota
	outOK                  // 200
	outUnavailable         // 503
	outRefused             // connection refused: hark was not listening
	outNoAnswer            // another transport error: sent, never answered
	outOther               // any other status, or a 200 that does not make sense
)

func (o outcome) String() string {
	return [...]string{"not sent", "200", "503", "refused", "no answer", "other"}[o]
}

// sentEvent is one event of the load and what its delivery was answered.
type sentEvent struct {
	msgID string
	name  string
	raw   json.RawMessage // the event object as sent
	out   outcome
	id    string // the log id a 200 answer gave
}

// receiveAnswer is the body of a 200 from a webhook URL.
type receiveAnswer struct {
	Events []struct {
		Index  int    `json:"index"`
		ID     string `json:"id"`
		Status string `json:"status"`
		Reason string `json:"reason"`
	} `json:"events"`
}

// loadOptions shape a load.
type loadOptions struct {
	senders     int
	maxRequests int           // per sender: bounds the load by count
	pause       time.Duration // between one sender's requests
	prefix      string        // of message ids, unique per load
}

// load is concurrent senders posting unique events to a webhook URL: mostly
// single events, every fifth request a small {"batch": [...]}. Its counters
// may be read while it runs; events and delivery records after wait.
type load struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup

	ok, unavailable, refused, noAnswer, other atomic.Int64 // deliveries

	mu       sync.Mutex
	events   []*sentEvent
	records  []deliveryRecord
	problems problems // answers that make no sense
}

// deliveryRecord is one request of a load.
type deliveryRecord struct {
	out        outcome
	start, end time.Time
}

// startLoad starts the senders; they stop at ctx's end, after maxRequests,
// or at their first refused connection (nothing listens any more), and
// pause for at least 10 ms after a 503. The
// requests themselves are not bound to ctx: one in flight when the load is
// stopped still gets its real answer. The test's cleanup stops the load.
func startLoad(t *testing.T, ctx context.Context, ingestURL string, o loadOptions) *load {
	ctx, cancel := context.WithCancel(ctx)
	l := &load{cancel: cancel}
	tr := &http.Transport{MaxIdleConnsPerHost: o.senders, DisableCompression: true}
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	for sender := range o.senders {
		l.wg.Go(func() {
			for req := 0; req < o.maxRequests && ctx.Err() == nil; req++ {
				n := 1
				if req%5 == 4 {
					n = 2 + (sender+req)%3
				}
				events := make([]*sentEvent, n)
				raws := make([]json.RawMessage, n)
				for k := range events {
					events[k] = newSentEvent(fmt.Sprintf("%s-%d-%d-%d", o.prefix, sender, req, k), sender+req+k)
					raws[k] = events[k].raw
				}
				body := []byte(events[0].raw)
				if n > 1 {
					body = batchBody(raws)
				}
				rec, problem := deliver(client, ingestURL, body, events)
				l.count(rec.out)
				l.mu.Lock()
				l.events = append(l.events, events...)
				l.records = append(l.records, rec)
				if problem != "" {
					l.problems.add("%s", problem)
				}
				l.mu.Unlock()
				if rec.out == outRefused {
					return
				}
				pause := o.pause
				if rec.out == outUnavailable {
					// Back off a little, as a sender retrying later would,
					// so an outage does not use up the request budget.
					pause = max(pause, 10*time.Millisecond)
				}
				if pause > 0 {
					select {
					case <-ctx.Done():
					case <-time.After(pause):
					}
				}
			}
		})
	}
	t.Cleanup(func() {
		l.wait()
		tr.CloseIdleConnections()
	})
	return l
}

// wait stops the senders and waits for their last requests.
func (l *load) wait() {
	l.cancel()
	l.wg.Wait()
}

func (l *load) count(o outcome) {
	switch o {
	case outOK:
		l.ok.Add(1)
	case outUnavailable:
		l.unavailable.Add(1)
	case outRefused:
		l.refused.Add(1)
	case outNoAnswer:
		l.noAnswer.Add(1)
	default:
		l.other.Add(1)
	}
}

func (l *load) String() string {
	l.mu.Lock()
	requests := len(l.records)
	l.mu.Unlock()
	return fmt.Sprintf("%d requests: %d answered 200, %d 503, %d refused, %d unanswered, %d other",
		requests, l.ok.Load(), l.unavailable.Load(), l.refused.Load(), l.noAnswer.Load(), l.other.Load())
}

// inFlightAt counts the requests sent before t and answered (or failed)
// after it.
func (l *load) inFlightAt(at time.Time) int {
	n := 0
	for _, r := range l.records {
		if r.start.Before(at) && r.end.After(at) {
			n++
		}
	}
	return n
}

// newSentEvent builds a unique track event: one in four is relUntracked,
// and the user varies among 40.
func newSentEvent(msgID string, n int) *sentEvent {
	name := relTracked
	if n%4 == 3 {
		name = relUntracked
	}
	raw, err := json.Marshal(map[string]any{
		"type": "track", "event": name, "messageId": msgID,
		"userId":     "user-" + strconv.Itoa(n%40),
		"properties": map[string]any{"n": n, "note": "reliability"},
	})
	if err != nil {
		panic(err)
	}
	return &sentEvent{msgID: msgID, name: name, raw: raw}
}

func batchBody(raws []json.RawMessage) []byte {
	b, err := json.Marshal(map[string]any{"batch": raws})
	if err != nil {
		panic(err)
	}
	return b
}

// deliver posts one delivery and records each event's outcome; problem
// describes an answer that makes no sense.
func deliver(client *http.Client, ingestURL string, body []byte, events []*sentEvent) (rec deliveryRecord, problem string) {
	rec.start = time.Now()
	defer func() {
		rec.end = time.Now()
		for _, ev := range events {
			ev.out = rec.out
		}
	}()
	req, err := http.NewRequest(http.MethodPost, ingestURL, bytes.NewReader(body))
	if err != nil {
		rec.out = outOther
		return rec, err.Error()
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := client.Do(req)
	if err != nil {
		rec.out = outNoAnswer
		if errors.Is(err, syscall.ECONNREFUSED) {
			rec.out = outRefused
		}
		return rec, ""
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	switch {
	case err != nil:
		// Headers came, the body did not: no answer to rely on.
		rec.out = outNoAnswer
		return rec, ""
	case res.StatusCode == http.StatusServiceUnavailable:
		rec.out = outUnavailable
		if !bytes.Contains(b, []byte("unavailable")) {
			return rec, fmt.Sprintf("a 503 without a clean error body: %s", b)
		}
		return rec, ""
	case res.StatusCode != http.StatusOK:
		rec.out = outOther
		return rec, fmt.Sprintf("answered %d: %s", res.StatusCode, b)
	}
	rec.out = outOK
	if p := readAnswer(b, events); p != "" {
		rec.out = outOther
		return rec, p
	}
	return rec, ""
}

// readAnswer checks a 200's body: one PROCESSED entry per event, in order,
// each with a log id, which it records.
func readAnswer(body []byte, events []*sentEvent) string {
	var a receiveAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		return fmt.Sprintf("a 200 whose body does not decode (%v): %s", err, body)
	}
	if len(a.Events) != len(events) {
		return fmt.Sprintf("a 200 for %d events lists %d: %s", len(events), len(a.Events), body)
	}
	for i, e := range a.Events {
		if e.Index != i || e.ID == "" || e.Status != statusProcessed {
			return fmt.Sprintf("a 200 for fresh event %s answers %+v, want PROCESSED with an id", events[i].msgID, e)
		}
		events[i].id = e.ID
	}
	return ""
}

// logEntry is an event log entry, as the REST API returns it.
type logEntry struct {
	ID              string       `json:"id"`
	SourceID        string       `json:"sourceId"`
	Type            string       `json:"type"`
	Name            string       `json:"name"`
	UserID          string       `json:"userId"`
	IdempotencyKey  string       `json:"idempotencyKey"`
	Status          string       `json:"status"`
	Reason          string       `json:"reason"`
	OriginalEventID string       `json:"originalEventId"`
	Actions         []jsonAction `json:"actions"`
}

// logView is the whole event log of one source in relEnv, and every run of
// relWorkflow there.
type logView struct {
	byID  map[string]logEntry
	byKey map[string][]logEntry // by idempotency key (the messageId)
	runs  map[string]jsonRun
}

// readLog pages through the event log and the runs.
func (s *relServer) readLog(t *testing.T, sourceID string) logView {
	t.Helper()
	v := logView{byID: map[string]logEntry{}, byKey: map[string][]logEntry{}, runs: map[string]jsonRun{}}
	for token := ""; ; {
		q := url.Values{"sourceId": {sourceID}, "pageSize": {"1000"}, "pageToken": {token}}
		var page struct {
			SourceEvents  []logEntry `json:"sourceEvents"`
			NextPageToken string     `json:"nextPageToken"`
		}
		s.api(t, http.MethodGet, "/v1/environments/"+relEnv+"/events?"+q.Encode(), nil, &page)
		for _, e := range page.SourceEvents {
			if _, dup := v.byID[e.ID]; dup {
				t.Fatalf("the event list returns %s twice", e.ID)
			}
			v.byID[e.ID] = e
			v.byKey[e.IdempotencyKey] = append(v.byKey[e.IdempotencyKey], e)
		}
		if token = page.NextPageToken; token == "" {
			break
		}
	}
	for token := ""; ; {
		q := url.Values{"workflowKey": {relWorkflow}, "pageSize": {"1000"}, "pageToken": {token}}
		var page struct {
			WorkflowRuns  []jsonRun `json:"workflowRuns"`
			NextPageToken string    `json:"nextPageToken"`
		}
		s.api(t, http.MethodGet, "/v1/environments/"+relEnv+"/workflow-runs?"+q.Encode(), nil, &page)
		for _, r := range page.WorkflowRuns {
			if _, dup := v.runs[r.ID]; dup {
				t.Fatalf("the run list returns %s twice", r.ID)
			}
			v.runs[r.ID] = r
		}
		if token = page.NextPageToken; token == "" {
			break
		}
	}
	return v
}

// problems collects failed checks, to report them together with a count
// instead of stopping at the first of thousands.
type problems struct {
	n     int
	first []string
}

func (p *problems) add(format string, args ...any) {
	p.n++
	if len(p.first) < 10 {
		p.first = append(p.first, fmt.Sprintf(format, args...))
	}
}

func (p *problems) report(t *testing.T, what string) {
	t.Helper()
	if p.n > 0 {
		t.Errorf("%s: %d problems; the first:\n  %s", what, p.n, strings.Join(p.first, "\n  "))
	}
}

// verifyDeliveries checks events (one load's) against the log as it is,
// then redelivers every one of them, as Segment retries what it has no 200
// for (and as a duplicate delivery would for the rest):
//
//   - an event answered 200 is in the log exactly once, PROCESSED, under the
//     id the answer gave; redelivered, it is IDEMPOTENT, a duplicate of that
//     id;
//   - an event whose outcome is in absent (503, refused, …) is not in the log
//     — nothing was committed — and redelivered it is PROCESSED;
//   - any other event (no answer: killed mid-request) is in the log at most
//     once, and its redelivery agrees with what the log held.
//
// It returns how many redeliveries found an unanswered event committed.
func verifyDeliveries(t *testing.T, s *relServer, sourceID, ingestURL string, events []*sentEvent, absent ...outcome) (committedUnanswered int) {
	t.Helper()
	v := s.readLog(t, sourceID)
	var pre problems
	wantIdempotent := make(map[string]string, len(events)) // msgID → original id, or "" for PROCESSED
	for _, ev := range events {
		entries := v.byKey[ev.msgID]
		switch {
		case ev.out == outOK:
			if len(entries) != 1 {
				pre.add("event %s (answered 200, id %s) has %d log entries, want 1: %+v", ev.msgID, ev.id, len(entries), entries)
				continue
			}
			if e := entries[0]; e.ID != ev.id || e.Status != statusProcessed {
				pre.add("event %s answered 200 with id %s; the log holds %s %s", ev.msgID, ev.id, e.ID, e.Status)
			}
			wantIdempotent[ev.msgID] = ev.id
		case slices.Contains(absent, ev.out):
			if len(entries) != 0 {
				pre.add("event %s was answered %v, yet the log holds it: %+v", ev.msgID, ev.out, entries)
				continue
			}
			wantIdempotent[ev.msgID] = ""
		default:
			switch len(entries) {
			case 0:
				wantIdempotent[ev.msgID] = ""
			case 1:
				wantIdempotent[ev.msgID] = entries[0].ID
				committedUnanswered++
			default:
				pre.add("unanswered event %s has %d log entries: %+v", ev.msgID, len(entries), entries)
			}
		}
	}
	pre.report(t, "the log after the load")

	var re problems
	client := &http.Client{Timeout: 30 * time.Second}
	for chunk := range slices.Chunk(events, redeliverBatch) {
		raws := make([]json.RawMessage, len(chunk))
		for i, ev := range chunk {
			raws[i] = ev.raw
		}
		res, err := client.Post(ingestURL, "application/json", bytes.NewReader(batchBody(raws)))
		if err != nil {
			t.Fatalf("redeliver: %v", err)
		}
		b, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil || res.StatusCode != http.StatusOK {
			t.Fatalf("redeliver %d events: %d %v: %s", len(chunk), res.StatusCode, err, b)
		}
		var a receiveAnswer
		if err := json.Unmarshal(b, &a); err != nil || len(a.Events) != len(chunk) {
			t.Fatalf("redeliver %d events: answer %s (%v)", len(chunk), b, err)
		}
		for i, got := range a.Events {
			ev := chunk[i]
			original, ok := wantIdempotent[ev.msgID]
			switch {
			case !ok: // reported above
			case original != "" && (got.Status != statusIdempotent || got.Reason != "duplicate of "+original):
				re.add("event %s (%v, logged as %s) redelivered: %s %q, want IDEMPOTENT, duplicate of %s", ev.msgID, ev.out, original, got.Status, got.Reason, original)
			case original == "" && got.Status != statusProcessed:
				re.add("event %s (%v, not in the log) redelivered: %s %q, want PROCESSED", ev.msgID, ev.out, got.Status, got.Reason)
			}
		}
	}
	re.report(t, "redelivery")
	return committedUnanswered
}

// verifyLog checks the whole log after redelivery of every event the tests
// sent: each message id is executed exactly once (one PROCESSED entry, any
// other entry IDEMPOTENT and linked to it), and runs match events one to one:
// every PROCESSED relTracked event has exactly one successful
// TRIGGER_WORKFLOW action whose run exists and names the event, no other
// entry has actions, and there is no run without such an event. It returns
// what it read.
func verifyLog(t *testing.T, s *relServer, sourceID string, events []*sentEvent) logView {
	t.Helper()
	v := s.readLog(t, sourceID)
	var p problems
	sent := make(map[string]bool, len(events))
	for _, ev := range events {
		sent[ev.msgID] = true
		entries := v.byKey[ev.msgID]
		var processed []logEntry
		for _, e := range entries {
			if e.Status != statusIdempotent {
				processed = append(processed, e)
			}
		}
		if len(processed) != 1 || processed[0].Status != statusProcessed {
			p.add("event %s has %d executed entries, want exactly one PROCESSED: %+v", ev.msgID, len(processed), entries)
			continue
		}
		if ev.out == outOK && processed[0].ID != ev.id {
			p.add("event %s answered 200 as %s, but the executed entry is %s", ev.msgID, ev.id, processed[0].ID)
		}
		for _, e := range entries {
			if e.Status == statusIdempotent && (e.OriginalEventID != processed[0].ID || len(e.Actions) != 0) {
				p.add("duplicate %s of %s links to %q with %d actions, want a link to %s and none", e.ID, ev.msgID, e.OriginalEventID, len(e.Actions), processed[0].ID)
			}
		}
	}
	matched := 0
	for _, e := range v.byID {
		if !sent[e.IdempotencyKey] {
			p.add("log entry %s has idempotency key %q, which no test event had", e.ID, e.IdempotencyKey)
			continue
		}
		if e.Status != statusProcessed || e.Name != relTracked {
			if len(e.Actions) != 0 {
				p.add("%s entry %s (%s) has actions %+v, want none", e.Status, e.ID, e.Name, e.Actions)
			}
			continue
		}
		matched++
		if len(e.Actions) != 1 {
			p.add("processed %q %s has %d actions, want one TRIGGER_WORKFLOW: %+v", relTracked, e.ID, len(e.Actions), e.Actions)
			continue
		}
		a := e.Actions[0]
		if a.Type != "ACTION_TYPE_TRIGGER_WORKFLOW" || a.Status != "ACTION_STATUS_SUCCESS" || a.WorkflowRunID == "" {
			p.add("processed %q %s has action %+v, want a successful TRIGGER_WORKFLOW with a run", relTracked, e.ID, a)
			continue
		}
		run, ok := v.runs[a.WorkflowRunID]
		switch {
		case !ok:
			p.add("event %s started run %s, which is not stored", e.ID, a.WorkflowRunID)
		case run.SourceEventID != e.ID || !slices.Equal(run.Recipients, []string{e.UserID}):
			p.add("run %s of event %s (user %s) names event %s and recipients %v", run.ID, e.ID, e.UserID, run.SourceEventID, run.Recipients)
		}
	}
	for _, run := range v.runs {
		e, ok := v.byID[run.SourceEventID]
		if !ok || e.Status != statusProcessed || len(e.Actions) != 1 || e.Actions[0].WorkflowRunID != run.ID {
			p.add("run %s names event %q, which does not name it back", run.ID, run.SourceEventID)
		}
	}
	if len(v.runs) != matched {
		p.add("%d runs for %d processed %q events, want as many", len(v.runs), matched, relTracked)
	}
	p.report(t, "the log after redelivery")
	return v
}

// getRuns fetches runs one by one, as a consumer would look one up.
func getRuns(t *testing.T, s *relServer, ids []string) {
	t.Helper()
	for _, id := range ids {
		var run jsonRun
		status, body := s.apiStatus(t, http.MethodGet, "/v1/environments/"+relEnv+"/workflow-runs/"+id, nil)
		if status != http.StatusOK || json.Unmarshal(body, &run) != nil || run.ID != id {
			t.Errorf("GET workflow-runs/%s = %d: %s", id, status, body)
		}
	}
}

// runIDsOf returns the ids of the runs that events started, read from the
// log.
func runIDsOf(v logView, events []*sentEvent) []string {
	var ids []string
	for _, ev := range events {
		for _, e := range v.byKey[ev.msgID] {
			for _, a := range e.Actions {
				if a.WorkflowRunID != "" {
					ids = append(ids, a.WorkflowRunID)
				}
			}
		}
	}
	return ids
}

// TestCrashSafety kills hark with SIGKILL in the middle of a load, three
// times at different points, restarting it on the same data dir each time:
// the store opens, every event answered 200 is in the log and a duplicate
// when sent again, and runs match processed events one to one.
func TestCrashSafety(t *testing.T) {
	t.Parallel()
	dataDir := filepath.Join(t.TempDir(), "data")
	s := startRelServer(t, dataDir)
	sourceID := setupSource(t, s)

	var all []*sentEvent
	// Kill points, after the load started: early, middle, late. The odd
	// milliseconds keep them off any round period of the batcher.
	for cycle, after := range []time.Duration{303 * time.Millisecond, 807 * time.Millisecond, 1511 * time.Millisecond} {
		ingest := s.ingestURL(t, sourceID)
		plugins := childPIDs(t, s.pid())
		ctx, cancel := context.WithTimeout(t.Context(), after+10*time.Second)
		l := startLoad(t, ctx, ingest, loadOptions{senders: 8, maxRequests: 1500, prefix: fmt.Sprintf("crash%d", cycle)})
		time.Sleep(after)
		killedAt := time.Now()
		s.kill(t)
		l.wait()
		cancel()
		reapPlugins(t, plugins, "a SIGKILLed hark")
		t.Logf("cycle %d: SIGKILL after %v; %s; %d requests in flight at the kill", cycle, after, l, l.inFlightAt(killedAt))
		l.problems.report(t, fmt.Sprintf("cycle %d: the load's answers", cycle))
		if l.ok.Load() == 0 {
			t.Fatalf("cycle %d: no delivery was answered 200 before the kill; stderr:\n%s", cycle, s.p.stderr)
		}
		all = append(all, l.events...)

		// The restart is the check that the data dir opens cleanly.
		s = startRelServer(t, dataDir)
		var second *harkProc
		if cycle == 0 {
			second = launch(t, dataDir, "HARK_ADMIN_TOKEN="+relToken)
		}
		ingest = s.ingestURL(t, sourceID)
		unanswered := verifyDeliveries(t, s, sourceID, ingest, l.events, outRefused, outUnavailable)
		v := verifyLog(t, s, sourceID, all)
		started := runIDsOf(v, l.events)
		getRuns(t, s, started)
		t.Logf("cycle %d: after restart, %d events of unanswered deliveries were committed; %d runs started by this cycle's events, each found by GET; %d events sent so far, %d runs in all",
			cycle, unanswered, len(started), len(all), len(v.runs))

		if second != nil {
			// A second hark serve on a data dir in use refuses to start.
			err := second.wait(t)
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() == 0 {
				t.Errorf("second hark serve on the data dir in use: %v, want a non-zero exit", err)
			}
			if !strings.Contains(second.stderr.String(), "in use") {
				t.Errorf("second hark serve's stderr does not say the data dir is in use:\n%s", second.stderr)
			}
		}
		if t.Failed() {
			t.Logf("hark stderr:\n%s", s.p.stderr)
			return
		}
	}
	plugins := childPIDs(t, s.pid())
	if err := s.p.stop(t); err != nil {
		t.Errorf("hark after SIGTERM: %v, want exit status 0; stderr:\n%s", err, s.p.stderr)
	}
	reapPlugins(t, plugins, "hark's graceful shutdown")
}

// segmentPlugin returns the pid of the Segment plugin process hark (pid)
// runs, `<hark> plugin segment`, or 0.
func segmentPlugin(t *testing.T, pid int) int {
	t.Helper()
	for _, child := range childPIDs(t, pid) {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(child) + "/cmdline")
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if len(args) == 3 && filepath.Base(args[0]) == filepath.Base(harkBin) && args[1] == "plugin" && args[2] == "segment" {
			return child
		}
	}
	return 0
}

// segmentServing reports whether the API lists the Segment source type as
// serving.
func segmentServing(t *testing.T, s *relServer) bool {
	t.Helper()
	var types struct {
		SourceTypes []struct {
			Type   string `json:"type"`
			Health string `json:"health"`
		} `json:"sourceTypes"`
	}
	s.api(t, http.MethodGet, "/v1/source-types", nil, &types)
	for _, st := range types.SourceTypes {
		if st.Type == "segment" {
			return st.Health == "SOURCE_TYPE_HEALTH_SERVING"
		}
	}
	return false
}

// waitFor polls cond every 10 ms for up to d.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// TestPluginKillUnderLoad SIGKILLs the Segment plugin process three times
// during a load: deliveries in the outage are answered 503 and commit
// nothing, the host restarts the plugin, and every event answered 200 is
// logged exactly once.
func TestPluginKillUnderLoad(t *testing.T) {
	t.Parallel()
	s := startRelServer(t, filepath.Join(t.TempDir(), "data"))
	sourceID := setupSource(t, s)
	ingest := s.ingestURL(t, sourceID)

	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	l := startLoad(t, ctx, ingest, loadOptions{senders: 6, maxRequests: 2000, pause: time.Millisecond, prefix: "pk"})
	if !waitFor(10*time.Second, func() bool { return l.ok.Load() >= 50 }) {
		t.Fatalf("the load got no 200s to start with: %s", l)
	}
	if n := l.unavailable.Load(); n > 0 {
		t.Errorf("%d deliveries were answered 503 before any plugin was killed", n)
	}

	// Three kills; if none of them shows a 503 (a restart faster than the
	// senders), up to three more.
	const kills, extraKills = 3, 3
	var killed []int
	for i := 0; i < kills+extraKills && (i < kills || l.unavailable.Load() == 0); i++ {
		time.Sleep(150 * time.Millisecond)
		pid := segmentPlugin(t, s.pid())
		if pid == 0 {
			t.Fatalf("kill %d: hark (pid %d) runs no Segment plugin process", i, s.pid())
		}
		before, okBefore := l.unavailable.Load(), l.ok.Load()
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatalf("kill %d: SIGKILL plugin %d: %v", i, pid, err)
		}
		killed = append(killed, pid)
		var next int
		if !waitFor(20*time.Second, func() bool {
			next = segmentPlugin(t, s.pid())
			return next != 0 && next != pid && segmentServing(t, s)
		}) {
			t.Fatalf("kill %d: the host did not restart the Segment plugin (killed pid %d) within 20s; stderr:\n%s", i, pid, s.p.stderr)
		}
		okAfter := l.ok.Load()
		if !waitFor(10*time.Second, func() bool { return l.ok.Load() > okAfter }) {
			t.Fatalf("kill %d: no delivery answered 200 after the plugin came back (pid %d): %s", i, next, l)
		}
		t.Logf("kill %d: plugin %d → %d; %d 503s and %d 200s during the outage", i, pid, next, l.unavailable.Load()-before, okAfter-okBefore)
	}
	time.Sleep(100 * time.Millisecond)
	l.wait()
	t.Logf("load: %s; plugin processes killed: %v", l, killed)
	l.problems.report(t, "the load's answers")
	if n := l.refused.Load() + l.noAnswer.Load(); n > 0 {
		t.Errorf("%d deliveries got no HTTP answer, though hark itself kept running", n)
	}
	if l.unavailable.Load() == 0 {
		t.Errorf("no delivery was answered 503 across %d plugin kills under load: the outage was never observed", len(killed))
	}

	verifyDeliveries(t, s, sourceID, ingest, l.events, outUnavailable, outRefused, outOther)
	v := verifyLog(t, s, sourceID, l.events)
	t.Logf("%d events sent, %d runs", len(l.events), len(v.runs))

	plugins := childPIDs(t, s.pid())
	if err := s.p.stop(t); err != nil {
		t.Errorf("hark after SIGTERM: %v, want exit status 0; stderr:\n%s", err, s.p.stderr)
	}
	reapPlugins(t, plugins, "hark's graceful shutdown")
}

// slowDelivery is a delivery sent by hand over its own connection: headers
// and half the body first, the rest when the test says, so that it is
// certainly in flight when hark is told to stop.
type slowDelivery struct {
	conn   net.Conn
	rest   []byte
	events []*sentEvent
}

func startSlowDelivery(t *testing.T, ingestURL string, events []*sentEvent) *slowDelivery {
	t.Helper()
	u, err := url.Parse(ingestURL)
	if err != nil {
		t.Fatal(err)
	}
	raws := make([]json.RawMessage, len(events))
	for i, ev := range events {
		raws[i] = ev.raw
	}
	body := batchBody(raws)
	conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", u.Host, err)
	}
	t.Cleanup(func() { conn.Close() })
	head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", u.RequestURI(), u.Host, len(body))
	half := len(body) / 2
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := conn.Write(append([]byte(head), body[:half]...)); err != nil {
		t.Fatalf("write the first half of a slow delivery: %v", err)
	}
	return &slowDelivery{conn: conn, rest: body[half:], events: events}
}

// finish sends the rest of the body and reads the answer.
func (d *slowDelivery) finish(t *testing.T) {
	t.Helper()
	if _, err := d.conn.Write(d.rest); err != nil {
		t.Errorf("write the rest of a slow delivery after SIGTERM: %v", err)
		return
	}
	res, err := http.ReadResponse(bufio.NewReader(d.conn), nil)
	if err != nil {
		t.Errorf("a delivery in flight at SIGTERM got no answer: %v", err)
		for _, ev := range d.events {
			ev.out = outNoAnswer
		}
		return
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Errorf("a delivery in flight at SIGTERM was answered %d, want 200: %s", res.StatusCode, b)
		return
	}
	if p := readAnswer(b, d.events); p != "" {
		t.Errorf("a delivery in flight at SIGTERM: %s", p)
		return
	}
	for _, ev := range d.events {
		ev.out = outOK
	}
}

// TestGracefulShutdown sends SIGTERM to hark under a slow load: deliveries
// in flight get their real answer, later ones a clean 503 or no connection
// at all, hark exits 0, and after a restart every event answered 200 is in
// the log — and none that was not answered.
func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	dataDir := filepath.Join(t.TempDir(), "data")
	s := startRelServer(t, dataDir)
	sourceID := setupSource(t, s)
	ingest := s.ingestURL(t, sourceID)

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	l := startLoad(t, ctx, ingest, loadOptions{senders: 3, maxRequests: 500, pause: 5 * time.Millisecond, prefix: "gs"})
	if !waitFor(10*time.Second, func() bool { return l.ok.Load() >= 20 }) {
		t.Fatalf("the load got no 200s to start with: %s", l)
	}
	var slowEvents []*sentEvent
	var slow []*slowDelivery
	for i := range 2 {
		events := make([]*sentEvent, 3)
		for k := range events {
			events[k] = newSentEvent(fmt.Sprintf("gs-slow-%d-%d", i, k), i+k)
		}
		slowEvents = append(slowEvents, events...)
		slow = append(slow, startSlowDelivery(t, ingest, events))
	}
	// Let hark read the slow deliveries' headers: they are then in flight.
	time.Sleep(200 * time.Millisecond)

	plugins := childPIDs(t, s.pid())
	termAt := time.Now()
	if err := s.p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	// Shutdown has begun once hark stops listening; the slow deliveries
	// are still unfinished then.
	addr := strings.TrimPrefix(s.base, "http://")
	if !waitFor(10*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return false
		}
		return errors.Is(err, syscall.ECONNREFUSED)
	}) {
		t.Fatalf("hark still accepts connections 10s after SIGTERM")
	}
	time.Sleep(100 * time.Millisecond)
	for _, d := range slow {
		d.finish(t)
	}

	var exitErr error
	select {
	case <-s.p.exited:
		exitErr = s.p.err
	case <-time.After(30 * time.Second):
		t.Fatalf("hark did not exit within 30s of SIGTERM; stderr:\n%s", s.p.stderr)
	}
	if exitErr != nil {
		t.Errorf("hark after SIGTERM: %v, want exit status 0; stderr:\n%s", exitErr, s.p.stderr)
	}
	exitedIn := time.Since(termAt)
	l.wait()
	reapPlugins(t, plugins, "hark's graceful shutdown")
	t.Logf("SIGTERM: exited after %v; load %s; %d load requests in flight at SIGTERM, plus %d slow ones", exitedIn.Round(time.Millisecond), l, l.inFlightAt(termAt), len(slow))
	l.problems.report(t, "the load's answers")

	// Restart: every 200 is there; nothing without an answer is.
	s = startRelServer(t, dataDir)
	ingest = s.ingestURL(t, sourceID)
	events := append(l.events, slowEvents...)
	verifyDeliveries(t, s, sourceID, ingest, events, outUnavailable, outRefused, outNoAnswer, outOther)
	v := verifyLog(t, s, sourceID, events)
	t.Logf("%d events sent, %d runs", len(events), len(v.runs))

	plugins = childPIDs(t, s.pid())
	if err := s.p.stop(t); err != nil {
		t.Errorf("hark after SIGTERM: %v, want exit status 0; stderr:\n%s", err, s.p.stderr)
	}
	reapPlugins(t, plugins, "hark's graceful shutdown")
}
