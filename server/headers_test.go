package server_test

import (
	"net/http"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/api/httpbody"

	harkv1 "github.com/harkhq/hark/gen/hark/v1"
	"github.com/harkhq/hark/gen/hark/v1/harkv1connect"
)

// TestEventHeaders: the request headers of a REST and of a Connect
// delivery are logged with each of its events, by lowercase name, secrets
// redacted; a dry run of a `headers.x-foo` mapping against a logged event
// uses them, with the request's headers laid over; and a delivery with
// more than 8 KiB of headers keeps 8 KiB and says how many it dropped.
func TestEventHeaders(t *testing.T) {
	t.Parallel()
	f := trgStart(t)
	ingestURL := f.ingestURL(t, "development")
	batch := []byte(`{"batch":[{"type":"track","event":"Comment Posted","userId":"u2","properties":{"n":1}},{"type":"track","event":"Comment Posted","userId":"u2","properties":{"n":2}}]}`)

	// REST: two events, one set of headers.
	res := f.h.mustDeliver(t, ingestURL, batch, 2,
		"X-Foo", "bar", "X-Tenant", "acme", "Authorization", "Basic c2VjcmV0Og==", "Cookie", "session=abc",
		"X-Signature", "deadbeef", "X-Hub-Signature-256", "sha256=abc", "Stripe-Signature", "t=1,v1=2", "X-Api-Key", "k-123")
	for _, re := range res.GetEvents() {
		ev := f.h.getEvent(t, "development", re.GetId())
		h := ev.GetHeaders()
		for name, want := range map[string]string{
			"x-foo": "bar", "x-tenant": "acme", "content-type": "application/json",
			"authorization": "[redacted]", "cookie": "[redacted]", "x-signature": "[redacted]",
			"x-hub-signature-256": "[redacted]", "stripe-signature": "[redacted]", "x-api-key": "[redacted]",
		} {
			if h[name] != want {
				t.Errorf("REST event %s header %s = %q, want %q (headers %v)", ev.GetId(), name, h[name], want, h)
			}
		}
		for name, v := range h {
			if name != strings.ToLower(name) || strings.Contains(v, "c2VjcmV0") || strings.Contains(v, "deadbeef") {
				t.Errorf("REST event header %s = %q: names must be lowercase, secrets redacted", name, v)
			}
		}
		if ev.GetHeadersDropped() != 0 {
			t.Errorf("REST event dropped %d headers, want none", ev.GetHeadersDropped())
		}
	}
	restEvent := res.GetEvents()[1].GetId()

	// Connect: the Connect request's headers.
	c := harkv1connect.NewIngestServiceClient(f.h.http, f.h.base)
	req := connect.NewRequest(&harkv1.ReceiveRequest{
		Token: ingestToken(t, ingestURL),
		Body:  &httpbody.HttpBody{ContentType: "application/json", Data: []byte(`{"type":"track","event":"Comment Posted","userId":"u2"}`)},
	})
	req.Header().Set("X-Foo", "from-connect")
	req.Header().Set("X-Webhook-Secret", "s3cr3t")
	cres, err := c.Receive(ctxFor(t), req)
	if err != nil {
		t.Fatal(err)
	}
	connectEvent := f.h.getEvent(t, "development", cres.Msg.GetEvents()[0].GetId())
	if h := connectEvent.GetHeaders(); h["x-foo"] != "from-connect" || h["x-webhook-secret"] != "[redacted]" || h["content-type"] == "" {
		t.Fatalf("Connect event headers = %v, want x-foo, the secret redacted, the content type", h)
	}
	// Over Connect, GetSourceEvent shows the same headers.
	got := mustCall(t, f.eventClient().GetSourceEvent, &harkv1.GetSourceEventRequest{Environment: "development", Id: restEvent}).GetSourceEvent()
	if got.GetHeaders()["x-foo"] != "bar" || got.GetHeaders()["authorization"] != "[redacted]" {
		t.Fatalf("Connect GetSourceEvent headers = %v", got.GetHeaders())
	}

	// Dry run of header mappings against the logged REST event.
	unsaved := map[string]any{
		"workflowKey": "new-comment", "sourceId": f.src.GetId(), "event": "Comment Posted",
		"mapping": map[string]any{"tenant": `headers["x-tenant"]`, "data": `{"foo": headers["x-foo"], "auth": headers.authorization, "n": properties.n}`},
	}
	testTrigger := func(body map[string]any) *harkv1.TestTriggerResponse {
		t.Helper()
		r := f.h.rest(t, http.MethodPost, "/v1/environments/development/triggers:test", trgJSON(t, body))
		wantStatus(t, r, http.StatusOK)
		return decode(t, r, &harkv1.TestTriggerResponse{})
	}
	dry := testTrigger(map[string]any{"trigger": unsaved, "sourceEventId": restEvent})
	data := dry.GetData().GetStructValue().GetFields()
	if dry.GetSourceEventId() != restEvent || dry.GetTenant().GetStringValue() != "acme" || data["foo"].GetStringValue() != "bar" ||
		data["auth"].GetStringValue() != "[redacted]" || data["n"].GetNumberValue() != 2 {
		t.Fatalf("dry run against %s = %v, want tenant acme, foo bar, auth redacted, n 2", restEvent, dry)
	}
	// Headers in the request are laid over the logged ones.
	dry = testTrigger(map[string]any{"trigger": unsaved, "sourceEventId": restEvent, "headers": map[string]string{"X-Foo": "override"}})
	if foo := dry.GetData().GetStructValue().GetFields()["foo"].GetStringValue(); foo != "override" || dry.GetTenant().GetStringValue() != "acme" {
		t.Fatalf("dry run with X-Foo given = foo %q, tenant %v; want override and the logged acme", foo, dry.GetTenant())
	}
	// The latest logged event (the Connect one) brings its headers too.
	if foo := testTrigger(map[string]any{"trigger": unsaved}).GetData().GetStructValue().GetFields()["foo"].GetStringValue(); foo != "from-connect" {
		t.Fatalf("dry run against the latest event: foo = %q, want from-connect", foo)
	}
	// An unknown event id is a 404.
	r := f.h.rest(t, http.MethodPost, "/v1/environments/development/triggers:test", trgJSON(t, map[string]any{"trigger": unsaved, "sourceEventId": "evt_nope"}))
	wantStatus(t, r, http.StatusNotFound)

	// The bound: 12 headers of 1 KiB each; 8 KiB of them are kept.
	var header []string
	big := strings.Repeat("v", 1000)
	for _, c := range "abcdefghijkl" {
		header = append(header, "X-Pad-"+string(c), big)
	}
	one := f.h.deliverOne(t, ingestURL, []byte(`{"type":"track","event":"Comment Posted","userId":"u2"}`), header...)
	ev := f.h.getEvent(t, "development", one.GetId())
	size, pads := 0, 0
	for name, v := range ev.GetHeaders() {
		size += len(name) + len(v)
		if strings.HasPrefix(name, "x-pad-") {
			pads++
		}
	}
	if size > 8<<10 || pads == 0 || ev.GetHeadersDropped() == 0 || pads+int(ev.GetHeadersDropped()) != 12 {
		t.Fatalf("bounded headers: %d bytes, %d pads kept, %d dropped; want at most 8 KiB, the rest counted", size, pads, ev.GetHeadersDropped())
	}
	if ev.GetHeaders()["x-pad-a"] != big {
		t.Fatalf("bounded headers dropped x-pad-a; the first names are kept whole")
	}
}
