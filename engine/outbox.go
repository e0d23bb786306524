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
// 2xx. Across kill -9 that is at least once: an attempt whose outcome was
// not yet recorded is sent again, with the same webhook-id.
//
// Three kinds of goroutine, all owned by runDispatcher:
//
//   - the dispatcher reads the store's queue of due deliveries (keys only:
//     each names its destination) from where its last read stopped, round
//     robin, and appends each to its destination's queue in memory — every
//     second, at once when a commit wrote deliveries, and whenever a queue
//     runs low. A destination whose queue is full (a slow or dead receiver)
//     is skipped, so its backlog never hides the deliveries behind it;
//   - each destination has up to DeliveryConcurrency senders, which take
//     from its queue, send, and pass the outcome on: a slow receiver holds
//     up only its own deliveries, never ingestion (which only writes the
//     records) nor other destinations;
//   - one recorder writes outcomes, every outcome waiting in one commit
//     (one fsync for many attempts): SUCCEEDED; or due again after the
//     schedule's wait (and the receiver's Retry-After); or FAILED when the
//     schedule is spent; or held with its destination — disabled in the
//     same commit — when the receiver answered 410 Gone.
//
// A delivery is read into a queue again only once its outcome is recorded
// (known), so it is never sent twice at once.
//
// On a store that other nodes share (Config.SharedStore), every node's
// dispatcher reads the same queue, so each leases what it read before
// queueing it: one commit per read moves the deliveries' next attempt to
// the end of the lease, guarded as every write is, so of two nodes that
// read a delivery at once one leases it and the other finds it no longer
// due. The lease is the delivery's next_attempt_at itself: a node that
// stops, or dies, while holding one leaves the delivery due again when it
// ends, for any node to send (at least once, as on one node). A sender
// sends only a delivery still under its own lease.

// Defaults of the outbox.
const (
	// DefaultDeliveryConcurrency is how many attempts run at once per
	// destination.
	DefaultDeliveryConcurrency = 8
	// dispatchPoll is how often the dispatcher reads the queue when nothing
	// woke it: retries come due by the clock.
	dispatchPoll = time.Second
	// dispatchBatch is how many due deliveries one read of the queue takes.
	dispatchBatch = 512
	// dispatchGap is the least time between two reads of the queue that
	// commits asked for: under load every commit writes deliveries, and
	// reading the queue per commit cost more than sending them.
	dispatchGap = 20 * time.Millisecond
	// queuedPerDestination bounds a destination's queue in memory.
	queuedPerDestination = 256
	// recordBatch bounds the outcomes one commit of the recorder writes.
	recordBatch = 256
	// maxAttemptsKept bounds the attempts a delivery keeps (the schedule
	// may be long, and RetryDelivery restarts it): the newest are kept.
	maxAttemptsKept = 100
	// DefaultDeliveryLease is how long a node's lease keeps a delivery
	// from the other nodes: twice an attempt's timeout, for its wait in
	// the destination's queue and the recording of its outcome.
	DefaultDeliveryLease = 2 * delivery.DefaultTimeout
)

// outbox is the engine's delivery state: the client that sends, the
// schedule, and the dispatcher's bookkeeping.
type outbox struct {
	client      *delivery.Client
	schedule    delivery.Schedule
	concurrency int
	// lease, when not zero, is how long the dispatcher leases what it
	// reads (a shared store).
	lease time.Duration

	wake     chan struct{} // buffered 1: deliveries were written, or a queue ran low
	outcomes chan outcomeOf

	mu sync.Mutex
	// known holds the deliveries queued, being sent or being recorded,
	// each with the end of this node's lease on it (zero: not leased).
	known   map[string]time.Time
	queues  map[string]*destQueue // by destination id
	after   *DueDelivery          // where the next read of the store's queue starts
	soon    time.Time             // the earliest retry the recorder scheduled since the last read
	senders sync.WaitGroup
}

// destQueue is one destination's due deliveries and its senders.
type destQueue struct {
	items   []DueDelivery
	senders int
}

// outcomeOf is what an attempt decided, for the recorder: change applies it
// to the stored delivery inside the recorder's commit (nil: nothing to
// write, the delivery is only forgotten), and after runs once it is
// committed.
type outcomeOf struct {
	dd     DueDelivery
	change func(Tx, *harkv1.Delivery) (bool, error)
	after  func()
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
	dests, err := e.destinations(tx, run.GetEnvironment())
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
			withRecipientStates(snapshot)
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
// sent again at the next start) and records what they decided.
func (e *Engine) runDispatcher(ctx context.Context) {
	defer e.wg.Done()
	o := e.outbox
	recorded := make(chan struct{})
	go func() {
		defer close(recorded)
		e.runRecorder()
	}()
	defer func() {
		o.senders.Wait()
		close(o.outcomes)
		<-recorded
	}()
	timer := time.NewTimer(0)
	defer timer.Stop()
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-o.wake:
			if gap := dispatchGap - time.Since(last); gap > 0 {
				// Coalesce: read once the gap has passed.
				select {
				case <-ctx.Done():
					return
				case <-time.After(gap):
				}
			}
		case <-timer.C:
		}
		last = time.Now()
		more := e.dispatchDue(ctx)
		wait := dispatchPoll
		o.mu.Lock()
		if !o.soon.IsZero() {
			wait = min(wait, max(time.Until(o.soon), time.Millisecond))
			o.soon = time.Time{}
		}
		o.mu.Unlock()
		if more {
			wait = time.Millisecond // the read stopped at its batch: go on
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(wait)
	}
}

// dispatchDue reads the next batch of the store's queue into the
// destinations' queues and starts their senders, and reports whether to
// read on at once: the read stopped at its batch (more may be due behind
// it) and queued something. A read that queued nothing — every delivery it
// found queued already, or its destination's queue full — waits for a
// queue to run low or for the poll, instead of reading the same keys again.
func (e *Engine) dispatchDue(ctx context.Context) bool {
	o := e.outbox
	o.mu.Lock()
	after := o.after
	o.mu.Unlock()
	var due []DueDelivery
	err := e.store.View(ctx, func(tx Tx) (err error) {
		due, err = tx.DueDeliveries(e.now(), after, dispatchBatch)
		return err
	})
	if err != nil {
		if ctx.Err() == nil {
			e.log.Warn("read the delivery queue", "err", err)
		}
		return false
	}
	o.mu.Lock()
	if len(due) < dispatchBatch {
		o.after = nil // the end of what is due: the next read starts over
	} else {
		o.after = &due[len(due)-1]
	}
	var picked []DueDelivery
	room := map[string]int{} // per destination, what its queue takes
	for _, dd := range due {
		if _, ok := o.known[dd.ID]; ok {
			continue
		}
		n, ok := room[dd.DestinationID]
		if !ok {
			n = queuedPerDestination
			if q := o.queues[dd.DestinationID]; q != nil {
				n -= len(q.items)
			}
		}
		if n <= 0 {
			continue // full: read again when it has drained
		}
		room[dd.DestinationID] = n - 1
		o.known[dd.ID] = time.Time{}
		picked = append(picked, dd)
	}
	o.mu.Unlock()
	if o.lease > 0 {
		picked = e.leaseDeliveries(ctx, picked)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, dd := range picked {
		q := o.queues[dd.DestinationID]
		if q == nil {
			q = &destQueue{}
			o.queues[dd.DestinationID] = q
		}
		q.items = append(q.items, dd)
		for q.senders < o.concurrency && q.senders < len(q.items) {
			q.senders++
			o.senders.Go(func() { e.sendQueue(ctx, dd.DestinationID) })
		}
	}
	return len(due) == dispatchBatch && len(picked) > 0
}

// leaseChunk bounds the deliveries one lease commit writes (each write
// moves a delivery in the queue: a few keys).
const leaseChunk = 128

// leaseDeliveries leases deliveries read from a shared store's queue, a
// chunk per commit, and returns those it leased; the others — leased by
// another node, or changed since the read — it forgets.
func (e *Engine) leaseDeliveries(ctx context.Context, dds []DueDelivery) []DueDelivery {
	o := e.outbox
	var out []DueDelivery
	for chunk := range slices.Chunk(dds, leaseChunk) {
		var leased []DueDelivery
		var until time.Time
		err := e.store.Update(ctx, func(tx Tx) error {
			leased = leased[:0]
			now := e.now()
			until = now.Add(o.lease)
			for _, dd := range chunk {
				dl, run, err := tx.Delivery(dd.Environment, dd.ID)
				if isNotFound(err) {
					continue
				}
				if err != nil {
					return err
				}
				if dl.GetStatus() != harkv1.DeliveryStatus_DELIVERY_STATUS_PENDING || dl.GetNextAttemptAt() == nil || dl.GetNextAttemptAt().AsTime().After(now) {
					continue
				}
				dl.NextAttemptAt = timestamppb.New(until)
				if err := tx.PutDelivery(dl, nil, e.deliveryExpiry(run)); err != nil {
					return err
				}
				leased = append(leased, dd)
			}
			return nil
		})
		if err != nil {
			if ctx.Err() == nil {
				e.log.Warn("lease deliveries; they stay due", "deliveries", len(chunk), "err", err)
			}
			leased = nil
		}
		o.mu.Lock()
		for _, dd := range chunk {
			delete(o.known, dd.ID)
		}
		for _, dd := range leased {
			o.known[dd.ID] = timestamppb.New(until).AsTime()
		}
		o.mu.Unlock()
		out = append(out, leased...)
	}
	return out
}

// sendable reports whether dl, read again before its attempt, is this
// node's to send now: due, or on a shared store still under this node's
// lease.
func (e *Engine) sendable(dd DueDelivery, dl *harkv1.Delivery) bool {
	if dl.GetStatus() != harkv1.DeliveryStatus_DELIVERY_STATUS_PENDING || dl.GetNextAttemptAt() == nil {
		return false
	}
	next := dl.GetNextAttemptAt().AsTime()
	o := e.outbox
	if o.lease == 0 {
		return !next.After(e.now())
	}
	o.mu.Lock()
	lease := o.known[dd.ID]
	o.mu.Unlock()
	return next.Equal(lease)
}

// sendQueue is one sender of a destination: it sends its queue's
// deliveries one by one until the queue is empty or ctx ends.
func (e *Engine) sendQueue(ctx context.Context, dest string) {
	o := e.outbox
	for {
		o.mu.Lock()
		q := o.queues[dest]
		if ctx.Err() != nil || len(q.items) == 0 {
			q.senders--
			if q.senders == 0 && len(q.items) == 0 {
				delete(o.queues, dest)
			}
			o.mu.Unlock()
			return
		}
		dd := q.items[0]
		q.items = q.items[1:]
		low := len(q.items) == queuedPerDestination/2
		o.mu.Unlock()
		if low {
			o.notify() // refill before it runs dry
		}
		e.attemptSafely(ctx, dd)
	}
}

// attemptSafely is attempt, with a panic logged and the delivery left due.
func (e *Engine) attemptSafely(ctx context.Context, dd DueDelivery) {
	defer func() {
		if r := recover(); r != nil {
			e.log.Error("sending a delivery panicked", "delivery", dd.ID, "panic", r, "stack", string(debug.Stack()))
			e.outbox.outcomes <- outcomeOf{dd: dd}
		}
	}()
	e.attempt(ctx, dd)
}

// attempt sends one due delivery and hands what it decided to the
// recorder; every path hands exactly one outcome on, so the delivery is
// forgotten (and can be read again) once that is recorded.
func (e *Engine) attempt(ctx context.Context, dd DueDelivery) {
	o := e.outbox
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
		dest, secrets, err = e.destination(tx, dd.Environment, dl.GetDestinationId())
		if isNotFound(err) {
			gone, err = true, nil
		}
		return err
	})
	switch {
	case err != nil:
		if !isNotFound(err) && ctx.Err() == nil {
			e.log.Warn("read a delivery", "delivery", dd.ID, "err", err)
		}
		o.outcomes <- outcomeOf{dd: dd} // expired, or read again later
		return
	case !e.sendable(dd, dl):
		o.outcomes <- outcomeOf{dd: dd} // changed since the queue was read
		return
	case gone:
		o.outcomes <- outcomeOf{dd: dd, change: func(_ Tx, d *harkv1.Delivery) (bool, error) {
			e.failDeleted(d)
			return true, nil
		}}
		return
	case dest.GetStatus() != harkv1.DestinationStatus_DESTINATION_STATUS_ACTIVE:
		o.outcomes <- outcomeOf{dd: dd, change: e.holdIfInactive}
		return
	}

	msg := delivery.Message{ID: dl.GetId(), EventType: delivery.EventType(dl.GetEventType()), Run: run, Timestamp: changeTime(dl, run)}
	a := o.client.Send(ctx, target(dest, secrets), msg)
	if ctx.Err() != nil && errors.Is(a.Err, context.Canceled) {
		o.outcomes <- outcomeOf{dd: dd} // shutting down: it stays due and is sent again
		return
	}
	var result string
	disabled := false
	o.outcomes <- outcomeOf{dd: dd, change: func(tx Tx, d *harkv1.Delivery) (bool, error) {
		result, disabled = "failed", false
		d.Attempts = append(d.Attempts, a.Proto())
		if n := len(d.Attempts); n > maxAttemptsKept {
			d.Attempts = d.Attempts[n-maxAttemptsKept:]
		}
		d.AttemptCount++
		switch {
		case a.Succeeded:
			d.Status, d.NextAttemptAt, result = harkv1.DeliveryStatus_DELIVERY_STATUS_SUCCEEDED, nil, "succeeded"
		case a.Disable:
			// Held with its destination, disabled in the same commit: a
			// delivery held behind an active destination would never be
			// sent.
			d.NextAttemptAt, result = nil, "disabled"
			var err error
			disabled, err = e.disableDestination(tx, dest.GetEnvironment(), dest.GetId(), a.Error)
			if isNotFound(err) {
				d.Status = harkv1.DeliveryStatus_DELIVERY_STATUS_FAILED // deleted meanwhile: nowhere to go
				return true, nil
			}
			if err != nil {
				return false, err
			}
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
		return true, nil
	}, after: func() {
		if result != "" {
			e.metrics.DeliveryAttempted(dest.GetType(), result, a.Duration)
		}
		if disabled {
			e.log.Warn("destination disabled: its receiver answered 410 Gone", "destination", dest.GetId(), "environment", dest.GetEnvironment())
		}
	}}
}

// runRecorder writes outcomes until the channel closes: all those waiting,
// up to recordBatch, in one commit. A commit that fails keeps nothing of
// its outcomes: their deliveries stay due and are sent again.
func (e *Engine) runRecorder() {
	o := e.outbox
	for first := range o.outcomes {
		batch := []outcomeOf{first}
	gather:
		for len(batch) < recordBatch {
			select {
			case next, ok := <-o.outcomes:
				if !ok {
					break gather
				}
				batch = append(batch, next)
			default:
				break gather
			}
		}
		e.record(batch)
	}
}

// record commits a batch of outcomes, then forgets their deliveries.
func (e *Engine) record(batch []outcomeOf) {
	o := e.outbox
	var soon time.Time
	written := make([]bool, len(batch))
	err := e.store.Update(context.Background(), func(tx Tx) error {
		soon = time.Time{}
		for i, oc := range batch {
			written[i] = false
			if oc.change == nil {
				continue
			}
			dl, run, err := tx.Delivery(oc.dd.Environment, oc.dd.ID)
			if isNotFound(err) {
				continue
			}
			if err != nil {
				return err
			}
			if dl.GetStatus() != harkv1.DeliveryStatus_DELIVERY_STATUS_PENDING || dl.GetNextAttemptAt() == nil {
				continue // changed meanwhile (a retry through the API)
			}
			ok, err := oc.change(tx, dl)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			dl.UpdatedAt = e.timestamp()
			if err := tx.PutDelivery(dl, nil, e.deliveryExpiry(run)); err != nil {
				return err
			}
			written[i] = true
			if next := dl.GetNextAttemptAt(); next != nil && (soon.IsZero() || next.AsTime().Before(soon)) {
				soon = next.AsTime()
			}
		}
		return nil
	})
	if err != nil {
		e.log.Warn("record delivery attempts; they will be sent again", "attempts", len(batch), "err", err)
	}
	o.mu.Lock()
	for _, oc := range batch {
		delete(o.known, oc.dd.ID)
	}
	if !soon.IsZero() && (o.soon.IsZero() || soon.Before(o.soon)) {
		o.soon = soon
	}
	o.mu.Unlock()
	if err == nil {
		for i, oc := range batch {
			if written[i] && oc.after != nil {
				oc.after()
			}
		}
	}
	o.notify()
}

// holdIfInactive holds a due delivery whose destination an attempt read
// paused or disabled, deciding on the destination as the transaction sees
// it: one resumed since (which released what was held before this one
// would be) leaves the delivery due, and one deleted since fails it.
func (e *Engine) holdIfInactive(tx Tx, d *harkv1.Delivery) (bool, error) {
	dest, _, err := tx.Destination(d.GetEnvironment(), d.GetDestinationId())
	switch {
	case isNotFound(err):
		e.failDeleted(d)
		return true, nil
	case err != nil:
		return false, err
	case dest.GetStatus() == harkv1.DestinationStatus_DESTINATION_STATUS_ACTIVE:
		return false, nil // stays due: the next read of the queue takes it
	}
	d.NextAttemptAt = nil
	return true, nil
}

// failDeleted makes a pending delivery whose destination was deleted
// FAILED, with an attempt that says so: it has nowhere to go, and a delivery
// left PENDING would look like work still to do.
func (e *Engine) failDeleted(d *harkv1.Delivery) {
	d.Status, d.NextAttemptAt = harkv1.DeliveryStatus_DELIVERY_STATUS_FAILED, nil
	d.Attempts = append(d.Attempts, &harkv1.DeliveryAttempt{StartedAt: e.timestamp(), Error: "the destination was deleted"})
}

// changeTime is when the change a delivery carries happened.
func changeTime(dl *harkv1.Delivery, run *harkv1.WorkflowRun) time.Time {
	if dl.GetEventType() == string(delivery.EventRunCancelled) {
		return run.GetUpdatedAt().AsTime()
	}
	return run.GetCreatedAt().AsTime()
}

// disableDestination marks a destination DISABLED, in tx, after its
// receiver answered 410 Gone; its deliveries are held until it is set
// ACTIVE. It reports whether the destination was active until now.
func (e *Engine) disableDestination(tx Tx, env, id, reason string) (bool, error) {
	d, secrets, err := tx.Destination(env, id)
	if err != nil {
		return false, err
	}
	if d.GetStatus() == harkv1.DestinationStatus_DESTINATION_STATUS_DISABLED {
		return false, nil
	}
	d.Status = harkv1.DestinationStatus_DESTINATION_STATUS_DISABLED
	d.DisabledReason = "the receiver answered 410 Gone: " + reason
	d.UpdatedAt = e.timestamp()
	return true, tx.PutDestination(d, secrets)
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
	filter := DeliveryFilter{DestinationID: req.GetDestinationId(), WorkflowRunID: req.GetWorkflowRunId(), Status: req.GetStatus()}
	resp := &harkv1.ListDeliveriesResponse{}
	err = e.store.View(ctx, func(tx Tx) error {
		if _, err := tx.Environment(req.GetEnvironment()); err != nil {
			return err
		}
		list, last, err := tx.Deliveries(req.GetEnvironment(), p.after, p.limit(), maxEventScan, filter)
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
			page, last, err := tx.WorkflowRuns(env, before, MaxPageSize, MaxPageSize, RunFilter{})
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
				if cancelledSome(r) && r.GetUpdatedAt().AsTime().Before(until) {
					events = append(events, delivery.EventRunCancelled)
				}
				for _, ev := range events {
					snapshot := runAsOf(r, ev)
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

// runAsOf returns a run as it was at a change, for a replayed delivery to
// send what the first one sent (the outbox keeps a snapshot per delivery,
// but a replay starts from the run). As created, a run is ACTIVE for every
// recipient and last updated when created; its feed cursor of then is not
// kept, so it is left out rather than given wrong. The cancellations of a
// run (one, or several partial ones) replay as one: the run as it is now,
// naming every recipient cancelled so far.
func runAsOf(run *harkv1.WorkflowRun, event delivery.EventType) *harkv1.WorkflowRun {
	out := proto.CloneOf(run)
	out.Deliveries = nil
	states := recipientStates(out)
	switch event {
	case delivery.EventRunCreated:
		if run.GetStatus() != harkv1.WorkflowRunStatus_WORKFLOW_RUN_STATUS_ACTIVE || len(run.GetCancelledRecipients()) > 0 {
			out.Status = harkv1.WorkflowRunStatus_WORKFLOW_RUN_STATUS_ACTIVE
			out.UpdatedAt = run.GetCreatedAt()
			out.Cursor = ""
		}
		out.CancelledRecipients = nil
		out.RecipientStates = make([]*harkv1.RunRecipient, len(states))
		for i, st := range states {
			out.RecipientStates[i] = &harkv1.RunRecipient{Id: st.GetId(), Status: harkv1.WorkflowRunStatus_WORKFLOW_RUN_STATUS_ACTIVE}
		}
	case delivery.EventRunCancelled:
		out.RecipientStates, out.CancelledRecipients = states, nil
		for _, st := range states {
			if st.GetStatus() == harkv1.WorkflowRunStatus_WORKFLOW_RUN_STATUS_CANCELLED {
				out.CancelledRecipients = append(out.CancelledRecipients, st.GetId())
			}
		}
	}
	return out
}

// cancelledSome reports whether the run was cancelled for any recipient.
func cancelledSome(run *harkv1.WorkflowRun) bool {
	if run.GetStatus() == harkv1.WorkflowRunStatus_WORKFLOW_RUN_STATUS_CANCELLED {
		return true
	}
	return slices.ContainsFunc(run.GetRecipientStates(), func(st *harkv1.RunRecipient) bool {
		return st.GetStatus() == harkv1.WorkflowRunStatus_WORKFLOW_RUN_STATUS_CANCELLED
	})
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
	withRecipientStates(run)
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
