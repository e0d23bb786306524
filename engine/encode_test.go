package engine

import (
	"maps"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// TestEncodeFixedThenOutcome checks that the two-part encoding of the ingest
// path decodes to exactly the event, outcome included.
func TestEncodeFixedThenOutcome(t *testing.T) {
	t.Parallel()
	data, _ := structpb.NewStruct(map[string]any{"plan": "pro", "n": 2.5})
	ev := &harkv1.SourceEvent{
		Id: "evt_1", Environment: "development", SourceId: "src_1", Type: "track", Name: "A",
		UserId: "u1", IdempotencyKey: "m1", Data: data, Event: data,
		Status: harkv1.SourceEventStatus_SOURCE_EVENT_STATUS_PROCESSED,
	}
	fixed, err := encodeFixed(ev)
	if err != nil {
		t.Fatal(err)
	}
	if ev.GetStatus() != harkv1.SourceEventStatus_SOURCE_EVENT_STATUS_PROCESSED {
		t.Fatal("encodeFixed changed the event's status")
	}
	// The delivery's headers, encoded once and appended to each event.
	ev.Headers, ev.HeadersDropped = map[string]string{"user-agent": "Segment.io/1.0", "x-signature": redactedValue}, 2
	headers, err := encodeLoggedHeaders(ev.Headers, ev.HeadersDropped)
	if err != nil {
		t.Fatal(err)
	}
	for _, outcome := range []func(){
		func() {},
		func() {
			ev.Status, ev.Reason, ev.OriginalEventId = harkv1.SourceEventStatus_SOURCE_EVENT_STATUS_IDEMPOTENT, "duplicate of evt_0", "evt_0"
		},
		func() {
			ev.Status, ev.Reason, ev.OriginalEventId = harkv1.SourceEventStatus_SOURCE_EVENT_STATUS_PROCESSED, "", ""
			ev.Actions = []*harkv1.Action{{Type: harkv1.ActionType_ACTION_TYPE_TRIGGER_WORKFLOW, Status: harkv1.ActionStatus_ACTION_STATUS_SUCCESS, WorkflowRunId: "run_1"}}
		},
	} {
		outcome()
		encoded, err := appendOutcome(fixed, headers, ev)
		if err != nil {
			t.Fatal(err)
		}
		got := &harkv1.SourceEvent{}
		if err := proto.Unmarshal(encoded, got); err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(got, ev) {
			t.Fatalf("decoded %v, want %v", got, ev)
		}
	}
}

// TestLoggedHeaders: names lowercase, first values, secrets redacted by
// name, and the 8 KiB bound drops whole headers in name order and counts
// them.
func TestLoggedHeaders(t *testing.T) {
	t.Parallel()
	got, dropped := loggedHeaders(http.Header{
		"Content-Type": {"application/json", "text/plain"}, "X-Foo": {"bar"}, "Authorization": {"Basic abc"},
		"Cookie": {"s=1"}, "X-Signature": {"ab12"}, "X-Hub-Signature-256": {"sha256=.."}, "Stripe-Signature": {"t=1,v1=2"},
		"X-Shopify-Hmac-Sha256": {"b64"}, "Webhook-Signature": {"v1,x"}, "X-Api-Key": {"k"}, "Apikey": {"k"},
		"X-Webhook-Secret": {"s"}, "X-Auth-Token": {"t"}, "Proxy-Authorization": {"p"}, "Set-Cookie": {"c"}, "Svix-Signature": {"v1,x"},
		"X-Empty": {},
	})
	want := map[string]string{"content-type": "application/json", "x-foo": "bar"}
	for _, secret := range []string{"authorization", "cookie", "x-signature", "x-hub-signature-256", "stripe-signature",
		"x-shopify-hmac-sha256", "webhook-signature", "x-api-key", "apikey", "x-webhook-secret", "x-auth-token",
		"proxy-authorization", "set-cookie", "svix-signature"} {
		want[secret] = redactedValue
	}
	if !maps.Equal(got, want) || dropped != 0 {
		t.Fatalf("loggedHeaders = %v (%d dropped), want %v", got, dropped, want)
	}

	// Past the bound: a-… and b-… (4 KiB each with their names) fit, c-…
	// does not, d-… (small) still does.
	big := strings.Repeat("x", 4<<10-10)
	got, dropped = loggedHeaders(http.Header{"A-1": {big}, "B-1": {big}, "C-1": {big}, "D": {"1"}})
	if dropped != 1 || len(got) != 3 || got["c-1"] != "" || got["d"] != "1" {
		t.Fatalf("bounded: kept %d (d=%q), dropped %d; want a-1, b-1 and d kept, c-1 dropped", len(got), got["d"], dropped)
	}
}
