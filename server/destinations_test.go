package server_test

// End-to-end tests of destinations and the delivery outbox (issue 13,
// DESIGN §8): the real server with its real Segment plugin process and a
// real Badger store, and real receivers on loopback — a Standard Webhooks
// verifier built on the official Go library, a fake Knock API and a fake
// Segment tracking API — called over REST and Connect as users do.
//
// The servers retry on a schedule of milliseconds, so a delivery that uses
// up its attempts is FAILED within a few dispatcher polls. Tests wait for
// conditions with a bounded poll (eventually) and assert on order and on
// what was recorded, never on how long something took.

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/harkhq/hark/engine"
	"github.com/harkhq/hark/engine/delivery"
	harkv1 "github.com/harkhq/hark/gen/hark/v1"
	"github.com/harkhq/hark/gen/hark/v1/harkv1connect"
	"github.com/harkhq/hark/server"
)

// Delivery and destination status shorthands.
const (
	dlvPending   = harkv1.DeliveryStatus_DELIVERY_STATUS_PENDING
	dlvSucceeded = harkv1.DeliveryStatus_DELIVERY_STATUS_SUCCEEDED
	dlvFailed    = harkv1.DeliveryStatus_DELIVERY_STATUS_FAILED
	dstActive    = harkv1.DestinationStatus_DESTINATION_STATUS_ACTIVE
	dstPaused    = harkv1.DestinationStatus_DESTINATION_STATUS_PAUSED
	dstDisabled  = harkv1.DestinationStatus_DESTINATION_STATUS_DISABLED

	evCreated   = string(delivery.EventRunCreated)
	evCancelled = string(delivery.EventRunCancelled)
)

// dstFastSchedule is three attempts: at once, after 50 ms, after 100 ms.
var dstFastSchedule = delivery.Fixed{0, 50 * time.Millisecond, 100 * time.Millisecond}

// dstLongSchedule keeps a delivery to a dead receiver pending for minutes:
// 200 attempts 200 ms apart (the dispatcher takes retries once a second).
var dstLongSchedule = append(delivery.Fixed{0}, slices.Repeat([]time.Duration{200 * time.Millisecond}, 199)...)

// ---------------------------------------------------------------------------
// Fixture: a server whose destinations may reach loopback.
// ---------------------------------------------------------------------------

// dstFixture is a server with AllowPrivateDestinations on and a retry
// schedule of the test's, a Segment source, the workflows wf-a and wf-b,
// the users u1 and u2 in development, and two triggers on the source:
// "Ordered" starts wf-a for userId with properties.order as the
// cancellation key, "Shipped" starts wf-b for userId.
type dstFixture struct {
	*trgFixture
	ordered, shipped *harkv1.Trigger
	config           func(*server.Config)
}

func dstStart(t *testing.T, schedule delivery.Schedule, more ...func(*server.Config)) *dstFixture {
	t.Helper()
	config := func(c *server.Config) {
		c.AllowPrivateDestinations = true
		c.DeliverySchedule = schedule
		for _, m := range more {
			m(c)
		}
	}
	h := startServerWith(t, harnessOptions{config: config})
	f := &dstFixture{trgFixture: &trgFixture{h: h, src: h.createSource(t, "Segment")}, config: config}
	f.createWorkflow(t, "wf-a")
	f.createWorkflow(t, "wf-b")
	f.identify(t, "development", "u1", `{"name":"Ada"}`)
	f.identify(t, "development", "u2", `{"name":"Bob"}`)
	f.ordered = f.createTrigger(t, "development", map[string]any{
		"workflowKey": "wf-a", "event": "Ordered", "mapping": map[string]any{"cancellationKey": "properties.order"},
	})
	f.shipped = f.createTrigger(t, "development", map[string]any{"workflowKey": "wf-b", "event": "Shipped"})
	return f
}

// on returns a fixture for another server that shares f's source and
// triggers (a restored one).
func (f *dstFixture) on(h *harness) *dstFixture {
	return &dstFixture{trgFixture: &trgFixture{h: h, src: f.src}, ordered: f.ordered, shipped: f.shipped, config: f.config}
}

func (f *dstFixture) destinationClient() harkv1connect.DestinationServiceClient {
	return harkv1connect.NewDestinationServiceClient(f.h.http, f.h.base, f.h.opts()...)
}

func (f *dstFixture) deliveryClient() harkv1connect.DeliveryServiceClient {
	return harkv1connect.NewDeliveryServiceClient(f.h.http, f.h.base, f.h.opts()...)
}

// createDestination creates a development destination over REST; fields
// are the request's JSON fields, name defaulting to "dest".
func (f *dstFixture) createDestination(t *testing.T, fields map[string]any) *harkv1.Destination {
	t.Helper()
	body := map[string]any{"name": "dest"}
	for k, v := range fields {
		body[k] = v
	}
	r := f.h.rest(t, http.MethodPost, "/v1/environments/development/destinations", trgJSON(t, body))
	wantStatus(t, r, http.StatusOK)
	d := decode(t, r, &harkv1.Destination{})
	if !strings.HasPrefix(d.GetId(), "dst_") {
		t.Fatalf("created destination id = %q, want dst_…", d.GetId())
	}
	return d
}

// webhook creates a webhook destination to rc, with more fields, and
// checks that its answer shows the signing secret.
func (f *dstFixture) webhook(t *testing.T, rc *dstReceiver, more map[string]any) *harkv1.Destination {
	t.Helper()
	fields := map[string]any{"type": "webhook", "url": rc.url()}
	for k, v := range more {
		fields[k] = v
	}
	d := f.createDestination(t, fields)
	if !strings.HasPrefix(d.GetSigningSecret(), delivery.SecretPrefix) {
		t.Fatalf("created webhook destination's signingSecret = %q, want whsec_…", d.GetSigningSecret())
	}
	return d
}

func (f *dstFixture) getDestination(t *testing.T, id string) *harkv1.Destination {
	t.Helper()
	r := f.h.rest(t, http.MethodGet, "/v1/environments/development/destinations/"+id, "")
	wantStatus(t, r, http.StatusOK)
	return decode(t, r, &harkv1.Destination{})
}

func (f *dstFixture) patchDestination(t *testing.T, id, body string) *harkv1.Destination {
	t.Helper()
	r := f.h.rest(t, http.MethodPatch, "/v1/environments/development/destinations/"+id, body)
	wantStatus(t, r, http.StatusOK)
	return decode(t, r, &harkv1.Destination{})
}

// delivery reads a delivery with its attempts over REST.
func (f *dstFixture) delivery(t *testing.T, id string) *harkv1.Delivery {
	t.Helper()
	r := f.h.rest(t, http.MethodGet, "/v1/environments/development/deliveries/"+id, "")
	wantStatus(t, r, http.StatusOK)
	return decode(t, r, &harkv1.Delivery{})
}

// deliveries lists development deliveries over REST with a query,
// following pages.
func (f *dstFixture) deliveries(t *testing.T, q url.Values) []*harkv1.Delivery {
	t.Helper()
	var all []*harkv1.Delivery
	for range 1000 {
		r := f.h.rest(t, http.MethodGet, "/v1/environments/development/deliveries?"+q.Encode(), "")
		wantStatus(t, r, http.StatusOK)
		res := decode(t, r, &harkv1.ListDeliveriesResponse{})
		all = append(all, res.GetDeliveries()...)
		if res.GetNextPageToken() == "" {
			return all
		}
		q = trgWith(q, "pageToken", res.GetNextPageToken())
	}
	t.Fatalf("delivery list did not end after 1000 pages")
	return nil
}

// deliveryOf returns the one delivery of a run change to a destination. It
// exists as soon as the run does: both are written in one commit.
func (f *dstFixture) deliveryOf(t *testing.T, destID, runID, eventType string) *harkv1.Delivery {
	t.Helper()
	var found *harkv1.Delivery
	for _, d := range f.deliveries(t, url.Values{"destinationId": {destID}, "workflowRunId": {runID}}) {
		if d.GetEventType() != eventType {
			continue
		}
		if found != nil {
			t.Fatalf("run %s has two %s deliveries to %s: %s and %s", runID, eventType, destID, found.GetId(), d.GetId())
		}
		found = d
	}
	if found == nil {
		t.Fatalf("run %s has no %s delivery to %s", runID, eventType, destID)
	}
	return found
}

// waitDelivery polls a delivery until cond holds and returns it.
func (f *dstFixture) waitDelivery(t *testing.T, id, what string, cond func(*harkv1.Delivery) bool) *harkv1.Delivery {
	t.Helper()
	var d *harkv1.Delivery
	eventually(t, "delivery "+id+" "+what, func() bool {
		d = f.delivery(t, id)
		return cond(d)
	})
	return d
}

// waitStatus polls a delivery until it has the status.
func (f *dstFixture) waitStatus(t *testing.T, id string, status harkv1.DeliveryStatus) *harkv1.Delivery {
	t.Helper()
	return f.waitDelivery(t, id, "to be "+status.String(), func(d *harkv1.Delivery) bool { return d.GetStatus() == status })
}

// orderRun posts an "Ordered" track and returns the wf-a run it started.
func (f *dstFixture) orderRun(t *testing.T, user, order string) string {
	t.Helper()
	return f.runOf(t, f.track(t, "development", "Ordered", user, map[string]any{"order": order}), f.ordered)
}

// shipRun posts a "Shipped" track and returns the wf-b run it started.
func (f *dstFixture) shipRun(t *testing.T, user string) string {
	t.Helper()
	return f.runOf(t, f.track(t, "development", "Shipped", user, nil), f.shipped)
}

// runOf returns the run a trigger started for a logged event.
func (f *dstFixture) runOf(t *testing.T, eventID string, trg *harkv1.Trigger) string {
	t.Helper()
	a := f.action(t, "development", eventID, trg.GetId())
	trgWantAction(t, a, trgSuccess, "")
	return a.GetWorkflowRunId()
}

// dstMetric returns the value of one series (name and labels, as Prometheus
// writes them) in a /metrics text.
func dstMetric(t *testing.T, text, series string) (float64, bool) {
	t.Helper()
	for line := range strings.SplitSeq(text, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric %s has the value %q: %v", series, v, err)
			}
			return n, true
		}
	}
	return 0, false
}

// ---------------------------------------------------------------------------
// Receivers: real HTTP servers on loopback.
// ---------------------------------------------------------------------------

// dstRequest is one request a receiver got.
type dstRequest struct {
	at     time.Time
	method string
	path   string
	header http.Header
	body   []byte
}

// dstReceiver is a real HTTP server on loopback that records every request
// when it arrives and answers with respond, given the request's 0-based
// number (200 when respond is nil or writes nothing).
type dstReceiver struct {
	srv      *httptest.Server
	mu       sync.Mutex
	reqs     []dstRequest
	inflight int // requests being answered
	peak     int // the most answered at once
}

func newDstReceiver(t *testing.T, respond func(n int, w http.ResponseWriter, r *http.Request)) *dstReceiver {
	t.Helper()
	rc := &dstReceiver{}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("receiver: read body: %v", err)
		}
		rc.mu.Lock()
		n := len(rc.reqs)
		rc.reqs = append(rc.reqs, dstRequest{at: time.Now(), method: r.Method, path: r.URL.Path, header: r.Header.Clone(), body: body})
		rc.inflight++
		rc.peak = max(rc.peak, rc.inflight)
		rc.mu.Unlock()
		defer func() {
			rc.mu.Lock()
			rc.inflight--
			rc.mu.Unlock()
		}()
		if respond != nil {
			respond(n, w, r)
		}
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *dstReceiver) url() string { return rc.srv.URL + "/hook" }

// requests returns a copy of what the receiver got so far.
func (rc *dstReceiver) requests() []dstRequest {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.reqs)
}

// waitRequests polls until the receiver got at least n requests and returns
// them.
func (rc *dstReceiver) waitRequests(t *testing.T, n int) []dstRequest {
	t.Helper()
	eventually(t, fmt.Sprintf("%d requests at the receiver", n), func() bool { return len(rc.requests()) >= n })
	return rc.requests()
}

// waitFor polls until the receiver got a request with the webhook-id and
// returns the requests so far.
func (rc *dstReceiver) waitFor(t *testing.T, webhookID string) []dstRequest {
	t.Helper()
	eventually(t, "a request with webhook-id "+webhookID, func() bool {
		return slices.ContainsFunc(rc.requests(), func(r dstRequest) bool { return r.header.Get("webhook-id") == webhookID })
	})
	return rc.requests()
}

// webhookIDs returns the webhook-id of each request, in arrival order.
func webhookIDs(reqs []dstRequest) []string {
	out := make([]string, len(reqs))
	for i, r := range reqs {
		out[i] = r.header.Get("webhook-id")
	}
	return out
}

// dstMessage is a webhook body: the Standard Webhooks message shape.
type dstMessage struct {
	Type      string          `json:"type"`
	Timestamp string          `json:"timestamp"`
	Data      json.RawMessage `json:"data"`
}

// verifyWebhook checks a webhook request the way a receiver does, with the
// official Standard Webhooks library and the destination's secret (which
// also checks that webhook-timestamp is within 5 minutes of now), and
// decodes its body: the message, and the run it carries (nil for a ping).
func verifyWebhook(t *testing.T, secret string, req dstRequest) (dstMessage, *harkv1.WorkflowRun) {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatalf("standardwebhooks.NewWebhook(signing secret): %v", err)
	}
	if err := wh.Verify(req.body, req.header); err != nil {
		t.Fatalf("the official library refuses request %s (webhook-signature %q): %v", req.header.Get("webhook-id"), req.header.Get("webhook-signature"), err)
	}
	if req.method != http.MethodPost || req.path != "/hook" || !strings.HasPrefix(req.header.Get("Content-Type"), "application/json") {
		t.Fatalf("webhook request = %s %s (Content-Type %q), want POST /hook with JSON", req.method, req.path, req.header.Get("Content-Type"))
	}
	dec := json.NewDecoder(bytes.NewReader(req.body))
	dec.DisallowUnknownFields()
	var m dstMessage
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("webhook body %s: %v", req.body, err)
	}
	if _, err := time.Parse(time.RFC3339Nano, m.Timestamp); err != nil {
		t.Fatalf("webhook body timestamp %q is not RFC 3339: %v", m.Timestamp, err)
	}
	if m.Type == string(delivery.EventPing) {
		return m, nil
	}
	run := &harkv1.WorkflowRun{}
	if err := protojson.Unmarshal(m.Data, run); err != nil {
		t.Fatalf("webhook data %s is not a WorkflowRun: %v", m.Data, err)
	}
	return m, run
}

// wantVerifies fails unless the official library verifies req with secret
// (want true) or refuses it (want false).
func wantVerifies(t *testing.T, secret string, req dstRequest, want bool) {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatalf("standardwebhooks.NewWebhook: %v", err)
	}
	if err := wh.Verify(req.body, req.header); (err == nil) != want {
		t.Fatalf("Verify with secret %.12s… = %v, want verified %v", secret, err, want)
	}
}

// sameRun is run as a receiver compares it with the API's: without the
// deliveries (hark's bookkeeping, left out of the body) and the feed cursor.
func sameRun(run *harkv1.WorkflowRun) *harkv1.WorkflowRun {
	out := proto.CloneOf(run)
	out.Deliveries, out.Cursor = nil, ""
	return out
}

// ---------------------------------------------------------------------------
// 1. Webhooks: signed, the run as the API shows it, stable ids across retries.
// ---------------------------------------------------------------------------

// TestDestinationsWebhook checks every webhook request with the official
// Standard Webhooks library and the secret CreateDestination returned: the
// body is {type, timestamp, data: the run as GetWorkflowRun shows it} for a
// run started by an event, one started by the API and its cancellation; and
// a receiver that fails twice sees one webhook-id three times, the delivery
// ending SUCCEEDED with every attempt kept.
func TestDestinationsWebhook(t *testing.T) {
	t.Parallel()
	f := dstStart(t, dstFastSchedule)
	rc := newDstReceiver(t, nil)
	all := f.webhook(t, rc, nil)
	// The flaky receiver fails its first two attempts, with more than 1 KiB
	// of answer, then accepts. It takes wf-b only, so it gets one delivery.
	const failBody = "try again later: "
	flakyRc := newDstReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n < 2 {
			w.WriteHeader(http.StatusInternalServerError)
			io.WriteString(w, failBody+strings.Repeat("x", 2000))
			return
		}
		io.WriteString(w, "thanks")
	})
	flaky := f.webhook(t, flakyRc, map[string]any{"workflowKeys": []string{"wf-b"}})
	if all.GetSigningSecret() == flaky.GetSigningSecret() {
		t.Fatalf("two destinations got the same signing secret")
	}
	if got := f.getDestination(t, all.GetId()); got.GetSigningSecret() != "" {
		t.Fatalf("GetDestination shows the signing secret %q; it is shown on create and rotate only", got.GetSigningSecret())
	}

	// A run started by an event, one by the API, the API run cancelled, and
	// a wf-b run.
	fromEvent := f.orderRun(t, "u1", "o-1")
	fromAPI := f.mustTriggerWorkflow(t, "development", "wf-a",
		`{"recipients":["u2"],"actor":"u1","tenant":"acme","data":{"plan":"pro","seats":3},"cancellationKey":"ck-1"}`)
	apiCreated := f.run(t, "development", fromAPI)
	createdDelivery := f.deliveryOf(t, all.GetId(), fromAPI, evCreated)
	// The created delivery goes out before the cancel, so its body shows the
	// run still ACTIVE; the cancel is a delivery of its own.
	f.waitStatus(t, createdDelivery.GetId(), dlvSucceeded)
	if got := f.cancel(t, "development", "wf-a", `{"cancellationKey":"ck-1"}`); !slices.Equal(got, []string{fromAPI}) {
		t.Fatalf("cancel ck-1 = %v, want [%s]", got, fromAPI)
	}
	shipped := f.shipRun(t, "u2")

	want := map[string]struct {
		event string
		run   *harkv1.WorkflowRun
	}{}
	for _, c := range []struct{ run, event string }{
		{fromEvent, evCreated}, {fromAPI, evCreated}, {fromAPI, evCancelled}, {shipped, evCreated},
	} {
		d := f.deliveryOf(t, all.GetId(), c.run, c.event)
		run := f.run(t, "development", c.run)
		if c.run == fromAPI && c.event == evCreated {
			run = apiCreated
		}
		want[d.GetId()] = struct {
			event string
			run   *harkv1.WorkflowRun
		}{c.event, run}
	}
	rc.waitRequests(t, len(want))
	for _, d := range f.deliveries(t, url.Values{"destinationId": {all.GetId()}}) {
		f.waitStatus(t, d.GetId(), dlvSucceeded)
	}
	reqs := rc.requests()
	if len(reqs) != len(want) {
		t.Fatalf("receiver got %d requests (%v), want %d", len(reqs), webhookIDs(reqs), len(want))
	}
	for _, req := range reqs {
		id := req.header.Get("webhook-id")
		w, ok := want[id]
		if !ok {
			t.Fatalf("request with webhook-id %q, want one of the deliveries %v", id, slices.Collect(maps.Keys(want)))
		}
		delete(want, id)
		msg, run := verifyWebhook(t, all.GetSigningSecret(), req)
		if msg.Type != w.event {
			t.Errorf("delivery %s: type %q, want %q", id, msg.Type, w.event)
		}
		if !proto.Equal(sameRun(run), sameRun(w.run)) {
			t.Errorf("delivery %s (%s) carries the run\n%v\nwant it as GetWorkflowRun shows it\n%v", id, w.event, run, w.run)
		}
		wantTime := w.run.GetCreatedAt().AsTime()
		if w.event == evCancelled {
			wantTime = w.run.GetUpdatedAt().AsTime()
		}
		if ts, _ := time.Parse(time.RFC3339Nano, msg.Timestamp); !ts.Equal(wantTime) {
			t.Errorf("delivery %s (%s): timestamp %s, want the change's time %s", id, w.event, msg.Timestamp, wantTime.Format(time.RFC3339Nano))
		}
		// Each destination signs with its own secret.
		wantVerifies(t, flaky.GetSigningSecret(), req, false)
	}
	if run := f.run(t, "development", fromEvent); run.GetTriggerId() != f.ordered.GetId() || run.GetSourceEventId() == "" {
		t.Errorf("event-started run = %v, want its trigger and source event", run)
	}

	// The flaky receiver saw one delivery three times, with one webhook-id.
	fd := f.deliveryOf(t, flaky.GetId(), shipped, evCreated)
	fd = f.waitStatus(t, fd.GetId(), dlvSucceeded)
	freqs := flakyRc.requests()
	if ids := webhookIDs(freqs); !slices.Equal(ids, []string{fd.GetId(), fd.GetId(), fd.GetId()}) {
		t.Fatalf("flaky receiver got webhook-ids %v, want %s three times", ids, fd.GetId())
	}
	for _, req := range freqs {
		if _, run := verifyWebhook(t, flaky.GetSigningSecret(), req); run.GetId() != shipped {
			t.Fatalf("flaky receiver got run %s, want %s", run.GetId(), shipped)
		}
	}
	if got := f.deliveries(t, url.Values{"destinationId": {flaky.GetId()}}); len(got) != 1 {
		t.Fatalf("the wf-b destination has %d deliveries, want 1 (its workflowKeys filter)", len(got))
	}
	if fd.GetAttemptCount() != 3 || len(fd.GetAttempts()) != 3 || fd.GetNextAttemptAt() != nil {
		t.Fatalf("flaky delivery = %v, want SUCCEEDED after 3 attempts, none due", fd)
	}
	for i, a := range fd.GetAttempts() {
		wantCode, wantErr := http.StatusInternalServerError, true
		if i == 2 {
			wantCode, wantErr = http.StatusOK, false
		}
		if int(a.GetStatusCode()) != wantCode || (a.GetError() != "") != wantErr || a.GetStartedAt() == nil || a.GetDuration() == nil {
			t.Errorf("attempt %d = %v, want status %d, an error %v, a start and a duration", i, a, wantCode, wantErr)
		}
		if wantErr && (len(a.GetResponseBody()) != delivery.MaxResponseKept || !strings.HasPrefix(a.GetResponseBody(), failBody)) {
			t.Errorf("attempt %d kept %d bytes of the answer (%.30q…), want its first %d", i, len(a.GetResponseBody()), a.GetResponseBody(), delivery.MaxResponseKept)
		}
		if !wantErr && a.GetResponseBody() != "thanks" {
			t.Errorf("attempt %d kept the answer %q, want \"thanks\"", i, a.GetResponseBody())
		}
		if i > 0 {
			prev := fd.GetAttempts()[i-1]
			if gap := a.GetStartedAt().AsTime().Sub(prev.GetStartedAt().AsTime()); gap < dstFastSchedule[i] {
				t.Errorf("attempt %d started %v after attempt %d, want at least the schedule's %v", i, gap, i-1, dstFastSchedule[i])
			}
		}
	}
	if !strings.Contains(fd.GetAttempts()[0].GetError(), "500") {
		t.Errorf("attempt 0 error = %q, want it to name the 500", fd.GetAttempts()[0].GetError())
	}
}

// ---------------------------------------------------------------------------
// 2. Knock.
// ---------------------------------------------------------------------------

// TestDestinationsKnock points a knock destination at a fake Knock API
// that checks the trigger and cancel paths, Knock's snake_case bodies, the
// Bearer api_key and the Idempotency-Key (the run id).
func TestDestinationsKnock(t *testing.T) {
	t.Parallel()
	f := dstStart(t, dstFastSchedule)
	const apiKey = "sk_test_knock_123"
	knock := newDstReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"workflow_run_id":"k-run"}`)
	})
	d := f.createDestination(t, map[string]any{
		"type": "knock", "url": knock.srv.URL, "workflowKeys": []string{"wf-a"}, "settings": map[string]string{"api_key": apiKey},
	})
	if d.GetSigningSecret() != "" || d.GetSettings()["api_key"] != "********" {
		t.Fatalf("created knock destination = %v, want api_key masked and no signing secret", d)
	}
	if got := f.getDestination(t, d.GetId()); got.GetSettings()["api_key"] != "********" {
		t.Fatalf("GetDestination settings = %v, want api_key masked", got.GetSettings())
	}
	list := mustCall(t, f.destinationClient().ListDestinations, &harkv1.ListDestinationsRequest{Environment: "development"})
	if len(list.GetDestinations()) != 1 || list.GetDestinations()[0].GetSettings()["api_key"] != "********" {
		t.Fatalf("ListDestinations = %v, want the destination with api_key masked", list.GetDestinations())
	}
	// A PATCH that sends the mask back keeps the key (the requests below
	// carry it).
	f.patchDestination(t, d.GetId(), `{"name":"Knock","settings":{"api_key":"********"}}`)

	runID := f.mustTriggerWorkflow(t, "development", "wf-a",
		`{"recipients":["u2",{"id":"u3","name":"Cy"}],"actor":"u1","tenant":"acme","data":{"order":"o-9","total":12.5},"cancellationKey":"ck-k"}`)
	trigger := f.waitStatus(t, f.deliveryOf(t, d.GetId(), runID, evCreated).GetId(), dlvSucceeded)
	if got := f.cancel(t, "development", "wf-a", `{"cancellationKey":"ck-k"}`); !slices.Equal(got, []string{runID}) {
		t.Fatalf("cancel = %v, want [%s]", got, runID)
	}
	cancel := f.waitStatus(t, f.deliveryOf(t, d.GetId(), runID, evCancelled).GetId(), dlvSucceeded)
	if a := trigger.GetAttempts(); len(a) != 1 || a[0].GetStatusCode() != http.StatusOK || a[0].GetResponseBody() != `{"workflow_run_id":"k-run"}` {
		t.Fatalf("trigger attempts = %v, want one 200 with Knock's answer kept", a)
	}

	reqs := knock.requests()
	if len(reqs) != 2 {
		t.Fatalf("Knock got %d requests, want the trigger and the cancel", len(reqs))
	}
	for i, c := range []struct {
		path      string
		body      map[string]any
		idemp     string
		delivery  string
		eventType string
	}{
		{"/v1/workflows/wf-a/trigger", map[string]any{
			"recipients": []any{"u2", "u3"}, "actor": "u1", "tenant": "acme",
			"data": map[string]any{"order": "o-9", "total": 12.5}, "cancellation_key": "ck-k",
		}, runID, trigger.GetId(), evCreated},
		{"/v1/workflows/wf-a/cancel", map[string]any{"cancellation_key": "ck-k", "recipients": []any{"u2", "u3"}}, "", cancel.GetId(), evCancelled},
	} {
		req := reqs[i]
		if req.method != http.MethodPost || req.path != c.path {
			t.Errorf("Knock request %d = %s %s, want POST %s", i, req.method, req.path, c.path)
		}
		if got := req.header.Get("Authorization"); got != "Bearer "+apiKey {
			t.Errorf("Knock request %d Authorization = %q, want Bearer <api_key>", i, got)
		}
		if got := req.header.Get("Idempotency-Key"); c.idemp != "" && got != c.idemp {
			t.Errorf("Knock request %d Idempotency-Key = %q, want the run id %s", i, got, c.idemp)
		}
		if !strings.HasPrefix(req.header.Get("Content-Type"), "application/json") {
			t.Errorf("Knock request %d Content-Type = %q", i, req.header.Get("Content-Type"))
		}
		var body map[string]any
		if err := json.Unmarshal(req.body, &body); err != nil {
			t.Fatalf("Knock request %d body %s: %v", i, req.body, err)
		}
		if !reflect.DeepEqual(body, c.body) {
			t.Errorf("Knock request %d body = %s, want %s", i, req.body, trgJSON(t, c.body))
		}
	}
}

// ---------------------------------------------------------------------------
// 3. Segment.
// ---------------------------------------------------------------------------

// TestDestinationsSegment points a segment destination at a fake tracking
// API that checks Basic auth (the write key as the user) and the /v1/batch
// body: one track per recipient.
func TestDestinationsSegment(t *testing.T) {
	t.Parallel()
	f := dstStart(t, dstFastSchedule)
	const writeKey = "wk_segment_456"
	seg := newDstReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		if !ok || user != writeKey || pass != "" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		io.WriteString(w, `{"success":true}`)
	})
	d := f.createDestination(t, map[string]any{"type": "segment", "url": seg.srv.URL, "settings": map[string]string{"write_key": writeKey}})
	if d.GetSettings()["write_key"] != "********" {
		t.Fatalf("created segment destination settings = %v, want write_key masked", d.GetSettings())
	}

	type track struct {
		Type       string         `json:"type"`
		Event      string         `json:"event"`
		UserID     string         `json:"userId"`
		MessageID  string         `json:"messageId"`
		Timestamp  string         `json:"timestamp"`
		Properties map[string]any `json:"properties"`
		Context    map[string]any `json:"context"`
	}
	type batch struct {
		Batch  []track `json:"batch"`
		SentAt string  `json:"sentAt"`
	}
	// batchOf waits for a delivery and returns the one batch its attempt
	// sent (the receiver checks Basic auth: a wrong one is a 401, so the
	// delivery would not succeed).
	batchOf := func(d *harkv1.Delivery, n int) batch {
		t.Helper()
		f.waitStatus(t, d.GetId(), dlvSucceeded)
		req := seg.waitRequests(t, n)[n-1]
		if req.method != http.MethodPost || req.path != "/v1/batch" {
			t.Fatalf("Segment request = %s %s, want POST /v1/batch", req.method, req.path)
		}
		if want := "Basic " + base64.StdEncoding.EncodeToString([]byte(writeKey+":")); req.header.Get("Authorization") != want {
			t.Fatalf("Segment Authorization = %q, want %q", req.header.Get("Authorization"), want)
		}
		dec := json.NewDecoder(bytes.NewReader(req.body))
		dec.DisallowUnknownFields()
		var b batch
		if err := dec.Decode(&b); err != nil {
			t.Fatalf("Segment body %s: %v", req.body, err)
		}
		if _, err := time.Parse(time.RFC3339Nano, b.SentAt); err != nil {
			t.Fatalf("Segment sentAt %q: %v", b.SentAt, err)
		}
		return b
	}

	runID := f.mustTriggerWorkflow(t, "development", "wf-a",
		`{"recipients":["u1","u2"],"tenant":"acme","data":{"plan":"pro"},"cancellationKey":"ck-s"}`)
	run := f.run(t, "development", runID)
	created := batchOf(f.deliveryOf(t, d.GetId(), runID, evCreated), 1)
	f.cancel(t, "development", "wf-a", `{"cancellationKey":"ck-s"}`)
	cancelled := batchOf(f.deliveryOf(t, d.GetId(), runID, evCancelled), 2)
	seen := map[string]bool{}
	for _, c := range []struct {
		b     batch
		event string
	}{{created, "Workflow Run Created"}, {cancelled, "Workflow Run Cancelled"}} {
		if len(c.b.Batch) != 2 {
			t.Fatalf("%s batch has %d tracks, want one per recipient: %v", c.event, len(c.b.Batch), c.b)
		}
		for i, tr := range c.b.Batch {
			if tr.Type != "track" || tr.Event != c.event || tr.UserID != []string{"u1", "u2"}[i] || tr.MessageID == "" || seen[tr.MessageID] {
				t.Errorf("%s track %d = %+v, want a track of %q for %s with a new messageId", c.event, i, tr, c.event, []string{"u1", "u2"}[i])
			}
			seen[tr.MessageID] = true
			want := map[string]any{
				"workflow_key": "wf-a", "workflow_run_id": runID, "trigger_id": "", "source_event_id": "", "environment": "development",
				"tenant": "acme", "actor": "", "cancellation_key": "ck-s", "data": map[string]any{"plan": "pro"},
			}
			if !reflect.DeepEqual(tr.Properties, want) {
				t.Errorf("%s track %d properties = %v, want %v", c.event, i, tr.Properties, want)
			}
			if ts, err := time.Parse(time.RFC3339Nano, tr.Timestamp); err != nil || (c.event == "Workflow Run Created" && !ts.Equal(run.GetCreatedAt().AsTime())) {
				t.Errorf("%s track %d timestamp = %q, want the run's created_at %s", c.event, i, tr.Timestamp, run.GetCreatedAt().AsTime())
			}
		}
	}

	// An event-started run names its trigger and source event.
	evRun := f.orderRun(t, "u1", "o-2")
	b := batchOf(f.deliveryOf(t, d.GetId(), evRun, evCreated), 3)
	got := f.run(t, "development", evRun)
	if len(b.Batch) != 1 || b.Batch[0].Properties["trigger_id"] != f.ordered.GetId() || b.Batch[0].Properties["source_event_id"] != got.GetSourceEventId() ||
		b.Batch[0].Properties["cancellation_key"] != "o-2" {
		t.Fatalf("event run batch = %+v, want one track naming trigger %s and event %s", b, f.ordered.GetId(), got.GetSourceEventId())
	}
}

// ---------------------------------------------------------------------------
// 4. The workflowKeys filter.
// ---------------------------------------------------------------------------

// TestDestinationsWorkflowKeys checks that a destination for one workflow
// gets no delivery of another's runs (none is even written), nor one of
// another environment, and that unknown workflow keys are refused with the
// field named.
func TestDestinationsWorkflowKeys(t *testing.T) {
	t.Parallel()
	f := dstStart(t, dstFastSchedule)
	onlyA := newDstReceiver(t, nil)
	everything := newDstReceiver(t, nil)
	a := f.webhook(t, onlyA, map[string]any{"workflowKeys": []string{"wf-a"}})
	all := f.webhook(t, everything, nil)
	if !slices.Equal(a.GetWorkflowKeys(), []string{"wf-a"}) || len(all.GetWorkflowKeys()) != 0 {
		t.Fatalf("workflowKeys = %v and %v, want [wf-a] and none", a.GetWorkflowKeys(), all.GetWorkflowKeys())
	}

	runB := f.shipRun(t, "u1")
	runA := f.orderRun(t, "u1", "o-1")
	// The run of B has no delivery to the wf-a destination at all: none was
	// written in its commit, so none can be sent later.
	if got := f.deliveries(t, url.Values{"destinationId": {a.GetId()}, "workflowRunId": {runB}}); len(got) != 0 {
		t.Fatalf("run of wf-b has deliveries to the wf-a destination: %v", got)
	}
	everything.waitFor(t, f.deliveryOf(t, all.GetId(), runB, evCreated).GetId())
	dA := f.deliveryOf(t, a.GetId(), runA, evCreated)
	reqs := onlyA.waitFor(t, dA.GetId())
	f.waitStatus(t, dA.GetId(), dlvSucceeded)
	if len(reqs) != 1 {
		t.Fatalf("wf-a destination got %v, want only %s", webhookIDs(reqs), dA.GetId())
	}
	if _, run := verifyWebhook(t, a.GetSigningSecret(), reqs[0]); run.GetId() != runA || run.GetWorkflowKey() != "wf-a" {
		t.Fatalf("wf-a destination got run %v, want %s", run, runA)
	}
	if got := f.run(t, "development", runB).GetDeliveries(); len(got) != 1 || got[0].GetDestinationId() != all.GetId() {
		t.Fatalf("run of wf-b lists deliveries %v, want one to %s", got, all.GetId())
	}

	// A production destination gets nothing of development's runs.
	prodRc := newDstReceiver(t, nil)
	r := f.h.rest(t, http.MethodPost, "/v1/environments/production/destinations", `{"name":"prod","type":"webhook","url":"`+prodRc.url()+`"}`)
	wantStatus(t, r, http.StatusOK)
	prod := decode(t, r, &harkv1.Destination{})
	if prod.GetEnvironment() != "production" {
		t.Fatalf("production destination = %v", prod)
	}
	runLater := f.orderRun(t, "u2", "o-2")
	everything.waitFor(t, f.deliveryOf(t, all.GetId(), runLater, evCreated).GetId())
	r = f.h.rest(t, http.MethodGet, "/v1/environments/production/deliveries", "")
	wantStatus(t, r, http.StatusOK)
	if got := decode(t, r, &harkv1.ListDeliveriesResponse{}); len(got.GetDeliveries()) != 0 || len(prodRc.requests()) != 0 {
		t.Fatalf("production destination got %v and %d requests for development runs", got.GetDeliveries(), len(prodRc.requests()))
	}

	// The filter changes with an update; allWorkflows clears it.
	if d := f.patchDestination(t, a.GetId(), `{"workflowKeys":["wf-b"]}`); !slices.Equal(d.GetWorkflowKeys(), []string{"wf-b"}) {
		t.Fatalf("updated workflowKeys = %v, want [wf-b]", d.GetWorkflowKeys())
	}
	if d := f.patchDestination(t, a.GetId(), `{"allWorkflows":true}`); len(d.GetWorkflowKeys()) != 0 {
		t.Fatalf("workflowKeys after allWorkflows = %v, want none", d.GetWorkflowKeys())
	}

	// Unknown workflow keys are refused, naming the field, over REST and
	// Connect, on create and update.
	r = f.h.rest(t, http.MethodPost, "/v1/environments/development/destinations",
		`{"name":"x","type":"webhook","url":"`+onlyA.url()+`","workflowKeys":["wf-a","no-such-workflow"]}`)
	wantStatus(t, r, http.StatusBadRequest)
	wantViolation(t, restViolations(t, r), "workflowKeys[1]")
	if !strings.Contains(string(r.body), "no-such-workflow") {
		t.Errorf("unknown workflow key error %s does not name the key", r.body)
	}
	_, err := call(t, f.destinationClient().CreateDestination, &harkv1.CreateDestinationRequest{
		Environment: "development", Name: "x", Type: "webhook", Url: onlyA.url(), WorkflowKeys: []string{"nope"},
	})
	wantCode(t, err, connect.CodeInvalidArgument)
	wantViolation(t, connectViolations(t, err), "workflowKeys[0]")
	r = f.h.rest(t, http.MethodPatch, "/v1/environments/development/destinations/"+a.GetId(), `{"workflowKeys":["nope"]}`)
	wantStatus(t, r, http.StatusBadRequest)
	wantViolation(t, restViolations(t, r), "workflowKeys[0]")
	r = f.h.rest(t, http.MethodPatch, "/v1/environments/development/destinations/"+a.GetId(), `{"workflowKeys":["wf-a"],"allWorkflows":true}`)
	wantStatus(t, r, http.StatusBadRequest)
	wantViolation(t, restViolations(t, r), "allWorkflows")
	if got := f.getDestination(t, a.GetId()); len(got.GetWorkflowKeys()) != 0 {
		t.Fatalf("refused updates changed workflowKeys to %v", got.GetWorkflowKeys())
	}
	if got := decode(t, f.h.rest(t, http.MethodGet, "/v1/environments/development/destinations", ""), &harkv1.ListDestinationsResponse{}); len(got.GetDestinations()) != 2 {
		t.Fatalf("destinations after refused creates = %v, want the 2 created", got.GetDestinations())
	}
}

// ---------------------------------------------------------------------------
// 5. Bad input.
// ---------------------------------------------------------------------------

// TestDestinationsBadInput refuses bad destinations with 400 and the
// field — a URL that is not http(s), has credentials or is private on a
// server without --allow-private-destinations; an unknown type; missing
// settings — and stores none of them.
func TestDestinationsBadInput(t *testing.T) {
	t.Parallel()
	f := dstStart(t, dstFastSchedule)
	// A server with the SSRF guard on, as hark serve runs by default.
	strict := &dstFixture{trgFixture: &trgFixture{h: startServer(t)}}
	rc := newDstReceiver(t, nil)

	for _, c := range []struct {
		name   string
		f      *dstFixture
		body   map[string]any
		field  string
		reason string // in the error message
	}{
		{"url not http", f, map[string]any{"type": "webhook", "url": "ftp://hooks.example.com/x"}, "url", "http or https"},
		{"url javascript", f, map[string]any{"type": "webhook", "url": "javascript:alert(1)"}, "url", "http or https"},
		{"url with credentials", f, map[string]any{"type": "webhook", "url": "https://user:pw@hooks.example.com/x"}, "url", "credentials"},
		{"url without host", f, map[string]any{"type": "webhook", "url": "http:///x"}, "url", "host"},
		{"webhook without url", f, map[string]any{"type": "webhook"}, "url", "required"},
		{"unknown type", f, map[string]any{"type": "sms", "url": rc.url()}, "type", "is not a destination type"},
		{"no type", f, map[string]any{"url": rc.url()}, "type", "required"},
		{"no name", f, map[string]any{"name": " ", "type": "webhook", "url": rc.url()}, "name", "required"},
		{"knock without api_key", f, map[string]any{"type": "knock"}, "settings.api_key", "required"},
		{"segment without write_key", f, map[string]any{"type": "segment", "settings": map[string]string{"write_key": " "}}, "settings.write_key", "required"},
		{"unknown setting", f, map[string]any{"type": "webhook", "url": rc.url(), "settings": map[string]string{"token": "x"}}, "settings.token", "take none"},
		{"created disabled", f, map[string]any{"type": "webhook", "url": rc.url(), "status": "DESTINATION_STATUS_DISABLED"}, "status", "410"},
		{"loopback without the flag", strict, map[string]any{"type": "webhook", "url": rc.url()}, "url", "--allow-private-destinations"},
		{"localhost without the flag", strict, map[string]any{"type": "webhook", "url": "http://localhost:8080/x"}, "url", "--allow-private-destinations"},
		{"private without the flag", strict, map[string]any{"type": "knock", "url": "http://10.1.2.3", "settings": map[string]string{"api_key": "sk"}}, "url", "--allow-private-destinations"},
		{"metadata without the flag", strict, map[string]any{"type": "webhook", "url": "http://169.254.169.254/latest/meta-data"}, "url", "metadata"},
		{"IPv6 loopback without the flag", strict, map[string]any{"type": "webhook", "url": "http://[::1]:9/x"}, "url", "--allow-private-destinations"},
		{"mapped IPv4 without the flag", strict, map[string]any{"type": "webhook", "url": "http://[::ffff:127.0.0.1]/x"}, "url", "--allow-private-destinations"},
	} {
		t.Run(c.name, func(t *testing.T) {
			body := map[string]any{"name": "bad"}
			for k, v := range c.body {
				body[k] = v
			}
			r := c.f.h.rest(t, http.MethodPost, "/v1/environments/development/destinations", trgJSON(t, body))
			wantStatus(t, r, http.StatusBadRequest)
			wantViolation(t, restViolations(t, r), c.field)
			if !strings.Contains(string(r.body), c.reason) {
				t.Errorf("error %s does not say %q", r.body, c.reason)
			}
		})
	}
	// Over Connect: InvalidArgument with the field.
	_, err := call(t, strict.destinationClient().CreateDestination, &harkv1.CreateDestinationRequest{
		Environment: "development", Name: "x", Type: "webhook", Url: "http://127.0.0.1:1/x",
	})
	wantCode(t, err, connect.CodeInvalidArgument)
	wantViolation(t, connectViolations(t, err), "url")
	// Unknown environment: 404.
	wantStatus(t, f.h.rest(t, http.MethodPost, "/v1/environments/staging/destinations", `{"name":"x","type":"webhook","url":"`+rc.url()+`"}`), http.StatusNotFound)

	// The same URL is fine with the flag, and a public URL is fine without
	// it; an update to a private URL is refused like a create.
	f.webhook(t, rc, nil)
	public := strict.createDestination(t, map[string]any{"type": "webhook", "url": "https://hooks.example.com/hark"})
	r := strict.h.rest(t, http.MethodPatch, "/v1/environments/development/destinations/"+public.GetId(), `{"url":"http://127.0.0.1/x"}`)
	wantStatus(t, r, http.StatusBadRequest)
	wantViolation(t, restViolations(t, r), "url")
	if got := strict.getDestination(t, public.GetId()); got.GetUrl() != "https://hooks.example.com/hark" {
		t.Fatalf("refused update changed the url to %q", got.GetUrl())
	}
	// DISABLED cannot be set by hand; a destination of another server is
	// unknown here: 404.
	wantStatus(t, f.h.rest(t, http.MethodPatch, "/v1/environments/development/destinations/"+public.GetId(), `{"status":"DESTINATION_STATUS_PAUSED"}`), http.StatusNotFound)
	r = strict.h.rest(t, http.MethodPatch, "/v1/environments/development/destinations/"+public.GetId(), `{"status":"DESTINATION_STATUS_DISABLED"}`)
	wantStatus(t, r, http.StatusBadRequest)
	wantViolation(t, restViolations(t, r), "status")

	// Nothing refused was stored.
	for _, c := range []struct {
		f    *dstFixture
		want int
	}{{f, 1}, {strict, 1}} {
		got := decode(t, c.f.h.rest(t, http.MethodGet, "/v1/environments/development/destinations", ""), &harkv1.ListDestinationsResponse{})
		if len(got.GetDestinations()) != c.want {
			t.Errorf("destinations = %v, want %d", got.GetDestinations(), c.want)
		}
	}
}

// ---------------------------------------------------------------------------
// 6. 410 Gone disables; resuming sends what was held.
// ---------------------------------------------------------------------------

// TestDestinationsGoneDisables answers 410: the destination is DISABLED
// with a reason, its later deliveries are held and not sent, and setting it
// ACTIVE sends them all.
func TestDestinationsGoneDisables(t *testing.T) {
	t.Parallel()
	f := dstStart(t, dstFastSchedule)
	rc := newDstReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 0 {
			w.WriteHeader(http.StatusGone)
			io.WriteString(w, "unsubscribed")
		}
	})
	d := f.webhook(t, rc, nil)
	markerRc := newDstReceiver(t, nil)
	marker := f.webhook(t, markerRc, nil)

	run1 := f.orderRun(t, "u1", "o-1")
	d1 := f.deliveryOf(t, d.GetId(), run1, evCreated)
	eventually(t, "the destination to be disabled", func() bool { return f.getDestination(t, d.GetId()).GetStatus() == dstDisabled })
	got := f.getDestination(t, d.GetId())
	if !strings.Contains(got.GetDisabledReason(), "410") {
		t.Fatalf("disabledReason = %q, want it to name the 410", got.GetDisabledReason())
	}
	d1 = f.waitDelivery(t, d1.GetId(), "to record its 410", func(d *harkv1.Delivery) bool { return d.GetAttemptCount() == 1 })
	if d1.GetStatus() != dlvPending || d1.GetNextAttemptAt() != nil || d1.GetAttempts()[0].GetStatusCode() != http.StatusGone ||
		d1.GetAttempts()[0].GetResponseBody() != "unsubscribed" {
		t.Fatalf("delivery answered 410 = %v, want PENDING, held (no next attempt), the 410 recorded", d1)
	}

	// A later run's delivery is held from the start and not sent: the marker
	// destination gets the run, the disabled one does not.
	run2 := f.orderRun(t, "u2", "o-2")
	d2 := f.deliveryOf(t, d.GetId(), run2, evCreated)
	if d2.GetStatus() != dlvPending || d2.GetNextAttemptAt() != nil || d2.GetAttemptCount() != 0 {
		t.Fatalf("delivery to a disabled destination = %v, want PENDING and held", d2)
	}
	markerRc.waitFor(t, f.deliveryOf(t, marker.GetId(), run2, evCreated).GetId())
	if reqs := rc.requests(); len(reqs) != 1 {
		t.Fatalf("the disabled destination got %v, want only the first attempt", webhookIDs(reqs))
	}
	if v, ok := dstMetric(t, f.h.metricsText(t), "hark_destinations_disabled"); !ok || v != 1 {
		t.Fatalf("hark_destinations_disabled = %v (present %v), want 1", v, ok)
	}

	// Setting it ACTIVE again sends both.
	if up := f.patchDestination(t, d.GetId(), `{"status":"DESTINATION_STATUS_ACTIVE"}`); up.GetStatus() != dstActive || up.GetDisabledReason() != "" {
		t.Fatalf("resumed destination = %v, want ACTIVE without a reason", up)
	}
	f.waitStatus(t, d1.GetId(), dlvSucceeded)
	f.waitStatus(t, d2.GetId(), dlvSucceeded)
	ids := webhookIDs(rc.requests())
	slices.Sort(ids)
	want := []string{d1.GetId(), d1.GetId(), d2.GetId()}
	slices.Sort(want)
	if !slices.Equal(ids, want) {
		t.Fatalf("receiver got %v, want %v: the 410'd delivery again, with its id, and the held one", ids, want)
	}
	for _, req := range rc.requests() {
		verifyWebhook(t, d.GetSigningSecret(), req)
	}
}

// ---------------------------------------------------------------------------
// 7. Pause and resume.
// ---------------------------------------------------------------------------

// TestDestinationsPauseResume holds deliveries while a destination is
// paused — from its creation, or while a delivery waits for a retry — and
// sends them on resume.
func TestDestinationsPauseResume(t *testing.T) {
	t.Parallel()
	f := dstStart(t, dstLongSchedule)
	var failing atomic.Bool
	rc := newDstReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if failing.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	markerRc := newDstReceiver(t, nil)
	marker := f.webhook(t, markerRc, nil)

	t.Run("created paused", func(t *testing.T) {
		d := f.webhook(t, rc, map[string]any{"status": "DESTINATION_STATUS_PAUSED", "workflowKeys": []string{"wf-b"}})
		if d.GetStatus() != dstPaused {
			t.Fatalf("created status = %v, want PAUSED", d.GetStatus())
		}
		run := f.shipRun(t, "u1")
		dl := f.deliveryOf(t, d.GetId(), run, evCreated)
		if dl.GetStatus() != dlvPending || dl.GetNextAttemptAt() != nil {
			t.Fatalf("delivery to a paused destination = %v, want PENDING and held", dl)
		}
		markerRc.waitFor(t, f.deliveryOf(t, marker.GetId(), run, evCreated).GetId())
		if n := len(rc.requests()); n != 0 {
			t.Fatalf("the paused destination got %d requests", n)
		}
		f.patchDestination(t, d.GetId(), `{"status":"DESTINATION_STATUS_ACTIVE"}`)
		f.waitStatus(t, dl.GetId(), dlvSucceeded)
		if ids := webhookIDs(rc.requests()); !slices.Equal(ids, []string{dl.GetId()}) {
			t.Fatalf("after resume the receiver got %v, want [%s]", ids, dl.GetId())
		}
	})

	t.Run("paused while retrying", func(t *testing.T) {
		failing.Store(true)
		before := len(rc.requests())
		d := f.webhook(t, rc, map[string]any{"workflowKeys": []string{"wf-a"}})
		run := f.orderRun(t, "u1", "o-1")
		dl := f.waitDelivery(t, f.deliveryOf(t, d.GetId(), run, evCreated).GetId(), "to fail once",
			func(d *harkv1.Delivery) bool { return d.GetAttemptCount() >= 1 })
		if p := f.patchDestination(t, d.GetId(), `{"status":"DESTINATION_STATUS_PAUSED"}`); p.GetStatus() != dstPaused {
			t.Fatalf("paused status = %v", p.GetStatus())
		}
		// Its next retry finds the destination paused and holds it.
		dl = f.waitDelivery(t, dl.GetId(), "to be held", func(d *harkv1.Delivery) bool { return d.GetNextAttemptAt() == nil })
		if dl.GetStatus() != dlvPending {
			t.Fatalf("held delivery = %v, want PENDING", dl)
		}
		if sent := len(rc.requests()) - before; sent != int(dl.GetAttemptCount()) {
			t.Fatalf("receiver got %d requests, the delivery records %d attempts", sent, dl.GetAttemptCount())
		}
		// A new run while paused is held too.
		run2 := f.orderRun(t, "u2", "o-2")
		dl2 := f.deliveryOf(t, d.GetId(), run2, evCreated)
		failing.Store(false)
		if p := f.patchDestination(t, d.GetId(), `{"status":"DESTINATION_STATUS_ACTIVE"}`); p.GetStatus() != dstActive {
			t.Fatalf("resumed status = %v", p.GetStatus())
		}
		last := f.waitStatus(t, dl.GetId(), dlvSucceeded)
		if a := last.GetAttempts(); a[len(a)-1].GetStatusCode() != http.StatusOK || last.GetAttemptCount() != dl.GetAttemptCount()+1 {
			t.Fatalf("resumed delivery = %v, want one more attempt, answered 200", last)
		}
		f.waitStatus(t, dl2.GetId(), dlvSucceeded)
	})
}

// TestDestinationsBacklogDrainsOnResume resumes a paused destination that
// collected more deliveries than it is sent at once: each attempt that ends
// makes room for the next, so the backlog goes out as fast as the receiver
// answers, not a few per dispatcher poll.
func TestDestinationsBacklogDrainsOnResume(t *testing.T) {
	t.Parallel()
	f := dstStart(t, dstFastSchedule)
	rc := newDstReceiver(t, nil)
	d := f.webhook(t, rc, map[string]any{"status": "DESTINATION_STATUS_PAUSED"})
	const backlog = 300
	events := make([]map[string]any, backlog)
	for i := range events {
		events[i] = map[string]any{"type": "track", "event": "Ordered", "userId": "u1", "properties": map[string]any{"order": fmt.Sprint("o-", i)}}
	}
	f.post(t, "development", events...)
	held := f.deliveries(t, url.Values{"destinationId": {d.GetId()}, "status": {"DELIVERY_STATUS_PENDING"}, "pageSize": {"1000"}})
	if len(held) != backlog {
		t.Fatalf("paused destination holds %d deliveries, want %d", len(held), backlog)
	}
	f.patchDestination(t, d.GetId(), `{"status":"DESTINATION_STATUS_ACTIVE"}`)
	eventually(t, "the backlog to be delivered", func() bool {
		return len(f.deliveries(t, url.Values{"destinationId": {d.GetId()}, "status": {"DELIVERY_STATUS_PENDING"}})) == 0
	})
	if got := f.deliveries(t, url.Values{"destinationId": {d.GetId()}, "status": {"DELIVERY_STATUS_SUCCEEDED"}, "pageSize": {"1000"}}); len(got) != backlog {
		t.Fatalf("%d deliveries succeeded, want %d", len(got), backlog)
	}
	ids := map[string]bool{}
	for _, id := range webhookIDs(rc.requests()) {
		ids[id] = true
	}
	if len(ids) != backlog {
		t.Fatalf("receiver got %d distinct webhook-ids, want %d", len(ids), backlog)
	}
}

// TestDestinationsDeleteFailsHeld deletes a paused destination: its held
// deliveries are not left PENDING for ever but FAILED, saying why, like the
// due ones.
func TestDestinationsDeleteFailsHeld(t *testing.T) {
	t.Parallel()
	f := dstStart(t, dstFastSchedule)
	rc := newDstReceiver(t, nil)
	d := f.webhook(t, rc, map[string]any{"status": "DESTINATION_STATUS_PAUSED"})
	run := f.orderRun(t, "u1", "o-1")
	dl := f.deliveryOf(t, d.GetId(), run, evCreated)
	if dl.GetStatus() != dlvPending || dl.GetNextAttemptAt() != nil {
		t.Fatalf("delivery to a paused destination = %v, want held", dl)
	}
	wantStatus(t, f.h.rest(t, http.MethodDelete, "/v1/environments/development/destinations/"+d.GetId(), ""), http.StatusOK)
	wantStatus(t, f.h.rest(t, http.MethodGet, "/v1/environments/development/destinations/"+d.GetId(), ""), http.StatusNotFound)
	got := f.waitStatus(t, dl.GetId(), dlvFailed)
	if a := got.GetAttempts(); len(a) != 1 || !strings.Contains(a[0].GetError(), "deleted") || got.GetNextAttemptAt() != nil {
		t.Fatalf("delivery of a deleted destination = %v, want FAILED with the reason", got)
	}
	if rd := f.run(t, "development", run).GetDeliveries(); len(rd) != 1 || rd[0].GetStatus() != dlvFailed {
		t.Fatalf("run deliveries = %v, want the one FAILED", rd)
	}
	if n := len(rc.requests()); n != 0 {
		t.Fatalf("the deleted destination's receiver got %d requests", n)
	}
	// Retrying it has nowhere to go.
	wantStatus(t, f.h.rest(t, http.MethodPost, "/v1/environments/development/deliveries/"+dl.GetId()+":retry", `{}`), http.StatusNotFound)
}

// ---------------------------------------------------------------------------
// Faults: timeouts, redirects, a moved receiver, a stop mid-attempt.
// ---------------------------------------------------------------------------

// TestDestinationsAttemptTimeout gives a receiver that does not answer in
// time a failed attempt with no status, then retries it.
func TestDestinationsAttemptTimeout(t *testing.T) {
	t.Parallel()
	// Long enough for a loaded machine to answer the second attempt in.
	f := dstStart(t, dstFastSchedule, func(c *server.Config) { c.DeliveryTimeout = time.Second })
	rc := newDstReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 0 {
			<-r.Context().Done() // hark gives up and closes the connection
		}
	})
	d := f.webhook(t, rc, nil)
	dl := f.waitStatus(t, f.deliveryOf(t, d.GetId(), f.orderRun(t, "u1", "o-1"), evCreated).GetId(), dlvSucceeded)
	a := dl.GetAttempts()
	if len(a) != 2 || a[0].GetStatusCode() != 0 || !strings.Contains(a[0].GetError(), "no answer within 1s") || a[1].GetStatusCode() != http.StatusOK {
		t.Fatalf("attempts = %v, want a timeout without a status, then a 200", a)
	}
	if ids := webhookIDs(rc.requests()); !slices.Equal(ids, []string{dl.GetId(), dl.GetId()}) {
		t.Fatalf("receiver got %v, want %s twice", ids, dl.GetId())
	}
}

// TestDestinationsRedirectNotFollowed answers 307 to another receiver: the
// signed body is not sent there, the attempt fails naming the Location, and
// a changed URL takes the delivery's retries.
func TestDestinationsRedirectNotFollowed(t *testing.T) {
	t.Parallel()
	f := dstStart(t, dstLongSchedule)
	elsewhere := newDstReceiver(t, nil)
	moved := newDstReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.url(), http.StatusTemporaryRedirect)
	})
	d := f.webhook(t, moved, nil)
	dl := f.waitDelivery(t, f.deliveryOf(t, d.GetId(), f.orderRun(t, "u1", "o-1"), evCreated).GetId(), "to be redirected",
		func(d *harkv1.Delivery) bool { return d.GetAttemptCount() >= 1 })
	a := dl.GetAttempts()[0]
	if a.GetStatusCode() != http.StatusTemporaryRedirect || !strings.Contains(a.GetError(), "redirects are not followed") || !strings.Contains(a.GetError(), elsewhere.url()) {
		t.Fatalf("redirected attempt = %v, want the 307, refused, naming the Location", a)
	}
	if dl.GetStatus() != dlvPending || dl.GetNextAttemptAt() == nil {
		t.Fatalf("redirected delivery = %v, want PENDING and due again", dl)
	}
	if n := len(elsewhere.requests()); n != 0 {
		t.Fatalf("the redirect target got %d requests", n)
	}
	// The user moves the destination: the pending delivery's next attempt
	// goes to the new URL, with its id.
	f.patchDestination(t, d.GetId(), `{"url":"`+elsewhere.url()+`"}`)
	f.waitStatus(t, dl.GetId(), dlvSucceeded)
	reqs := elsewhere.waitFor(t, dl.GetId())
	verifyWebhook(t, d.GetSigningSecret(), reqs[0])
}

// TestDestinationsStopMidAttempt stops the server while an attempt waits
// for its receiver: the attempt is cut short and not recorded, and the next
// server sends the delivery again, with its webhook-id.
func TestDestinationsStopMidAttempt(t *testing.T) {
	t.Parallel()
	f := dstStart(t, dstFastSchedule)
	var blocked atomic.Bool
	blocked.Store(true)
	rc := newDstReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if blocked.Load() {
			<-r.Context().Done()
		}
	})
	d := f.webhook(t, rc, nil)
	dl := f.deliveryOf(t, d.GetId(), f.orderRun(t, "u1", "o-1"), evCreated)
	rc.waitFor(t, dl.GetId())
	f.h.stop(t)
	blocked.Store(false)

	cfg := f.h.config()
	f.config(&cfg)
	f.h.serveConfig(t, listen(t), cfg)
	done := f.waitStatus(t, dl.GetId(), dlvSucceeded)
	if done.GetAttemptCount() != 1 || len(done.GetAttempts()) != 1 {
		t.Fatalf("delivery = %v, want one recorded attempt: the one cut short by the stop is not", done)
	}
	reqs := rc.requests()
	if ids := webhookIDs(reqs); !slices.Equal(ids, []string{dl.GetId(), dl.GetId()}) {
		t.Fatalf("receiver got %v, want %s before and after the stop", ids, dl.GetId())
	}
	for _, req := range reqs {
		verifyWebhook(t, d.GetSigningSecret(), req)
	}
}

// ---------------------------------------------------------------------------
// 8. FAILED after the schedule; RetryDelivery.
// ---------------------------------------------------------------------------

// TestDestinationsFailedAndRetried lets a delivery use up its schedule
// (FAILED), retries it through REST once the receiver works (SUCCEEDED,
// same webhook-id), and refuses to retry a SUCCEEDED one.
func TestDestinationsFailedAndRetried(t *testing.T) {
	t.Parallel()
	f := dstStart(t, dstFastSchedule)
	var working atomic.Bool
	rc := newDstReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if !working.Load() {
			w.WriteHeader(http.StatusBadGateway)
		}
	})
	d := f.webhook(t, rc, nil)
	run := f.orderRun(t, "u1", "o-1")
	dl := f.waitStatus(t, f.deliveryOf(t, d.GetId(), run, evCreated).GetId(), dlvFailed)
	if dl.GetAttemptCount() != int32(len(dstFastSchedule)) || len(dl.GetAttempts()) != len(dstFastSchedule) || dl.GetNextAttemptAt() != nil {
		t.Fatalf("exhausted delivery = %v, want FAILED after %d attempts", dl, len(dstFastSchedule))
	}
	for i, a := range dl.GetAttempts() {
		if a.GetStatusCode() != http.StatusBadGateway || !strings.Contains(a.GetError(), "502") {
			t.Errorf("attempt %d = %v, want the 502", i, a)
		}
	}
	if got := f.run(t, "development", run).GetDeliveries(); len(got) != 1 || got[0].GetStatus() != dlvFailed {
		t.Fatalf("run deliveries = %v, want the one FAILED", got)
	}

	// Retry through REST once the receiver works: the same delivery, the same
	// webhook-id, its schedule restarted and its attempts kept.
	working.Store(true)
	r := f.h.rest(t, http.MethodPost, "/v1/environments/development/deliveries/"+dl.GetId()+":retry", `{}`)
	wantStatus(t, r, http.StatusOK)
	if got := decode(t, r, &harkv1.Delivery{}); got.GetId() != dl.GetId() || got.GetStatus() != dlvPending || got.GetNextAttemptAt() == nil {
		t.Fatalf("RetryDelivery answered %v, want the delivery PENDING and due", got)
	}
	done := f.waitStatus(t, dl.GetId(), dlvSucceeded)
	if done.GetAttemptCount() != 1 || len(done.GetAttempts()) != len(dstFastSchedule)+1 || done.GetAttempts()[len(dstFastSchedule)].GetStatusCode() != http.StatusOK {
		t.Fatalf("retried delivery = %v, want SUCCEEDED by the first attempt of the new schedule, the old attempts kept", done)
	}
	reqs := rc.requests()
	if ids := webhookIDs(reqs); !slices.Equal(ids, slices.Repeat([]string{dl.GetId()}, len(dstFastSchedule)+1)) {
		t.Fatalf("receiver got webhook-ids %v, want %s every time", ids, dl.GetId())
	}
	for _, req := range reqs {
		verifyWebhook(t, d.GetSigningSecret(), req)
	}

	// A SUCCEEDED delivery cannot be retried: FailedPrecondition, which is
	// HTTP 400, over REST and Connect; an unknown one is 404.
	r = f.h.rest(t, http.MethodPost, "/v1/environments/development/deliveries/"+dl.GetId()+":retry", `{}`)
	wantStatus(t, r, http.StatusBadRequest)
	if !strings.Contains(string(r.body), "SUCCEEDED") {
		t.Errorf("retry of a SUCCEEDED delivery: %s, want the reason", r.body)
	}
	_, err := call(t, f.deliveryClient().RetryDelivery, &harkv1.RetryDeliveryRequest{Environment: "development", Id: dl.GetId()})
	wantCode(t, err, connect.CodeFailedPrecondition)
	wantStatus(t, f.h.rest(t, http.MethodPost, "/v1/environments/development/deliveries/dlv_nope:retry", `{}`), http.StatusNotFound)
	if n := len(rc.requests()); n != len(reqs) {
		t.Fatalf("refused retries sent %d more requests", n-len(reqs))
	}
}

// ---------------------------------------------------------------------------
// 9. Retry-After.
// ---------------------------------------------------------------------------

// TestDestinationsRetryAfter answers 429 and 503 with Retry-After: the
// recorded second attempt is not earlier than the receiver asked.
func TestDestinationsRetryAfter(t *testing.T) {
	t.Parallel()
	f := dstStart(t, dstFastSchedule)
	// Longer than the dispatcher's poll (1 s) and than the schedule's wait
	// (50 ms), so an attempt that ignored it would come sooner.
	const retryAfter = 2 * time.Second
	type dest struct {
		code int
		d    *harkv1.Destination
	}
	var dests []dest
	for _, code := range []int{http.StatusTooManyRequests, http.StatusServiceUnavailable} {
		rc := newDstReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
			if n == 0 {
				w.Header().Set("Retry-After", strconv.Itoa(int(retryAfter/time.Second)))
				w.WriteHeader(code)
			}
		})
		dests = append(dests, dest{code, f.webhook(t, rc, nil)})
	}
	run := f.orderRun(t, "u1", "o-1")
	for _, c := range dests {
		dl := f.waitStatus(t, f.deliveryOf(t, c.d.GetId(), run, evCreated).GetId(), dlvSucceeded)
		a := dl.GetAttempts()
		if len(a) != 2 || int(a[0].GetStatusCode()) != c.code || a[1].GetStatusCode() != http.StatusOK {
			t.Fatalf("%d: attempts %v, want the %d then a 200", c.code, a, c.code)
		}
		// The retry was scheduled when the first attempt ended, Retry-After
		// from then.
		earliest := a[0].GetStartedAt().AsTime().Add(a[0].GetDuration().AsDuration()).Add(retryAfter)
		if next := a[1].GetStartedAt().AsTime(); next.Before(earliest) {
			t.Fatalf("%d: second attempt at %s, before the Retry-After allowed (%s)", c.code, next.Format(time.RFC3339Nano), earliest.Format(time.RFC3339Nano))
		}
	}
}

// ---------------------------------------------------------------------------
// 10. ReplayDeliveries.
// ---------------------------------------------------------------------------

// TestDestinationsReplay replays a time range to one destination: new
// deliveries, with new ids, carrying each change as it was first sent, and
// nothing to the other destinations.
func TestDestinationsReplay(t *testing.T) {
	t.Parallel()
	f := dstStart(t, dstFastSchedule)
	rc := newDstReceiver(t, nil)
	otherRc := newDstReceiver(t, nil)
	d := f.webhook(t, rc, nil)
	other := f.webhook(t, otherRc, nil)
	onlyB := f.webhook(t, newDstReceiver(t, nil), map[string]any{"workflowKeys": []string{"wf-b"}})

	since := time.Now().Add(-time.Second)
	run1 := f.orderRun(t, "u1", "o-1")
	run2 := f.mustTriggerWorkflow(t, "development", "wf-a", `{"recipients":["u2"],"cancellationKey":"ck-r"}`)
	f.cancel(t, "development", "wf-a", `{"cancellationKey":"ck-r"}`)
	original := map[string]bool{}
	for _, dl := range f.deliveries(t, url.Values{"destinationId": {d.GetId()}}) {
		f.waitStatus(t, dl.GetId(), dlvSucceeded)
		original[dl.GetId()] = true
	}
	if len(original) != 3 {
		t.Fatalf("destination has %d deliveries, want 3 (two created, one cancelled)", len(original))
	}
	until := time.Now().Add(time.Second)
	type change struct{ run, event string }
	// The message each delivery carried, by webhook-id.
	messages := func() map[string]dstMessage {
		out := map[string]dstMessage{}
		for _, req := range rc.requests() {
			msg, _ := verifyWebhook(t, d.GetSigningSecret(), req)
			out[req.header.Get("webhook-id")] = msg
		}
		return out
	}
	sentFirst := map[change]dstMessage{}
	for id, msg := range messages() {
		dl := f.delivery(t, id)
		sentFirst[change{dl.GetWorkflowRunId(), dl.GetEventType()}] = msg
	}
	if len(sentFirst) != 3 {
		t.Fatalf("receiver got %d changes, want 3", len(sentFirst))
	}

	r := f.h.rest(t, http.MethodPost, "/v1/environments/development/destinations/"+d.GetId()+":replay",
		trgJSON(t, map[string]any{"since": since.Format(time.RFC3339Nano), "until": until.Format(time.RFC3339Nano)}))
	wantStatus(t, r, http.StatusOK)
	if got := decode(t, r, &harkv1.ReplayDeliveriesResponse{}).GetQueuedCount(); got != 3 {
		t.Fatalf("queuedCount = %d, want 3", got)
	}
	all := f.deliveries(t, url.Values{"destinationId": {d.GetId()}})
	if len(all) != 6 {
		t.Fatalf("destination has %d deliveries after the replay, want 6", len(all))
	}
	var replayed []change
	for _, dl := range all {
		if original[dl.GetId()] {
			continue
		}
		dl = f.waitStatus(t, dl.GetId(), dlvSucceeded)
		c := change{dl.GetWorkflowRunId(), dl.GetEventType()}
		replayed = append(replayed, c)
		rc.waitFor(t, dl.GetId())
		// A replay sends the change again as it was first sent: a created
		// run shows the run as created, even when it was cancelled since.
		msg := messages()[dl.GetId()]
		first := sentFirst[c]
		if msg.Type != first.Type || msg.Timestamp != first.Timestamp {
			t.Errorf("replayed %v is %s at %s, want %s at %s as first sent", c, msg.Type, msg.Timestamp, first.Type, first.Timestamp)
		}
		var got, want harkv1.WorkflowRun
		if err := protojson.Unmarshal(msg.Data, &got); err != nil {
			t.Fatal(err)
		}
		if err := protojson.Unmarshal(first.Data, &want); err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(sameRun(&got), sameRun(&want)) {
			t.Errorf("replayed %v carries the run\n%v\nwant it as first sent\n%v", c, &got, &want)
		}
	}
	slices.SortFunc(replayed, func(a, b change) int { return strings.Compare(a.run+a.event, b.run+b.event) })
	want := []change{{run1, evCreated}, {run2, evCancelled}, {run2, evCreated}}
	slices.SortFunc(want, func(a, b change) int { return strings.Compare(a.run+a.event, b.run+b.event) })
	if !slices.Equal(replayed, want) {
		t.Fatalf("replayed %v, want %v", replayed, want)
	}
	if n := len(rc.requests()); n != 6 {
		t.Fatalf("receiver got %d requests, want 6 (each change twice)", n)
	}
	// Only that destination.
	if got := f.deliveries(t, url.Values{"destinationId": {other.GetId()}}); len(got) != 3 {
		t.Fatalf("the other destination has %d deliveries, want its 3", len(got))
	}

	// Over Connect; a range after every run, and a destination whose filter
	// takes none of them, queue nothing.
	later := time.Now()
	res := mustCall(t, f.deliveryClient().ReplayDeliveries, &harkv1.ReplayDeliveriesRequest{
		Environment: "development", DestinationId: d.GetId(), Since: timestampOf(later), Until: timestampOf(later.Add(time.Minute)),
	})
	if res.GetQueuedCount() != 0 {
		t.Fatalf("replay of an empty range queued %d", res.GetQueuedCount())
	}
	res = mustCall(t, f.deliveryClient().ReplayDeliveries, &harkv1.ReplayDeliveriesRequest{
		Environment: "development", DestinationId: onlyB.GetId(), Since: timestampOf(since),
	})
	if res.GetQueuedCount() != 0 {
		t.Fatalf("replay to a wf-b destination of wf-a runs queued %d", res.GetQueuedCount())
	}

	// Bad requests.
	path := "/v1/environments/development/destinations/" + d.GetId() + ":replay"
	r = f.h.rest(t, http.MethodPost, path, `{}`)
	wantStatus(t, r, http.StatusBadRequest)
	wantViolation(t, restViolations(t, r), "since")
	r = f.h.rest(t, http.MethodPost, path, trgJSON(t, map[string]any{"since": until.Format(time.RFC3339Nano), "until": since.Format(time.RFC3339Nano)}))
	wantStatus(t, r, http.StatusBadRequest)
	wantViolation(t, restViolations(t, r), "until")
	wantStatus(t, f.h.rest(t, http.MethodPost, "/v1/environments/development/destinations/dst_nope:replay",
		trgJSON(t, map[string]any{"since": since.Format(time.RFC3339Nano)})), http.StatusNotFound)
}

// ---------------------------------------------------------------------------
// 11. TestDestination.
// ---------------------------------------------------------------------------

// TestDestinationsTestPing sends a signed ping and returns its attempt,
// for a receiver that answers 200 and one that answers 404; knock and
// segment destinations refuse it with FailedPrecondition.
func TestDestinationsTestPing(t *testing.T) {
	t.Parallel()
	f := dstStart(t, dstFastSchedule)
	rc := newDstReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 1 {
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, "no such hook")
			return
		}
		io.WriteString(w, "pong")
	})
	d := f.webhook(t, rc, nil)

	r := f.h.rest(t, http.MethodPost, "/v1/environments/development/destinations/"+d.GetId()+":test", `{}`)
	wantStatus(t, r, http.StatusOK)
	a := decode(t, r, &harkv1.TestDestinationResponse{}).GetAttempt()
	if a.GetStatusCode() != http.StatusOK || a.GetError() != "" || a.GetResponseBody() != "pong" || a.GetStartedAt() == nil || a.GetDuration() == nil {
		t.Fatalf("ping attempt = %v, want the receiver's 200 and answer", a)
	}
	reqs := rc.requests()
	if len(reqs) != 1 {
		t.Fatalf("receiver got %d requests, want the ping", len(reqs))
	}
	msg, run := verifyWebhook(t, d.GetSigningSecret(), reqs[0])
	if msg.Type != "ping" || run != nil {
		t.Fatalf("ping message = %+v, want type ping", msg)
	}
	var data map[string]any
	if err := json.Unmarshal(msg.Data, &data); err != nil || data["destinationId"] != d.GetId() || data["environment"] != "development" {
		t.Fatalf("ping data = %s, want the destination and environment", msg.Data)
	}
	// A failing receiver is reported in the attempt, not as an API error.
	res := mustCall(t, f.destinationClient().TestDestination, &harkv1.TestDestinationRequest{Environment: "development", Id: d.GetId()})
	if a := res.GetAttempt(); a.GetStatusCode() != http.StatusNotFound || !strings.Contains(a.GetError(), "404") || a.GetResponseBody() != "no such hook" {
		t.Fatalf("ping of a 404 receiver = %v, want the 404 reported", a)
	}
	// Pings are not deliveries.
	if got := f.deliveries(t, url.Values{}); len(got) != 0 {
		t.Fatalf("pings left deliveries: %v", got)
	}

	// Knock and Segment have no call without side effects.
	for _, typ := range []struct{ typ, setting string }{{"knock", "api_key"}, {"segment", "write_key"}} {
		other := f.createDestination(t, map[string]any{"type": typ.typ, "url": rc.srv.URL, "settings": map[string]string{typ.setting: "k"}})
		r := f.h.rest(t, http.MethodPost, "/v1/environments/development/destinations/"+other.GetId()+":test", `{}`)
		wantStatus(t, r, http.StatusBadRequest)
		if !strings.Contains(string(r.body), "webhook") {
			t.Errorf("%s ping refusal %s does not say pings are for webhooks", typ.typ, r.body)
		}
		_, err := call(t, f.destinationClient().TestDestination, &harkv1.TestDestinationRequest{Environment: "development", Id: other.GetId()})
		wantCode(t, err, connect.CodeFailedPrecondition)
	}
	if n := len(rc.requests()); n != 2 {
		t.Fatalf("receiver got %d requests, want the two webhook pings only", n)
	}
	wantStatus(t, f.h.rest(t, http.MethodPost, "/v1/environments/development/destinations/dst_nope:test", `{}`), http.StatusNotFound)
}

// ---------------------------------------------------------------------------
// 12. RotateDestinationSecret.
// ---------------------------------------------------------------------------

// TestDestinationsRotateSecret rotates a webhook's secret: during the
// overlap both signatures are sent and the official library verifies with
// either secret; a second rotation drops the oldest.
func TestDestinationsRotateSecret(t *testing.T) {
	t.Parallel()
	f := dstStart(t, dstFastSchedule)
	rc := newDstReceiver(t, nil)
	d := f.webhook(t, rc, nil)
	oldSecret := d.GetSigningSecret()

	r := f.h.rest(t, http.MethodPost, "/v1/environments/development/destinations/"+d.GetId()+":rotateSecret", `{}`)
	wantStatus(t, r, http.StatusOK)
	rotated := decode(t, r, &harkv1.Destination{})
	newSecret := rotated.GetSigningSecret()
	if !strings.HasPrefix(newSecret, delivery.SecretPrefix) || newSecret == oldSecret {
		t.Fatalf("rotated signingSecret = %q, want a new whsec_ secret", newSecret)
	}
	if exp := rotated.GetPreviousSecretExpiresAt().AsTime(); time.Until(exp) < 23*time.Hour || time.Until(exp) > 25*time.Hour {
		t.Fatalf("previousSecretExpiresAt = %s, want 24 h from now", exp)
	}
	if got := f.getDestination(t, d.GetId()); got.GetSigningSecret() != "" || !proto.Equal(got.GetPreviousSecretExpiresAt(), rotated.GetPreviousSecretExpiresAt()) {
		t.Fatalf("GetDestination after rotation = %v, want no secret and the overlap's end", got)
	}

	dl := f.deliveryOf(t, d.GetId(), f.orderRun(t, "u1", "o-1"), evCreated)
	reqs := rc.waitFor(t, dl.GetId())
	sig := reqs[0].header.Get("webhook-signature")
	if parts := strings.Fields(sig); len(parts) != 2 || !strings.HasPrefix(parts[0], "v1,") || !strings.HasPrefix(parts[1], "v1,") {
		t.Fatalf("webhook-signature = %q, want two v1 signatures during the overlap", sig)
	}
	wantVerifies(t, newSecret, reqs[0], true)
	wantVerifies(t, oldSecret, reqs[0], true)
	wantVerifies(t, delivery.NewSecret(), reqs[0], false)
	// A ping is signed the same way.
	mustCall(t, f.destinationClient().TestDestination, &harkv1.TestDestinationRequest{Environment: "development", Id: d.GetId()})
	ping := rc.waitRequests(t, 2)[1]
	wantVerifies(t, newSecret, ping, true)
	wantVerifies(t, oldSecret, ping, true)

	// Over Connect; a second rotation drops the oldest secret.
	res := mustCall(t, f.destinationClient().RotateDestinationSecret, &harkv1.RotateDestinationSecretRequest{Environment: "development", Id: d.GetId()})
	third := res.GetDestination().GetSigningSecret()
	mustCall(t, f.destinationClient().TestDestination, &harkv1.TestDestinationRequest{Environment: "development", Id: d.GetId()})
	ping = rc.waitRequests(t, 3)[2]
	wantVerifies(t, third, ping, true)
	wantVerifies(t, newSecret, ping, true)
	wantVerifies(t, oldSecret, ping, false)

	// Knock destinations have no signing secret.
	k := f.createDestination(t, map[string]any{"type": "knock", "settings": map[string]string{"api_key": "sk"}})
	if k.GetUrl() != "" {
		t.Fatalf("knock url = %q, want empty (Knock's default)", k.GetUrl())
	}
	_, err := call(t, f.destinationClient().RotateDestinationSecret, &harkv1.RotateDestinationSecretRequest{Environment: "development", Id: k.GetId()})
	wantCode(t, err, connect.CodeFailedPrecondition)
}

// ---------------------------------------------------------------------------
// 13. A slow receiver holds up only itself.
// ---------------------------------------------------------------------------

// TestDestinationsSlowReceiverIsolation blocks one receiver with a backlog
// due before everything else: ingestion is answered, and another
// destination receives, while it is still blocked; it is never sent more
// than the per-destination concurrency; once it answers, its backlog goes.
func TestDestinationsSlowReceiverIsolation(t *testing.T) {
	t.Parallel()
	// The slow receiver's attempts are not cut short while the test runs.
	f := dstStart(t, delivery.Fixed{0, time.Hour}, func(c *server.Config) { c.DeliveryTimeout = 10 * time.Minute })
	release := make(chan struct{})
	slowRc := newDstReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	// Registered after the receiver, so it runs before the receiver's Close,
	// which waits for the blocked requests.
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	fastRc := newDstReceiver(t, nil)
	slow := f.webhook(t, slowRc, map[string]any{"workflowKeys": []string{"wf-a"}})
	fast := f.webhook(t, fastRc, map[string]any{"workflowKeys": []string{"wf-b"}})

	// More deliveries to the slow destination than the dispatcher reads of
	// its queue at once, all due before the fast destination's.
	const backlog = 600
	events := make([]map[string]any, backlog)
	for i := range events {
		events[i] = map[string]any{"type": "track", "event": "Ordered", "userId": "u1", "properties": map[string]any{"order": fmt.Sprint("o-", i)}}
	}
	f.post(t, "development", events...)
	// The slow receiver is holding as many attempts as hark makes at once
	// to one destination.
	eventually(t, "the slow receiver to hold its attempts", func() bool {
		return len(slowRc.requests()) == engineDeliveryConcurrency
	})

	// Ingestion is not held up: these are answered while the slow receiver
	// blocks, and the fast destination gets its run.
	runA := f.orderRun(t, "u2", "o-late")
	runB := f.shipRun(t, "u2")
	fd := f.deliveryOf(t, fast.GetId(), runB, evCreated)
	reqs := fastRc.waitFor(t, fd.GetId())
	if _, run := verifyWebhook(t, fast.GetSigningSecret(), reqs[0]); run.GetId() != runB {
		t.Fatalf("fast destination got run %s, want %s", run.GetId(), runB)
	}
	// Still blocked: nothing of the slow destination was answered, and no
	// more than its concurrency was sent.
	if n := len(slowRc.requests()); n != engineDeliveryConcurrency {
		t.Fatalf("slow receiver got %d requests while blocked, want %d (the per-destination concurrency)", n, engineDeliveryConcurrency)
	}
	if got := f.deliveries(t, url.Values{"destinationId": {slow.GetId()}, "status": {"DELIVERY_STATUS_SUCCEEDED"}}); len(got) != 0 {
		t.Fatalf("%d slow deliveries succeeded before the receiver answered", len(got))
	}

	// Once it answers, every delivery to it goes out.
	close(release)
	f.waitStatus(t, f.deliveryOf(t, slow.GetId(), runA, evCreated).GetId(), dlvSucceeded)
	eventually(t, "every slow delivery to succeed", func() bool {
		return len(f.deliveries(t, url.Values{"destinationId": {slow.GetId()}, "status": {"DELIVERY_STATUS_PENDING"}})) == 0
	})
	if got := f.deliveries(t, url.Values{"destinationId": {slow.GetId()}, "status": {"DELIVERY_STATUS_SUCCEEDED"}}); len(got) != backlog+1 {
		t.Fatalf("%d slow deliveries succeeded, want %d", len(got), backlog+1)
	}
	slowRc.mu.Lock()
	peak := slowRc.peak
	slowRc.mu.Unlock()
	if peak > engineDeliveryConcurrency {
		t.Fatalf("the slow receiver was sent %d requests at once, more than the per-destination concurrency %d", peak, engineDeliveryConcurrency)
	}
}

// engineDeliveryConcurrency is the server's attempts at once per
// destination: server.Config does not change the engine's default.
const engineDeliveryConcurrency = engine.DefaultDeliveryConcurrency

// ---------------------------------------------------------------------------
// 14. A run's deliveries; ListDeliveries filters.
// ---------------------------------------------------------------------------

// TestDestinationsListsAndRunDeliveries checks GetWorkflowRun's deliveries
// with their current statuses, and ListDeliveries' filters (destination,
// run, status) over REST and Connect.
func TestDestinationsListsAndRunDeliveries(t *testing.T) {
	t.Parallel()
	f := dstStart(t, dstFastSchedule)
	ok1 := f.webhook(t, newDstReceiver(t, nil), map[string]any{"name": "ok1"})
	ok2 := f.webhook(t, newDstReceiver(t, nil), map[string]any{"name": "ok2"})
	failing := f.webhook(t, newDstReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusInternalServerError) }), map[string]any{"name": "failing"})
	paused := f.webhook(t, newDstReceiver(t, nil), map[string]any{"name": "paused", "status": "DESTINATION_STATUS_PAUSED"})
	statusOf := map[string]harkv1.DeliveryStatus{
		ok1.GetId(): dlvSucceeded, ok2.GetId(): dlvSucceeded, failing.GetId(): dlvFailed, paused.GetId(): dlvPending,
	}

	runA := f.orderRun(t, "u1", "o-1")
	runB := f.mustTriggerWorkflow(t, "development", "wf-b", `{"recipients":["u2"]}`)
	for _, run := range []string{runA, runB} {
		for dest, status := range statusOf {
			dl := f.deliveryOf(t, dest, run, evCreated)
			if status != dlvPending {
				f.waitStatus(t, dl.GetId(), status)
			}
		}
	}

	// GetWorkflowRun, over REST and Connect, lists the run's deliveries with
	// their current statuses.
	wantRun := func(t *testing.T, run *harkv1.WorkflowRun) {
		t.Helper()
		got := map[string]harkv1.DeliveryStatus{}
		for _, rd := range run.GetDeliveries() {
			if rd.GetEventType() != evCreated || !strings.HasPrefix(rd.GetDeliveryId(), "dlv_") {
				t.Fatalf("run delivery = %v", rd)
			}
			got[rd.GetDestinationId()] = rd.GetStatus()
		}
		if !reflect.DeepEqual(got, statusOf) {
			t.Fatalf("run %s lists deliveries %v, want %v", run.GetId(), got, statusOf)
		}
	}
	wantRun(t, f.run(t, "development", runA))
	cr := mustCall(t, f.runClient().GetWorkflowRun, &harkv1.GetWorkflowRunRequest{Environment: "development", Id: runB})
	wantRun(t, cr.GetWorkflowRun())

	// ListDeliveries filters, over REST and Connect.
	ids := func(ds []*harkv1.Delivery) []string {
		out := make([]string, len(ds))
		for i, d := range ds {
			out[i] = d.GetId()
		}
		return out
	}
	all := f.deliveries(t, url.Values{})
	if len(all) != 8 || !slices.IsSortedFunc(all, func(a, b *harkv1.Delivery) int { return strings.Compare(b.GetId(), a.GetId()) }) {
		t.Fatalf("deliveries = %v, want 8, newest first", ids(all))
	}
	for _, d := range all {
		if len(d.GetAttempts()) != 0 {
			t.Fatalf("listed delivery %s carries its attempts; GetDelivery has them", d.GetId())
		}
	}
	if paged := f.deliveries(t, url.Values{"pageSize": {"3"}}); !slices.Equal(ids(paged), ids(all)) {
		t.Fatalf("deliveries by pages of 3 = %v, want %v", ids(paged), ids(all))
	}
	for _, c := range []struct {
		name string
		q    url.Values
		req  *harkv1.ListDeliveriesRequest
		keep func(*harkv1.Delivery) bool
	}{
		{"destination", url.Values{"destinationId": {ok1.GetId()}}, &harkv1.ListDeliveriesRequest{DestinationId: ok1.GetId()},
			func(d *harkv1.Delivery) bool { return d.GetDestinationId() == ok1.GetId() }},
		{"run", url.Values{"workflowRunId": {runA}}, &harkv1.ListDeliveriesRequest{WorkflowRunId: runA},
			func(d *harkv1.Delivery) bool { return d.GetWorkflowRunId() == runA }},
		{"failed", url.Values{"status": {"DELIVERY_STATUS_FAILED"}}, &harkv1.ListDeliveriesRequest{Status: dlvFailed},
			func(d *harkv1.Delivery) bool { return d.GetDestinationId() == failing.GetId() }},
		{"pending", url.Values{"status": {"DELIVERY_STATUS_PENDING"}}, &harkv1.ListDeliveriesRequest{Status: dlvPending},
			func(d *harkv1.Delivery) bool { return d.GetDestinationId() == paused.GetId() }},
		{"succeeded of a run", url.Values{"status": {"DELIVERY_STATUS_SUCCEEDED"}, "workflowRunId": {runB}},
			&harkv1.ListDeliveriesRequest{Status: dlvSucceeded, WorkflowRunId: runB},
			func(d *harkv1.Delivery) bool {
				return d.GetWorkflowRunId() == runB && statusOf[d.GetDestinationId()] == dlvSucceeded
			}},
		{"all three", url.Values{"destinationId": {failing.GetId()}, "workflowRunId": {runB}, "status": {"DELIVERY_STATUS_FAILED"}},
			&harkv1.ListDeliveriesRequest{DestinationId: failing.GetId(), WorkflowRunId: runB, Status: dlvFailed},
			func(d *harkv1.Delivery) bool {
				return d.GetDestinationId() == failing.GetId() && d.GetWorkflowRunId() == runB
			}},
		{"nothing", url.Values{"destinationId": {paused.GetId()}, "status": {"DELIVERY_STATUS_SUCCEEDED"}},
			&harkv1.ListDeliveriesRequest{DestinationId: paused.GetId(), Status: dlvSucceeded},
			func(*harkv1.Delivery) bool { return false }},
	} {
		t.Run(c.name, func(t *testing.T) {
			var want []string
			for _, d := range all {
				if c.keep(d) {
					want = append(want, d.GetId())
				}
			}
			if got := ids(f.deliveries(t, c.q)); !slices.Equal(got, want) {
				t.Errorf("REST %v = %v, want %v", c.q, got, want)
			}
			c.req.Environment = "development"
			res := mustCall(t, f.deliveryClient().ListDeliveries, c.req)
			if got := ids(res.GetDeliveries()); !slices.Equal(got, want) {
				t.Errorf("Connect %v = %v, want %v", c.req, got, want)
			}
		})
	}
	// GetDelivery over Connect has the attempts.
	failed := f.deliveryOf(t, failing.GetId(), runA, evCreated)
	gd := mustCall(t, f.deliveryClient().GetDelivery, &harkv1.GetDeliveryRequest{Environment: "development", Id: failed.GetId()})
	if len(gd.GetDelivery().GetAttempts()) != len(dstFastSchedule) {
		t.Fatalf("GetDelivery = %v, want its %d attempts", gd.GetDelivery(), len(dstFastSchedule))
	}
	_, err := call(t, f.deliveryClient().GetDelivery, &harkv1.GetDeliveryRequest{Environment: "development", Id: "dlv_nope"})
	wantCode(t, err, connect.CodeNotFound)
	r := f.h.rest(t, http.MethodGet, "/v1/environments/development/deliveries?pageToken=%21%21", "")
	wantStatus(t, r, http.StatusBadRequest)
	wantViolation(t, restViolations(t, r), "pageToken")
}

// ---------------------------------------------------------------------------
// 15. The outbox survives a backup and restore.
// ---------------------------------------------------------------------------

// TestDestinationsOutboxSurvivesBackup writes deliveries for a receiver
// that is down, backs the stopped server up with server.Backup, restores it
// into a new data dir and starts a server there with the receiver up: the
// deliveries arrive, with their ids and signed with the old secret.
func TestDestinationsOutboxSurvivesBackup(t *testing.T) {
	t.Parallel()
	f := dstStart(t, dstLongSchedule)
	// The receiver is down (it drops every connection unanswered) until it
	// comes up; then it answers 200.
	var up atomic.Bool
	rc := newDstReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if up.Load() {
			return
		}
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("receiver: hijack: %v", err)
			return
		}
		conn.Close()
	})
	d := f.webhook(t, rc, nil)
	runs := []string{
		f.orderRun(t, "u1", "o-1"),
		f.mustTriggerWorkflow(t, "development", "wf-b", `{"recipients":["u2"]}`),
	}
	var pending []string
	for _, run := range runs {
		dl := f.waitDelivery(t, f.deliveryOf(t, d.GetId(), run, evCreated).GetId(), "to fail an attempt",
			func(d *harkv1.Delivery) bool { return d.GetAttemptCount() >= 1 })
		if dl.GetStatus() != dlvPending || dl.GetNextAttemptAt() == nil || dl.GetAttempts()[0].GetStatusCode() != 0 || dl.GetAttempts()[0].GetError() == "" {
			t.Fatalf("delivery to a down receiver = %v, want PENDING, due again, the connection error recorded", dl)
		}
		pending = append(pending, dl.GetId())
	}

	// `hark backup` of the stopped server, restored into a new data dir.
	f.h.stop(t)
	var backup bytes.Buffer
	if err := server.Backup(f.h.dir, &backup, nil); err != nil {
		t.Fatalf("Backup: %v", err)
	}
	sent := len(rc.requests())
	up.Store(true)
	restored := f.on(startServerWith(t, harnessOptions{
		before: func(t *testing.T, r *harness) {
			if err := server.Restore(r.dir, bytes.NewReader(backup.Bytes()), nil); err != nil {
				t.Fatalf("Restore: %v", err)
			}
		},
		config: f.config,
	}))
	for i, id := range pending {
		dl := restored.waitStatus(t, id, dlvSucceeded)
		if dl.GetWorkflowRunId() != runs[i] || dl.GetAttempts()[len(dl.GetAttempts())-1].GetStatusCode() != http.StatusOK {
			t.Fatalf("restored delivery = %v, want run %s delivered", dl, runs[i])
		}
	}
	// The receiver got each run once it was up, with the delivery's own
	// webhook-id, signed with the secret from before the backup.
	got := map[string]string{}
	for _, req := range rc.requests()[sent:] {
		_, run := verifyWebhook(t, d.GetSigningSecret(), req)
		got[req.header.Get("webhook-id")] = run.GetId()
	}
	want := map[string]string{pending[0]: runs[0], pending[1]: runs[1]}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("after the restore the receiver got %v, want %v", got, want)
	}
	if rd := restored.run(t, "development", runs[0]).GetDeliveries(); len(rd) != 1 || rd[0].GetStatus() != dlvSucceeded {
		t.Fatalf("restored run deliveries = %v, want the one SUCCEEDED", rd)
	}
}

// ---------------------------------------------------------------------------
// 16. Metrics.
// ---------------------------------------------------------------------------

// TestDestinationsMetrics checks the delivery metrics after a success, a
// 410 and a failure waiting for its retry.
func TestDestinationsMetrics(t *testing.T) {
	t.Parallel()
	start := time.Now()
	f := dstStart(t, delivery.Fixed{0, time.Hour})
	ok := f.webhook(t, newDstReceiver(t, nil), nil)
	gone := f.webhook(t, newDstReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusGone) }), nil)
	failing := f.webhook(t, newDstReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusInternalServerError) }), nil)

	text := f.h.metricsText(t)
	for _, series := range []string{"hark_outbox_pending", "hark_outbox_oldest_pending_seconds", "hark_destinations_disabled"} {
		if v, found := dstMetric(t, text, series); !found || v != 0 {
			t.Fatalf("%s = %v (present %v) before any run, want 0", series, v, found)
		}
	}

	run := f.orderRun(t, "u1", "o-1")
	f.waitStatus(t, f.deliveryOf(t, ok.GetId(), run, evCreated).GetId(), dlvSucceeded)
	f.waitDelivery(t, f.deliveryOf(t, gone.GetId(), run, evCreated).GetId(), "to be answered 410",
		func(d *harkv1.Delivery) bool { return d.GetAttemptCount() == 1 })
	failed := f.waitDelivery(t, f.deliveryOf(t, failing.GetId(), run, evCreated).GetId(), "to fail once",
		func(d *harkv1.Delivery) bool { return d.GetAttemptCount() == 1 })
	eventually(t, "the 410 destination to be disabled", func() bool { return f.getDestination(t, gone.GetId()).GetStatus() == dstDisabled })

	text = f.h.metricsText(t)
	for series, want := range map[string]float64{
		`hark_delivery_attempts_total{destination_type="webhook",result="succeeded"}`: 1,
		`hark_delivery_attempts_total{destination_type="webhook",result="disabled"}`:  1,
		`hark_delivery_attempts_total{destination_type="webhook",result="failed"}`:    1,
		`hark_delivery_attempt_duration_seconds_count{destination_type="webhook"}`:    3,
		`hark_destinations_disabled`: 1,
		`hark_outbox_pending`:        1, // the failing one, due again in an hour
	} {
		if v, found := dstMetric(t, text, series); !found || v != want {
			t.Errorf("%s = %v (present %v), want %v", series, v, found, want)
		}
	}
	// The oldest pending delivery is the failing one: its age is at most the
	// time since it was created, which is at most the test's age.
	age, found := dstMetric(t, text, "hark_outbox_oldest_pending_seconds")
	bound := time.Since(start).Seconds()
	if !found || age <= 0 || age > bound {
		t.Errorf("hark_outbox_oldest_pending_seconds = %v (present %v), want above 0 and at most %v", age, found, bound)
	}
	if failed.GetNextAttemptAt() == nil {
		t.Errorf("the failing delivery has no next attempt: %v", failed)
	}
}

// timestampOf is t as the API's timestamp.
func timestampOf(t time.Time) *timestamppb.Timestamp { return timestamppb.New(t) }

// TestLargeBatchOfRunsIsCommittedInParts: a valid Segment batch of 4,000
// events that each start a run with a destination writes more than one
// Badger transaction holds; it is committed in parts, not refused with a
// 400 that would lose it (Segment drops what gets a 4xx).
func TestLargeBatchOfRunsIsCommittedInParts(t *testing.T) {
	t.Parallel()
	f := dstStart(t, dstFastSchedule)
	f.setIdentify(t, "development", true)
	rc := newDstReceiver(t, nil)
	f.webhook(t, rc, nil)
	const n = 4000 // the most one request may carry
	var batch bytes.Buffer
	batch.WriteString(`{"batch":[{"type":"identify","userId":"big-1","messageId":"id-0","traits":{"name":"Big"}}`)
	for i := 1; i < n; i++ {
		fmt.Fprintf(&batch, `,{"type":"track","event":"Ordered","userId":"big-1","messageId":"m-%d","properties":{"order":"o-%d"}}`, i, i)
	}
	batch.WriteString(`]}`)
	res := f.h.mustDeliver(t, f.ingestURL(t, "development"), batch.Bytes(), n)
	for i, ev := range res.GetEvents() {
		if ev.GetStatus() != trgProcessed {
			t.Fatalf("event %d = %v, want it processed", i, ev)
		}
	}
	if got := len(f.runs(t, "development", url.Values{"workflowKey": {"wf-a"}})); got != n-1 {
		t.Fatalf("the batch started %d wf-a runs, want %d", got, n-1)
	}
	if got := len(f.deliveries(t, nil)); got != n-1 {
		t.Fatalf("the batch made %d deliveries, want %d", got, n-1)
	}
}
