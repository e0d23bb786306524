package delivery_test

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/harkhq/hark/engine/delivery"
	harkv1 "github.com/harkhq/hark/gen/hark/v1"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// verifyingReceiver answers 204 to messages the official Standard Webhooks
// library verifies with secret, and 401 (with the library's error) to
// others, as a careful receiver does.
func verifyingReceiver(t *testing.T, secret string) *receiver {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	return newReceiver(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		if err := wh.Verify(body, r.Header); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

func webhookTarget(url string, secrets delivery.Secrets) delivery.Target {
	return delivery.Target{ID: "dst_01", Environment: "development", Type: delivery.TypeWebhook, URL: url, Secrets: secrets}
}

func TestWebhookDeliveryVerifiesWithOfficialLibrary(t *testing.T) {
	t.Parallel()
	secret := delivery.NewSecret()
	rc := verifyingReceiver(t, secret)
	c := newClient(t, delivery.Options{})
	tg := webhookTarget(rc.srv.URL+"/hooks/hark", delivery.Secrets{Current: secret})

	created := createdMessage(t)
	cancelledRun := sampleRun(t)
	cancelledRun.Status = harkv1.WorkflowRunStatus_WORKFLOW_RUN_STATUS_CANCELLED
	cancelled := delivery.Message{ID: "dlv_02", EventType: delivery.EventRunCancelled, Run: cancelledRun, Timestamp: runCreatedAt.Add(time.Minute)}

	// The created delivery twice (a retry), then the cancellation.
	for i, m := range []delivery.Message{created, created, cancelled} {
		before := time.Now().Unix()
		a := send(t, c, tg, m)
		if !a.Succeeded || a.StatusCode != http.StatusNoContent || a.Err != nil || a.Error != "" {
			t.Fatalf("attempt %d = %+v, want a verified 204", i, a)
		}
		got := rc.requests()[i]
		if got.method != http.MethodPost || got.path != "/hooks/hark" {
			t.Fatalf("request %d = %s %s, want POST /hooks/hark", i, got.method, got.path)
		}
		if ct := got.header.Get("Content-Type"); ct != "application/json" {
			t.Fatalf("Content-Type = %q", ct)
		}
		if id := got.header.Get("webhook-id"); id != m.ID {
			t.Fatalf("webhook-id = %q, want the delivery id %q", id, m.ID)
		}
		ts, err := strconv.ParseInt(got.header.Get("webhook-timestamp"), 10, 64)
		if err != nil || ts < before || ts > time.Now().Unix() {
			t.Fatalf("webhook-timestamp = %q, want the attempt's Unix seconds", got.header.Get("webhook-timestamp"))
		}
		if sig := got.header.Get("webhook-signature"); !strings.HasPrefix(sig, "v1,") || strings.Contains(sig, " ") {
			t.Fatalf("webhook-signature = %q, want one v1 signature", sig)
		}

		var body struct {
			Type      string          `json:"type"`
			Timestamp string          `json:"timestamp"`
			Data      json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(got.body, &body); err != nil {
			t.Fatalf("body %s: %v", got.body, err)
		}
		if body.Type != string(m.EventType) {
			t.Fatalf("type = %q, want %q", body.Type, m.EventType)
		}
		if at, err := time.Parse(time.RFC3339, body.Timestamp); err != nil || !at.Equal(m.Timestamp) {
			t.Fatalf("timestamp = %q (%v), want %s", body.Timestamp, err, m.Timestamp.Format(time.RFC3339Nano))
		}
		var run harkv1.WorkflowRun
		if err := protojson.Unmarshal(body.Data, &run); err != nil {
			t.Fatalf("data is not a WorkflowRun in protojson: %v\n%s", err, body.Data)
		}
		want := proto.CloneOf(m.Run)
		want.Deliveries = nil
		if !proto.Equal(&run, want) {
			t.Fatalf("data = %v, want the run without its deliveries %v", &run, want)
		}
		if strings.Contains(string(body.Data), "deliveries") || !strings.Contains(string(body.Data), `"workflowKey":"welcome"`) {
			t.Fatalf("data = %s, want protojson lowerCamelCase without deliveries", body.Data)
		}
	}
	reqs := rc.requests()
	if reqs[0].header.Get("webhook-id") != reqs[1].header.Get("webhook-id") {
		t.Fatal("a retried delivery changed its webhook-id")
	}
}

func TestWebhookRotationSendsBothSignatures(t *testing.T) {
	t.Parallel()
	now := time.Now()
	old := delivery.Secrets{}.Rotate(now.Add(-48 * time.Hour))
	rotated := old.Rotate(now)
	oldReceiver := verifyingReceiver(t, old.Current)
	newReceiver := verifyingReceiver(t, rotated.Current)
	c := newClient(t, delivery.Options{})

	// During the overlap a receiver holding either secret verifies.
	for name, rc := range map[string]*receiver{"old secret": oldReceiver, "new secret": newReceiver} {
		a := send(t, c, webhookTarget(rc.srv.URL, rotated), createdMessage(t))
		if !a.Succeeded {
			t.Fatalf("receiver with the %s refused the delivery during the overlap: %+v", name, a)
		}
		sigs := strings.Split(rc.requests()[0].header.Get("webhook-signature"), " ")
		if len(sigs) != 2 || !strings.HasPrefix(sigs[0], "v1,") || !strings.HasPrefix(sigs[1], "v1,") || sigs[0] == sigs[1] {
			t.Fatalf("webhook-signature = %v, want two different v1 signatures", sigs)
		}
	}

	// After it only the new secret signs.
	expired := rotated
	expired.PreviousExpiresAt = now.Add(-time.Second)
	if a := send(t, c, webhookTarget(newReceiver.srv.URL, expired), createdMessage(t)); !a.Succeeded {
		t.Fatalf("new secret after the overlap: %+v", a)
	}
	a := send(t, c, webhookTarget(oldReceiver.srv.URL, expired), createdMessage(t))
	if a.Succeeded || a.StatusCode != http.StatusUnauthorized || !strings.Contains(a.Response, "no matching signature") {
		t.Fatalf("old secret after the overlap = %+v, want the receiver's 401", a)
	}
	if sig := oldReceiver.requests()[1].header.Get("webhook-signature"); strings.Contains(sig, " ") {
		t.Fatalf("webhook-signature after the overlap = %q, want one signature", sig)
	}
}

func TestWebhookPingIsSigned(t *testing.T) {
	t.Parallel()
	secret := delivery.NewSecret()
	rc := verifyingReceiver(t, secret)
	c := newClient(t, delivery.Options{})
	now := time.Now().UTC()
	a := send(t, c, webhookTarget(rc.srv.URL, delivery.Secrets{Current: secret}), delivery.Message{ID: "dlv_ping", EventType: delivery.EventPing, Timestamp: now})
	if !a.Succeeded {
		t.Fatalf("ping = %+v, want verified", a)
	}
	var body map[string]any
	if err := json.Unmarshal(rc.requests()[0].body, &body); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"destinationId": "dst_01", "environment": "development"}
	if body["type"] != "ping" || body["timestamp"] != now.Format(time.RFC3339Nano) || !equalJSON(body["data"], want) {
		t.Fatalf("ping body = %v, want type ping, timestamp %s, data %v", body, now.Format(time.RFC3339Nano), want)
	}
}

func TestWebhookWithoutSecretOrURLIsPermanent(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, nil)
	c := newClient(t, delivery.Options{})
	expired := delivery.Secrets{Previous: delivery.NewSecret(), PreviousExpiresAt: time.Now().Add(-time.Hour)}
	for name, tg := range map[string]delivery.Target{
		"no secret":          webhookTarget(rc.srv.URL, delivery.Secrets{}),
		"only expired":       webhookTarget(rc.srv.URL, expired),
		"malformed secret":   webhookTarget(rc.srv.URL, delivery.Secrets{Current: "whsec_short"}),
		"no url":             webhookTarget("", delivery.Secrets{Current: delivery.NewSecret()}),
		"url with bad chars": webhookTarget(rc.srv.URL+"/\x7f", delivery.Secrets{Current: delivery.NewSecret()}),
	} {
		a := send(t, c, tg, createdMessage(t))
		if a.Succeeded || !a.Permanent || a.Error == "" || a.StatusCode != 0 {
			t.Errorf("%s: attempt = %+v, want a permanent failure", name, a)
		}
	}
	if n := len(rc.requests()); n != 0 {
		t.Fatalf("receiver got %d requests, want none", n)
	}
}

// equalJSON compares two decoded JSON values.
func equalJSON(a, b any) bool {
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(x) == string(y)
}
