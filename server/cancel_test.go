package server_test

import (
	"encoding/json"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// cancelResult cancels over REST and returns the whole answer.
func (f *trgFixture) cancelResult(t *testing.T, env, workflow, body string) *harkv1.CancelWorkflowResponse {
	t.Helper()
	r := f.h.rest(t, http.MethodPost, "/v1/environments/"+env+"/workflows/"+workflow+"/cancel", body)
	wantStatus(t, r, http.StatusOK)
	return decode(t, r, &harkv1.CancelWorkflowResponse{})
}

// recipientStatuses maps a run's recipients to their statuses.
func recipientStatuses(run *harkv1.WorkflowRun) map[string]harkv1.WorkflowRunStatus {
	out := map[string]harkv1.WorkflowRunStatus{}
	for _, st := range run.GetRecipientStates() {
		out[st.GetId()] = st.GetStatus()
	}
	return out
}

// TestCancelRecipients cancels one of a run's two recipients, then the
// other (DESIGN §9): the first cancel leaves the run ACTIVE for the other
// recipient, the second makes it CANCELLED; the API, the watch stream, a
// webhook, a Knock and a Segment destination each see which recipients
// each change cancelled.
func TestCancelRecipients(t *testing.T) {
	t.Parallel()
	f := dstStart(t, dstFastSchedule)
	hook := newDstReceiver(t, nil)
	wh := f.webhook(t, hook, map[string]any{"workflowKeys": []string{"wf-a"}})
	knock := newDstReceiver(t, nil)
	kd := f.createDestination(t, map[string]any{"name": "knock", "type": "knock", "url": knock.srv.URL, "workflowKeys": []string{"wf-a"}, "settings": map[string]string{"api_key": "sk_1"}})
	seg := newDstReceiver(t, nil)
	sd := f.createDestination(t, map[string]any{"name": "segment", "type": "segment", "url": seg.srv.URL, "workflowKeys": []string{"wf-a"}, "settings": map[string]string{"write_key": "wk_1"}})

	runID := f.mustTriggerWorkflow(t, "development", "wf-a", `{"recipients":["u1","u2"],"cancellationKey":"order-7"}`)
	created := f.run(t, "development", runID)
	if got := recipientStatuses(created); !maps.Equal(got, map[string]harkv1.WorkflowRunStatus{"u1": trgActive, "u2": trgActive}) {
		t.Fatalf("new run's recipient states = %v, want u1 and u2 ACTIVE", created.GetRecipientStates())
	}
	watch := f.watchConnect(t, ctxFor(t), &harkv1.WatchWorkflowRunsRequest{Environment: "development", AfterCursor: created.GetCursor()})

	// 1. Cancel u1 over REST: the run goes on for u2.
	res := f.cancelResult(t, "development", "wf-a", `{"cancellationKey":"order-7","recipients":["u1","nobody"]}`)
	want := &harkv1.CancelWorkflowResponse{WorkflowRunIds: []string{runID}, Cancellations: []*harkv1.RunCancellation{{WorkflowRunId: runID, Recipients: []string{"u1"}, Status: trgActive}}}
	if !proto.Equal(res, want) {
		t.Fatalf("cancel u1 = %v, want %v", res, want)
	}
	run := f.run(t, "development", runID)
	if run.GetStatus() != trgActive || !slices.Equal(run.GetCancelledRecipients(), []string{"u1"}) {
		t.Fatalf("after cancelling u1: status %v, cancelledRecipients %v; want ACTIVE, [u1]", run.GetStatus(), run.GetCancelledRecipients())
	}
	states := run.GetRecipientStates()
	if len(states) != 2 || states[0].GetId() != "u1" || states[0].GetStatus() != trgCancelled || states[0].GetCancelledAt() == nil ||
		states[0].GetCancelReason() != "CancelWorkflow" || states[1].GetId() != "u2" || states[1].GetStatus() != trgActive || states[1].GetCancelledAt() != nil {
		t.Fatalf("after cancelling u1: recipient states = %v, want u1 CANCELLED (when, by CancelWorkflow), u2 ACTIVE", states)
	}
	if run.GetCursor() <= created.GetCursor() {
		t.Fatalf("the partial cancel kept cursor %s, want a newer one than %s", run.GetCursor(), created.GetCursor())
	}
	_, seen := watch.expect(t, created.GetCursor(), runID)
	if !slices.Equal(seen[0].GetCancelledRecipients(), []string{"u1"}) || seen[0].GetStatus() != trgActive ||
		!maps.Equal(recipientStatuses(seen[0]), map[string]harkv1.WorkflowRunStatus{"u1": trgCancelled, "u2": trgActive}) {
		t.Fatalf("watched change = %v, want u1 cancelled, the run ACTIVE", seen[0])
	}
	// Cancelling u1 again changes nothing.
	if res := f.cancelResult(t, "development", "wf-a", `{"cancellationKey":"order-7","recipients":["u1"]}`); len(res.GetWorkflowRunIds()) != 0 || len(res.GetCancellations()) != 0 {
		t.Fatalf("cancelling u1 twice = %v, want nothing", res)
	}

	// 2. Cancel u2 over Connect: nobody is left, the run is CANCELLED.
	cres := mustCall(t, f.h.workflows().CancelWorkflow, &harkv1.CancelWorkflowRequest{Environment: "development", Key: "wf-a", CancellationKey: "order-7", Recipients: []string{"u2"}})
	want = &harkv1.CancelWorkflowResponse{WorkflowRunIds: []string{runID}, Cancellations: []*harkv1.RunCancellation{{WorkflowRunId: runID, Recipients: []string{"u2"}, Status: trgCancelled}}}
	if !proto.Equal(cres, want) {
		t.Fatalf("cancel u2 = %v, want %v", cres, want)
	}
	run = f.run(t, "development", runID)
	if run.GetStatus() != trgCancelled || !slices.Equal(run.GetCancelledRecipients(), []string{"u2"}) ||
		!maps.Equal(recipientStatuses(run), map[string]harkv1.WorkflowRunStatus{"u1": trgCancelled, "u2": trgCancelled}) {
		t.Fatalf("after cancelling u2: %v, want CANCELLED for both", run)
	}
	_, seen = watch.expect(t, seen[0].GetCursor(), runID)
	if seen[0].GetStatus() != trgCancelled || !slices.Equal(seen[0].GetCancelledRecipients(), []string{"u2"}) {
		t.Fatalf("watched change = %v, want the run CANCELLED by u2's cancel", seen[0])
	}

	// Destinations: a created delivery, then one cancelled delivery per change.
	cancels := func(destID string) []*harkv1.Delivery {
		var out []*harkv1.Delivery
		for _, d := range f.deliveries(t, url.Values{"destinationId": {destID}, "workflowRunId": {runID}}) {
			if d.GetEventType() == evCancelled {
				out = append(out, f.waitStatus(t, d.GetId(), dlvSucceeded))
			}
		}
		if len(out) != 2 {
			t.Fatalf("destination %s has %d cancelled deliveries of the run, want 2", destID, len(out))
		}
		return out
	}
	cancels(wh.GetId())
	cancels(kd.GetId())
	cancels(sd.GetId())

	// The webhook: the run as of each change.
	var hookCancels []*harkv1.WorkflowRun
	for _, req := range hook.waitRequests(t, 3) {
		m, r := verifyWebhook(t, wh.GetSigningSecret(), req)
		if m.Type == evCancelled {
			hookCancels = append(hookCancels, r)
		}
	}
	slices.SortFunc(hookCancels, func(a, b *harkv1.WorkflowRun) int { return strings.Compare(a.GetCursor(), b.GetCursor()) })
	if len(hookCancels) != 2 ||
		hookCancels[0].GetStatus() != trgActive || !slices.Equal(hookCancels[0].GetCancelledRecipients(), []string{"u1"}) ||
		!maps.Equal(recipientStatuses(hookCancels[0]), map[string]harkv1.WorkflowRunStatus{"u1": trgCancelled, "u2": trgActive}) ||
		hookCancels[1].GetStatus() != trgCancelled || !slices.Equal(hookCancels[1].GetCancelledRecipients(), []string{"u2"}) {
		t.Fatalf("webhook cancellations = %v, want u1's (run ACTIVE) then u2's (run CANCELLED)", hookCancels)
	}

	// Knock: each cancel names only the recipients it cancelled.
	var knockCancels []string
	for _, req := range knock.waitRequests(t, 3) {
		if req.path != "/v1/workflows/wf-a/cancel" {
			continue
		}
		var body struct {
			CancellationKey string   `json:"cancellation_key"`
			Recipients      []string `json:"recipients"`
		}
		if err := json.Unmarshal(req.body, &body); err != nil || body.CancellationKey != "order-7" || len(body.Recipients) != 1 {
			t.Fatalf("Knock cancel body %s (%v), want the key and one recipient", req.body, err)
		}
		knockCancels = append(knockCancels, body.Recipients[0])
	}
	slices.Sort(knockCancels)
	if !slices.Equal(knockCancels, []string{"u1", "u2"}) {
		t.Fatalf("Knock cancels named %v, want u1 and u2, once each", knockCancels)
	}

	// Segment: one "Workflow Run Cancelled" track per cancelled recipient.
	var segCancels []string
	for _, req := range seg.waitRequests(t, 3) {
		var b struct {
			Batch []struct {
				Event  string `json:"event"`
				UserID string `json:"userId"`
			} `json:"batch"`
		}
		if err := json.Unmarshal(req.body, &b); err != nil {
			t.Fatalf("Segment body %s: %v", req.body, err)
		}
		for _, tr := range b.Batch {
			if tr.Event == "Workflow Run Cancelled" {
				segCancels = append(segCancels, tr.UserID)
			}
		}
	}
	slices.Sort(segCancels)
	if !slices.Equal(segCancels, []string{"u1", "u2"}) {
		t.Fatalf("Segment cancelled tracks for %v, want u1 and u2, once each", segCancels)
	}

	// Without recipients: every recipient of the run at once.
	whole := f.mustTriggerWorkflow(t, "development", "wf-a", `{"recipients":["u1","u2"],"cancellationKey":"order-8"}`)
	res = f.cancelResult(t, "development", "wf-a", `{"cancellationKey":"order-8"}`)
	if len(res.GetCancellations()) != 1 || !slices.Equal(res.GetCancellations()[0].GetRecipients(), []string{"u1", "u2"}) || res.GetCancellations()[0].GetStatus() != trgCancelled {
		t.Fatalf("cancel without recipients = %v, want the run CANCELLED for u1 and u2", res)
	}
	if run := f.run(t, "development", whole); run.GetStatus() != trgCancelled ||
		!maps.Equal(recipientStatuses(run), map[string]harkv1.WorkflowRunStatus{"u1": trgCancelled, "u2": trgCancelled}) {
		t.Fatalf("run cancelled whole = %v, want CANCELLED for both", run)
	}

	// Bad input: an empty recipient is a field violation.
	r := f.h.rest(t, http.MethodPost, "/v1/environments/development/workflows/wf-a/cancel", `{"cancellationKey":"order-7","recipients":[""]}`)
	wantStatus(t, r, http.StatusBadRequest)
	wantViolation(t, restViolations(t, r), "recipients[0]")
	_, err := call(t, f.h.workflows().CancelWorkflow, &harkv1.CancelWorkflowRequest{Environment: "development", Key: "wf-a", Recipients: []string{"u1"}})
	wantCode(t, err, connect.CodeInvalidArgument)
}
