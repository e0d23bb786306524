package delivery_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/harkhq/hark/engine/delivery"
	"google.golang.org/protobuf/types/known/structpb"
)

// segmentBatch is the body of Segment's /v1/batch.
type segmentBatch struct {
	Batch []struct {
		Type       string         `json:"type"`
		Event      string         `json:"event"`
		UserID     string         `json:"userId"`
		MessageID  string         `json:"messageId"`
		Timestamp  string         `json:"timestamp"`
		Properties map[string]any `json:"properties"`
		Context    map[string]any `json:"context"`
	} `json:"batch"`
	SentAt string `json:"sentAt"`
}

// fakeSegment is Segment's tracking API as hark uses it: Basic auth with
// the write key as the user and no password, and Segment's 500 KB and 2,500
// event limits per batch (answered 400, as Segment does).
func fakeSegment(t *testing.T, writeKey string) *receiver {
	return newReceiver(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		user, pass, ok := r.BasicAuth()
		if !ok || user != writeKey || pass != "" {
			http.Error(w, `{"success":false}`, http.StatusUnauthorized)
			return
		}
		var b segmentBatch
		if r.URL.Path != "/v1/batch" || len(body) > 500_000 || json.Unmarshal(body, &b) != nil || len(b.Batch) > 2500 {
			http.Error(w, `{"success":false}`, http.StatusBadRequest)
			return
		}
		_, _ = w.Write([]byte(`{"success":true}`))
	})
}

func segmentTarget(url string) delivery.Target {
	return delivery.Target{ID: "dst_s", Environment: "development", Type: delivery.TypeSegment, URL: url,
		Settings: map[string]string{"write_key": "wk_123"}}
}

func decodeBatch(t *testing.T, body []byte) segmentBatch {
	t.Helper()
	var b segmentBatch
	if err := json.Unmarshal(body, &b); err != nil {
		t.Fatalf("batch %s: %v", body, err)
	}
	return b
}

func TestSegmentBatchRequest(t *testing.T) {
	t.Parallel()
	seg := fakeSegment(t, "wk_123")
	c := newClient(t, delivery.Options{})
	created := createdMessage(t)
	cancelled := createdMessage(t)
	cancelled.ID = "dlv_cancel"
	cancelled.EventType = delivery.EventRunCancelled

	// The created delivery twice (a retry), then the cancellation.
	for i, m := range []delivery.Message{created, created, cancelled} {
		before := time.Now().Add(-time.Second)
		if a := send(t, c, segmentTarget(seg.srv.URL), m); !a.Succeeded || a.Response != `{"success":true}` {
			t.Fatalf("attempt %d = %+v", i, a)
		}
		got := seg.requests()[i]
		if got.path != "/v1/batch" || got.header.Get("Content-Type") != "application/json" {
			t.Fatalf("request %d = %s (%s)", i, got.path, got.header.Get("Content-Type"))
		}
		b := decodeBatch(t, got.body)
		if sent, err := time.Parse(time.RFC3339, b.SentAt); err != nil || sent.Before(before) {
			t.Fatalf("sentAt = %q, want the attempt's time", b.SentAt)
		}
		wantEvent := "Workflow Run Created"
		if m.EventType == delivery.EventRunCancelled {
			wantEvent = "Workflow Run Cancelled"
		}
		if len(b.Batch) != 2 {
			t.Fatalf("batch has %d calls, want one track per recipient (2)", len(b.Batch))
		}
		for j, track := range b.Batch {
			wantUser := []string{"u1", "u2"}[j]
			if track.Type != "track" || track.Event != wantEvent || track.UserID != wantUser {
				t.Fatalf("call %d = %s %q for %q, want track %q for %q", j, track.Type, track.Event, track.UserID, wantEvent, wantUser)
			}
			if at, err := time.Parse(time.RFC3339, track.Timestamp); err != nil || !at.Equal(m.Timestamp) {
				t.Fatalf("timestamp = %q, want the change's time", track.Timestamp)
			}
			wantProps := map[string]any{
				"workflow_key": "welcome", "workflow_run_id": "run_01jnq0000000000000000000",
				"trigger_id": "trg_01", "source_event_id": "evt_01", "environment": "development",
				"tenant": "acme", "actor": "u3", "cancellation_key": "ck-1",
				"data": map[string]any{"plan": "pro", "seats": 3.0, "tags": []any{"a", "b"}},
			}
			if !equalJSON(track.Properties, wantProps) {
				t.Fatalf("properties = %v, want %v", track.Properties, wantProps)
			}
			if !equalJSON(track.Context, map[string]any{"library": map[string]any{"name": "hark"}}) {
				t.Fatalf("context = %v", track.Context)
			}
		}
	}
	reqs := seg.requests()
	first, retry, cancel := decodeBatch(t, reqs[0].body), decodeBatch(t, reqs[1].body), decodeBatch(t, reqs[2].body)
	ids := map[string]bool{}
	for j := range 2 {
		if first.Batch[j].MessageID != retry.Batch[j].MessageID {
			t.Fatalf("retry changed messageId %q to %q: Segment would not dedupe it", first.Batch[j].MessageID, retry.Batch[j].MessageID)
		}
		ids[first.Batch[j].MessageID] = true
		ids[cancel.Batch[j].MessageID] = true
	}
	if len(ids) != 4 {
		t.Fatalf("messageIds %v: want one per delivery and recipient", ids)
	}
}

func TestSegmentWrongWriteKeyIsAFailedAttempt(t *testing.T) {
	t.Parallel()
	seg := fakeSegment(t, "wk_right")
	c := newClient(t, delivery.Options{})
	a := send(t, c, segmentTarget(seg.srv.URL), createdMessage(t))
	if a.Succeeded || a.Permanent || a.StatusCode != http.StatusUnauthorized {
		t.Fatalf("attempt = %+v, want a retryable 401", a)
	}
}

func TestSegmentSplitsBatchesOverLimits(t *testing.T) {
	t.Parallel()
	seg := fakeSegment(t, "wk_123")
	c := newClient(t, delivery.Options{})

	// 1,000 recipients (hark's cap) with 2 KB of data each: about 2.3 MB,
	// five times Segment's batch limit.
	m := createdMessage(t)
	m.Run.Recipients = make([]string, 1000)
	for i := range m.Run.Recipients {
		m.Run.Recipients[i] = fmt.Sprintf("user-%04d", i)
	}
	data, err := structpb.NewStruct(map[string]any{"note": strings.Repeat("x", 2000)})
	if err != nil {
		t.Fatal(err)
	}
	m.Run.Data = data
	a := send(t, c, segmentTarget(seg.srv.URL), m)
	if !a.Succeeded {
		t.Fatalf("attempt = %+v", a)
	}
	reqs := seg.requests()
	if len(reqs) < 5 {
		t.Fatalf("sent %d batches, want the 2.3 MB split under 500 KB each", len(reqs))
	}
	users := map[string]bool{}
	ids := map[string]bool{}
	for _, r := range reqs {
		b := decodeBatch(t, r.body)
		if len(r.body) > 500_000 || len(b.Batch) > 2500 {
			t.Fatalf("a batch of %d bytes and %d tracks is over Segment's limits", len(r.body), len(b.Batch))
		}
		for _, track := range b.Batch {
			users[track.UserID] = true
			ids[track.MessageID] = true
		}
	}
	if len(users) != 1000 || len(ids) != 1000 {
		t.Fatalf("batches carried %d users and %d messageIds, want 1000 of each", len(users), len(ids))
	}
}

func TestSegmentRunWithoutDataSendsNull(t *testing.T) {
	t.Parallel()
	seg := fakeSegment(t, "wk_123")
	c := newClient(t, delivery.Options{})
	m := createdMessage(t)
	m.Run.Data = nil
	m.Run.Tenant = ""
	if a := send(t, c, segmentTarget(seg.srv.URL), m); !a.Succeeded {
		t.Fatalf("attempt = %+v", a)
	}
	p := decodeBatch(t, seg.requests()[0].body).Batch[0].Properties
	if v, ok := p["data"]; !ok || v != nil {
		t.Fatalf("data of a run without data = %v (present %v), want null", v, ok)
	}
	if v, ok := p["tenant"]; !ok || v != "" {
		t.Fatalf("tenant of a run without one = %v (present %v), want \"\"", v, ok)
	}
}

func TestSegmentStopsAtTheFirstFailedBatch(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	seg := newReceiver(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		if n.Add(1) == 2 {
			w.Header().Set("Retry-After", "30")
			http.Error(w, "slow down", http.StatusTooManyRequests)
		}
	})
	c := newClient(t, delivery.Options{})
	m := createdMessage(t)
	m.Run.Recipients = make([]string, 6000)
	for i := range m.Run.Recipients {
		m.Run.Recipients[i] = fmt.Sprint(i)
	}
	a := send(t, c, segmentTarget(seg.srv.URL), m)
	if a.Succeeded || a.StatusCode != http.StatusTooManyRequests || a.RetryAfter != 30*time.Second {
		t.Fatalf("attempt = %+v, want the second batch's 429 with its Retry-After", a)
	}
	if got := len(seg.requests()); got != 2 {
		t.Fatalf("sent %d batches, want to stop after the failed second", got)
	}
}

func TestSegmentPingIsUnsupported(t *testing.T) {
	t.Parallel()
	seg := fakeSegment(t, "wk_123")
	c := newClient(t, delivery.Options{})
	a := send(t, c, segmentTarget(seg.srv.URL), delivery.Message{ID: "dlv_p", EventType: delivery.EventPing, Timestamp: time.Now()})
	if a.Succeeded || !a.Permanent || a.Err != delivery.ErrPingUnsupported {
		t.Fatalf("attempt = %+v, want ErrPingUnsupported", a)
	}
	missing := segmentTarget(seg.srv.URL)
	missing.Settings = nil
	if a := send(t, c, missing, createdMessage(t)); !a.Permanent || !strings.Contains(a.Error, "write_key") {
		t.Fatalf("without write_key = %+v, want a permanent failure naming it", a)
	}
	if got := len(seg.requests()); got != 0 {
		t.Fatalf("Segment got %d requests, want none", got)
	}
}
