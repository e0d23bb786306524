package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// startCLIServerWith is startCLIServer with extra `hark serve` flags.
func startCLIServerWith(t *testing.T, flags ...string) *cliServer {
	t.Helper()
	dataDir := filepath.Join(t.TempDir(), "data")
	p := launchWith(t, dataDir, flags, "HARK_ADMIN_TOKEN=test-admin-token")
	base, _ := p.waitListening(t)
	return &cliServer{
		base: base, token: "test-admin-token", dataDir: dataDir,
		env:  []string{"HARK_SERVER=" + base, "HARK_TOKEN=test-admin-token"},
		proc: p,
	}
}

// receivedWebhook is one request a webhookReceiver verified.
type receivedWebhook struct {
	ID    string // webhook-id
	Type  string // the body's type: workflow_run.created, ping, …
	RunID string // data.id of a run change
	Path  string
	// Seen is how many requests with this webhook-id came before it.
	Seen int
	At   time.Time
}

// webhookReceiver is a webhook destination's receiver on loopback, as a user
// would write one: it verifies every request with the official Standard
// Webhooks library and records what it got. A request no trusted secret
// verifies is a problem (and answered 401). What it answers is up to
// answer; the default is 500 on /fail and 200 elsewhere.
type webhookReceiver struct {
	srv    *httptest.Server
	answer func(w http.ResponseWriter, r *http.Request, got receivedWebhook)

	mu       sync.Mutex
	trusted  []*standardwebhooks.Webhook
	got      []receivedWebhook
	seen     map[string]int // webhook-id → requests
	inFlight map[string]int // webhook-id → requests being answered
	problems problems
}

// startReceiver starts a receiver; answer nil is the default answers. It
// is closed when the test ends.
func startReceiver(t *testing.T, answer func(w http.ResponseWriter, r *http.Request, got receivedWebhook)) *webhookReceiver {
	t.Helper()
	rcv := &webhookReceiver{answer: answer, seen: map[string]int{}, inFlight: map[string]int{}}
	if rcv.answer == nil {
		rcv.answer = defaultAnswer
	}
	rcv.srv = httptest.NewServer(http.HandlerFunc(rcv.serveHTTP))
	t.Cleanup(rcv.srv.Close)
	return rcv
}

// receiverRefusal is the start of what the default receiver answers on
// /fail, which attempts keep.
const receiverRefusal = "receiver says no"

func defaultAnswer(w http.ResponseWriter, r *http.Request, _ receivedWebhook) {
	if r.URL.Path == "/fail" {
		http.Error(w, receiverRefusal+": this endpoint always fails", http.StatusInternalServerError)
		return
	}
	fmt.Fprintln(w, "ok")
}

func (rcv *webhookReceiver) url(path string) string { return rcv.srv.URL + path }

// trust makes secret (whsec_…) the only one the receiver accepts.
func (rcv *webhookReceiver) trust(t *testing.T, secret string) {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatalf("standardwebhooks.NewWebhook(%q): %v", secret, err)
	}
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	rcv.trusted = []*standardwebhooks.Webhook{wh}
}

func (rcv *webhookReceiver) serveHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return // the sender went away
	}
	rcv.mu.Lock()
	verified := false
	for _, wh := range rcv.trusted {
		if wh.Verify(body, r.Header) == nil {
			verified = true
			break
		}
	}
	var msg struct {
		Type string `json:"type"`
		Data struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	decodeErr := json.Unmarshal(body, &msg)
	id := r.Header.Get(standardwebhooks.HeaderWebhookID)
	switch {
	case !verified:
		rcv.problems.add("%s %s with webhook-id %q: the signature %q does not verify", r.Method, r.URL.Path, id, r.Header.Get(standardwebhooks.HeaderWebhookSignature))
	case decodeErr != nil || msg.Type == "":
		rcv.problems.add("webhook-id %q: the body is not a Standard Webhooks message (%v): %s", id, decodeErr, body)
		verified = false
	case strings.HasPrefix(msg.Type, "workflow_run.") && !strings.HasPrefix(msg.Data.ID, "run_"):
		rcv.problems.add("webhook-id %q: a %s without a run id: %s", id, msg.Type, body)
		verified = false
	}
	if !verified {
		rcv.mu.Unlock()
		http.Error(w, "signature does not verify", http.StatusUnauthorized)
		return
	}
	got := receivedWebhook{ID: id, Type: msg.Type, Path: r.URL.Path, Seen: rcv.seen[id], At: time.Now()}
	if msg.Type != "ping" {
		got.RunID = msg.Data.ID
	}
	rcv.seen[id]++
	rcv.got = append(rcv.got, got)
	rcv.inFlight[id]++
	rcv.mu.Unlock()
	defer func() {
		rcv.mu.Lock()
		if rcv.inFlight[id]--; rcv.inFlight[id] == 0 {
			delete(rcv.inFlight, id)
		}
		rcv.mu.Unlock()
	}()
	rcv.answer(w, r, got)
}

// received returns the verified requests so far that keep says to keep.
func (rcv *webhookReceiver) received(keep func(receivedWebhook) bool) []receivedWebhook {
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	var out []receivedWebhook
	for _, g := range rcv.got {
		if keep == nil || keep(g) {
			out = append(out, g)
		}
	}
	return out
}

// inFlightIDs returns the webhook-ids of the requests being answered.
func (rcv *webhookReceiver) inFlightIDs() []string {
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	return slices.Sorted(maps.Keys(rcv.inFlight))
}

// report fails the test if any request did not verify.
func (rcv *webhookReceiver) report(t *testing.T) {
	t.Helper()
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	rcv.problems.report(t, "the webhook receiver")
}

// The JSON shapes of destinations and deliveries, as protojson writes them.
type (
	jsonDestination struct {
		ID            string            `json:"id"`
		Name          string            `json:"name"`
		Type          string            `json:"type"`
		URL           string            `json:"url"`
		WorkflowKeys  []string          `json:"workflowKeys"`
		Settings      map[string]string `json:"settings"`
		Status        string            `json:"status"`
		SigningSecret string            `json:"signingSecret"`
	}
	jsonAttempt struct {
		StatusCode   int    `json:"statusCode"`
		Error        string `json:"error"`
		ResponseBody string `json:"responseBody"`
	}
	jsonDelivery struct {
		ID            string        `json:"id"`
		DestinationID string        `json:"destinationId"`
		WorkflowRunID string        `json:"workflowRunId"`
		EventType     string        `json:"eventType"`
		Status        string        `json:"status"`
		AttemptCount  int           `json:"attemptCount"`
		Attempts      []jsonAttempt `json:"attempts"`
		NextAttemptAt *string       `json:"nextAttemptAt"`
	}
	jsonDeliveries struct {
		Deliveries    []jsonDelivery `json:"deliveries"`
		NextPageToken string         `json:"nextPageToken"`
	}
)

// Delivery statuses, as protojson spells them.
const (
	deliveryPending   = "DELIVERY_STATUS_PENDING"
	deliverySucceeded = "DELIVERY_STATUS_SUCCEEDED"
	deliveryFailed    = "DELIVERY_STATUS_FAILED"
)

// deliveryWait bounds waiting for the outbox to send: a deadline against a
// hang, not a speed goal.
const deliveryWait = 60 * time.Second

// waitDeliveries polls `hark deliveries list -o json` with args until cond
// holds of the list, and returns it.
func waitDeliveries(t *testing.T, env []string, what string, cond func([]jsonDelivery) bool, args ...string) []jsonDelivery {
	t.Helper()
	deadline := time.Now().Add(deliveryWait)
	for {
		var list jsonDeliveries
		harkJSON(t, env, &list, append([]string{"deliveries", "list", "--env", "development"}, args...)...)
		if cond(list.Deliveries) {
			return list.Deliveries
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v; deliveries list %s: %+v", what, deliveryWait, strings.Join(args, " "), list.Deliveries)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// linesWith counts the lines of out that hold every one of wants.
func linesWith(out string, wants ...string) int {
	n := 0
	for line := range strings.SplitSeq(out, "\n") {
		if !slices.ContainsFunc(wants, func(w string) bool { return !strings.Contains(line, w) }) {
			n++
		}
	}
	return n
}

var (
	signingSecretLine = regexp.MustCompile(`(?m)^Signing secret: (whsec_\S+)$`)
	idLine            = regexp.MustCompile(`(?m)^ID:\s+(\S+)$`)
	queuedLine        = regexp.MustCompile(`^Queued (\d+) deliveries to `)
)

// sendSignUp sends a "Signed Up" track of user through `hark send` and
// returns the run it started.
func sendSignUp(t *testing.T, env []string, src, user, msgID string) string {
	t.Helper()
	file := writeFile(t, "event.json", fmt.Sprintf(`{"type":"track","event":"Signed Up","userId":%q,"messageId":%q}`, user, msgID))
	wantContains(t, "send", mustHark(t, env, "send", "--env", "development", "--source", src, file), "processed")
	var runs struct {
		WorkflowRuns []jsonRun `json:"workflowRuns"`
	}
	harkJSON(t, env, &runs, "runs", "list", "--env", "development", "--workflow", "welcome", "--limit", "1")
	if len(runs.WorkflowRuns) != 1 || !slices.Equal(runs.WorkflowRuns[0].Recipients, []string{user}) {
		t.Fatalf("after sending %s's sign-up, the newest run is %+v", user, runs.WorkflowRuns)
	}
	return runs.WorkflowRuns[0].ID
}

// TestCLIDestinations is the destinations and deliveries CLI against a real
// server and a receiver that verifies signatures: create (the secret shown
// once), list, get, test, pause and resume (held deliveries sent), update,
// a delivery that fails its schedule and is retried, rotate-secret, replay,
// delete.
func TestCLIDestinations(t *testing.T) {
	t.Parallel()
	// Three quick attempts, so a failing delivery is FAILED at once.
	s := startCLIServerWith(t, "--allow-private-destinations", "--delivery-retry-schedule", "0s,50ms,50ms")
	env := s.env
	rcv := startReceiver(t, nil)

	var src jsonSource
	harkJSON(t, env, &src, "sources", "create", "--type", "segment", "--name", "App")
	mustHark(t, env, "workflows", "create", "welcome")
	mustHark(t, env, "workflows", "create", "digest")
	mustHark(t, env, "triggers", "create", "--env", "development", "--workflow", "welcome", "--source", src.ID,
		"--event", "Signed Up", "--recipients", `{"id": userId}`)

	// create: the signing secret, once, with the warning.
	out := mustHark(t, env, "destinations", "create", "--env", "development", "--type", "webhook", "--name", "Hooks",
		"--url", rcv.url("/ok"), "--workflow", "welcome")
	wantContains(t, "destinations create", out, "shown only now")
	wantLine(t, out, "Type:", "webhook")
	m := signingSecretLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("destinations create prints no signing secret line:\n%s", out)
	}
	rcv.trust(t, m[1])
	hooks := idLine.FindStringSubmatch(out)[1]
	if !strings.HasPrefix(hooks, "dst_") {
		t.Fatalf("destinations create: id %q", hooks)
	}
	// -o json prints the destination itself, secret included.
	var paused jsonDestination
	harkJSON(t, env, &paused, "destinations", "create", "--env", "development", "--type", "webhook", "--name", "Later",
		"--url", rcv.url("/later"), "--paused")
	if !strings.HasPrefix(paused.SigningSecret, "whsec_") || paused.Status != "DESTINATION_STATUS_PAUSED" || paused.Type != "webhook" {
		t.Fatalf("destinations create --paused -o json: %+v, want a paused webhook with its signing secret", paused)
	}
	var knock jsonDestination
	harkJSON(t, env, &knock, "destinations", "create", "--env", "development", "--type", "knock", "--name", "Knock",
		"--set", "api_key=sk_test_123", "--workflow", "digest")
	if knock.Settings["api_key"] != "********" || knock.SigningSecret != "" || !slices.Equal(knock.WorkflowKeys, []string{"digest"}) {
		t.Fatalf("knock destination -o json: %+v, want api_key masked, no signing secret, workflow digest", knock)
	}

	// list and get.
	list := mustHark(t, env, "destinations", "list", "--env", "development")
	wantLine(t, list, "ID", "NAME", "TYPE", "STATUS", "URL", "WORKFLOWS")
	wantLine(t, list, hooks, "Hooks", "webhook", "active", rcv.url("/ok"), "welcome")
	wantLine(t, list, paused.ID, "Later", "webhook", "paused", "(all)")
	wantLine(t, list, knock.ID, "Knock", "knock", "active", "https://api.knock.app", "digest")
	got := mustHark(t, env, "destinations", "get", hooks, "--env", "development")
	wantLine(t, got, "Workflows:", "welcome")
	wantLine(t, got, "Status:", "active")
	if strings.Contains(got, "whsec_") {
		t.Fatalf("destinations get shows the signing secret:\n%s", got)
	}
	wantLine(t, mustHark(t, env, "destinations", "get", knock.ID, "--env", "development"), "Setting api_key:", "********")

	// test: a signed ping, and the attempt.
	out = mustHark(t, env, "destinations", "test", hooks, "--env", "development")
	wantLine(t, out, "Status code:", "200")
	wantLine(t, out, "Answer:", "ok")
	if pings := rcv.received(func(g receivedWebhook) bool { return g.Type == "ping" }); len(pings) != 1 {
		t.Fatalf("after destinations test the receiver got %d pings, want 1: %+v", len(pings), pings)
	}

	// pause: the run's delivery is held; resume: it is sent.
	wantContains(t, "destinations pause", mustHark(t, env, "destinations", "pause", hooks, "--env", "development"), "is paused")
	run1 := sendSignUp(t, env, src.ID, "u1", "m-1")
	var held jsonDeliveries
	harkJSON(t, env, &held, "deliveries", "list", "--env", "development", "--run", run1, "--destination", hooks)
	if len(held.Deliveries) != 1 || held.Deliveries[0].DestinationID != hooks || held.Deliveries[0].Status != deliveryPending || held.Deliveries[0].NextAttemptAt != nil {
		t.Fatalf("the run's deliveries while Hooks is paused: %+v, want one to Hooks, pending with no next attempt", held.Deliveries)
	}
	wantLine(t, mustHark(t, env, "deliveries", "list", "--env", "development", "--destination", hooks), held.Deliveries[0].ID, "pending", "held")
	wantContains(t, "destinations resume", mustHark(t, env, "destinations", "resume", hooks, "--env", "development"), "is active")
	waitDeliveries(t, env, "the held delivery is sent once Hooks resumes", func(ds []jsonDelivery) bool {
		return len(ds) == 1 && ds[0].Status == deliverySucceeded
	}, "--run", run1, "--destination", hooks)
	first := held.Deliveries[0].ID
	if got := rcv.received(func(g receivedWebhook) bool { return g.RunID == run1 }); len(got) != 1 || got[0].ID != first || got[0].Type != "workflow_run.created" {
		t.Fatalf("the receiver got %+v for %s, want one workflow_run.created with webhook-id %s", got, run1, first)
	}
	out = mustHark(t, env, "deliveries", "get", first, "--env", "development")
	wantLine(t, out, "Status:", "succeeded")
	wantLine(t, out, "STARTED", "CODE", "DURATION", "ERROR", "ANSWER")
	wantLine(t, out, "200", "ok")
	// Only a failed delivery can be retried.
	wantContains(t, "deliveries retry of a succeeded delivery", wantFail(t, env, "deliveries", "retry", first, "--env", "development"), "only a FAILED delivery")

	// update: a URL that fails; the next run's delivery uses up its three
	// attempts and is FAILED, each attempt kept with the answer.
	out = mustHark(t, env, "destinations", "update", hooks, "--env", "development", "--url", rcv.url("/fail"), "--name", "Hooks v2")
	wantLine(t, out, "Name:", "Hooks v2")
	wantLine(t, out, "URL:", rcv.url("/fail"))
	run2 := sendSignUp(t, env, src.ID, "u2", "m-2")
	failed := waitDeliveries(t, env, "the delivery to a failing URL is FAILED", func(ds []jsonDelivery) bool {
		return len(ds) == 1 && ds[0].Status == deliveryFailed
	}, "--run", run2, "--destination", hooks)[0]
	wantLine(t, mustHark(t, env, "deliveries", "list", "--env", "development", "--status", "failed"), failed.ID, "failed", "3")
	out = mustHark(t, env, "deliveries", "get", failed.ID, "--env", "development")
	wantLine(t, out, "Status:", "failed")
	if n := linesWith(out, "500", receiverRefusal); n != 3 {
		t.Fatalf("deliveries get of the failed delivery shows %d attempts answered 500 with the answer's start %q, want 3:\n%s", n, receiverRefusal, out)
	}
	var detail jsonDelivery
	harkJSON(t, env, &detail, "deliveries", "get", failed.ID, "--env", "development")
	if len(detail.Attempts) != 3 || detail.Attempts[2].StatusCode != 500 || !strings.HasPrefix(detail.Attempts[2].ResponseBody, receiverRefusal) {
		t.Fatalf("deliveries get -o json: %+v, want three attempts answered 500", detail)
	}
	// retry, once the URL is fixed: the same delivery, the same webhook-id.
	mustHark(t, env, "destinations", "update", hooks, "--env", "development", "--url", rcv.url("/ok"))
	wantContains(t, "deliveries retry", mustHark(t, env, "deliveries", "retry", failed.ID, "--env", "development"), "pending again")
	waitDeliveries(t, env, "the retried delivery succeeds", func(ds []jsonDelivery) bool {
		return len(ds) == 1 && ds[0].Status == deliverySucceeded
	}, "--run", run2, "--destination", hooks)
	ids := map[string]int{}
	for _, g := range rcv.received(func(g receivedWebhook) bool { return g.RunID == run2 }) {
		ids[g.ID]++
	}
	if len(ids) != 1 || ids[failed.ID] != 4 {
		t.Fatalf("the receiver got %s with webhook-ids %v, want %s four times (three failures and the retry)", run2, ids, failed.ID)
	}

	// rotate-secret: a new secret, once; a receiver that knows only it
	// verifies the next ping.
	out = mustHark(t, env, "destinations", "rotate-secret", hooks, "--env", "development")
	wantContains(t, "destinations rotate-secret", out, "shown only now", "previous secret keeps signing")
	rotated := signingSecretLine.FindStringSubmatch(out)
	if rotated == nil || rotated[1] == m[1] {
		t.Fatalf("destinations rotate-secret prints no new secret:\n%s", out)
	}
	rcv.trust(t, rotated[1])
	wantLine(t, mustHark(t, env, "destinations", "test", hooks, "--env", "development"), "Status code:", "200")
	var again jsonDestination
	harkJSON(t, env, &again, "destinations", "rotate-secret", hooks, "--env", "development")
	if !strings.HasPrefix(again.SigningSecret, "whsec_") || again.SigningSecret == rotated[1] || again.ID != hooks {
		t.Fatalf("destinations rotate-secret -o json: %+v, want the destination with a new secret", again)
	}
	rcv.trust(t, again.SigningSecret)

	// replay: both runs again, as new deliveries with new webhook-ids.
	out = mustHark(t, env, "destinations", "replay", hooks, "--env", "development", "--since", "1h")
	if q := queuedLine.FindStringSubmatch(out); q == nil || q[1] != "2" {
		t.Fatalf("destinations replay --since 1h: %q, want 2 deliveries queued", out)
	}
	waitDeliveries(t, env, "the replayed deliveries are sent", func(ds []jsonDelivery) bool {
		done := 0
		for _, d := range ds {
			if d.Status == deliverySucceeded {
				done++
			}
		}
		return len(ds) == 4 && done == 4
	}, "--destination", hooks)
	for _, run := range []string{run1, run2} {
		ids := map[string]bool{}
		for _, g := range rcv.received(func(g receivedWebhook) bool { return g.RunID == run }) {
			ids[g.ID] = true
		}
		if len(ids) != 2 {
			t.Errorf("after the replay the receiver got %s under webhook-ids %v, want the original and a new one", run, ids)
		}
	}
	// A range given in RFC 3339 that ends before the runs: nothing.
	hourAgo := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	var replayed struct {
		QueuedCount int `json:"queuedCount"`
	}
	harkJSON(t, env, &replayed, "destinations", "replay", hooks, "--env", "development", "--since", hourAgo, "--until", "30m")
	if replayed.QueuedCount != 0 {
		t.Fatalf("replay from an hour ago to 30 minutes ago queued %d, want 0", replayed.QueuedCount)
	}

	// delete.
	wantContains(t, "destinations delete", mustHark(t, env, "destinations", "delete", paused.ID, "--env", "development"), "Deleted destination "+paused.ID)
	wantContains(t, "destinations get of a deleted one", wantFail(t, env, "destinations", "get", paused.ID, "--env", "development"), "not found")
	if l := mustHark(t, env, "destinations", "list", "--env", "development"); strings.Contains(l, paused.ID) {
		t.Fatalf("destinations list after delete still lists %s:\n%s", paused.ID, l)
	}
	rcv.report(t)
}

// TestCLIDestinationErrors checks what a user sees for bad input: exit 1
// and the field at fault, and nothing created.
func TestCLIDestinationErrors(t *testing.T) {
	t.Parallel()
	s := startCLIServer(t) // without --allow-private-destinations
	env := s.env
	mustHark(t, env, "workflows", "create", "welcome")
	create := []string{"destinations", "create", "--env", "development", "--name", "Bad"}
	cases := []struct {
		name  string
		args  []string
		wants []string
	}{
		{"unknown type", []string{"--type", "pigeon"}, []string{"type:", `"pigeon" is not a destination type`, "webhook"}},
		{"no url", []string{"--type", "webhook"}, []string{"url:", "required"}},
		{"not http", []string{"--type", "webhook", "--url", "ftp://example.com/x"}, []string{"url:", "http"}},
		{"credentials", []string{"--type", "webhook", "--url", "https://user:pw@example.com/x"}, []string{"url:", "credentials"}},
		{"private", []string{"--type", "webhook", "--url", "http://127.0.0.1:9/x"}, []string{"url:"}},
		{"unknown workflow", []string{"--type", "webhook", "--url", "https://example.com/x", "--workflow", "nope"}, []string{"workflowKeys[0]", "nope"}},
		{"missing api key", []string{"--type", "knock"}, []string{"settings.api_key", "required"}},
		{"bad setting", []string{"--type", "knock", "--set", "api_key"}, []string{"--set", "key=value"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := runHark(t, env, append(create, c.args...)...)
			if res.code != 1 {
				t.Fatalf("want exit 1; %s", res)
			}
			wantContains(t, "stderr", res.stderr, append([]string{"hark: "}, c.wants...)...)
		})
	}
	var list struct {
		Destinations []jsonDestination `json:"destinations"`
	}
	harkJSON(t, env, &list, "destinations", "list", "--env", "development")
	if len(list.Destinations) != 0 {
		t.Fatalf("refused creates left destinations behind: %+v", list.Destinations)
	}

	// The command line itself.
	wantContains(t, "stderr", wantFail(t, env, "destinations", "create", "--env", "development", "--name", "X"), `required flag(s) "type" not set`)
	wantContains(t, "stderr", wantFail(t, env, "destinations", "replay", "dst_x", "--env", "development", "--since", "yesterday"), `--since "yesterday"`, "RFC 3339")
	wantContains(t, "stderr", wantFail(t, env, "destinations", "replay", "dst_x", "--env", "development", "--since", "1h", "--until", "2h"), "must be before --until")
	wantContains(t, "stderr", wantFail(t, env, "destinations", "replay", "dst_x", "--env", "development"), `required flag(s) "since" not set`)
	wantContains(t, "stderr", wantFail(t, env, "destinations", "update", "dst_x", "--env", "development"), "nothing to change")
	wantContains(t, "stderr", wantFail(t, env, "destinations", "update", "dst_x", "--env", "development", "--workflow", "a", "--all-workflows"), "not both")
	wantContains(t, "stderr", wantFail(t, env, "deliveries", "list", "--env", "development", "--status", "done"), "pending", "succeeded", "failed")
	wantContains(t, "stderr", wantFail(t, env, "deliveries", "get", "dlv_nope", "--env", "development"), "not found")
	wantContains(t, "stderr", wantFail(t, env, "destinations", "pause", "dst_nope", "--env", "development"), "not found")
}

// TestParseWhen checks the times --since and --until take.
func TestParseWhen(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		in   string
		want time.Time
	}{
		{"2026-01-02T15:04:05Z", time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)},
		{"2026-01-02T15:04:05.5+02:00", time.Date(2026, 1, 2, 13, 4, 5, 500_000_000, time.UTC)},
		{"1h", now.Add(-time.Hour)},
		{"90m", now.Add(-90 * time.Minute)},
		{"7d", now.Add(-7 * 24 * time.Hour)},
		{"0s", now},
	}
	for _, c := range cases {
		got, err := parseWhen("since", c.in, now)
		if err != nil || !got.Equal(c.want) {
			t.Errorf("parseWhen(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "yesterday", "-1h", "2026-01-02", "2026-01-02 15:04:05"} {
		if got, err := parseWhen("since", bad, now); err == nil {
			t.Errorf("parseWhen(%q) = %v, want an error", bad, got)
		}
	}
}
