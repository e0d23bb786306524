package engine_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/structpb"

	"github.com/harkhq/hark/engine"
	"github.com/harkhq/hark/engine/badgerstore"
	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// movableClock is a wall clock a test can move forward.
type movableClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *movableClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *movableClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

// receiver counts the requests per webhook-id; hang, when set, holds the
// requests it matches until the test ends.
type receiver struct {
	mu   sync.Mutex
	byID map[string]int
	hang func(n int) bool // n: the request's number, from 1
	n    int
}

func newReceiver(t *testing.T, hang func(n int) bool) (*receiver, string) {
	r := &receiver{byID: map[string]int{}, hang: hang}
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.n++
		n := r.n
		r.byID[req.Header.Get("webhook-id")]++
		r.mu.Unlock()
		if r.hang != nil && r.hang(n) {
			select {
			case <-done:
			case <-req.Context().Done():
			}
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(func() { close(done); srv.Close() })
	return r, srv.URL
}

func (r *receiver) counts() (requests int, byID map[string]int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int, len(r.byID))
	for k, v := range r.byID {
		out[k] = v
	}
	return r.n, out
}

// sharedNodes opens engines on one Badger store as the nodes of a cluster
// (Config.SharedStore) with the clock.
type sharedNodes struct {
	t     *testing.T
	store *badgerstore.Store
	clock *movableClock
}

func newSharedNodes(t *testing.T) *sharedNodes {
	store, err := badgerstore.Open(badgerstore.Options{Dir: t.TempDir(), MinFreeBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return &sharedNodes{t: t, store: store, clock: &movableClock{}}
}

const testLease = 30 * time.Second

func (s *sharedNodes) node() *engine.Engine {
	e, err := engine.New(context.Background(), engine.Config{
		Store: s.store, SourceTypes: oneSourceType{withRequired}, Translator: noTranslator{},
		AllowPrivateDestinations: true, SharedStore: true, DeliveryLease: testLease, Now: s.clock.Now,
	})
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { e.Close() })
	return e
}

// setUp creates a workflow, a user and a webhook destination to url.
func setUpDelivery(t *testing.T, e *engine.Engine, url string) {
	t.Helper()
	ctx := context.Background()
	if _, err := e.CreateWorkflow(ctx, &harkv1.CreateWorkflowRequest{Key: "wf"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.IdentifyUser(ctx, &harkv1.IdentifyUserRequest{Environment: "development", Id: "u1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.CreateDestination(ctx, &harkv1.CreateDestinationRequest{Environment: "development", Name: "d", Type: "webhook", Url: url}); err != nil {
		t.Fatal(err)
	}
}

// TestLeasedDeliveriesAreSentOnce: two nodes' dispatchers read the same
// queue, and each delivery is leased by one of them and sent once.
func TestLeasedDeliveriesAreSentOnce(t *testing.T) {
	t.Parallel()
	nodes := newSharedNodes(t)
	a, b := nodes.node(), nodes.node()
	rc, url := newReceiver(t, nil)
	setUpDelivery(t, a, url)
	const runs = 60
	for i := range runs {
		e := a
		if i%2 == 1 {
			e = b
		}
		if _, _, err := e.TriggerWorkflow(context.Background(), &harkv1.TriggerWorkflowRequest{
			Environment: "development", Key: "wf", Recipients: []*structpb.Value{structpb.NewStringValue("u1")},
		}, ""); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "every delivery sent", func() bool {
		_, byID := rc.counts()
		return len(byID) == runs
	})
	// The last sends may still be recorded: let both dispatchers poll
	// again, then count.
	time.Sleep(1500 * time.Millisecond)
	n, byID := rc.counts()
	for id, c := range byID {
		if c != 1 {
			t.Errorf("delivery %s was sent %d times by two nodes, want once", id, c)
		}
	}
	if n != runs {
		t.Errorf("the receiver got %d requests for %d deliveries", n, runs)
	}
}

// TestLeaseOfAStoppedNodeExpires: a node that stops while sending leaves
// its delivery leased; another node sends it once the lease has ended, not
// before.
func TestLeaseOfAStoppedNodeExpires(t *testing.T) {
	t.Parallel()
	nodes := newSharedNodes(t)
	a := nodes.node()
	rc, url := newReceiver(t, func(n int) bool { return n == 1 }) // the first attempt never ends
	setUpDelivery(t, a, url)
	dl := startRun(t, a)
	waitFor(t, "node A sends the delivery", func() bool { n, _ := rc.counts(); return n == 1 })
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}

	b := nodes.node()
	// B's dispatcher reads the queue every second: two reads, and the
	// delivery, leased by A, is not B's to send.
	time.Sleep(2500 * time.Millisecond)
	if n, _ := rc.counts(); n != 1 {
		t.Fatalf("the receiver got %d requests while A's lease held, want 1", n)
	}
	nodes.clock.advance(testLease + time.Second)
	waitFor(t, "node B sends the delivery once A's lease ended", func() bool {
		got, err := b.GetDelivery(context.Background(), "development", dl.GetId())
		return err == nil && got.GetStatus() == harkv1.DeliveryStatus_DELIVERY_STATUS_SUCCEEDED
	}, outboxState(b, dl.GetId(), dl.GetDestinationId()))
	if n, byID := rc.counts(); n != 2 || byID[dl.GetId()] != 2 {
		t.Fatalf("the receiver got %d requests (%v), want A's and B's of %s", n, byID, dl.GetId())
	}
}
