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
// records) nor other destinations. A due delivery whose destination has no
// room is parked: kept in memory in its destination's queue, and skipped by
// later reads of the store's queue without counting against their batch,
// so the backlog of a slow destination, due before everything else, never
// hides the deliveries behind it. When an attempt ends, its sender starts
// the oldest parked delivery of its destination itself: a backlog drains as
// fast as its receiver answers, without a read of the store's queue per
// attempt. The outcome of an attempt is written with the delivery:
// SUCCEEDED; or due again after the schedule's wait (and the receiver's
// Retry-After); or FAILED when the schedule is spent; or held with its
// destination when the receiver answered 410 Gone.

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
	inflight map[string]bool          // delivery ids handed to a sender goroutine
	perDest  map[string]int           // attempts under way, by destination id
	parked   map[string]string        // parked delivery id → its destination, which had no room
	queues   map[string][]DueDelivery // parked deliveries by destination, oldest first (and ids no longer parked)
	senders  sync.WaitGroup
}

// park remembers a due delivery whose destination has no room, at the end
// of its destination's queue. Callers hold o.mu.
func (o *outbox) park(dd DueDelivery, dest string) {
	if o.parked == nil {
		o.parked, o.queues = map[string]string{}, map[string][]DueDelivery{}
	}
	if _, ok := o.parked[dd.ID]; ok {
		return
	}
	o.parked[dd.ID] = dest
	o.queues[dest] = append(o.queues[dest], dd)
}

// unpark forgets a parked delivery that is being started; its queue entry
// goes stale and is skipped. Callers hold o.mu.
func (o *outbox) unpark(id string) { delete(o.parked, id) }

// nextParked takes the oldest parked delivery of a destination whose
// sender is not still at work, marks it in flight and returns it; false
// when there is none. Callers hold o.mu.
func (o *outbox) nextParked(dest string) (DueDelivery, bool) {
	q := o.queues[dest]
	for len(q) > 0 && o.parked[q[0].ID] != dest {
		q = q[1:] // stale: started or forgotten since
	}
	defer func() {
		if len(q) == 0 {
			delete(o.queues, dest)
		} else {
			o.queues[dest] = q
		}
	}()
	for i, dd := range q {
		// One in flight is parked by its own sender, which is about to
		// finish; it stays for the next attempt that ends.
		if o.parked[dd.ID] == dest && !o.inflight[dd.ID] {
			q = slices.Delete(q, i, i+1)
			o.unpark(dd.ID)
			o.inflight[dd.ID] = true
			return dd, true
		}
	}
	return DueDelivery{}, false
}

// forgetParked drops the parked deliveries that are no longer due, given
// every due delivery's id. Callers hold o.mu.
func (o *outbox) forgetParked(due map[string]bool) {
	for id := range o.parked {
		if !due[id] {
			delete(o.parked, id)
		}
	}
	for dest, q := range o.queues {
		kept := q[:0]
		for _, dd := range q {
			if o.parked[dd.ID] == dest {
				kept = append(kept, dd)
			}
		}
		if len(kept) == 0 {
			delete(o.queues, dest)
		} else {
			o.queues[dest] = kept
		}
	}
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
// may have room, and reports whether the read of the queue was full (more
// are due than it read).
//
// Parked deliveries are skipped unless their destination has room now, and
// then only as many as it has room for. The read takes dispatchBatch
// deliveries beyond the parked and in-flight ones, which it skips, so the
// deliveries behind a slow destination's backlog are always reached: at the
// cost of reading the keys of that backlog (not its records) each time.
func (e *Engine) dispatchDue(ctx context.Context) bool {
	o := e.outbox
	o.mu.Lock()
	limit := dispatchBatch + len(o.parked) + len(o.inflight)
	o.mu.Unlock()
	var due []DueDelivery
	err := e.store.View(ctx, func(tx Tx) (err error) {
		due, err = tx.DueDeliveries(e.now(), limit)
		return err
	})
	if err != nil {
		if ctx.Err() == nil {
			e.log.Warn("read the delivery queue", "err", err)
		}
		return false
	}
	start := make([]DueDelivery, 0, min(len(due), dispatchBatch))
	room := map[string]int{} // what this read may still start, by parked destination
	o.mu.Lock()
	for _, dd := range due {
		if len(start) == dispatchBatch {
			break
		}
		if o.inflight[dd.ID] {
			continue
		}
		if dest, ok := o.parked[dd.ID]; ok {
			r, seen := room[dest]
			if !seen {
				r = o.concurrency - o.perDest[dest]
			}
			if r <= 0 {
				continue
			}
			room[dest] = r - 1
			o.unpark(dd.ID)
		}
		o.inflight[dd.ID] = true
		start = append(start, dd)
	}
	if len(due) < limit {
		// The whole queue was read: a parked delivery not in it is no
		// longer due (retried, expired), so forget it.
		inQueue := make(map[string]bool, len(due))
		for _, dd := range due {
			inQueue[dd.ID] = true
		}
		o.forgetParked(inQueue)
	}
	o.mu.Unlock()
	for _, dd := range start {
		e.startAttempt(ctx, dd)
	}
	return len(due) == limit
}

// startAttempt makes an attempt at dd in a sender goroutine; the caller
// has put dd in o.inflight.
func (e *Engine) startAttempt(ctx context.Context, dd DueDelivery) {
	o := e.outbox
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
		e.finishAttempt(ctx, dd, func(_ Tx, d *harkv1.Delivery) (bool, error) {
			e.failDeleted(d)
			return true, nil
		})
		return
	case dest.GetStatus() != harkv1.DestinationStatus_DESTINATION_STATUS_ACTIVE:
		e.finishAttempt(ctx, dd, e.holdIfInactive)
		return
	}
	o := e.outbox
	o.mu.Lock()
	if o.perDest[dest.GetId()] >= o.concurrency {
		// Stays due, parked: an attempt to its destination that ends
		// starts it.
		o.park(dd, dest.GetId())
		o.mu.Unlock()
		return
	}
	o.perDest[dest.GetId()]++
	o.mu.Unlock()
	defer func() {
		o.mu.Lock()
		if o.perDest[dest.GetId()]--; o.perDest[dest.GetId()] == 0 {
			delete(o.perDest, dest.GetId())
		}
		next, ok := DueDelivery{}, false
		if ctx.Err() == nil {
			next, ok = o.nextParked(dest.GetId())
		}
		waiting := len(o.queues[dest.GetId()]) > 0
		o.mu.Unlock()
		switch {
		case ok:
			e.startAttempt(ctx, next)
		case waiting:
			o.notify() // only ones still in flight are parked: the next read takes them
		}
	}()

	msg := delivery.Message{ID: dl.GetId(), EventType: delivery.EventType(dl.GetEventType()), Run: run, Timestamp: changeTime(dl, run)}
	a := o.client.Send(ctx, target(dest, secrets), msg)
	if ctx.Err() != nil && errors.Is(a.Err, context.Canceled) {
		return // shutting down: the delivery stays due and is sent again
	}
	var result string
	disabled := false
	recorded := e.finishAttempt(ctx, dd, func(tx Tx, d *harkv1.Delivery) (bool, error) {
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
	})
	if result != "" {
		e.metrics.DeliveryAttempted(dest.GetType(), result, a.Duration)
	}
	if recorded && disabled {
		e.catalog.invalidate() // the destination changed
		e.log.Warn("destination disabled: its receiver answered 410 Gone", "destination", dest.GetId(), "environment", dest.GetEnvironment())
	}
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

// finishAttempt records what an attempt at dd decided, in one transaction.
// change gets the transaction and the stored delivery, if it is still the
// pending, due one that was read (a retry through the API or an expiry may
// have changed it meanwhile), and may read and change the destination in
// the same commit; it returns false to leave the delivery as it is. It
// reports whether the change was committed. When the commit fails, nothing
// of it is kept: the delivery stays due and is sent again.
func (e *Engine) finishAttempt(ctx context.Context, dd DueDelivery, change func(Tx, *harkv1.Delivery) (bool, error)) bool {
	// The attempt happened: record it even if the server is stopping.
	ctx = context.WithoutCancel(ctx)
	written := false
	err := e.store.Update(ctx, func(tx Tx) error {
		written = false
		dl, run, err := tx.Delivery(dd.Environment, dd.ID)
		if err != nil {
			return err
		}
		if dl.GetStatus() != harkv1.DeliveryStatus_DELIVERY_STATUS_PENDING || dl.GetNextAttemptAt() == nil {
			return nil
		}
		if ok, err := change(tx, dl); err != nil || !ok {
			return err
		}
		dl.UpdatedAt = e.timestamp()
		written = true
		return tx.PutDelivery(dl, nil, e.deliveryExpiry(run))
	})
	if err != nil && !isNotFound(err) {
		e.log.Warn("record a delivery attempt; it will be sent again", "delivery", dd.ID, "err", err)
	}
	return err == nil && written
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
// but a replay starts from the run). A run changes once, when it is
// cancelled, so as created it is ACTIVE and last updated when created; its
// feed cursor of then is not kept, so it is left out rather than given
// wrong.
func runAsOf(run *harkv1.WorkflowRun, event delivery.EventType) *harkv1.WorkflowRun {
	out := proto.CloneOf(run)
	out.Deliveries = nil
	if event == delivery.EventRunCreated && run.GetStatus() != harkv1.WorkflowRunStatus_WORKFLOW_RUN_STATUS_ACTIVE {
		out.Status = harkv1.WorkflowRunStatus_WORKFLOW_RUN_STATUS_ACTIVE
		out.UpdatedAt = run.GetCreatedAt()
		out.Cursor = ""
	}
	return out
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
