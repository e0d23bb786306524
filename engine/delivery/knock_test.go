package delivery_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"testing"

	"github.com/harkhq/hark/engine/delivery"
	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// fakeKnock is Knock's API as far as hark uses it: it checks the bearer
// key and answers a trigger with a workflow_run_id, as Knock does.
func fakeKnock(t *testing.T, apiKey string) *receiver {
	return newReceiver(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		if r.Header.Get("Authorization") != "Bearer "+apiKey {
			http.Error(w, `{"code":"api_key_invalid"}`, http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"workflow_run_id":"7b1c6a0e-0000-0000-0000-000000000000"}`))
	})
}

func knockTarget(url string) delivery.Target {
	return delivery.Target{ID: "dst_k", Environment: "production", Type: delivery.TypeKnock, URL: url,
		Settings: map[string]string{"api_key": "sk_test_123"}}
}

func decodeJSON(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("body %s: %v", b, err)
	}
	return m
}

func TestKnockTriggerRequest(t *testing.T) {
	t.Parallel()
	knock := fakeKnock(t, "sk_test_123")
	c := newClient(t, delivery.Options{})
	// A base with a path prefix and a trailing slash, as behind a proxy.
	a := send(t, c, knockTarget(knock.srv.URL+"/knock/"), createdMessage(t))
	if !a.Succeeded || a.StatusCode != http.StatusOK || a.Response != `{"workflow_run_id":"7b1c6a0e-0000-0000-0000-000000000000"}` {
		t.Fatalf("attempt = %+v, want Knock's 200 kept", a)
	}
	got := knock.requests()[0]
	if got.method != http.MethodPost || got.path != "/knock/v1/workflows/welcome/trigger" {
		t.Fatalf("request = %s %s, want POST /knock/v1/workflows/welcome/trigger", got.method, got.path)
	}
	if k := got.header.Get("Idempotency-Key"); k != "run_01jnq0000000000000000000" {
		t.Fatalf("Idempotency-Key = %q, want the run id", k)
	}
	if ct := got.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type = %q", ct)
	}
	want := map[string]any{
		"recipients":       []any{"u1", "u2"},
		"actor":            "u3",
		"tenant":           "acme",
		"data":             map[string]any{"plan": "pro", "seats": 3.0, "tags": []any{"a", "b"}},
		"cancellation_key": "ck-1",
	}
	if body := decodeJSON(t, got.body); !equalJSON(body, want) {
		t.Fatalf("trigger body = %s, want %v", got.body, want)
	}

	// Optional fields a run lacks are left out, not sent empty.
	bare := createdMessage(t)
	bare.Run = &harkv1.WorkflowRun{Id: "run_2", WorkflowKey: "welcome", Recipients: []string{"u1"}}
	if a := send(t, c, knockTarget(knock.srv.URL), bare); !a.Succeeded {
		t.Fatalf("bare run: %+v", a)
	}
	got = knock.requests()[1]
	if got.path != "/v1/workflows/welcome/trigger" || string(got.body) != `{"recipients":["u1"]}` {
		t.Fatalf("bare run sent %s %s, want {\"recipients\":[\"u1\"]}", got.path, got.body)
	}
}

func TestKnockCancelRequest(t *testing.T) {
	t.Parallel()
	knock := fakeKnock(t, "sk_test_123")
	c := newClient(t, delivery.Options{})
	m := createdMessage(t)
	m.EventType = delivery.EventRunCancelled
	m.Run.Status = harkv1.WorkflowRunStatus_WORKFLOW_RUN_STATUS_CANCELLED
	if a := send(t, c, knockTarget(knock.srv.URL), m); !a.Succeeded {
		t.Fatalf("cancel = %+v", a)
	}
	got := knock.requests()[0]
	if got.path != "/v1/workflows/welcome/cancel" {
		t.Fatalf("path = %s, want /v1/workflows/welcome/cancel", got.path)
	}
	if got.header.Get("Authorization") != "Bearer sk_test_123" {
		t.Fatalf("Authorization = %q", got.header.Get("Authorization"))
	}
	want := map[string]any{"cancellation_key": "ck-1", "recipients": []any{"u1", "u2"}}
	if body := decodeJSON(t, got.body); !equalJSON(body, want) {
		t.Fatalf("cancel body = %s, want %v", got.body, want)
	}
}

func TestKnockWrongKeyIsAFailedAttempt(t *testing.T) {
	t.Parallel()
	knock := fakeKnock(t, "sk_live_right")
	c := newClient(t, delivery.Options{})
	a := send(t, c, knockTarget(knock.srv.URL), createdMessage(t))
	if a.Succeeded || a.Permanent || a.StatusCode != http.StatusUnauthorized || a.Response == "" {
		t.Fatalf("attempt = %+v, want a retryable 401 with Knock's answer", a)
	}
	var serr *delivery.StatusError
	if !errors.As(a.Err, &serr) || serr.Code != http.StatusUnauthorized {
		t.Fatalf("Err = %v, want a *StatusError 401", a.Err)
	}
}

func TestKnockRefusesWhatItCannotSend(t *testing.T) {
	t.Parallel()
	knock := fakeKnock(t, "sk_test_123")
	c := newClient(t, delivery.Options{})
	noKey := createdMessage(t)
	noKey.EventType = delivery.EventRunCancelled
	noKey.Run.CancellationKey = ""
	noRecipients := createdMessage(t)
	noRecipients.Run.Recipients = nil
	withoutAPIKey := knockTarget(knock.srv.URL)
	withoutAPIKey.Settings = map[string]string{"api_key": "  "}

	for name, tc := range map[string]struct {
		target delivery.Target
		msg    delivery.Message
		is     error
	}{
		"ping":                    {knockTarget(knock.srv.URL), delivery.Message{ID: "dlv_p", EventType: delivery.EventPing}, delivery.ErrPingUnsupported},
		"cancel without key":      {knockTarget(knock.srv.URL), noKey, nil},
		"run without recipients":  {knockTarget(knock.srv.URL), noRecipients, nil},
		"destination without key": {withoutAPIKey, createdMessage(t), nil},
	} {
		a := send(t, c, tc.target, tc.msg)
		if a.Succeeded || !a.Permanent || a.Error == "" {
			t.Errorf("%s: attempt = %+v, want a permanent failure", name, a)
		}
		if tc.is != nil && !errors.Is(a.Err, tc.is) {
			t.Errorf("%s: Err = %v, want %v", name, a.Err, tc.is)
		}
	}
	if n := len(knock.requests()); n != 0 {
		t.Fatalf("Knock got %d requests, want none", n)
	}
}
