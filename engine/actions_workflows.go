package engine

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/harkhq/hark/engine/rules"
	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// The workflow actions: workflows_trigger (a trigger as hark always had
// them) and workflows_cancel. Both name a workflow (workflow_key) and read
// TriggerMapping, not ActionMapping.

// checkWorkflowAction is what both workflow actions need at save.
func checkWorkflowAction(t *harkv1.Trigger, v *validation) {
	if t.GetWorkflowKey() == "" {
		v.add("workflowKey", "is required")
	}
	if am := t.GetActionMapping(); am != nil {
		for f := range numActionFields {
			if f.source(am) != "" {
				v.add("actionMapping."+f.name(), "is not read by %s actions; they read mapping", actionName(t.GetActionType()))
			}
		}
	}
}

// workflowsTrigger starts a run of the trigger's workflow (DESIGN §4). Its
// frequency, as Knock's "trigger frequency", is every time (the default) or
// once per recipient, optionally per tenant: a recipient the trigger
// already started a run for is a skipped recipient with the reason, for as
// long as the trigger exists (changing the frequency keeps the record).
type workflowsTrigger struct{}

func (workflowsTrigger) logType() harkv1.ActionType {
	return harkv1.ActionType_ACTION_TYPE_TRIGGER_WORKFLOW
}

func (workflowsTrigger) check(t *harkv1.Trigger, v *validation) {
	checkWorkflowAction(t, v)
	if _, ok := harkv1.TriggerFrequency_name[int32(t.GetFrequency())]; !ok {
		v.add("frequency", "unknown frequency %d", t.GetFrequency())
	}
}

func (workflowsTrigger) mapEvent(ct *compiledTrigger, ev *harkv1.SourceEvent, env rules.Env, o *outcome) *outcome {
	return mapRun(ct, ev, env, o)
}

func (workflowsTrigger) apply(e *Engine, tx Tx, ct *compiledTrigger, ev *harkv1.SourceEvent, m *outcome, a *harkv1.Action) (bool, error) {
	o, err := e.finish(tx, ct, ev, m)
	if err != nil {
		return false, err
	}
	a.Status, a.Reason = o.status, o.reason
	if o.status != harkv1.ActionStatus_ACTION_STATUS_SUCCESS {
		return false, nil
	}
	once, tenant := onceKey(ct.t, o)
	if once {
		if o, err = skipFired(tx, ct.t, tenant, o); err != nil {
			return false, err
		}
		if o.status != harkv1.ActionStatus_ACTION_STATUS_SUCCESS {
			a.Status, a.Reason = o.status, o.reason
			return false, nil
		}
	}
	run, err := e.startRun(tx, ev.GetEnvironment(), ct.t.GetWorkflowKey(), ct.t.GetId(), ev.GetId(), o)
	var ve *ValidationError
	if msg, ok := actionLimit(err); ok {
		a.Status, a.Reason = harkv1.ActionStatus_ACTION_STATUS_ERROR, msg
		return false, nil
	}
	if errors.As(err, &ve) {
		a.Status, a.Reason = harkv1.ActionStatus_ACTION_STATUS_ERROR, "mapping.tenant: "+ve.Error()
		return false, nil
	}
	if err != nil {
		return false, err
	}
	a.WorkflowRunId = run.GetId()
	if once {
		for _, r := range run.GetRecipients() {
			if err := tx.PutTriggerFired(run.GetEnvironment(), ct.t.GetId(), tenant, r, run.GetId()); err != nil {
				return false, err
			}
		}
	}
	return true, nil
}

// onceKey says whether a trigger fires once per recipient, and the tenant
// its firings are counted under ("" unless once per recipient per tenant).
func onceKey(t *harkv1.Trigger, o *outcome) (bool, string) {
	switch t.GetFrequency() {
	case harkv1.TriggerFrequency_TRIGGER_FREQUENCY_ONCE_PER_RECIPIENT:
		return true, ""
	case harkv1.TriggerFrequency_TRIGGER_FREQUENCY_ONCE_PER_RECIPIENT_PER_TENANT:
		return true, o.tenant
	}
	return false, ""
}

// skipFired moves the recipients the trigger already fired for (under the
// tenant) to the skipped ones, as Knock's "once per recipient" frequency
// does; with none left the outcome is SKIPPED. It returns a copy: o may be
// retried with the commit.
func skipFired(tx Tx, t *harkv1.Trigger, tenant string, o *outcome) (*outcome, error) {
	out := *o
	out.recipients, out.skipped = nil, slices.Clone(o.skipped)
	reason := "already triggered for this recipient (frequency: once per recipient)"
	if t.GetFrequency() == harkv1.TriggerFrequency_TRIGGER_FREQUENCY_ONCE_PER_RECIPIENT_PER_TENANT {
		reason = "already triggered for this recipient and tenant (frequency: once per recipient per tenant)"
	}
	for _, r := range o.recipients {
		fired, err := exists(tx.TriggerFired(t.GetEnvironment(), t.GetId(), tenant, r))
		if err != nil {
			return nil, err
		}
		if fired {
			out.skipped = append(out.skipped, &harkv1.SkippedRecipient{Id: r, Reason: reason})
		} else {
			out.recipients = append(out.recipients, r)
		}
	}
	if len(out.recipients) == 0 {
		return out.fail(harkv1.ActionStatus_ACTION_STATUS_SKIPPED, "every recipient was already triggered (frequency: %s)", frequencyName(t.GetFrequency())), nil
	}
	return &out, nil
}

func frequencyName(f harkv1.TriggerFrequency) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(f.String(), "TRIGGER_FREQUENCY_")), "_", " ")
}

// workflowsCancel cancels the active runs of the trigger's workflow with
// the mapped cancellation key, in the ingest commit: a cancel that follows
// its trigger in one batch sees that run. With mapped recipients only runs
// for those recipients are cancelled. Unlike workflows_trigger, recipients
// has no default: a cancel without them cancels every recipient's run, as
// Knock's cancel does.
type workflowsCancel struct{}

// maxCancelPerAction bounds the runs one cancel action cancels inside the
// ingest commit, which must stay one store transaction; CancelWorkflow
// (chunked) cancels any number.
const maxCancelPerAction = 1000

func (workflowsCancel) logType() harkv1.ActionType {
	return harkv1.ActionType_ACTION_TYPE_CANCEL_WORKFLOW
}

func (workflowsCancel) check(t *harkv1.Trigger, v *validation) {
	checkWorkflowAction(t, v)
	m := t.GetMapping()
	if m.GetCancellationKey() == "" {
		v.add("mapping.cancellationKey", "is required for workflows_cancel actions")
	}
	for field, src := range map[string]string{"actor": m.GetActor(), "tenant": m.GetTenant(), "data": m.GetData()} {
		if src != "" {
			v.add("mapping."+field, "is not read by workflows_cancel actions")
		}
	}
	checkFrequencyUnset(t, v)
}

func (workflowsCancel) mapEvent(ct *compiledTrigger, _ *harkv1.SourceEvent, env rules.Env, o *outcome) *outcome {
	var cancel any
	for _, f := range []struct {
		name string
		p    *rules.Program
		dst  *any
	}{{"recipients", ct.recipients, &o.rawRecipients}, {"cancellationKey", ct.cancellation, &cancel}} {
		if f.p == nil {
			continue
		}
		v, err := f.p.Eval(env)
		if err == nil {
			err = rules.CheckValue(v)
		}
		if err != nil {
			return o.fail(harkv1.ActionStatus_ACTION_STATUS_ERROR, "%v", &MappingError{Field: f.name, Message: err.Error()})
		}
		*f.dst = v
	}
	ids, _, objects, msg := readRecipients(o.rawRecipients)
	if msg == "" && len(objects) > 0 {
		msg = "object recipients cannot be cancelled for; map to user ids"
	}
	if msg != "" {
		return o.fail(harkv1.ActionStatus_ACTION_STATUS_ERROR, "%v", &MappingError{Field: "recipients", Message: msg})
	}
	o.recipients = ids
	key, err := readCancellationKey(cancel)
	if err != nil {
		return o.fail(harkv1.ActionStatus_ACTION_STATUS_ERROR, "%v", err)
	}
	o.cancellationKey = key
	if o.cancellationKey == "" {
		return o.fail(harkv1.ActionStatus_ACTION_STATUS_SKIPPED, "mapping.cancellationKey yielded no key")
	}
	return o
}

func (workflowsCancel) apply(e *Engine, tx Tx, ct *compiledTrigger, ev *harkv1.SourceEvent, o *outcome, a *harkv1.Action) (bool, error) {
	if o.status != harkv1.ActionStatus_ACTION_STATUS_SUCCESS {
		return false, nil
	}
	env, wf := ev.GetEnvironment(), ct.t.GetWorkflowKey()
	if _, err := e.workflow(tx, wf); isNotFound(err) {
		a.Status, a.Reason = harkv1.ActionStatus_ACTION_STATUS_SKIPPED, fmt.Sprintf("workflow %q not found", wf)
		return false, nil
	} else if err != nil {
		return false, err
	}
	a.Recipients = o.recipients
	ids, err := tx.CancellableRuns(env, wf, o.cancellationKey, "", maxCancelPerAction+1)
	if err != nil {
		return false, err
	}
	if len(ids) > maxCancelPerAction {
		ids = ids[:maxCancelPerAction]
		a.Reason = fmt.Sprintf("cancelled the first %d matching runs; cancel the rest with CancelWorkflow", maxCancelPerAction)
	}
	done, err := e.cancelInTx(tx, env, ids, func(r *harkv1.WorkflowRun) bool {
		return r.GetWorkflowKey() == wf && r.GetCancellationKey() == o.cancellationKey
	}, o.recipients, "trigger "+ct.t.GetId())
	if err != nil {
		return false, err
	}
	for _, c := range done {
		a.CancelledWorkflowRunIds = append(a.CancelledWorkflowRunIds, c.GetWorkflowRunId())
	}
	changed := len(done) > 0
	if len(a.CancelledWorkflowRunIds) == 0 {
		a.Status, a.Reason = harkv1.ActionStatus_ACTION_STATUS_SKIPPED, "no active run matches the cancellation key"
	}
	return changed, nil
}
