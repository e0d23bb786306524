package delivery_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/harkhq/hark/engine/delivery"
	harkv1 "github.com/harkhq/hark/gen/hark/v1"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// received is one request a test receiver got.
type received struct {
	method string
	path   string
	header http.Header
	body   []byte
}

// receiver is a real HTTP server on loopback that records what it gets and
// answers with respond (200 when nil).
type receiver struct {
	t    *testing.T
	srv  *httptest.Server
	mu   sync.Mutex
	reqs []received
}

func newReceiver(t *testing.T, respond func(w http.ResponseWriter, r *http.Request, body []byte)) *receiver {
	t.Helper()
	rc := &receiver{t: t}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
		if err != nil {
			t.Errorf("receiver: read body: %v", err)
		}
		rc.mu.Lock()
		rc.reqs = append(rc.reqs, received{method: r.Method, path: r.URL.Path, header: r.Header.Clone(), body: body})
		rc.mu.Unlock()
		if respond != nil {
			respond(w, r, body)
		}
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

// requests returns a copy of what the receiver got so far.
func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.reqs...)
}

// newClient returns a client that may reach loopback receivers.
func newClient(t *testing.T, o delivery.Options) *delivery.Client {
	t.Helper()
	o.AllowPrivate = true
	c := delivery.NewClient(o)
	t.Cleanup(c.Close)
	return c
}

// send makes one attempt with a generous deadline, so a broken test fails
// instead of hanging.
func send(t *testing.T, c *delivery.Client, tg delivery.Target, m delivery.Message) delivery.Attempt {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return c.Send(ctx, tg, m)
}

var runCreatedAt = time.Date(2026, 3, 4, 5, 6, 7, 890000000, time.UTC)

// sampleRun is a run with every field set, deliveries included.
func sampleRun(t *testing.T) *harkv1.WorkflowRun {
	t.Helper()
	data, err := structpb.NewStruct(map[string]any{"plan": "pro", "seats": 3, "tags": []any{"a", "b"}})
	if err != nil {
		t.Fatal(err)
	}
	return &harkv1.WorkflowRun{
		Id:                "run_01jnq0000000000000000000",
		Cursor:            "0000000000000001",
		Environment:       "development",
		WorkflowKey:       "welcome",
		TriggerId:         "trg_01",
		SourceEventId:     "evt_01",
		Recipients:        []string{"u1", "u2"},
		SkippedRecipients: []*harkv1.SkippedRecipient{{Id: "ghost", Reason: "not identified"}},
		Actor:             "u3",
		Tenant:            "acme",
		Data:              data,
		CancellationKey:   "ck-1",
		Status:            harkv1.WorkflowRunStatus_WORKFLOW_RUN_STATUS_ACTIVE,
		CreatedAt:         timestamppb.New(runCreatedAt),
		UpdatedAt:         timestamppb.New(runCreatedAt),
		Deliveries: []*harkv1.RunDelivery{{
			DeliveryId: "dlv_01", DestinationId: "dst_01", EventType: "workflow_run.created",
			Status: harkv1.DeliveryStatus_DELIVERY_STATUS_PENDING,
		}},
	}
}

func createdMessage(t *testing.T) delivery.Message {
	return delivery.Message{
		ID:        "dlv_01jnq0000000000000000001",
		EventType: delivery.EventRunCreated,
		Run:       sampleRun(t),
		Timestamp: runCreatedAt,
	}
}
