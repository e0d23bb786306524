package engine_test

// Tests of the outbox's bookkeeping at the moments an end-to-end test
// cannot choose: a write that fails, a destination resumed while an
// attempt is being decided. A fault-injecting wrapper around the real
// Badger store picks the moment; everything else is real (the engine, its
// dispatcher, a receiver on loopback).

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/structpb"

	"github.com/harkhq/hark/engine"
	"github.com/harkhq/hark/engine/badgerstore"
	"github.com/harkhq/hark/engine/delivery"
	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// faultStore is a real store whose transactions a test can interfere with:
// onPutDestination runs before every PutDestination of a read-write
// transaction and may fail it; onViewDestination runs after every
// Destination read of a read-only one.
type faultStore struct {
	engine.Store
	onPutDestination  func(*harkv1.Destination) error
	onViewDestination func(*harkv1.Destination)
}

var _ engine.Store = (*faultStore)(nil)

func (s *faultStore) View(ctx context.Context, fn func(engine.Tx) error) error {
	return s.Store.View(ctx, func(tx engine.Tx) error { return fn(faultTx{Tx: tx, s: s, readOnly: true}) })
}

func (s *faultStore) Update(ctx context.Context, fn func(engine.Tx) error) error {
	return s.Store.Update(ctx, func(tx engine.Tx) error { return fn(faultTx{Tx: tx, s: s}) })
}

type faultTx struct {
	engine.Tx
	s        *faultStore
	readOnly bool
}

func (t faultTx) PutDestination(d *harkv1.Destination, secrets delivery.Secrets) error {
	if f := t.s.onPutDestination; f != nil {
		if err := f(d); err != nil {
			return err
		}
	}
	return t.Tx.PutDestination(d, secrets)
}

func (t faultTx) Destination(env, id string) (*harkv1.Destination, delivery.Secrets, error) {
	d, secrets, err := t.Tx.Destination(env, id)
	if f := t.s.onViewDestination; f != nil && t.readOnly && err == nil {
		f(d)
	}
	return d, secrets, err
}

// outboxEngine starts an engine on a faultStore over a real Badger store,
// with a receiver on loopback answering with respond, and returns the
// engine, the store and a webhook destination to the receiver in
// development taking every run, with the user u1 identified there.
func outboxEngine(t *testing.T, respond http.HandlerFunc, schedule delivery.Schedule) (*engine.Engine, *faultStore, *harkv1.Destination) {
	t.Helper()
	ctx := context.Background()
	rc := httptest.NewServer(respond)
	t.Cleanup(rc.Close)
	bs, err := badgerstore.Open(badgerstore.Options{Dir: t.TempDir(), MinFreeBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bs.Close() })
	store := &faultStore{Store: bs}
	e, err := engine.New(ctx, engine.Config{
		Store: store, SourceTypes: oneSourceType{withRequired}, Translator: noTranslator{},
		AllowPrivateDestinations: true, DeliverySchedule: schedule,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	if _, err := e.CreateWorkflow(ctx, &harkv1.CreateWorkflowRequest{Key: "wf"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.IdentifyUser(ctx, &harkv1.IdentifyUserRequest{Environment: "development", Id: "u1"}); err != nil {
		t.Fatal(err)
	}
	d, err := e.CreateDestination(ctx, &harkv1.CreateDestinationRequest{Environment: "development", Name: "d", Type: "webhook", Url: rc.URL})
	if err != nil {
		t.Fatal(err)
	}
	return e, store, d
}

// startRun starts a run of wf for u1 through the API and returns its one
// delivery.
func startRun(t *testing.T, e *engine.Engine) *harkv1.Delivery {
	t.Helper()
	ctx := context.Background()
	res, _, err := e.TriggerWorkflow(ctx, &harkv1.TriggerWorkflowRequest{
		Environment: "development", Key: "wf", Recipients: []*structpb.Value{structpb.NewStringValue("u1")},
	}, "")
	if err != nil {
		t.Fatal(err)
	}
	list, err := e.ListDeliveries(ctx, &harkv1.ListDeliveriesRequest{Environment: "development", WorkflowRunId: res.GetWorkflowRunId()})
	if err != nil || len(list.GetDeliveries()) != 1 {
		t.Fatalf("deliveries of the run: %v, %v; want one", list.GetDeliveries(), err)
	}
	return list.GetDeliveries()[0]
}

// waitFor polls cond every 10 ms until it holds, failing after a minute (a
// bound against hanging, not a speed goal) with what state says.
func waitFor(t *testing.T, what string, cond func() bool, state ...func() string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			msg := ""
			for _, s := range state {
				msg += "; " + s()
			}
			t.Fatalf("waited a minute for %s%s", what, msg)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// outboxState describes a delivery and its destination for a failure.
func outboxState(e *engine.Engine, deliveryID, destID string) func() string {
	return func() string {
		ctx := context.Background()
		dl, err := e.GetDelivery(ctx, "development", deliveryID)
		if err != nil {
			return err.Error()
		}
		d, err := e.GetDestination(ctx, "development", destID)
		if err != nil {
			return err.Error()
		}
		return fmt.Sprintf("delivery %v (%d attempts, next %v), destination %v", dl.GetStatus(), dl.GetAttemptCount(), dl.GetNextAttemptAt(), d.GetStatus())
	}
}

// TestOutboxGoneDisablesInTheSameCommit makes the write that disables a
// destination after a 410 fail once. The held delivery and the disabled
// destination are one commit, so the failure leaves neither: the delivery
// is still due, is sent again, and the second 410 disables. Written as two
// commits, the failure (or a kill -9 between them) left the delivery held
// behind an ACTIVE destination: never sent again, and PATCH status ACTIVE
// did not release it, the destination being active already.
func TestOutboxGoneDisablesInTheSameCommit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var calls atomic.Int32
	e, store, d := outboxEngine(t, func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusGone)
	}, delivery.Fixed{0, 50 * time.Millisecond, 50 * time.Millisecond})
	var failed atomic.Bool
	store.onPutDestination = func(d *harkv1.Destination) error {
		if d.GetStatus() == harkv1.DestinationStatus_DESTINATION_STATUS_DISABLED && failed.CompareAndSwap(false, true) {
			return errors.New("injected: the disk is full")
		}
		return nil
	}
	dl := startRun(t, e)

	var got *harkv1.Delivery
	var dest *harkv1.Destination
	waitFor(t, "the destination disabled with its delivery held", func() bool {
		var err error
		if got, err = e.GetDelivery(ctx, "development", dl.GetId()); err != nil {
			t.Fatal(err)
		}
		if dest, err = e.GetDestination(ctx, "development", d.GetId()); err != nil {
			t.Fatal(err)
		}
		return dest.GetStatus() == harkv1.DestinationStatus_DESTINATION_STATUS_DISABLED && got.GetNextAttemptAt() == nil
	}, outboxState(e, dl.GetId(), d.GetId()))
	if !failed.Load() || calls.Load() != 2 {
		t.Fatalf("the disabling write failed %v, the receiver was called %d times; want the failure, and the 410 twice", failed.Load(), calls.Load())
	}
	if got.GetStatus() != harkv1.DeliveryStatus_DELIVERY_STATUS_PENDING || got.GetAttemptCount() != 1 {
		t.Fatalf("delivery = %v, want PENDING, held, with the recorded 410", got)
	}
}

// TestOutboxHoldSeesResume resumes a paused destination between the
// moment an attempt reads it paused and the moment the attempt holds the
// delivery. The hold is decided in the transaction that writes it, so it
// sees the destination active and leaves the delivery due: it is sent.
// Decided on the earlier read, the delivery was held behind an ACTIVE
// destination after the resume had released what was held: never sent.
func TestOutboxHoldSeesResume(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var mu sync.Mutex
	answers := []int{http.StatusInternalServerError} // then 200
	e, store, d := outboxEngine(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if len(answers) > 0 {
			w.WriteHeader(answers[0])
			answers = answers[1:]
		}
	}, delivery.Fixed{0, 50 * time.Millisecond, 50 * time.Millisecond, 50 * time.Millisecond})
	dl := startRun(t, e)
	waitFor(t, "the first attempt to fail", func() bool {
		got, err := e.GetDelivery(ctx, "development", dl.GetId())
		if err != nil {
			t.Fatal(err)
		}
		return got.GetAttemptCount() == 1
	})

	// Pause; when the retry reads the destination paused, resume it at once,
	// before the retry decides.
	var resumed atomic.Bool
	store.onViewDestination = func(got *harkv1.Destination) {
		if got.GetId() != d.GetId() || got.GetStatus() != harkv1.DestinationStatus_DESTINATION_STATUS_PAUSED || !resumed.CompareAndSwap(false, true) {
			return
		}
		active := harkv1.DestinationStatus_DESTINATION_STATUS_ACTIVE
		if _, err := e.UpdateDestination(ctx, &harkv1.UpdateDestinationRequest{Environment: "development", Id: d.GetId(), Status: &active}); err != nil {
			t.Errorf("resume: %v", err)
		}
	}
	paused := harkv1.DestinationStatus_DESTINATION_STATUS_PAUSED
	if _, err := e.UpdateDestination(ctx, &harkv1.UpdateDestinationRequest{Environment: "development", Id: d.GetId(), Status: &paused}); err != nil {
		t.Fatal(err)
	}
	var got *harkv1.Delivery
	waitFor(t, "the delivery to succeed after the resume", func() bool {
		var err error
		if got, err = e.GetDelivery(ctx, "development", dl.GetId()); err != nil {
			t.Fatal(err)
		}
		return got.GetStatus() == harkv1.DeliveryStatus_DELIVERY_STATUS_SUCCEEDED
	}, outboxState(e, dl.GetId(), d.GetId()))
	if !resumed.Load() {
		t.Fatalf("the destination was never read paused by an attempt")
	}
}
