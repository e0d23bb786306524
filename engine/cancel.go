package engine

import (
	"context"
	"fmt"
	"slices"

	"github.com/harkhq/hark/engine/delivery"
	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// Per-recipient cancellation (DESIGN §9).
//
// A run keeps a status per recipient: cancelling with recipients stops the
// run for those recipients only, as Knock's cancel does, and the run is
// CANCELLED once no recipient is left active. Cancelling without recipients
// stops it for all of them.
//
// A run is stored without recipient states until its first cancellation,
// which writes them all: most runs are never cancelled, and a run of 1,000
// recipients need not carry 1,000 states from its start. Runs stored before
// per-recipient state existed read the same way: every recipient has the
// run's status (cancelled when the run was last updated). Readers see the
// states filled in either way (withRecipientStates).
//
// Each cancellation that changes a run is one run change: it takes the next
// feed cursor (WatchWorkflowRuns shows it) and a `workflow_run.cancelled`
// delivery to every destination that takes the workflow, whose run snapshot
// names, in cancelled_recipients, the recipients that change cancelled. A
// destination acts on those alone: a Knock destination cancels Knock's
// workflow for them (Knock's own per-recipient cancel), a Segment
// destination sends a "Workflow Run Cancelled" track for each, and a webhook
// receiver reads them and the run's status, which stays ACTIVE while other
// recipients go on.

// cancelReasonAPI is the cancel reason of a CancelWorkflow call.
const cancelReasonAPI = "CancelWorkflow"

// recipientStates returns the run's recipients with their states: the stored
// ones, or, for a run never cancelled per recipient, every recipient with the
// run's status.
func recipientStates(run *harkv1.WorkflowRun) []*harkv1.RunRecipient {
	if len(run.GetRecipientStates()) > 0 {
		return run.GetRecipientStates()
	}
	cancelled := run.GetStatus() == harkv1.WorkflowRunStatus_WORKFLOW_RUN_STATUS_CANCELLED
	states := make([]*harkv1.RunRecipient, len(run.GetRecipients()))
	for i, id := range run.GetRecipients() {
		states[i] = &harkv1.RunRecipient{Id: id, Status: run.GetStatus()}
		if cancelled {
			states[i].CancelledAt = run.GetUpdatedAt()
		}
	}
	return states
}

// withRecipientStates fills the run's recipient states for a reader, so
// every run shows them whether or not they are stored.
func withRecipientStates(run *harkv1.WorkflowRun) {
	run.RecipientStates = recipientStates(run)
}

// cancelRecipients cancels the run, inside tx, for those of recipients that
// are still active in it (for every active recipient when recipients is
// empty), and stores the change at the next feed cursor with a
// `workflow_run.cancelled` delivery to each destination that takes it. The
// run is CANCELLED when no recipient is left active. reason says what
// cancelled it (kept per recipient).
//
// It returns the recipients it cancelled; none means the run was not active
// for any of them, and nothing was written. Callers hold e.runMu around the
// transaction, and notify e.runs and e.outbox after it commits, as for
// putRunChange. Both CancelWorkflow and the ingest commit (a cancel action)
// call it, so the API and actions cancel alike.
func (e *Engine) cancelRecipients(tx Tx, run *harkv1.WorkflowRun, recipients []string, reason string) ([]string, error) {
	if run.GetStatus() != harkv1.WorkflowRunStatus_WORKFLOW_RUN_STATUS_ACTIVE {
		return nil, nil
	}
	now := e.timestamp()
	states := recipientStates(run)
	var cancelled []string
	active := 0
	for i, st := range states {
		if st.GetStatus() == harkv1.WorkflowRunStatus_WORKFLOW_RUN_STATUS_ACTIVE &&
			(len(recipients) == 0 || slices.Contains(recipients, st.GetId())) {
			// A copy: the states of a run read from the store may be shared
			// with what the caller still holds.
			states[i] = &harkv1.RunRecipient{
				Id: st.GetId(), Status: harkv1.WorkflowRunStatus_WORKFLOW_RUN_STATUS_CANCELLED,
				CancelledAt: now, CancelReason: reason,
			}
			cancelled = append(cancelled, st.GetId())
			continue
		}
		if st.GetStatus() == harkv1.WorkflowRunStatus_WORKFLOW_RUN_STATUS_ACTIVE {
			active++
		}
	}
	if len(cancelled) == 0 {
		return nil, nil
	}
	run.RecipientStates = states
	run.CancelledRecipients = cancelled
	if active == 0 {
		run.Status = harkv1.WorkflowRunStatus_WORKFLOW_RUN_STATUS_CANCELLED
	}
	run.UpdatedAt = now
	if err := e.putRunChange(tx, run, delivery.EventRunCancelled); err != nil {
		return nil, err
	}
	return cancelled, nil
}

// CancelWorkflow cancels the active runs of a workflow with the
// cancellation key — for the request's recipients only, when it names some
// (see cancelRecipients).
//
// The runs are found through the store's cancellation index, without a
// lock, and cancelled in chunks of cancelChunk, each its own commit holding
// runMu only for that chunk: a cancel of many runs never stalls ingestion
// or exceeds a transaction. Each run is read again inside its chunk's
// commit, so a run that changed meanwhile is judged as it is now. If the
// call fails part way, the runs of the committed chunks stay cancelled and
// calling again cancels the rest.
func (e *Engine) CancelWorkflow(ctx context.Context, req *harkv1.CancelWorkflowRequest) (*harkv1.CancelWorkflowResponse, error) {
	if req.GetCancellationKey() == "" {
		return nil, &ValidationError{Violations: []FieldViolation{{Field: "cancellationKey", Description: "is required"}}}
	}
	var v validation
	for i, id := range req.GetRecipients() {
		if id == "" {
			v.add(fmt.Sprintf("recipients[%d]", i), "must not be empty")
		}
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	env, wfKey, ck := req.GetEnvironment(), req.GetKey(), req.GetCancellationKey()
	resp := &harkv1.CancelWorkflowResponse{}
	after := ""
	for {
		var ids []string
		err := e.store.View(ctx, func(tx Tx) (err error) {
			if after == "" {
				if _, err := tx.Environment(env); err != nil {
					return err
				}
				if _, err := tx.Workflow(wfKey); err != nil {
					return err
				}
			}
			ids, err = tx.CancellableRuns(env, wfKey, ck, after, cancelChunk)
			return err
		})
		if err != nil {
			return nil, err
		}
		if len(ids) == 0 {
			return resp, nil
		}
		after = ids[len(ids)-1]
		done, err := e.cancelRuns(ctx, env, ids, func(r *harkv1.WorkflowRun) bool {
			return r.GetWorkflowKey() == wfKey && r.GetCancellationKey() == ck
		}, req.GetRecipients())
		if err != nil {
			return nil, err
		}
		for _, c := range done {
			resp.WorkflowRunIds = append(resp.WorkflowRunIds, c.GetWorkflowRunId())
		}
		resp.Cancellations = append(resp.Cancellations, done...)
	}
}

// cancelRuns cancels, in one commit under runMu, those of the runs that
// still match for the recipients (all when empty), and says what it did.
func (e *Engine) cancelRuns(ctx context.Context, env string, ids []string, matches func(*harkv1.WorkflowRun) bool, recipients []string) ([]*harkv1.RunCancellation, error) {
	var done []*harkv1.RunCancellation
	e.runMu.Lock()
	defer e.runMu.Unlock()
	err := e.store.Update(ctx, func(tx Tx) (err error) {
		done, err = e.cancelInTx(tx, env, ids, matches, recipients, cancelReasonAPI)
		return err
	})
	if err != nil {
		return nil, err
	}
	if len(done) > 0 {
		e.outbox.notify()
	}
	return done, nil
}

// cancelInTx cancels, inside tx, those of the runs ids that match (all
// when matches is nil) for the recipients (all when empty), with
// cancelRecipients, and says what it did per run changed. A run that
// expired is passed over. A cancel action in the ingest commit calls it with
// the ids of tx.CancellableRuns; like cancelRecipients, its callers hold
// runMu and notify e.runs and e.outbox after the commit when it changed a
// run.
func (e *Engine) cancelInTx(tx Tx, env string, ids []string, matches func(*harkv1.WorkflowRun) bool, recipients []string, reason string) ([]*harkv1.RunCancellation, error) {
	var done []*harkv1.RunCancellation
	for _, id := range ids {
		run, err := tx.WorkflowRun(env, id)
		if isNotFound(err) {
			continue // expired
		}
		if err != nil {
			return nil, err
		}
		if matches != nil && !matches(run) {
			continue
		}
		cancelled, err := e.cancelRecipients(tx, run, recipients, reason)
		if err != nil {
			return nil, err
		}
		if len(cancelled) > 0 {
			done = append(done, &harkv1.RunCancellation{WorkflowRunId: run.GetId(), Recipients: cancelled, Status: run.GetStatus()})
		}
	}
	return done, nil
}
