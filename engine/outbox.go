package engine

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/harkhq/hark/engine/delivery"
	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// The outbox (DESIGN §8): a run change and one delivery per matching
// destination are written in the same commit, so a run is never stored
// without its deliveries, nor a delivery without its run; the dispatcher
// then sends them, and a delivery is done only when its receiver answered
// 2xx. Across kill -9 that is at least once: an attempt whose answer was
// not yet recorded is sent again, with the same webhook-id.
//
// The dispatcher is one goroutine that reads the queue of due deliveries
// (the store's due index, earliest first) every second, or at once when a
// commit wrote deliveries, and hands each to a sender goroutine: at most
// DeliveryConcurrency at a time per destination, so a slow or dead receiver
// holds up only its own deliveries, never ingestion (which only writes the
// records) nor other destinations. The outcome of an attempt is written
// with the delivery: SUCCEEDED; or due again after the schedule's wait (and
// the receiver's Retry-After); or FAILED when the schedule is spent; or held
// with its destination when the receiver answered 410 Gone.

// Defaults of the outbox.
const (
	// DefaultDeliveryConcurrency is how many attempts run at once per
	// destination.
	DefaultDeliveryConcurrency = 4
	// dispatchPoll is how often the dispatcher reads the queue when nothing
	// woke it: retries come due by the clock.
	dispatchPoll = time.Second
	// dispatchBatch is how many due deliveries one read of the queue takes.
	dispatchBatch = 512
	// maxAttemptsKept bounds the attempts a delivery keeps (the schedule
	// may be long, and RetryDelivery restarts it): the newest are kept.
	maxAttemptsKept = 100
)

// outbox is the engine's delivery state: the client that sends, the
// schedule, and the dispatcher's bookkeeping.
type outbox struct {
	client      *delivery.Client
	schedule    delivery.Schedule
	concurrency int

	wake chan struct{} // buffered 1: a commit wrote deliveries

	mu       sync.Mutex
	inflight map[string]bool // delivery ids being sent
	perDest  map[string]int  // attempts under way, by destination id
	senders  sync.WaitGroup
}

// notify wakes the dispatcher; it never blocks.
func (o *outbox) notify() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// enqueueDeliveries writes, inside tx, a delivery of the run change to
// every destination of the run's environment that takes its workflow, and
// lists them on the run (the caller stores the run after). Deliveries to
// paused or disabled destinations are held until they are active again.
func (e *Engine) enqueueDeliveries(tx Tx, run *harkv1.WorkflowRun, event delivery.EventType) (bool, error) {
	dests, err := tx.Destinations(run.GetEnvironment(), "", maxDestinations)
	if err != nil {
		return false, err
	}
	wrote := false
	now := e.timestamp()
	var snapshot *harkv1.WorkflowRun
	for _, d := range dests {
		if len(d.GetWorkflowKeys()) > 0 && !slices.Contains(d.GetWorkflowKeys(), run.GetWorkflowKey()) {
			continue
		}
		if snapshot == nil {
			snapshot = proto.CloneOf(run)
			snapshot.Deliveries = nil
		}
		dl := &harkv1.Delivery{
			Id: newID("dlv_"), Environment: run.GetEnvironment(), DestinationId: d.GetId(), WorkflowRunId: run.GetId(),
			EventType: string(event), Status: harkv1.DeliveryStatus_DELIVERY_STATUS_PENDING, CreatedAt: now, UpdatedAt: now,
		}
		if d.GetStatus() == harkv1.DestinationStatus_DESTINATION_STATUS_ACTIVE {
			dl.NextAttemptAt = now
		}
		if err := tx.PutDelivery(dl, snapshot, e.deliveryExpiry(run)); err != nil {
			return false, err
		}
		run.Deliveries = append(run.Deliveries, &harkv1.RunDelivery{
			DeliveryId: dl.GetId(), DestinationId: d.GetId(), EventType: dl.GetEventType(), Status: dl.GetStatus(),
		})
		wrote = true
	}
	return wrote, nil
}

// deliveryExpiry is when a run's deliveries expire: with the run.
func (e *Engine) deliveryExpiry(run *harkv1.WorkflowRun) time.Time {
	return run.GetCreatedAt().AsTime().Add(e.runRetention)
}

// runDispatcher sends due deliveries until ctx ends, then waits for the
// attempts under way (which ctx cancels: their deliveries stay due and are
// sent again at the next start).
func (e *Engine) runDispatcher(ctx context.Context) {
	defer e.wg.Done()
	o := e.outbox
	defer o.senders.Wait()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-o.wake:
		case <-timer.C:
		}
		full := e.dispatchDue(ctx)
		wait := dispatchPoll
		if full {
			wait = 10 * time.Millisecond // more are due; let senders start
		}
		timer.Reset(wait)
	}
}

// dispatchDue starts an attempt for every due delivery whose destination
// has room, and reports whether the read of the queue was full.
func (e *Engine) dispatchDue(ctx context.Context) bool {
	var due []DueDelivery
	err := e.store.View(ctx, func(tx Tx) (err error) {
		due, err = tx.DueDeliveries(e.now(), dispatchBatch)
		return err
	})
	if err != nil {
		if ctx.Err() == nil {
			e.log.Warn("read the delivery queue", "err", err)
		}
		return false
	}
	o := e.outbox
	for _, dd := range due {
		o.mu.Lock()
		busy := o.inflight[dd.ID]
		if !busy {
			o.inflight[dd.ID] = true
		}
		o.mu.Unlock()
		if busy {
			continue
		}
		o.senders.Go(func() {
			defer func() {
				o.mu.Lock()
				delete(o.inflight, dd.ID)
				o.mu.Unlock()
			}()
			defer func() {
				if r := recover(); r != nil {
					e.log.Error("sending a delivery panicked", "delivery", dd.ID, "panic", r, "stack", string(debug.Stack()))
				}
			}()
			e.attempt(ctx, dd)
		})
	}
	return len(due) == dispatchBatch
}

// attempt sends one due delivery, if its destination has room, and records
// the outcome.
func (e *Engine) attempt(ctx context.Context, dd DueDelivery) {
	var (
		dl      *harkv1.Delivery
		run     *harkv1.WorkflowRun
		dest    *harkv1.Destination
		secrets delivery.Secrets
		gone    bool
	)
	err := e.store.View(ctx, func(tx Tx) (err error) {
		if dl, run, err = tx.Delivery(dd.Environment, dd.ID); err != nil {
			return err
		}
		dest, secrets, err = tx.Destination(dd.Environment, dl.GetDestinationId())
		if isNotFound(err) {
			gone, err = true, nil
		}
		return err
	})
	switch {
	case isNotFound(err):
		return // expired or deleted meanwhile; the index entry expires too
	case err != nil:
		if ctx.Err() == nil {
			e.log.Warn("read a delivery", "delivery", dd.ID, "err", err)
		}
		return
	case dl.GetStatus() != harkv1.DeliveryStatus_DELIVERY_STATUS_PENDING || dl.GetNextAttemptAt() == nil || dl.GetNextAttemptAt().AsTime().After(e.now()):
		return // changed since the queue was read
	case gone:
		e.finishAttempt(ctx, dd, func(d *harkv1.Delivery) {
			d.Status, d.NextAttemptAt = harkv1.DeliveryStatus_DELIVERY_STATUS_FAILED, nil
			d.Attempts = append(d.Attempts, &harkv1.DeliveryAttempt{StartedAt: e.timestamp(), Error: "the destination was deleted"})
		})
		return
	case dest.GetStatus() != harkv1.DestinationStatus_DESTINATION_STATUS_ACTIVE:
		e.finishAttempt(ctx, dd, func(d *harkv1.Delivery) { d.NextAttemptAt = nil }) // held with it
		return
	}
	o := e.outbox
	o.mu.Lock()
	if o.perDest[dest.GetId()] >= o.concurrency {
		o.mu.Unlock()
		return // stays due; the next read of the queue takes it
	}
	o.perDest[dest.GetId()]++
	o.mu.Unlock()
	defer func() {
		o.mu.Lock()
		o.perDest[dest.GetId()]--
		o.mu.Unlock()
	}()

	msg := delivery.Message{ID: dl.GetId(), EventType: delivery.EventType(dl.GetEventType()), Run: run, Timestamp: changeTime(dl, run)}
	a := o.client.Send(ctx, target(dest, secrets), msg)
	if ctx.Err() != nil && errors.Is(a.Err, context.Canceled) {
		return // shutting down: the delivery stays due and is sent again
	}
	result := "failed"
	e.finishAttempt(ctx, dd, func(d *harkv1.Delivery) {
		d.Attempts = append(d.Attempts, a.Proto())
		if n := len(d.Attempts); n > maxAttemptsKept {
			d.Attempts = d.Attempts[n-maxAttemptsKept:]
		}
		d.AttemptCount++
		switch {
		case a.Succeeded:
			d.Status, d.NextAttemptAt, result = harkv1.DeliveryStatus_DELIVERY_STATUS_SUCCEEDED, nil, "succeeded"
		case a.Disable:
			d.NextAttemptAt, result = nil, "disabled" // held with its destination
		case a.Permanent:
			d.Status, d.NextAttemptAt, result = harkv1.DeliveryStatus_DELIVERY_STATUS_FAILED, nil, "gave_up"
		default:
			wait, ok := delivery.RetryDelay(o.schedule, int(d.GetAttemptCount()), a)
			if !ok {
				d.Status, d.NextAttemptAt, result = harkv1.DeliveryStatus_DELIVERY_STATUS_FAILED, nil, "gave_up"
			} else {
				d.NextAttemptAt = timestamppb.New(e.now().Add(wait))
			}
		}
	})
	e.metrics.DeliveryAttempted(dest.GetType(), result, a.Duration)
	if a.Disable {
		e.disableDestination(ctx, dest, a.Error)
	}
}

// changeTime is when the change a delivery carries happened.
func changeTime(dl *harkv1.Delivery, run *harkv1.WorkflowRun) time.Time {
	if dl.GetEventType() == string(delivery.EventRunCancelled) {
		return run.GetUpdatedAt().AsTime()
	}
	return run.GetCreatedAt().AsTime()
}

// finishAttempt applies change to the stored delivery, if it is still the
// pending one that was read (a retry through the API or an expiry may have
// changed it meanwhile).
func (e *Engine) finishAttempt(ctx context.Context, dd DueDelivery, change func(*harkv1.Delivery)) {
	// The attempt happened: record it even if the server is stopping.
	ctx = context.WithoutCancel(ctx)
	err := e.store.Update(ctx, func(tx Tx) error {
		dl, run, err := tx.Delivery(dd.Environment, dd.ID)
		if err != nil {
			return err
		}
		if dl.GetStatus() != harkv1.DeliveryStatus_DELIVERY_STATUS_PENDING || dl.GetNextAttemptAt() == nil {
			return nil
		}
		change(dl)
		dl.UpdatedAt = e.timestamp()
		return tx.PutDelivery(dl, nil, e.deliveryExpiry(run))
	})
	if err != nil && !isNotFound(err) {
		e.log.Warn("record a delivery attempt; it will be sent again", "delivery", dd.ID, "err", err)
	}
}

// disableDestination marks a destination DISABLED after its receiver
// answered 410 Gone; its deliveries are held until it is set ACTIVE.
func (e *Engine) disableDestination(ctx context.Context, dest *harkv1.Destination, reason string) {
	err := e.store.Update(context.WithoutCancel(ctx), func(tx Tx) error {
		d, secrets, err := tx.Destination(dest.GetEnvironment(), dest.GetId())
		if err != nil {
			return err
		}
		if d.GetStatus() == harkv1.DestinationStatus_DESTINATION_STATUS_DISABLED {
			return nil
		}
		d.Status = harkv1.DestinationStatus_DESTINATION_STATUS_DISABLED
		d.DisabledReason = "the receiver answered 410 Gone: " + reason
		d.UpdatedAt = e.timestamp()
		return tx.PutDestination(d, secrets)
	})
	if err != nil {
		e.log.Warn("disable a destination", "destination", dest.GetId(), "err", err)
		return
	}
	e.log.Warn("destination disabled: its receiver answered 410 Gone", "destination", dest.GetId(), "environment", dest.GetEnvironment())
}

// releaseHeld makes a resumed destination's held deliveries due now.
func (e *Engine) releaseHeld(ctx context.Context, env, destID string) error {
	for {
		var ids []string
		err := e.store.Update(ctx, func(tx Tx) (err error) {
			if ids, err = tx.HeldDeliveries(env, destID, "", cancelChunk); err != nil {
				return err
			}
			for _, id := range ids {
				dl, run, err := tx.Delivery(env, id)
				if isNotFound(err) {
					continue
				}
				if err != nil {
					return err
				}
				dl.NextAttemptAt, dl.UpdatedAt = e.timestamp(), e.timestamp()
				if err := tx.PutDelivery(dl, nil, e.deliveryExpiry(run)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		e.outbox.notify()
		if len(ids) < cancelChunk {
			return nil
		}
	}
}

// ListDeliveries returns a page of an environment's deliveries, newest
// first, without their attempts (GetDelivery has them).
func (e *Engine) ListDeliveries(ctx context.Context, req *harkv1.ListDeliveriesRequest) (*harkv1.ListDeliveriesResponse, error) {
	p, err := readPage(req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	keep := func(d *harkv1.Delivery) bool {
		return (req.GetDestinationId() == "" || d.GetDestinationId() == req.GetDestinationId()) &&
			(req.GetWorkflowRunId() == "" || d.GetWorkflowRunId() == req.GetWorkflowRunId()) &&
			(req.GetStatus() == harkv1.DeliveryStatus_DELIVERY_STATUS_UNSPECIFIED || d.GetStatus() == req.GetStatus())
	}
	resp := &harkv1.ListDeliveriesResponse{}
	err = e.store.View(ctx, func(tx Tx) error {
		if _, err := tx.Environment(req.GetEnvironment()); err != nil {
			return err
		}
		list, last, err := tx.Deliveries(req.GetEnvironment(), p.after, p.limit(), maxEventScan, keep)
		if err != nil {
			return err
		}
		list, resp.NextPageToken = finishPage(list, p, (*harkv1.Delivery).GetId)
		if resp.NextPageToken == "" && last != "" {
			resp.NextPageToken = encodePageToken(last)
		}
		for _, d := range list {
			d.Attempts = nil
		}
		resp.Deliveries = list
		return nil
	})
	return resp, err
}

// GetDelivery returns one delivery with its attempts.
func (e *Engine) GetDelivery(ctx context.Context, env, id string) (*harkv1.Delivery, error) {
	var d *harkv1.Delivery
	err := e.store.View(ctx, func(tx Tx) (err error) {
		if _, err := tx.Environment(env); err != nil {
			return err
		}
		d, _, err = tx.Delivery(env, id)
		return err
	})
	return d, err
}

// RetryDelivery starts a FAILED delivery's schedule again: it is due now,
// its attempt count starts from zero, and its attempts so far are kept.
func (e *Engine) RetryDelivery(ctx context.Context, env, id string) (*harkv1.Delivery, error) {
	var d *harkv1.Delivery
	err := e.store.Update(ctx, func(tx Tx) error {
		if _, err := tx.Environment(env); err != nil {
			return err
		}
		dl, run, err := tx.Delivery(env, id)
		if err != nil {
			return err
		}
		if dl.GetStatus() != harkv1.DeliveryStatus_DELIVERY_STATUS_FAILED {
			return &PreconditionError{Message: fmt.Sprintf("delivery %s is %s; only a FAILED delivery can be retried", id, deliveryStatusName(dl.GetStatus()))}
		}
		dl.Status, dl.AttemptCount = harkv1.DeliveryStatus_DELIVERY_STATUS_PENDING, 0
		dl.NextAttemptAt, dl.UpdatedAt = e.timestamp(), e.timestamp()
		dest, _, err := tx.Destination(env, dl.GetDestinationId())
		if err != nil {
			return err
		}
		if dest.GetStatus() != harkv1.DestinationStatus_DESTINATION_STATUS_ACTIVE {
			dl.NextAttemptAt = nil // held with its destination
		}
		d = dl
		return tx.PutDelivery(dl, nil, e.deliveryExpiry(run))
	})
	if err != nil {
		return nil, err
	}
	e.outbox.notify()
	return d, nil
}

func deliveryStatusName(s harkv1.DeliveryStatus) string {
	switch s {
	case harkv1.DeliveryStatus_DELIVERY_STATUS_PENDING:
		return "PENDING"
	case harkv1.DeliveryStatus_DELIVERY_STATUS_SUCCEEDED:
		return "SUCCEEDED"
	default:
		return s.String()
	}
}

// maxReplay bounds the runs one ReplayDeliveries call sends again; a
// caller with more narrows the range.
const maxReplay = 10_000

// ReplayDeliveries sends every run change of a time range to one
// destination again, as new deliveries: a created delivery for each run
// created in [since, until) of the destination's workflows, and a
// cancelled one for each of those runs cancelled in the range. Runs are read through their ids, which are
// time-ordered, so a replay reads only its range.
func (e *Engine) ReplayDeliveries(ctx context.Context, req *harkv1.ReplayDeliveriesRequest) (int, error) {
	var v validation
	if req.GetSince() == nil {
		v.add("since", "is required")
	}
	until := e.now()
	if req.GetUntil() != nil {
		until = req.GetUntil().AsTime()
	}
	since := req.GetSince().AsTime()
	if req.GetSince() != nil && !since.Before(until) {
		v.add("until", "must be after since")
	}
	if err := v.err(); err != nil {
		return 0, err
	}
	env := req.GetEnvironment()
	var runs []*harkv1.WorkflowRun
	err := e.store.View(ctx, func(tx Tx) error {
		if _, err := tx.Environment(env); err != nil {
			return err
		}
		if _, _, err := tx.Destination(env, req.GetDestinationId()); err != nil {
			return err
		}
		before := boundaryID("run_", until)
		for {
			page, last, err := tx.WorkflowRuns(env, before, MaxPageSize, MaxPageSize, func(*harkv1.WorkflowRun) bool { return true })
			if err != nil {
				return err
			}
			for _, r := range page {
				if r.GetCreatedAt().AsTime().Before(since) {
					return nil
				}
				runs = append(runs, r)
				if len(runs) > maxReplay {
					return &ValidationError{Violations: []FieldViolation{{Field: "since", Description: fmt.Sprintf("the range holds more than %d runs; replay a shorter one", maxReplay)}}}
				}
			}
			if len(page) < MaxPageSize && last == "" {
				return nil
			}
			if last != "" {
				before = last
			} else {
				before = page[len(page)-1].GetId()
			}
		}
	})
	if err != nil {
		return 0, err
	}
	queued := 0
	for chunk := range slices.Chunk(runs, cancelChunk/2) {
		err := e.store.Update(ctx, func(tx Tx) error {
			n := 0
			dest, _, err := tx.Destination(env, req.GetDestinationId())
			if err != nil {
				return err
			}
			now := e.timestamp()
			for _, r := range chunk {
				if len(dest.GetWorkflowKeys()) > 0 && !slices.Contains(dest.GetWorkflowKeys(), r.GetWorkflowKey()) {
					continue
				}
				events := []delivery.EventType{delivery.EventRunCreated}
				if r.GetStatus() == harkv1.WorkflowRunStatus_WORKFLOW_RUN_STATUS_CANCELLED && r.GetUpdatedAt().AsTime().Before(until) {
					events = append(events, delivery.EventRunCancelled)
				}
				snapshot := proto.CloneOf(r)
				snapshot.Deliveries = nil
				for _, ev := range events {
					dl := &harkv1.Delivery{
						Id: newID("dlv_"), Environment: env, DestinationId: dest.GetId(), WorkflowRunId: r.GetId(),
						EventType: string(ev), Status: harkv1.DeliveryStatus_DELIVERY_STATUS_PENDING, CreatedAt: now, UpdatedAt: now,
					}
					if dest.GetStatus() == harkv1.DestinationStatus_DESTINATION_STATUS_ACTIVE {
						dl.NextAttemptAt = now
					}
					if err := tx.PutDelivery(dl, snapshot, e.deliveryExpiry(r)); err != nil {
						return err
					}
					n++
				}
			}
			queued += n
			return nil
		})
		if err != nil {
			return queued, err
		}
	}
	e.outbox.notify()
	return queued, nil
}

// boundaryID is the smallest id of newID(prefix) made at t: every id made
// before t sorts below it.
func boundaryID(prefix string, t time.Time) string {
	var u ulid.ULID
	_ = u.SetTime(ulid.Timestamp(t))
	return prefix + strings.ToLower(u.String())
}

// timestampOrNil is t as a Timestamp, or nil for the zero time.
func timestampOrNil(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

// withDeliveries fills a run's deliveries with their current statuses.
func withDeliveries(tx Tx, run *harkv1.WorkflowRun) error {
	for _, rd := range run.GetDeliveries() {
		d, _, err := tx.Delivery(run.GetEnvironment(), rd.GetDeliveryId())
		if isNotFound(err) {
			continue
		}
		if err != nil {
			return err
		}
		rd.Status = d.GetStatus()
	}
	return nil
}

// OutboxDepth reports the due deliveries and how long the oldest has
// waited since it was created, for metrics.
func (e *Engine) OutboxDepth(ctx context.Context) (pending int, oldestAge time.Duration, err error) {
	var oldest time.Time
	err = e.store.View(ctx, func(tx Tx) (err error) {
		pending, oldest, err = tx.OutboxDepth()
		return err
	})
	if err == nil && !oldest.IsZero() {
		oldestAge = e.now().Sub(oldest)
	}
	return pending, oldestAge, err
}

// DisabledDestinations counts the destinations hark disabled (410 Gone),
// for metrics.
func (e *Engine) DisabledDestinations(ctx context.Context) (int, error) {
	n := 0
	err := e.store.View(ctx, func(tx Tx) error {
		return ForEach(tx.Environments, (*harkv1.Environment).GetSlug, func(env *harkv1.Environment) error {
			dests, err := tx.Destinations(env.GetSlug(), "", maxDestinations)
			for _, d := range dests {
				if d.GetStatus() == harkv1.DestinationStatus_DESTINATION_STATUS_DISABLED {
					n++
				}
			}
			return err
		})
	})
	return n, err
}
