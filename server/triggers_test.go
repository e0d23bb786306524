package server_test

// End-to-end tests of triggers, workflow runs and API triggers (issue 5,
// DESIGN §4 "Triggers", "API triggers", "Runs out"): the real server with
// its real Segment plugin process, called over REST, Connect and gRPC.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	harkv1 "github.com/harkhq/hark/gen/hark/v1"
	"github.com/harkhq/hark/gen/hark/v1/harkv1connect"
)

// Action and run status shorthands.
const (
	trgSuccess   = harkv1.ActionStatus_ACTION_STATUS_SUCCESS
	trgSkipped   = harkv1.ActionStatus_ACTION_STATUS_SKIPPED
	trgError     = harkv1.ActionStatus_ACTION_STATUS_ERROR
	trgTrigger   = harkv1.ActionType_ACTION_TYPE_TRIGGER_WORKFLOW
	trgActive    = harkv1.WorkflowRunStatus_WORKFLOW_RUN_STATUS_ACTIVE
	trgCancelled = harkv1.WorkflowRunStatus_WORKFLOW_RUN_STATUS_CANCELLED
)

// The Done-when trigger of issue 5.
const (
	trgCondition       = `properties.post.id == 42`
	trgMapRecipients   = `properties.recipients`
	trgMapActor        = `userId`
	trgMapData         = `{"comment": properties.comment.body, "post": data.post.title, "lib": body.context.library.name}`
	trgMapCancellation = `properties.comment.id`
)

// trgDoneWhenMapping is the Done-when trigger's mapping as REST JSON fields.
var trgDoneWhenMapping = map[string]any{
	"recipients": trgMapRecipients, "actor": trgMapActor, "data": trgMapData, "cancellationKey": trgMapCancellation,
}

// trgFixture is a server with a Segment source whose development
// environment has identify handling on, the workflow new-comment, and the
// users u2 and actor1 identified in development.
type trgFixture struct {
	h   *harness
	src *harkv1.Source
}

func trgStart(t *testing.T) *trgFixture {
	t.Helper()
	h := startServer(t)
	f := &trgFixture{h: h, src: h.createSource(t, "Segment")}
	f.setIdentify(t, "development", true)
	f.createWorkflow(t, "new-comment")
	f.identify(t, "development", "u2", `{"name":"U Two"}`)
	f.identify(t, "development", "actor1", `{"name":"Actor One"}`)
	return f
}

// trgJSON marshals v for a request body.
func trgJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal %v: %v", v, err)
	}
	return string(b)
}

func (f *trgFixture) setIdentify(t *testing.T, env string, on bool) {
	t.Helper()
	r := f.h.rest(t, http.MethodPatch, "/v1/sources/"+f.src.GetId()+"/environments/"+env, fmt.Sprintf(`{"identifyEnabled":%v}`, on))
	wantStatus(t, r, http.StatusOK)
}

func (f *trgFixture) createWorkflow(t *testing.T, key string) {
	t.Helper()
	wantStatus(t, f.h.rest(t, http.MethodPost, "/v1/workflows", `{"key":"`+key+`"}`), http.StatusOK)
}

func (f *trgFixture) identify(t *testing.T, env, id, body string) {
	t.Helper()
	wantStatus(t, f.h.rest(t, http.MethodPut, "/v1/environments/"+env+"/users/"+id, body), http.StatusOK)
}

// userExists reads a user over REST: 200 is true, 404 false.
func (f *trgFixture) userExists(t *testing.T, env, id string) bool {
	t.Helper()
	r := f.h.rest(t, http.MethodGet, "/v1/environments/"+env+"/users/"+url.PathEscape(id), "")
	switch r.status {
	case http.StatusOK:
		return true
	case http.StatusNotFound:
		return false
	}
	t.Fatalf("GET user %s: HTTP %d %s", id, r.status, r.body)
	return false
}

func (f *trgFixture) user(t *testing.T, env, id string) *harkv1.User {
	t.Helper()
	r := f.h.rest(t, http.MethodGet, "/v1/environments/"+env+"/users/"+url.PathEscape(id), "")
	wantStatus(t, r, http.StatusOK)
	return decode(t, r, &harkv1.User{})
}

// triggerBody fills in a trigger's source (this fixture's) and workflow
// (new-comment) unless fields give them.
func (f *trgFixture) triggerBody(t *testing.T, fields map[string]any) string {
	t.Helper()
	body := map[string]any{"sourceId": f.src.GetId(), "workflowKey": "new-comment"}
	for k, v := range fields {
		body[k] = v
	}
	return trgJSON(t, body)
}

// createTrigger creates a trigger over REST; see triggerBody.
func (f *trgFixture) createTrigger(t *testing.T, env string, fields map[string]any) *harkv1.Trigger {
	t.Helper()
	r := f.h.rest(t, http.MethodPost, "/v1/environments/"+env+"/triggers", f.triggerBody(t, fields))
	wantStatus(t, r, http.StatusOK)
	return decode(t, r, &harkv1.Trigger{})
}

func (f *trgFixture) getTrigger(t *testing.T, env, id string) *harkv1.Trigger {
	t.Helper()
	r := f.h.rest(t, http.MethodGet, "/v1/environments/"+env+"/triggers/"+id, "")
	wantStatus(t, r, http.StatusOK)
	return decode(t, r, &harkv1.Trigger{})
}

func (f *trgFixture) patchTrigger(t *testing.T, env, id, body string) *harkv1.Trigger {
	t.Helper()
	r := f.h.rest(t, http.MethodPatch, "/v1/environments/"+env+"/triggers/"+id, body)
	wantStatus(t, r, http.StatusOK)
	return decode(t, r, &harkv1.Trigger{})
}

// listTriggers lists triggers over REST with a query, following pages.
func (f *trgFixture) listTriggers(t *testing.T, env string, q url.Values) []*harkv1.Trigger {
	t.Helper()
	var all []*harkv1.Trigger
	for range 100 {
		r := f.h.rest(t, http.MethodGet, "/v1/environments/"+env+"/triggers?"+q.Encode(), "")
		wantStatus(t, r, http.StatusOK)
		res := decode(t, r, &harkv1.ListTriggersResponse{})
		all = append(all, res.GetTriggers()...)
		if res.GetNextPageToken() == "" {
			return all
		}
		q = trgWith(q, "pageToken", res.GetNextPageToken())
	}
	t.Fatalf("trigger list did not end after 100 pages")
	return nil
}

// trgWith returns a copy of q with key set to value.
func trgWith(q url.Values, key, value string) url.Values {
	out := url.Values{}
	for k, v := range q {
		out[k] = slices.Clone(v)
	}
	out.Set(key, value)
	return out
}

func (f *trgFixture) ingestURL(t *testing.T, env string) string {
	t.Helper()
	return envByName(t, f.src, env).GetIngestUrl()
}

// post delivers Segment events to env's webhook, one object or a batch, and
// returns the ids of the stored events, in order.
func (f *trgFixture) post(t *testing.T, env string, events ...map[string]any) []string {
	t.Helper()
	var body any = events[0]
	if len(events) > 1 {
		body = map[string]any{"batch": events}
	}
	r := f.h.ingest(t, f.ingestURL(t, env), []byte(trgJSON(t, body)))
	wantStatus(t, r, http.StatusOK)
	res := decode(t, r, &harkv1.ReceiveResponse{})
	if len(res.GetEvents()) != len(events) {
		t.Fatalf("ReceiveResponse = %v, want %d events", res, len(events))
	}
	ids := make([]string, len(events))
	for i, ev := range res.GetEvents() {
		if ev.GetId() == "" || ev.GetStatus() != trgProcessed {
			t.Fatalf("event %d = %v, want it processed", i, ev)
		}
		ids[i] = ev.GetId()
	}
	return ids
}

const trgProcessed = harkv1.SourceEventStatus_SOURCE_EVENT_STATUS_PROCESSED

// track posts one Segment track and returns its event id.
func (f *trgFixture) track(t *testing.T, env, name, userID string, props map[string]any) string {
	t.Helper()
	ev := map[string]any{"type": "track", "event": name, "userId": userID, "properties": props}
	return f.post(t, env, ev)[0]
}

// event reads a logged event over REST.
func (f *trgFixture) event(t *testing.T, env, id string) *harkv1.SourceEvent {
	t.Helper()
	r := f.h.rest(t, http.MethodGet, "/v1/environments/"+env+"/events/"+id, "")
	wantStatus(t, r, http.StatusOK)
	return decode(t, r, &harkv1.SourceEvent{})
}

// trgActions returns an event's TRIGGER_WORKFLOW actions, in order.
func trgActions(ev *harkv1.SourceEvent) []*harkv1.Action {
	var out []*harkv1.Action
	for _, a := range ev.GetActions() {
		if a.GetType() == trgTrigger {
			out = append(out, a)
		}
	}
	return out
}

// action returns the one action of trigger id on the logged event evID.
func (f *trgFixture) action(t *testing.T, env, evID, triggerID string) *harkv1.Action {
	t.Helper()
	ev := f.event(t, env, evID)
	var found *harkv1.Action
	for _, a := range trgActions(ev) {
		if a.GetTriggerId() == triggerID {
			if found != nil {
				t.Fatalf("event %s has two actions of trigger %s: %v", evID, triggerID, ev.GetActions())
			}
			found = a
		}
	}
	if found == nil {
		t.Fatalf("event %s has no action of trigger %s: %v", evID, triggerID, ev.GetActions())
	}
	return found
}

// trgWantAction fails unless a has the status and its reason contains reason
// (empty: the reason must be empty).
func trgWantAction(t *testing.T, a *harkv1.Action, status harkv1.ActionStatus, reason string) {
	t.Helper()
	if a.GetStatus() != status {
		t.Fatalf("action = %v, want status %v", a, status)
	}
	if reason == "" && a.GetReason() != "" || !strings.Contains(a.GetReason(), reason) {
		t.Fatalf("action reason = %q, want %q", a.GetReason(), reason)
	}
	if (status == trgSuccess) != (a.GetWorkflowRunId() != "") {
		t.Fatalf("action = %v: a run id must be given exactly when the status is SUCCESS", a)
	}
}

// runs lists runs over REST with a query, following pages.
func (f *trgFixture) runs(t *testing.T, env string, q url.Values) []*harkv1.WorkflowRun {
	t.Helper()
	var all []*harkv1.WorkflowRun
	for range 1000 {
		r := f.h.rest(t, http.MethodGet, "/v1/environments/"+env+"/workflow-runs?"+q.Encode(), "")
		wantStatus(t, r, http.StatusOK)
		res := decode(t, r, &harkv1.ListWorkflowRunsResponse{})
		all = append(all, res.GetWorkflowRuns()...)
		if res.GetNextPageToken() == "" {
			return all
		}
		q = trgWith(q, "pageToken", res.GetNextPageToken())
	}
	t.Fatalf("run list did not end after 1000 pages")
	return nil
}

// run reads a run over REST.
func (f *trgFixture) run(t *testing.T, env, id string) *harkv1.WorkflowRun {
	t.Helper()
	r := f.h.rest(t, http.MethodGet, "/v1/environments/"+env+"/workflow-runs/"+id, "")
	wantStatus(t, r, http.StatusOK)
	return decode(t, r, &harkv1.WorkflowRun{})
}

func trgRunIDs(runs []*harkv1.WorkflowRun) []string {
	out := make([]string, len(runs))
	for i, r := range runs {
		out[i] = r.GetId()
	}
	return out
}

func trgTriggerIDs(ts []*harkv1.Trigger) []string {
	out := make([]string, len(ts))
	for i, tr := range ts {
		out[i] = tr.GetId()
	}
	return out
}

// trgStable is run without the fields that depend on time and order
// (cursor, created_at, updated_at), for comparing with an expected run.
func trgStable(run *harkv1.WorkflowRun) *harkv1.WorkflowRun {
	out := proto.CloneOf(run)
	out.Cursor, out.CreatedAt, out.UpdatedAt = "", nil, nil
	return out
}

func trgStruct(t *testing.T, m map[string]any) *structpb.Struct {
	t.Helper()
	s, err := structpb.NewStruct(m)
	if err != nil {
		t.Fatalf("struct of %v: %v", m, err)
	}
	return s
}

func trgValue(t *testing.T, v any) *structpb.Value {
	t.Helper()
	pv, err := structpb.NewValue(v)
	if err != nil {
		t.Fatalf("value of %v: %v", v, err)
	}
	return pv
}

func (f *trgFixture) triggerClient() harkv1connect.TriggerServiceClient {
	return harkv1connect.NewTriggerServiceClient(f.h.http, f.h.base, f.h.opts()...)
}

func (f *trgFixture) runClient() harkv1connect.WorkflowRunServiceClient {
	return harkv1connect.NewWorkflowRunServiceClient(f.h.http, f.h.base, f.h.opts()...)
}

func (f *trgFixture) eventClient() harkv1connect.EventServiceClient {
	return harkv1connect.NewEventServiceClient(f.h.http, f.h.base, f.h.opts()...)
}

// trgConnectExpressionError returns the typed hark.v1.ExpressionError detail
// of a Connect error.
func trgConnectExpressionError(t *testing.T, err error) *harkv1.ExpressionError {
	t.Helper()
	var cerr *connect.Error
	if !errors.As(err, &cerr) {
		t.Fatalf("error %v is not a *connect.Error", err)
	}
	for _, d := range cerr.Details() {
		msg, derr := d.Value()
		if derr != nil {
			t.Fatalf("error detail %s: %v", d.Type(), derr)
		}
		if x, ok := msg.(*harkv1.ExpressionError); ok {
			return x
		}
	}
	t.Fatalf("error %v has no hark.v1.ExpressionError detail", err)
	return nil
}

// trgRESTError decodes a REST error body (a JSON google.rpc.Status) and
// returns it with its hark.v1.ExpressionError detail, if any, and the
// fields of its BadRequest detail.
func trgRESTError(t *testing.T, r httpResult) (*rpcstatus.Status, *harkv1.ExpressionError, []string) {
	t.Helper()
	st := decode(t, r, &rpcstatus.Status{})
	var (
		x      *harkv1.ExpressionError
		fields []string
	)
	for _, d := range st.GetDetails() {
		msg, err := d.UnmarshalNew()
		if err != nil {
			t.Fatalf("error detail %s: %v", d.GetTypeUrl(), err)
		}
		switch m := msg.(type) {
		case *harkv1.ExpressionError:
			x = m
		case *errdetails.BadRequest:
			for _, v := range m.GetFieldViolations() {
				fields = append(fields, v.GetField())
			}
		}
	}
	return st, x, fields
}

// triggerWorkflow calls the API trigger over REST, with an Idempotency-Key
// when key is not empty.
func (f *trgFixture) triggerWorkflow(t *testing.T, env, workflow, key, body string) httpResult {
	t.Helper()
	var header []string
	if key != "" {
		header = []string{"Idempotency-Key", key}
	}
	return f.h.send(t, f.h.admin(), http.MethodPost, "/v1/environments/"+env+"/workflows/"+workflow+"/trigger",
		"application/json", strings.NewReader(body), header...)
}

// mustTriggerWorkflow starts a run over REST and returns its id.
func (f *trgFixture) mustTriggerWorkflow(t *testing.T, env, workflow, body string) string {
	t.Helper()
	r := f.triggerWorkflow(t, env, workflow, "", body)
	wantStatus(t, r, http.StatusOK)
	id := decode(t, r, &harkv1.TriggerWorkflowResponse{}).GetWorkflowRunId()
	if !strings.HasPrefix(id, "run_") {
		t.Fatalf("workflowRunId = %q, want a run_ id", id)
	}
	return id
}

// cancel cancels runs over REST and returns the cancelled run ids.
func (f *trgFixture) cancel(t *testing.T, env, workflow, body string) []string {
	t.Helper()
	r := f.h.rest(t, http.MethodPost, "/v1/environments/"+env+"/workflows/"+workflow+"/cancel", body)
	wantStatus(t, r, http.StatusOK)
	return decode(t, r, &harkv1.CancelWorkflowResponse{}).GetWorkflowRunIds()
}

// ---------------------------------------------------------------------------
// The Done-when scenario.
// ---------------------------------------------------------------------------

func TestTriggersDoneWhen(t *testing.T) {
	t.Parallel()
	f := trgStart(t)

	mapped := f.createTrigger(t, "development", map[string]any{
		"event": "Comment Created", "condition": trgCondition, "mapping": trgDoneWhenMapping,
	})
	if !strings.HasPrefix(mapped.GetId(), "trg_") || mapped.GetEnvironment() != "development" ||
		mapped.GetEventType() != "track" || mapped.GetStatus() != harkv1.TriggerStatus_TRIGGER_STATUS_ACTIVE ||
		mapped.GetCondition() != trgCondition || mapped.GetWorkflowKey() != "new-comment" || mapped.GetSourceId() != f.src.GetId() ||
		mapped.GetCreatedAt() == nil || mapped.GetUpdatedAt() == nil {
		t.Fatalf("created trigger = %v, want an active track trigger of development with the given fields", mapped)
	}
	wantMapping := &harkv1.TriggerMapping{Recipients: trgMapRecipients, Actor: trgMapActor, Data: trgMapData, CancellationKey: trgMapCancellation}
	if !proto.Equal(mapped.GetMapping(), wantMapping) {
		t.Fatalf("created trigger mapping = %v, want %v", mapped.GetMapping(), wantMapping)
	}
	plain := f.createTrigger(t, "development", map[string]any{"event": "Comment Created"})

	props := map[string]any{
		"post":       map[string]any{"id": 42, "title": "Hello"},
		"comment":    map[string]any{"id": 7, "body": "Nice post"},
		"recipients": []any{"u2", "ghost", map[string]any{"id": "u7", "name": "Seven", "email": "u7@example.org"}},
	}
	evID := f.post(t, "development", map[string]any{
		"type": "track", "event": "Comment Created", "userId": "actor1", "messageId": "m-done-1",
		"properties": props,
		"context":    map[string]any{"library": map[string]any{"name": "analytics.js", "version": "2.1.0"}},
	})[0]

	// The event's log shows both actions, in creation order, with run ids.
	ev := f.event(t, "development", evID)
	if ev.GetStatus() != trgProcessed {
		t.Fatalf("event status = %v, want PROCESSED", ev.GetStatus())
	}
	actions := trgActions(ev)
	if len(actions) != 2 || len(ev.GetActions()) != 2 {
		t.Fatalf("event actions = %v, want two TRIGGER_WORKFLOW actions", ev.GetActions())
	}
	for i, tr := range []*harkv1.Trigger{mapped, plain} {
		want := &harkv1.Action{
			Type: trgTrigger, Status: trgSuccess, TriggerId: tr.GetId(), WorkflowKey: "new-comment",
			WorkflowRunId: actions[i].GetWorkflowRunId(),
		}
		if !proto.Equal(actions[i], want) || !strings.HasPrefix(actions[i].GetWorkflowRunId(), "run_") {
			t.Fatalf("action %d = %v, want %v with a run id", i, actions[i], want)
		}
	}
	if actions[0].GetWorkflowRunId() == actions[1].GetWorkflowRunId() {
		t.Fatalf("both actions name run %s", actions[0].GetWorkflowRunId())
	}

	// Exactly one run per trigger, with exactly the mapped values.
	runs := f.runs(t, "development", url.Values{"sourceEventId": {evID}})
	if got, want := trgRunIDs(runs), []string{actions[1].GetWorkflowRunId(), actions[0].GetWorkflowRunId()}; !slices.Equal(got, want) {
		t.Fatalf("runs of the event = %v, want %v (newest first)", got, want)
	}
	runA := f.run(t, "development", actions[0].GetWorkflowRunId())
	wantA := &harkv1.WorkflowRun{
		Id: actions[0].GetWorkflowRunId(), Environment: "development", WorkflowKey: "new-comment",
		TriggerId: mapped.GetId(), SourceEventId: evID,
		Recipients:        []string{"u2", "u7"},
		SkippedRecipients: []*harkv1.SkippedRecipient{{Id: "ghost", Reason: "not identified"}},
		Actor:             "actor1",
		Data:              trgStruct(t, map[string]any{"comment": "Nice post", "post": "Hello", "lib": "analytics.js"}),
		CancellationKey:   "7",
		Status:            trgActive,
		RecipientStates:   []*harkv1.RunRecipient{{Id: "u2", Status: trgActive}, {Id: "u7", Status: trgActive}},
	}
	if !proto.Equal(trgStable(runA), wantA) {
		t.Fatalf("run of the mapped trigger =\n%v\nwant\n%v", runA, wantA)
	}
	if runA.GetCursor() == "" || runA.GetCreatedAt() == nil {
		t.Fatalf("run = %v, want a cursor and created_at", runA)
	}
	runB := f.run(t, "development", actions[1].GetWorkflowRunId())
	wantB := &harkv1.WorkflowRun{
		Id: actions[1].GetWorkflowRunId(), Environment: "development", WorkflowKey: "new-comment",
		TriggerId: plain.GetId(), SourceEventId: evID,
		Recipients:      []string{"actor1"},
		Data:            trgStruct(t, props),
		Status:          trgActive,
		RecipientStates: []*harkv1.RunRecipient{{Id: "actor1", Status: trgActive}},
	}
	if !proto.Equal(trgStable(runB), wantB) {
		t.Fatalf("run of the trigger without mapping =\n%v\nwant\n%v", runB, wantB)
	}
	if !proto.Equal(runB.GetData(), ev.GetData()) {
		t.Fatalf("default data = %v, want the event's data %v", runB.GetData(), ev.GetData())
	}
	// Connect reads the same run.
	got := mustCall(t, f.runClient().GetWorkflowRun, &harkv1.GetWorkflowRunRequest{Environment: "development", Id: runA.GetId()}).GetWorkflowRun()
	if !proto.Equal(got, runA) {
		t.Fatalf("Connect GetWorkflowRun =\n%v\nREST\n%v", got, runA)
	}
	gotEv := mustCall(t, f.eventClient().GetSourceEvent, &harkv1.GetSourceEventRequest{Environment: "development", Id: evID}).GetSourceEvent()
	if !proto.Equal(gotEv, ev) {
		t.Fatalf("Connect GetSourceEvent =\n%v\nREST\n%v", gotEv, ev)
	}

	// The inline recipient was identified with its fields; the unknown id
	// was not.
	if u := f.user(t, "development", "u7"); u.GetName() != "Seven" || u.GetEmail() != "u7@example.org" {
		t.Fatalf("inline recipient u7 = %v, want name Seven and its email", u)
	}
	if f.userExists(t, "development", "ghost") {
		t.Fatalf("the unidentified recipient ghost became a user")
	}

	// One run per matching event: a second one starts a second run per
	// trigger; a non-matching one starts none for the conditioned trigger.
	ev2 := f.track(t, "development", "Comment Created", "actor1", map[string]any{
		"post": map[string]any{"id": 42, "title": "Again"}, "comment": map[string]any{"id": "c-8", "body": "More"}, "recipients": "u2",
	})
	a2 := f.action(t, "development", ev2, mapped.GetId())
	trgWantAction(t, a2, trgSuccess, "")
	r2 := f.run(t, "development", a2.GetWorkflowRunId())
	_, libNull := r2.GetData().GetFields()["lib"].GetKind().(*structpb.Value_NullValue)
	if !slices.Equal(r2.GetRecipients(), []string{"u2"}) || r2.GetCancellationKey() != "c-8" ||
		r2.GetData().GetFields()["comment"].GetStringValue() != "More" || !libNull {
		t.Fatalf("second run = %v, want recipient u2, cancellation key c-8, comment More and lib null", r2)
	}
	miss := f.track(t, "development", "Comment Created", "actor1", map[string]any{"post": map[string]any{"id": 43}, "recipients": []any{"u2"}})
	trgWantAction(t, f.action(t, "development", miss, mapped.GetId()), trgSkipped, "condition false")
	trgWantAction(t, f.action(t, "development", miss, plain.GetId()), trgSuccess, "")
	if got := f.runs(t, "development", url.Values{"triggerId": {mapped.GetId()}}); len(got) != 2 {
		t.Fatalf("runs of the mapped trigger = %v, want 2 (one per matching event)", trgRunIDs(got))
	}
	if got := f.runs(t, "development", url.Values{"sourceEventId": {miss}}); len(got) != 1 || got[0].GetTriggerId() != plain.GetId() {
		t.Fatalf("runs of the non-matching event = %v, want only the unconditioned trigger's", got)
	}

	// The cancellation key cancels the run (REST), and only it.
	cancelled := f.cancel(t, "development", "new-comment", `{"cancellationKey":"7"}`)
	if !slices.Equal(cancelled, []string{runA.GetId()}) {
		t.Fatalf("cancel 7 = %v, want [%s]", cancelled, runA.GetId())
	}
	after := f.run(t, "development", runA.GetId())
	if after.GetStatus() != trgCancelled || after.GetCursor() <= runA.GetCursor() {
		t.Fatalf("after cancel: run = %v, want CANCELLED with a cursor after %s", after, runA.GetCursor())
	}
	raw := decodeMap(t, f.h.rest(t, http.MethodGet, "/v1/environments/development/workflow-runs/"+runA.GetId(), ""))
	if raw["status"] != "WORKFLOW_RUN_STATUS_CANCELLED" || raw["cancellationKey"] != "7" || raw["workflowKey"] != "new-comment" {
		t.Fatalf("REST run JSON = %v, want status WORKFLOW_RUN_STATUS_CANCELLED, cancellationKey \"7\", workflowKey new-comment", raw)
	}
	skipped, _ := raw["skippedRecipients"].([]any)
	if len(skipped) != 1 || fmt.Sprint(skipped[0]) != "map[id:ghost reason:not identified]" {
		t.Fatalf("REST run JSON skippedRecipients = %v, want [{id: ghost, reason: not identified}]", raw["skippedRecipients"])
	}
	if r := f.run(t, "development", runB.GetId()); r.GetStatus() != trgActive {
		t.Fatalf("cancel 7 changed the other run: %v", r)
	}
}

// ---------------------------------------------------------------------------
// Outcomes of triggers on ingested events.
// ---------------------------------------------------------------------------

func TestTriggersRecipients(t *testing.T) {
	t.Parallel()
	f := trgStart(t)

	bulk := func(prefix string, n int) []any {
		out := make([]any, n)
		for i := range out {
			out[i] = map[string]any{"id": fmt.Sprintf("%s-%04d", prefix, i)}
		}
		return out
	}
	cases := []struct {
		name       string
		recipients any // properties.recipients; nil leaves it out
		status     harkv1.ActionStatus
		reason     string
		want       []string // the run's recipients
		skipped    []string // the run's skipped recipients
		users      []string // users that must exist afterwards
		noUsers    []string // users that must not
	}{
		{name: "string", recipients: "u2", status: trgSuccess, want: []string{"u2"}},
		{name: "list", recipients: []any{"u2", "actor1", "u2"}, status: trgSuccess, want: []string{"u2", "actor1"}},
		{name: "inline object", recipients: map[string]any{"id": "inline-1", "name": "Inline One", "plan": "pro"},
			status: trgSuccess, want: []string{"inline-1"}, users: []string{"inline-1"}},
		{name: "mixed list", recipients: []any{"nobody", "u2", map[string]any{"id": "inline-2"}},
			status: trgSuccess, want: []string{"u2", "inline-2"}, skipped: []string{"nobody"}, users: []string{"inline-2"}, noUsers: []string{"nobody"}},
		{name: "unknown only", recipients: []any{"nobody-1", "nobody-2"}, status: trgSkipped, reason: "no identified recipients",
			noUsers: []string{"nobody-1", "nobody-2"}},
		{name: "none mapped", recipients: nil, status: trgSkipped, reason: "no identified recipients"},
		{name: "1000 recipients", recipients: bulk("thousand", 1000), status: trgSuccess,
			users: []string{"thousand-0000", "thousand-0999"}},
		{name: "1001 recipients", recipients: bulk("over", 1001), status: trgError,
			reason: "mapping.recipients: 1001 recipients; at most 1000 per run", noUsers: []string{"over-0000", "over-1000"}},
		{name: "unknown object", recipients: []any{"u2", map[string]any{"id": "project-1", "collection": "projects"}}, status: trgSuccess,
			want: []string{"u2"}, skipped: []string{"projects/project-1"}},
		{name: "list in list", recipients: []any{[]any{"u2"}}, status: trgError,
			reason: "mapping.recipients: recipient 0: a list inside the recipients list"},
		{name: "number", recipients: 42, status: trgError,
			reason: "mapping.recipients: recipient 0: must be a user id or a user object, not a number"},
		{name: "object without id", recipients: map[string]any{"name": "No Id"}, status: trgError,
			reason: "mapping.recipients: recipient 0: a user object needs a string `id`"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			name := fmt.Sprintf("Recipients %d", i)
			tr := f.createTrigger(t, "development", map[string]any{"event": name, "mapping": map[string]any{"recipients": trgMapRecipients}})
			props := map[string]any{"n": i}
			if c.recipients != nil {
				props["recipients"] = c.recipients
			}
			evID := f.track(t, "development", name, "actor1", props)
			a := f.action(t, "development", evID, tr.GetId())
			trgWantAction(t, a, c.status, c.reason)
			if c.reason != "" && a.GetReason() != c.reason {
				t.Fatalf("reason = %q, want %q", a.GetReason(), c.reason)
			}
			runs := f.runs(t, "development", url.Values{"triggerId": {tr.GetId()}})
			if c.status != trgSuccess {
				if len(runs) != 0 {
					t.Fatalf("a %v action started runs %v", c.status, trgRunIDs(runs))
				}
			} else {
				if len(runs) != 1 || runs[0].GetId() != a.GetWorkflowRunId() {
					t.Fatalf("runs = %v, want the one run %s", trgRunIDs(runs), a.GetWorkflowRunId())
				}
				got := runs[0]
				if c.want != nil && !slices.Equal(got.GetRecipients(), c.want) {
					t.Fatalf("run recipients = %q, want %q", got.GetRecipients(), c.want)
				}
				if c.name == "1000 recipients" && len(got.GetRecipients()) != 1000 {
					t.Fatalf("run has %d recipients, want 1000", len(got.GetRecipients()))
				}
				var skipped []string
				for _, s := range got.GetSkippedRecipients() {
					want := "not identified"
					if strings.Contains(s.GetId(), "/") {
						want = "object not found" // an object recipient: collection/id
					}
					if s.GetReason() != want {
						t.Fatalf("skipped recipient %v, want reason %q", s, want)
					}
					skipped = append(skipped, s.GetId())
				}
				if !slices.Equal(skipped, c.skipped) {
					t.Fatalf("skipped recipients = %q, want %q", skipped, c.skipped)
				}
			}
			for _, id := range c.users {
				if !f.userExists(t, "development", id) {
					t.Errorf("user %s was not identified", id)
				}
			}
			for _, id := range c.noUsers {
				if f.userExists(t, "development", id) {
					t.Errorf("user %s exists, want none", id)
				}
			}
		})
	}
	t.Run("inline object fields", func(t *testing.T) {
		t.Parallel()
		// Every field of an inline user object reaches the user.
		tr := f.createTrigger(t, "development", map[string]any{"event": "Inline Fields", "mapping": map[string]any{"recipients": trgMapRecipients}})
		evID := f.track(t, "development", "Inline Fields", "actor1", map[string]any{"recipients": []any{
			map[string]any{"id": "inline-3", "name": "Three", "email": "three@example.org", "phone_number": "+15550003", "plan": "pro"},
		}})
		trgWantAction(t, f.action(t, "development", evID, tr.GetId()), trgSuccess, "")
		u := f.user(t, "development", "inline-3")
		if u.GetName() != "Three" || u.GetEmail() != "three@example.org" || u.GetPhoneNumber() != "+15550003" ||
			u.GetProperties().GetFields()["plan"].GetStringValue() != "pro" {
			t.Fatalf("inline user = %v, want its fields and the custom property plan", u)
		}
	})
}

func TestTriggersMappingOutcomes(t *testing.T) {
	t.Parallel()
	f := trgStart(t)
	props := map[string]any{
		"post":    map[string]any{"id": 42, "title": "Hello"},
		"comment": map[string]any{"id": 7, "body": "Nice post"},
		"tenant":  map[string]any{"id": "acme", "name": "Acme"},
		"vip":     true,
	}
	cases := []struct {
		name      string
		condition string
		mapping   map[string]any
		status    harkv1.ActionStatus
		reason    string
		check     func(t *testing.T, run *harkv1.WorkflowRun)
	}{
		{name: "inline actor", mapping: map[string]any{"actor": `{"id": "actor-inline", "name": "Inline Actor"}`}, status: trgSuccess,
			check: func(t *testing.T, run *harkv1.WorkflowRun) {
				if run.GetActor() != "actor-inline" || f.user(t, "development", "actor-inline").GetName() != "Inline Actor" {
					t.Fatalf("run actor = %q, want the identified inline actor", run.GetActor())
				}
			}},
		{name: "tenant object", mapping: map[string]any{"tenant": `properties.tenant`}, status: trgSuccess,
			check: func(t *testing.T, run *harkv1.WorkflowRun) {
				if run.GetTenant() != "acme" {
					t.Fatalf("run tenant = %q, want acme", run.GetTenant())
				}
			}},
		{name: "tenant string", mapping: map[string]any{"tenant": `"acme-" + string(properties.post.id)`}, status: trgSuccess,
			check: func(t *testing.T, run *harkv1.WorkflowRun) {
				if run.GetTenant() != "acme-42" {
					t.Fatalf("run tenant = %q, want acme-42", run.GetTenant())
				}
			}},
		{name: "data null", mapping: map[string]any{"data": `properties.nope`}, status: trgSuccess,
			check: func(t *testing.T, run *harkv1.WorkflowRun) {
				if len(run.GetData().GetFields()) != 0 {
					t.Fatalf("run data = %v, want none", run.GetData())
				}
			}},
		{name: "string cancellation key", mapping: map[string]any{"cancellationKey": `"post-" + string(properties.post.id)`}, status: trgSuccess,
			check: func(t *testing.T, run *harkv1.WorkflowRun) {
				if run.GetCancellationKey() != "post-42" {
					t.Fatalf("run cancellation key = %q, want post-42", run.GetCancellationKey())
				}
			}},
		{name: "data not an object", mapping: map[string]any{"data": `properties.post.title`}, status: trgError,
			reason: "mapping.data: must be an object or null, not a string"},
		{name: "data a list", mapping: map[string]any{"data": `[properties.post.title]`}, status: trgError,
			reason: "mapping.data: must be an object or null, not a list"},
		{name: "boolean cancellation key", mapping: map[string]any{"cancellationKey": `properties.vip`}, status: trgError,
			reason: "mapping.cancellationKey: must be a string, not a boolean"},
		{name: "tenant object without id", mapping: map[string]any{"tenant": `{"name": "Acme"}`}, status: trgError,
			reason: "mapping.tenant: a tenant object needs a string `id`"},
		{name: "actor collection", mapping: map[string]any{"actor": `{"id": "p1", "collection": "projects"}`}, status: trgError,
			reason: "mapping.actor: actor: must be a user id or a user object, not an object reference (with `collection`)"},
		{name: "runtime error in data", mapping: map[string]any{"data": `{"n": properties.comment.body + 1}`}, status: trgError,
			reason: "mapping.data: invalid operation: string + int"},
		{name: "memory budget in recipients", mapping: map[string]any{"recipients": `map(1..300000, "u2")`}, status: trgError,
			reason: "mapping.recipients: memory budget exceeded"},
		{name: "condition error", condition: `properties.post.title > 3`, status: trgError,
			reason: "condition: invalid operation: string > int"},
		{name: "condition on a missing path", condition: `properties.thread.parent.id == 42`, status: trgSkipped,
			reason: "condition false"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			name := fmt.Sprintf("Mapping %d", i)
			fields := map[string]any{"event": name}
			if c.condition != "" {
				fields["condition"] = c.condition
			}
			if c.mapping != nil {
				fields["mapping"] = c.mapping
			}
			tr := f.createTrigger(t, "development", fields)
			evID := f.track(t, "development", name, "actor1", props)
			a := f.action(t, "development", evID, tr.GetId())
			trgWantAction(t, a, c.status, c.reason)
			runs := f.runs(t, "development", url.Values{"triggerId": {tr.GetId()}})
			if c.status != trgSuccess {
				if len(runs) != 0 {
					t.Fatalf("a %v action started runs %v", c.status, trgRunIDs(runs))
				}
				return
			}
			if len(runs) != 1 {
				t.Fatalf("runs = %v, want one", trgRunIDs(runs))
			}
			c.check(t, runs[0])
		})
	}
}

// TestTriggersNonFiniteData maps a division by zero into a run's data. The
// run must stay readable over REST (JSON has no Infinity): either the
// mapping is refused as an ERROR action, or the run is stored as something
// JSON can carry.
func TestTriggersNonFiniteData(t *testing.T) {
	t.Parallel()
	f := trgStart(t)
	tr := f.createTrigger(t, "development", map[string]any{
		"event": "Ratio", "mapping": map[string]any{"data": `{"ratio": properties.a / properties.b}`},
	})
	// TestTrigger of the same trigger reports over REST.
	r := f.h.rest(t, http.MethodPost, "/v1/environments/development/triggers:test", trgJSON(t, map[string]any{
		"triggerId": tr.GetId(), "event": map[string]any{"type": "track", "event": "Ratio", "userId": "actor1", "properties": map[string]any{"a": 1, "b": 0}},
	}))
	if r.status != http.StatusOK {
		t.Errorf("TestTrigger of a mapping to {ratio: 1/0}: HTTP %d %s; want 200", r.status, r.body)
	}
	evID := f.track(t, "development", "Ratio", "actor1", map[string]any{"a": 1, "b": 0})
	a := f.action(t, "development", evID, tr.GetId())
	if a.GetStatus() != trgSuccess {
		t.Logf("action %v: the non-finite value was refused", a)
		return
	}
	r = f.h.rest(t, http.MethodGet, "/v1/environments/development/workflow-runs/"+a.GetWorkflowRunId(), "")
	if r.status != http.StatusOK {
		t.Errorf("GET the run whose data is {ratio: 1/0}: HTTP %d %s; want 200 (or the mapping refused with an ERROR action)", r.status, r.body)
	}
	r = f.h.rest(t, http.MethodGet, "/v1/environments/development/workflow-runs?triggerId="+tr.GetId(), "")
	if r.status != http.StatusOK {
		t.Errorf("list runs holding {ratio: 1/0}: HTTP %d %s; want 200", r.status, r.body)
	}
}

// TestTriggersOversizedMapping maps a data object of 10 MiB (40 copies of
// the largest string an expression may build). DESIGN §4: an expression that
// fails at run time is an ERROR action and the other triggers of the event
// still run; the event itself is accepted and logged.
func TestTriggersOversizedMapping(t *testing.T) {
	t.Parallel()
	f := trgStart(t)
	big := f.createTrigger(t, "development", map[string]any{
		"event": "Oversized", "mapping": map[string]any{"data": `{"big": map(1..40, repeat("x", 262144))}`},
	})
	fine := f.createTrigger(t, "development", map[string]any{"event": "Oversized"})
	r := f.h.ingest(t, f.ingestURL(t, "development"), []byte(`{"type":"track","event":"Oversized","userId":"actor1","properties":{"a":1}}`))
	if r.status != http.StatusOK {
		t.Fatalf("delivery of an event whose trigger maps 10 MiB of data: HTTP %d %s; want 200 with the event logged, "+
			"an ERROR action for trigger %s and a run for trigger %s", r.status, r.body, big.GetId(), fine.GetId())
	}
	res := decode(t, r, &harkv1.ReceiveResponse{})
	if len(res.GetEvents()) != 1 || res.GetEvents()[0].GetId() == "" {
		t.Fatalf("ReceiveResponse = %v, want one stored event", res)
	}
	evID := res.GetEvents()[0].GetId()
	trgWantAction(t, f.action(t, "development", evID, fine.GetId()), trgSuccess, "")
	a := f.action(t, "development", evID, big.GetId())
	if a.GetStatus() == trgError {
		return
	}
	// The run was stored: show what it does to a consumer. grpc-go clients
	// receive at most 4 MiB per message by default, so a gRPC watcher
	// stops at this run, and resuming from its cursor stops there again.
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	w := f.watchGRPC(t, ctx, &harkv1.WatchWorkflowRunsRequest{Environment: "development"})
	_, werr := w.recv()
	t.Errorf("a mapping of 10 MiB of data from an 80-byte event: action %v, want ERROR (the run data is unbounded); "+
		"a gRPC WatchWorkflowRuns consumer with default options then gets: %v", a, werr)
}

func TestTriggersOrderAndIsolation(t *testing.T) {
	t.Parallel()
	f := trgStart(t)

	t.Run("many triggers on one event in creation order", func(t *testing.T) {
		t.Parallel()
		var ids []string
		for i := range 5 {
			tr := f.createTrigger(t, "development", map[string]any{
				"event": "Fan Out", "mapping": map[string]any{"data": fmt.Sprintf(`{"n": %d}`, i)},
			})
			ids = append(ids, tr.GetId())
		}
		evID := f.track(t, "development", "Fan Out", "actor1", map[string]any{"x": 1})
		actions := trgActions(f.event(t, "development", evID))
		var got, runIDs []string
		for i, a := range actions {
			trgWantAction(t, a, trgSuccess, "")
			got = append(got, a.GetTriggerId())
			runIDs = append(runIDs, a.GetWorkflowRunId())
			if n := f.run(t, "development", a.GetWorkflowRunId()).GetData().GetFields()["n"].GetNumberValue(); n != float64(i) {
				t.Fatalf("run of action %d has n = %v, want %d", i, n, i)
			}
		}
		if !slices.Equal(got, ids) {
			t.Fatalf("actions are of triggers %v, want %v (creation order)", got, ids)
		}
		if len(slices.Compact(slices.Sorted(slices.Values(runIDs)))) != 5 {
			t.Fatalf("run ids %v are not distinct", runIDs)
		}
	})

	t.Run("runtime error in one trigger does not stop the others", func(t *testing.T) {
		t.Parallel()
		broken := f.createTrigger(t, "development", map[string]any{
			"event": "Partly Broken", "mapping": map[string]any{"data": `{"n": properties.comment.body + 1}`},
		})
		fine := f.createTrigger(t, "development", map[string]any{"event": "Partly Broken"})
		evID := f.track(t, "development", "Partly Broken", "actor1", map[string]any{"comment": map[string]any{"body": "text"}})
		ev := f.event(t, "development", evID)
		if ev.GetStatus() != trgProcessed {
			t.Fatalf("event status = %v, want PROCESSED", ev.GetStatus())
		}
		actions := trgActions(ev)
		if len(actions) != 2 || actions[0].GetTriggerId() != broken.GetId() || actions[1].GetTriggerId() != fine.GetId() {
			t.Fatalf("actions = %v, want the broken trigger's then the fine one's", actions)
		}
		trgWantAction(t, actions[0], trgError, "mapping.data: invalid operation: string + int (at 1:31)")
		trgWantAction(t, actions[1], trgSuccess, "")
		if got := f.runs(t, "development", url.Values{"sourceEventId": {evID}}); len(got) != 1 || got[0].GetTriggerId() != fine.GetId() {
			t.Fatalf("runs of the event = %v, want one of the fine trigger", got)
		}
	})

	t.Run("inactive trigger does not run while an active one does", func(t *testing.T) {
		t.Parallel()
		off := f.createTrigger(t, "development", map[string]any{
			"event": "Toggle", "condition": `properties.go == true`, "mapping": map[string]any{"data": `{"who": "off"}`},
		})
		on := f.createTrigger(t, "development", map[string]any{"event": "Toggle"})
		patched := f.patchTrigger(t, "development", off.GetId(), `{"status":"TRIGGER_STATUS_INACTIVE"}`)
		want := proto.CloneOf(off)
		want.Status = harkv1.TriggerStatus_TRIGGER_STATUS_INACTIVE
		want.UpdatedAt = patched.GetUpdatedAt()
		if !proto.Equal(patched, want) {
			t.Fatalf("after PATCH status:\n got %v\nwant %v (only status changed)", patched, want)
		}
		evID := f.track(t, "development", "Toggle", "actor1", map[string]any{"go": true})
		trgWantAction(t, f.action(t, "development", evID, off.GetId()), trgSkipped, "the trigger is inactive")
		trgWantAction(t, f.action(t, "development", evID, on.GetId()), trgSuccess, "")
		if got := f.runs(t, "development", url.Values{"triggerId": {off.GetId()}}); len(got) != 0 {
			t.Fatalf("the inactive trigger started runs %v", trgRunIDs(got))
		}
		// Active again: it runs again.
		f.patchTrigger(t, "development", off.GetId(), `{"status":"TRIGGER_STATUS_ACTIVE"}`)
		evID = f.track(t, "development", "Toggle", "actor1", map[string]any{"go": true})
		trgWantAction(t, f.action(t, "development", evID, off.GetId()), trgSuccess, "")
	})

	t.Run("inactive workflow", func(t *testing.T) {
		t.Parallel()
		f.createWorkflow(t, "paused-wf")
		tr := f.createTrigger(t, "development", map[string]any{"event": "Paused", "workflowKey": "paused-wf"})
		wantStatus(t, f.h.rest(t, http.MethodPatch, "/v1/workflows/paused-wf", `{"active":false}`), http.StatusOK)
		evID := f.track(t, "development", "Paused", "actor1", nil)
		trgWantAction(t, f.action(t, "development", evID, tr.GetId()), trgSkipped, `workflow "paused-wf" is inactive`)
		if got := f.runs(t, "development", url.Values{"workflowKey": {"paused-wf"}}); len(got) != 0 {
			t.Fatalf("the inactive workflow got runs %v", trgRunIDs(got))
		}
	})

	t.Run("deleted workflow", func(t *testing.T) {
		t.Parallel()
		f.createWorkflow(t, "gone-wf")
		tr := f.createTrigger(t, "development", map[string]any{"event": "Gone", "workflowKey": "gone-wf"})
		wantStatus(t, f.h.rest(t, http.MethodDelete, "/v1/workflows/gone-wf", ""), http.StatusOK)
		evID := f.track(t, "development", "Gone", "actor1", nil)
		trgWantAction(t, f.action(t, "development", evID, tr.GetId()), trgSkipped, `workflow "gone-wf" not found`)
	})

	t.Run("development triggers never run in production", func(t *testing.T) {
		t.Parallel()
		f.identify(t, "production", "actor1", `{"name":"Prod Actor"}`)
		dev := f.createTrigger(t, "development", map[string]any{"event": "Env Check"})
		prodEv := f.track(t, "production", "Env Check", "actor1", map[string]any{"where": "prod"})
		if ev := f.event(t, "production", prodEv); len(ev.GetActions()) != 0 || ev.GetStatus() != trgProcessed {
			t.Fatalf("production event = %v, want processed with no actions", ev)
		}
		if got := f.runs(t, "production", url.Values{"sourceEventId": {prodEv}}); len(got) != 0 {
			t.Fatalf("a production event started runs %v", got)
		}
		if got := f.runs(t, "development", url.Values{"triggerId": {dev.GetId()}}); len(got) != 0 {
			t.Fatalf("the development trigger ran for a production event: %v", got)
		}
		// A production trigger runs for production events only.
		prod := f.createTrigger(t, "production", map[string]any{"event": "Env Check"})
		prodEv = f.track(t, "production", "Env Check", "actor1", map[string]any{"where": "prod"})
		ev := f.event(t, "production", prodEv)
		if a := trgActions(ev); len(a) != 1 || a[0].GetTriggerId() != prod.GetId() || a[0].GetStatus() != trgSuccess {
			t.Fatalf("production event actions = %v, want one success of the production trigger", ev.GetActions())
		}
		devEv := f.track(t, "development", "Env Check", "actor1", map[string]any{"where": "dev"})
		if a := trgActions(f.event(t, "development", devEv)); len(a) != 1 || a[0].GetTriggerId() != dev.GetId() || a[0].GetStatus() != trgSuccess {
			t.Fatalf("development event actions = %v, want one success of the development trigger", a)
		}
		if got := f.runs(t, "production", url.Values{"triggerId": {prod.GetId()}}); len(got) != 1 || got[0].GetEnvironment() != "production" {
			t.Fatalf("production runs = %v, want one", got)
		}
	})

	t.Run("identify trigger runs after the user is identified", func(t *testing.T) {
		t.Parallel()
		tr := f.createTrigger(t, "development", map[string]any{"eventType": "identify", "mapping": map[string]any{"data": `{"name": traits.name}`}})
		if tr.GetEventType() != "identify" || tr.GetEvent() != "" {
			t.Fatalf("identify trigger = %v, want type identify and no event name", tr)
		}
		evID := f.post(t, "development", map[string]any{"type": "identify", "userId": "fresh-user", "traits": map[string]any{"name": "Fresh"}})[0]
		ev := f.event(t, "development", evID)
		if len(ev.GetActions()) != 2 || ev.GetActions()[0].GetType() != harkv1.ActionType_ACTION_TYPE_IDENTIFY_USER {
			t.Fatalf("identify event actions = %v, want IDENTIFY_USER then TRIGGER_WORKFLOW", ev.GetActions())
		}
		a := f.action(t, "development", evID, tr.GetId())
		trgWantAction(t, a, trgSuccess, "")
		run := f.run(t, "development", a.GetWorkflowRunId())
		if !slices.Equal(run.GetRecipients(), []string{"fresh-user"}) || run.GetData().GetFields()["name"].GetStringValue() != "Fresh" {
			t.Fatalf("identify run = %v, want recipient fresh-user (identified first) and data name Fresh", run)
		}
	})

	t.Run("request headers reach expressions", func(t *testing.T) {
		t.Parallel()
		tr := f.createTrigger(t, "development", map[string]any{
			"event": "With Headers", "condition": `headers["x-hark-test"] == "yes"`,
			"mapping": map[string]any{"data": `{"h": headers["x-hark-test"], "ct": headers["content-type"], "missing": headers["x-nope"]}`},
		})
		body := `{"type":"track","event":"With Headers","userId":"actor1"}`
		r := f.h.send(t, "", http.MethodPost, f.h.ingestPath(t, f.ingestURL(t, "development")), "application/json", strings.NewReader(body), "X-Hark-Test", "yes")
		wantStatus(t, r, http.StatusOK)
		evID := decode(t, r, &harkv1.ReceiveResponse{}).GetEvents()[0].GetId()
		a := f.action(t, "development", evID, tr.GetId())
		trgWantAction(t, a, trgSuccess, "")
		want := trgStruct(t, map[string]any{"h": "yes", "ct": "application/json", "missing": nil})
		if got := f.run(t, "development", a.GetWorkflowRunId()).GetData(); !proto.Equal(got, want) {
			t.Fatalf("run data = %v, want %v", got, want)
		}
		// Without the header the condition is false.
		evID = f.track(t, "development", "With Headers", "actor1", nil)
		trgWantAction(t, f.action(t, "development", evID, tr.GetId()), trgSkipped, "condition false")
	})

	t.Run("other event names and types do not match", func(t *testing.T) {
		t.Parallel()
		tr := f.createTrigger(t, "development", map[string]any{"event": "Exact Name"})
		for _, ev := range []map[string]any{
			{"type": "track", "event": "exact name", "userId": "actor1"},
			{"type": "track", "event": "Exact Name ", "userId": "actor1"},
			{"type": "page", "name": "Exact Name", "userId": "actor1"},
		} {
			evID := f.post(t, "development", ev)[0]
			if a := trgActions(f.event(t, "development", evID)); len(a) != 0 {
				t.Fatalf("event %v got trigger actions %v", ev, a)
			}
		}
		if got := f.runs(t, "development", url.Values{"triggerId": {tr.GetId()}}); len(got) != 0 {
			t.Fatalf("the trigger ran for other events: %v", got)
		}
	})

	t.Run("page trigger", func(t *testing.T) {
		t.Parallel()
		tr := f.createTrigger(t, "development", map[string]any{"event": "Pricing", "eventType": "page", "mapping": map[string]any{"data": `{"path": properties.path}`}})
		if tr.GetEventType() != "page" {
			t.Fatalf("trigger event type = %q, want page", tr.GetEventType())
		}
		evID := f.post(t, "development", map[string]any{"type": "page", "name": "Pricing", "userId": "actor1", "properties": map[string]any{"path": "/pricing"}})[0]
		a := f.action(t, "development", evID, tr.GetId())
		trgWantAction(t, a, trgSuccess, "")
		if p := f.run(t, "development", a.GetWorkflowRunId()).GetData().GetFields()["path"].GetStringValue(); p != "/pricing" {
			t.Fatalf("page run data path = %q, want /pricing", p)
		}
	})
}

func TestTriggersIdentifyBeforeTriggerInOneBatch(t *testing.T) {
	t.Parallel()
	f := trgStart(t)
	mapping := map[string]any{"recipients": trgMapRecipients}
	dev := f.createTrigger(t, "development", map[string]any{"event": "Batch Mention", "mapping": mapping})
	prod := f.createTrigger(t, "production", map[string]any{"event": "Batch Mention", "mapping": mapping})

	batch := func(user string) []map[string]any {
		return []map[string]any{
			{"type": "identify", "userId": user, "traits": map[string]any{"name": "Nine", "email": user + "@example.org"}},
			{"type": "track", "event": "Batch Mention", "userId": "actor1", "properties": map[string]any{"recipients": []any{user}}},
		}
	}
	// Identify is on in development: the identify earlier in the batch is
	// visible to the track after it.
	ids := f.post(t, "development", batch("u9")...)
	idEv := f.event(t, "development", ids[0])
	if len(idEv.GetActions()) != 1 || idEv.GetActions()[0].GetType() != harkv1.ActionType_ACTION_TYPE_IDENTIFY_USER ||
		idEv.GetActions()[0].GetStatus() != trgSuccess {
		t.Fatalf("identify event actions = %v, want one successful IDENTIFY_USER", idEv.GetActions())
	}
	a := f.action(t, "development", ids[1], dev.GetId())
	trgWantAction(t, a, trgSuccess, "")
	run := f.run(t, "development", a.GetWorkflowRunId())
	if !slices.Equal(run.GetRecipients(), []string{"u9"}) || len(run.GetSkippedRecipients()) != 0 {
		t.Fatalf("run = %v, want u9 as a recipient and nobody skipped", run)
	}
	if u := f.user(t, "development", "u9"); u.GetName() != "Nine" {
		t.Fatalf("u9 = %v, want identified as Nine", u)
	}

	// Identify is off in production: the same batch leaves u9 unidentified.
	ids = f.post(t, "production", batch("u9")...)
	if acts := f.event(t, "production", ids[0]).GetActions(); len(acts) != 1 || acts[0].GetStatus() != trgSkipped ||
		acts[0].GetReason() != "identify handling is off" {
		t.Fatalf("production identify actions = %v, want SKIPPED \"identify handling is off\"", acts)
	}
	trgWantAction(t, f.action(t, "production", ids[1], prod.GetId()), trgSkipped, "no identified recipients")
}

// ---------------------------------------------------------------------------
// Validation.
// ---------------------------------------------------------------------------

func TestTriggersValidation(t *testing.T) {
	t.Parallel()
	f := trgStart(t)
	c := f.triggerClient()
	valid := func() *harkv1.CreateTriggerRequest {
		return &harkv1.CreateTriggerRequest{
			Environment: "development", WorkflowKey: "new-comment", SourceId: f.src.GetId(), Event: "Comment Created",
			Condition: trgCondition,
			Mapping:   &harkv1.TriggerMapping{Recipients: trgMapRecipients, Actor: trgMapActor, Data: trgMapData, CancellationKey: trgMapCancellation},
		}
	}

	t.Run("broken condition over Connect", func(t *testing.T) {
		t.Parallel()
		req := valid()
		req.Condition = `properties.post.id ==`
		_, err := call(t, c.CreateTrigger, req)
		wantCode(t, err, connect.CodeInvalidArgument)
		want := &harkv1.ExpressionError{
			Field: "condition", Expression: `properties.post.id ==`, Line: 1, Column: 21,
			Message: "unexpected token EOF", Snippet: "properties.post.id ==\n                    ^",
		}
		if got := trgConnectExpressionError(t, err); !proto.Equal(got, want) {
			t.Fatalf("ExpressionError detail = %v, want %v", got, want)
		}
		if !strings.Contains(err.Error(), "condition: 1:21: unexpected token EOF") {
			t.Fatalf("error message %q does not give the field, line:column and message", err)
		}
		wantViolation(t, connectViolations(t, err), "condition")
	})

	t.Run("broken multi-line mapping over REST", func(t *testing.T) {
		t.Parallel()
		body := f.triggerBody(t, map[string]any{
			"event":   "Comment Created",
			"mapping": map[string]any{"data": "{\n  \"comment\": properties.comment.body,\n  \"post\": data.post.title +\n}"},
		})
		r := f.h.rest(t, http.MethodPost, "/v1/environments/development/triggers", body)
		wantStatus(t, r, http.StatusBadRequest)
		st, x, fields := trgRESTError(t, r)
		if st.GetCode() != int32(connect.CodeInvalidArgument) || !strings.Contains(st.GetMessage(), "mapping.data: 4:1: unexpected token Bracket(\"}\")") {
			t.Fatalf("REST error = %v, want InvalidArgument naming mapping.data 4:1", st)
		}
		want := &harkv1.ExpressionError{
			Field: "mapping.data", Expression: "{\n  \"comment\": properties.comment.body,\n  \"post\": data.post.title +\n}",
			Line: 4, Column: 1, Message: `unexpected token Bracket("}")`, Snippet: "}\n^",
		}
		if !proto.Equal(x, want) {
			t.Fatalf("REST ExpressionError detail = %v, want %v", x, want)
		}
		wantViolation(t, fields, "mapping.data")
	})

	t.Run("every mapping field is compiled", func(t *testing.T) {
		t.Parallel()
		for field, set := range map[string]func(*harkv1.CreateTriggerRequest){
			"mapping.recipients":      func(r *harkv1.CreateTriggerRequest) { r.Mapping.Recipients = "[userId," },
			"mapping.actor":           func(r *harkv1.CreateTriggerRequest) { r.Mapping.Actor = "[userId," },
			"mapping.tenant":          func(r *harkv1.CreateTriggerRequest) { r.Mapping.Tenant = "[userId," },
			"mapping.data":            func(r *harkv1.CreateTriggerRequest) { r.Mapping.Data = "[userId," },
			"mapping.cancellationKey": func(r *harkv1.CreateTriggerRequest) { r.Mapping.CancellationKey = "[userId," },
		} {
			req := valid()
			set(req)
			_, err := call(t, c.CreateTrigger, req)
			wantCode(t, err, connect.CodeInvalidArgument)
			if x := trgConnectExpressionError(t, err); x.GetField() != field || x.GetLine() != 1 || x.GetColumn() != 8 || x.GetExpression() != "[userId," {
				t.Fatalf("%s: ExpressionError = %v, want field %s at 1:8", field, x, field)
			}
		}
		// A condition must be a boolean.
		req := valid()
		req.Condition = `"yes"`
		_, err := call(t, c.CreateTrigger, req)
		wantCode(t, err, connect.CodeInvalidArgument)
		if x := trgConnectExpressionError(t, err); x.GetField() != "condition" || x.GetMessage() != "expected bool, but got string" {
			t.Fatalf("string condition: ExpressionError = %v, want \"expected bool, but got string\"", x)
		}
	})

	t.Run("typo in a root name over REST", func(t *testing.T) {
		t.Parallel()
		const typo = "properties.plan == \"pro\" &&\n  propertes.vip"
		body := f.triggerBody(t, map[string]any{"event": "Typo", "condition": typo})
		r := f.h.rest(t, http.MethodPost, "/v1/environments/development/triggers", body)
		wantStatus(t, r, http.StatusBadRequest)
		st, x, fields := trgRESTError(t, r)
		const msg = "unknown name propertes; did you mean properties?"
		if st.GetCode() != int32(connect.CodeInvalidArgument) || !strings.Contains(st.GetMessage(), "condition: 2:3: "+msg) {
			t.Fatalf("REST error = %v, want InvalidArgument with condition: 2:3: %s", st, msg)
		}
		want := &harkv1.ExpressionError{
			Field: "condition", Expression: typo, Line: 2, Column: 3, Message: msg,
			Snippet: "  propertes.vip\n  ^",
		}
		if !proto.Equal(x, want) {
			t.Fatalf("REST ExpressionError detail = %v, want %v", x, want)
		}
		wantViolation(t, fields, "condition")

		// An update and a test of an unsaved trigger are checked the same way.
		tr := f.createTrigger(t, "development", map[string]any{"event": "Typo Update"})
		r = f.h.rest(t, http.MethodPatch, "/v1/environments/development/triggers/"+tr.GetId(), `{"mapping":{"actor":"usrId"}}`)
		wantStatus(t, r, http.StatusBadRequest)
		if _, x, _ := trgRESTError(t, r); x.GetField() != "mapping.actor" || x.GetLine() != 1 || x.GetColumn() != 1 || x.GetMessage() != "unknown name usrId; did you mean userId?" {
			t.Fatalf("PATCH typo'd actor: ExpressionError = %v", x)
		}
		r = f.h.rest(t, http.MethodPost, "/v1/environments/development/triggers:test", trgJSON(t, map[string]any{
			"trigger": map[string]any{"sourceId": f.src.GetId(), "workflowKey": "new-comment", "event": "Typo",
				"mapping": map[string]any{"recipients": "[userId, propertes.other]"}},
			"event": map[string]any{"type": "track", "event": "Typo", "userId": "actor1"},
		}))
		wantStatus(t, r, http.StatusBadRequest)
		if _, x, _ := trgRESTError(t, r); x.GetField() != "mapping.recipients" || x.GetColumn() != 10 || x.GetMessage() != "unknown name propertes; did you mean properties?" {
			t.Fatalf("test with a typo'd recipients: ExpressionError = %v", x)
		}
		// Over Connect, the same typed detail.
		req := valid()
		req.Mapping.Tenant = `trats.company`
		_, err := call(t, c.CreateTrigger, req)
		wantCode(t, err, connect.CodeInvalidArgument)
		if x := trgConnectExpressionError(t, err); x.GetField() != "mapping.tenant" || x.GetMessage() != "unknown name trats; did you mean traits?" {
			t.Fatalf("Connect typo'd tenant: ExpressionError = %v", x)
		}
	})

	t.Run("roots of a webhook source are its own", func(t *testing.T) {
		t.Parallel()
		// An http source's events have the sender's top-level fields,
		// unknown when the trigger is saved: they are not checked.
		src := f.h.createSourceOfType(t, "Typo Webhooks", "http")
		f.createTrigger(t, "development", map[string]any{"sourceId": src.GetId(), "event": "customer.created",
			"condition": `livemode == false && object == "event"`})
	})

	t.Run("missing references", func(t *testing.T) {
		t.Parallel()
		for _, c := range []struct {
			name, env, body, message string
		}{
			{"workflow", "development", f.triggerBody(t, map[string]any{"event": "E", "workflowKey": "no-such-workflow"}), `workflow "no-such-workflow" not found`},
			{"source", "development", f.triggerBody(t, map[string]any{"event": "E", "sourceId": "src_nope"}), `source "src_nope" not found`},
			{"environment", "staging", f.triggerBody(t, map[string]any{"event": "E"}), `environment "staging" not found`},
		} {
			r := f.h.rest(t, http.MethodPost, "/v1/environments/"+c.env+"/triggers", c.body)
			wantStatus(t, r, http.StatusNotFound)
			if st, _, _ := trgRESTError(t, r); !strings.Contains(st.GetMessage(), c.message) {
				t.Fatalf("missing %s: message %q, want it to name it: %q", c.name, st.GetMessage(), c.message)
			}
		}
		req := valid()
		req.WorkflowKey = "no-such-workflow"
		_, err := call(t, c.CreateTrigger, req)
		wantCode(t, err, connect.CodeNotFound)
		if !strings.Contains(err.Error(), `workflow "no-such-workflow" not found`) {
			t.Fatalf("Connect error %q does not name the workflow", err)
		}
	})

	t.Run("required fields", func(t *testing.T) {
		t.Parallel()
		r := f.h.rest(t, http.MethodPost, "/v1/environments/development/triggers", `{}`)
		wantStatus(t, r, http.StatusBadRequest)
		_, _, fields := trgRESTError(t, r)
		for _, want := range []string{"workflowKey", "sourceId", "event"} {
			wantViolation(t, fields, want)
		}
	})

	t.Run("updates are checked too", func(t *testing.T) {
		t.Parallel()
		tr := f.createTrigger(t, "development", map[string]any{"event": "Checked Update", "condition": trgCondition})
		r := f.h.rest(t, http.MethodPatch, "/v1/environments/development/triggers/"+tr.GetId(), `{"condition":"properties.post.id =="}`)
		wantStatus(t, r, http.StatusBadRequest)
		if _, x, _ := trgRESTError(t, r); x.GetField() != "condition" || x.GetLine() != 1 || x.GetColumn() != 21 {
			t.Fatalf("PATCH broken condition: ExpressionError = %v", x)
		}
		_, err := call(t, c.UpdateTrigger, &harkv1.UpdateTriggerRequest{
			Environment: "development", Id: tr.GetId(), Mapping: &harkv1.TriggerMapping{Recipients: "properties."},
		})
		wantCode(t, err, connect.CodeInvalidArgument)
		if x := trgConnectExpressionError(t, err); x.GetField() != "mapping.recipients" || x.GetColumn() != 11 {
			t.Fatalf("Connect update broken recipients: ExpressionError = %v", x)
		}
		r = f.h.rest(t, http.MethodPatch, "/v1/environments/development/triggers/"+tr.GetId(), `{"workflowKey":"no-such-workflow"}`)
		wantStatus(t, r, http.StatusNotFound)
		if got := f.getTrigger(t, "development", tr.GetId()); !proto.Equal(got, tr) {
			t.Fatalf("refused updates changed the trigger:\n got %v\nwant %v", got, tr)
		}
	})

	t.Run("unknown trigger", func(t *testing.T) {
		t.Parallel()
		for _, method := range []string{http.MethodGet, http.MethodDelete} {
			wantStatus(t, f.h.rest(t, method, "/v1/environments/development/triggers/trg_nope", ""), http.StatusNotFound)
		}
		wantStatus(t, f.h.rest(t, http.MethodPatch, "/v1/environments/development/triggers/trg_nope", `{"event":"X"}`), http.StatusNotFound)
		wantStatus(t, f.h.rest(t, http.MethodGet, "/v1/environments/staging/triggers", ""), http.StatusNotFound)
	})
}

// TestUnknownJSONFieldsAreRefused checks that a request field the API does
// not have is InvalidArgument naming it, over REST (vanguard) and Connect
// JSON, at the top and nested: a misspelt field silently dropped would save
// a trigger that matches every event of its type (`evnt` for `event`).
func TestUnknownJSONFieldsAreRefused(t *testing.T) {
	t.Parallel()
	f := trgStart(t)
	wantNamed := func(t *testing.T, r httpResult, field string) {
		t.Helper()
		wantStatus(t, r, http.StatusBadRequest)
		m := decodeMap(t, r)
		if code := fmt.Sprint(m["code"]); code != "3" && code != "invalid_argument" {
			t.Fatalf("code = %v, want InvalidArgument; body: %s", m["code"], r.body)
		}
		if msg, _ := m["message"].(string); !strings.Contains(msg, `unknown field "`+field+`"`) {
			t.Fatalf("message %q does not name the field %s", msg, field)
		}
	}
	for _, c := range []struct {
		name, method, path, field string
		fields                    map[string]any
	}{
		{"REST create", http.MethodPost, "/v1/environments/development/triggers", "evnt", map[string]any{"evnt": "x"}},
		{"REST create nested", http.MethodPost, "/v1/environments/development/triggers", "recipent",
			map[string]any{"event": "x", "mapping": map[string]any{"recipent": "userId"}}},
		{"Connect JSON create", http.MethodPost, "/hark.v1.TriggerService/CreateTrigger", "evnt",
			map[string]any{"environment": "development", "evnt": "x"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			wantNamed(t, f.h.rest(t, c.method, c.path, f.triggerBody(t, c.fields)), c.field)
		})
	}
	t.Run("REST update", func(t *testing.T) {
		t.Parallel()
		tr := f.createTrigger(t, "development", map[string]any{"event": "Unknown Fields"})
		wantNamed(t, f.h.rest(t, http.MethodPatch, "/v1/environments/development/triggers/"+tr.GetId(), `{"condtion":"true"}`), "condtion")
		if got := f.getTrigger(t, "development", tr.GetId()); !proto.Equal(got, tr) {
			t.Fatalf("a refused update changed the trigger:\n got %v\nwant %v", got, tr)
		}
	})
	t.Run("unknown enum name", func(t *testing.T) {
		t.Parallel()
		// Discarding unknown fields also discarded unknown enum names: a
		// misspelt status left the trigger active.
		tr := f.createTrigger(t, "development", map[string]any{"event": "Unknown Enum"})
		r := f.h.rest(t, http.MethodPatch, "/v1/environments/development/triggers/"+tr.GetId(), `{"status":"TRIGGER_STATUS_INACTIV"}`)
		wantStatus(t, r, http.StatusBadRequest)
		if st, _, _ := trgRESTError(t, r); st.GetCode() != int32(connect.CodeInvalidArgument) || !strings.Contains(st.GetMessage(), "TRIGGER_STATUS_INACTIV") {
			t.Fatalf("REST error = %v, want InvalidArgument naming the value", st)
		}
	})
	t.Run("nothing stored", func(t *testing.T) {
		t.Parallel()
		r := f.h.rest(t, http.MethodPost, "/v1/environments/development/triggers", f.triggerBody(t, map[string]any{"event": "Never Stored", "evnt": "x"}))
		wantStatus(t, r, http.StatusBadRequest)
		if got := f.listTriggers(t, "development", url.Values{"event": {"Never Stored"}}); len(got) != 0 {
			t.Fatalf("a refused trigger was stored: %v", got)
		}
	})
}

// TestTriggersRefusedAreNotStored checks on a server of its own that no
// refused trigger was saved.
func TestTriggersRefusedAreNotStored(t *testing.T) {
	t.Parallel()
	f := trgStart(t)
	for _, body := range []string{
		f.triggerBody(t, map[string]any{"event": "E", "condition": "1 +"}),
		f.triggerBody(t, map[string]any{"event": "E", "workflowKey": "nope"}),
		f.triggerBody(t, map[string]any{"event": "E", "sourceId": "src_nope"}),
		f.triggerBody(t, map[string]any{"event": ""}),
	} {
		if r := f.h.rest(t, http.MethodPost, "/v1/environments/development/triggers", body); r.status < 400 || r.status >= 500 {
			t.Fatalf("POST %s: HTTP %d, want a 4xx", body, r.status)
		}
	}
	if got := f.listTriggers(t, "development", url.Values{}); len(got) != 0 {
		t.Fatalf("refused triggers were stored: %v", got)
	}
}

// ---------------------------------------------------------------------------
// CRUD, list filters and persistence.
// ---------------------------------------------------------------------------

func TestTriggersCRUD(t *testing.T) {
	t.Parallel()
	f := trgStart(t)
	other := f.h.createSource(t, "Other")
	f.createWorkflow(t, "wf-a")
	f.createWorkflow(t, "wf-b")
	c := f.triggerClient()

	t1 := f.createTrigger(t, "development", map[string]any{"event": "Ev One", "workflowKey": "wf-a"})
	t2 := f.createTrigger(t, "development", map[string]any{"event": "Ev Two", "workflowKey": "wf-b", "condition": "properties.x == 1"})
	t3 := f.createTrigger(t, "development", map[string]any{"event": "Ev One", "workflowKey": "wf-a", "sourceId": other.GetId()})
	t4 := f.createTrigger(t, "development", map[string]any{"event": "Ev Two", "workflowKey": "wf-b", "sourceId": other.GetId()})
	t5 := f.createTrigger(t, "production", map[string]any{"event": "Ev One", "workflowKey": "wf-a"})

	ids := func(ts ...*harkv1.Trigger) []string { return trgTriggerIDs(ts) }
	for _, c := range []struct {
		env   string
		query url.Values
		want  []string
	}{
		{"development", url.Values{}, ids(t1, t2, t3, t4)},
		{"development", url.Values{"sourceId": {f.src.GetId()}}, ids(t1, t2)},
		{"development", url.Values{"event": {"Ev One"}}, ids(t1, t3)},
		{"development", url.Values{"workflowKey": {"wf-b"}}, ids(t2, t4)},
		{"development", url.Values{"sourceId": {other.GetId()}, "event": {"Ev Two"}}, ids(t4)},
		{"development", url.Values{"event": {"Nothing"}}, nil},
		{"development", url.Values{"pageSize": {"1"}}, ids(t1, t2, t3, t4)},
		{"development", url.Values{"pageSize": {"1"}, "workflowKey": {"wf-a"}}, ids(t1, t3)},
		{"production", url.Values{}, ids(t5)},
	} {
		got := f.listTriggers(t, c.env, c.query)
		if !slices.Equal(trgTriggerIDs(got), c.want) {
			t.Errorf("list %s %v = %v, want %v", c.env, c.query, trgTriggerIDs(got), c.want)
		}
	}
	// One page holds at most pageSize triggers.
	r := f.h.rest(t, http.MethodGet, "/v1/environments/development/triggers?pageSize=3", "")
	wantStatus(t, r, http.StatusOK)
	if page := decode(t, r, &harkv1.ListTriggersResponse{}); len(page.GetTriggers()) != 3 || page.GetNextPageToken() == "" {
		t.Fatalf("first page of 3 = %v, want 3 triggers and a next page token", page)
	}
	// Connect lists the same.
	res := mustCall(t, c.ListTriggers, &harkv1.ListTriggersRequest{Environment: "development", Event: "Ev One"})
	if got := trgTriggerIDs(res.GetTriggers()); !slices.Equal(got, ids(t1, t3)) {
		t.Fatalf("Connect list event=Ev One = %v, want %v", got, ids(t1, t3))
	}
	if !proto.Equal(res.GetTriggers()[0], t1) {
		t.Fatalf("listed trigger = %v, want %v", res.GetTriggers()[0], t1)
	}

	// Get over REST and Connect.
	if got := f.getTrigger(t, "development", t2.GetId()); !proto.Equal(got, t2) {
		t.Fatalf("REST get = %v, want %v", got, t2)
	}
	if got := mustCall(t, c.GetTrigger, &harkv1.GetTriggerRequest{Environment: "development", Id: t2.GetId()}).GetTrigger(); !proto.Equal(got, t2) {
		t.Fatalf("Connect get = %v, want %v", got, t2)
	}
	// A trigger is found in its own environment only.
	wantStatus(t, f.h.rest(t, http.MethodGet, "/v1/environments/production/triggers/"+t2.GetId(), ""), http.StatusNotFound)

	// PATCH changes only the fields given.
	patched := f.patchTrigger(t, "development", t2.GetId(), `{"condition":"properties.x == 2"}`)
	want := proto.CloneOf(t2)
	want.Condition = "properties.x == 2"
	want.UpdatedAt = patched.GetUpdatedAt()
	if !proto.Equal(patched, want) || patched.GetUpdatedAt().AsTime().Before(t2.GetUpdatedAt().AsTime()) {
		t.Fatalf("after PATCH condition:\n got %v\nwant %v", patched, want)
	}
	// Connect update replaces the mapping as a whole.
	updated := mustCall(t, c.UpdateTrigger, &harkv1.UpdateTriggerRequest{
		Environment: "development", Id: t2.GetId(), Mapping: &harkv1.TriggerMapping{Data: `{"x": properties.x}`},
	}).GetTrigger()
	if updated.GetCondition() != "properties.x == 2" || !proto.Equal(updated.GetMapping(), &harkv1.TriggerMapping{Data: `{"x": properties.x}`}) {
		t.Fatalf("after Connect update mapping: %v", updated)
	}
	if got := f.getTrigger(t, "development", t2.GetId()); !proto.Equal(got, updated) {
		t.Fatalf("get after updates = %v, want %v", got, updated)
	}

	// Updates take effect on the next event: the new condition and
	// mapping, and a changed event name moves the trigger.
	evID := f.track(t, "development", "Ev Two", "actor1", map[string]any{"x": 2})
	a := f.action(t, "development", evID, t2.GetId())
	trgWantAction(t, a, trgSuccess, "")
	if x := f.run(t, "development", a.GetWorkflowRunId()).GetData().GetFields()["x"].GetNumberValue(); x != 2 {
		t.Fatalf("run data x = %v, want 2 (the updated mapping)", x)
	}
	f.patchTrigger(t, "development", t2.GetId(), `{"event":"Ev Three"}`)
	evID = f.track(t, "development", "Ev Two", "actor1", map[string]any{"x": 2})
	if a := trgActions(f.event(t, "development", evID)); len(a) != 0 {
		t.Fatalf("the moved trigger still ran for its old event: %v", a)
	}
	evID = f.track(t, "development", "Ev Three", "actor1", map[string]any{"x": 2})
	trgWantAction(t, f.action(t, "development", evID, t2.GetId()), trgSuccess, "")

	// Delete: gone from get, list and the pipeline.
	wantStatus(t, f.h.rest(t, http.MethodDelete, "/v1/environments/development/triggers/"+t1.GetId(), ""), http.StatusOK)
	wantStatus(t, f.h.rest(t, http.MethodGet, "/v1/environments/development/triggers/"+t1.GetId(), ""), http.StatusNotFound)
	if got := trgTriggerIDs(f.listTriggers(t, "development", url.Values{})); !slices.Equal(got, ids(t2, t3, t4)) {
		t.Fatalf("list after delete = %v, want %v", got, ids(t2, t3, t4))
	}
	evID = f.track(t, "development", "Ev One", "actor1", nil)
	if a := trgActions(f.event(t, "development", evID)); len(a) != 0 {
		t.Fatalf("the deleted trigger still ran: %v", a)
	}
	_, err := call(t, c.DeleteTrigger, &harkv1.DeleteTriggerRequest{Environment: "development", Id: t1.GetId()})
	wantCode(t, err, connect.CodeNotFound)

	// Triggers survive a restart and still run.
	f.h.restart(t)
	if got := trgTriggerIDs(f.listTriggers(t, "development", url.Values{})); !slices.Equal(got, ids(t2, t3, t4)) {
		t.Fatalf("list after restart = %v, want %v", got, ids(t2, t3, t4))
	}
	evID = f.track(t, "development", "Ev Three", "actor1", map[string]any{"x": 2})
	a = f.action(t, "development", evID, t2.GetId())
	trgWantAction(t, a, trgSuccess, "")
	if x := f.run(t, "development", a.GetWorkflowRunId()).GetData().GetFields()["x"].GetNumberValue(); x != 2 {
		t.Fatalf("after restart: run data x = %v, want 2", x)
	}
	// An inactive trigger stays inactive across the restart.
	f.patchTrigger(t, "development", t2.GetId(), `{"status":"TRIGGER_STATUS_INACTIVE"}`)
	f.h.restart(t)
	evID = f.track(t, "development", "Ev Three", "actor1", map[string]any{"x": 2})
	trgWantAction(t, f.action(t, "development", evID, t2.GetId()), trgSkipped, "the trigger is inactive")
}

// ---------------------------------------------------------------------------
// TestTrigger.
// ---------------------------------------------------------------------------

func TestTriggersTestTrigger(t *testing.T) {
	t.Parallel()
	f := trgStart(t)

	// counts returns how many runs, users, triggers and events development
	// holds, to show that a test wrote nothing.
	counts := func(t *testing.T) [4]int {
		t.Helper()
		r := f.h.rest(t, http.MethodGet, "/v1/environments/development/users?pageSize=1000", "")
		wantStatus(t, r, http.StatusOK)
		users := len(decode(t, r, &harkv1.ListUsersResponse{}).GetUsers())
		r = f.h.rest(t, http.MethodGet, "/v1/environments/development/events?pageSize=1000", "")
		wantStatus(t, r, http.StatusOK)
		events := len(decode(t, r, &harkv1.ListSourceEventsResponse{}).GetSourceEvents())
		return [4]int{len(f.runs(t, "development", url.Values{})), users, len(f.listTriggers(t, "development", url.Values{})), events}
	}
	unsaved := func(event, condition string) map[string]any {
		return map[string]any{
			"workflowKey": "new-comment", "sourceId": f.src.GetId(), "event": event, "condition": condition,
			"mapping": map[string]any{
				"recipients": trgMapRecipients, "actor": trgMapActor, "cancellationKey": trgMapCancellation,
				"data": `{"comment": properties.comment.body, "post": data.post.title, "lib": body.context.library.name, "req": headers["x-request-id"]}`,
			},
		}
	}
	segmentEvent := func(body string) map[string]any {
		return map[string]any{
			"type": "track", "event": "Preview", "userId": "actor1",
			"properties": map[string]any{
				"post": map[string]any{"id": 42, "title": "Hello"}, "comment": map[string]any{"id": 7, "body": body},
				"recipients": []any{"u2", "ghost", map[string]any{"id": "preview-user", "name": "Preview"}},
			},
			"context": map[string]any{"library": map[string]any{"name": "analytics.js"}},
		}
	}
	testTrigger := func(t *testing.T, body map[string]any) *harkv1.TestTriggerResponse {
		t.Helper()
		r := f.h.rest(t, http.MethodPost, "/v1/environments/development/triggers:test", trgJSON(t, body))
		wantStatus(t, r, http.StatusOK)
		return decode(t, r, &harkv1.TestTriggerResponse{})
	}

	before := counts(t)
	res := testTrigger(t, map[string]any{
		"trigger": unsaved("Preview", trgCondition),
		"event":   segmentEvent("Looks good"),
		"headers": map[string]any{"X-Request-Id": "req-9"},
	})
	want := &harkv1.TestTriggerResponse{
		ConditionResult:    true,
		Status:             trgSuccess,
		Recipients:         trgValue(t, []any{"u2", "ghost", map[string]any{"id": "preview-user", "name": "Preview"}}),
		Actor:              trgValue(t, "actor1"),
		Tenant:             structpb.NewNullValue(),
		Data:               trgValue(t, map[string]any{"comment": "Looks good", "post": "Hello", "lib": "analytics.js", "req": "req-9"}),
		CancellationKey:    "7",
		ResolvedRecipients: []string{"u2", "preview-user"},
		SkippedRecipients:  []*harkv1.SkippedRecipient{{Id: "ghost", Reason: "not identified"}},
	}
	if !proto.Equal(res, want) {
		t.Fatalf("TestTrigger with a given event =\n%v\nwant\n%v", res, want)
	}
	if after := counts(t); after != before {
		t.Fatalf("TestTrigger wrote: runs, users, triggers, events %v → %v", before, after)
	}
	if f.userExists(t, "development", "preview-user") {
		t.Fatalf("TestTrigger identified the inline recipient")
	}

	// A false condition and a failing mapping are reported, not errors.
	res = testTrigger(t, map[string]any{"trigger": unsaved("Preview", `properties.post.id == 1`), "event": segmentEvent("x")})
	if res.GetConditionResult() || res.GetStatus() != trgSkipped || res.GetReason() != "condition false" || len(res.GetResolvedRecipients()) != 0 {
		t.Fatalf("TestTrigger with a false condition = %v, want condition false, SKIPPED", res)
	}
	broken := unsaved("Preview", "")
	broken["mapping"] = map[string]any{"data": `{"n": properties.comment.body + 1}`}
	res = testTrigger(t, map[string]any{"trigger": broken, "event": segmentEvent("x")})
	if !res.GetConditionResult() || res.GetStatus() != trgError || !strings.Contains(res.GetReason(), "mapping.data: invalid operation: string + int") {
		t.Fatalf("TestTrigger with a failing mapping = %v, want ERROR with the message", res)
	}

	// Against the latest logged event of the trigger's source, type and
	// name: the newest of two.
	f.track(t, "development", "Preview", "actor1", segmentEvent("first")["properties"].(map[string]any))
	latest := f.post(t, "development", segmentEvent("second"))[0]
	before = counts(t)
	res = testTrigger(t, map[string]any{"trigger": unsaved("Preview", trgCondition)})
	if res.GetSourceEventId() != latest || res.GetStatus() != trgSuccess ||
		res.GetData().GetStructValue().GetFields()["comment"].GetStringValue() != "second" ||
		!slices.Equal(res.GetResolvedRecipients(), []string{"u2", "preview-user"}) {
		t.Fatalf("TestTrigger against the latest event = %v, want event %s with comment second", res, latest)
	}
	if after := counts(t); after != before {
		t.Fatalf("TestTrigger wrote: runs, users, triggers, events %v → %v", before, after)
	}

	// A saved trigger by id, over Connect.
	saved := f.createTrigger(t, "development", map[string]any{"event": "Preview Saved", "condition": trgCondition, "mapping": trgDoneWhenMapping})
	savedEv := f.track(t, "development", "Preview Saved", "actor1", segmentEvent("saved")["properties"].(map[string]any))
	before = counts(t)
	cres := mustCall(t, f.triggerClient().TestTrigger, &harkv1.TestTriggerRequest{Environment: "development", TriggerId: saved.GetId()})
	if cres.GetSourceEventId() != savedEv || !cres.GetConditionResult() || cres.GetStatus() != trgSuccess ||
		cres.GetCancellationKey() != "7" || cres.GetActor().GetStringValue() != "actor1" ||
		!slices.Equal(cres.GetResolvedRecipients(), []string{"u2", "preview-user"}) {
		t.Fatalf("Connect TestTrigger of a saved trigger = %v", cres)
	}
	if after := counts(t); after != before {
		t.Fatalf("TestTrigger of a saved trigger wrote: %v → %v", before, after)
	}

	// Errors: no event to test against, a broken expression, no trigger.
	r := f.h.rest(t, http.MethodPost, "/v1/environments/development/triggers:test", trgJSON(t, map[string]any{"trigger": unsaved("Never Seen", "")}))
	wantStatus(t, r, http.StatusNotFound)
	r = f.h.rest(t, http.MethodPost, "/v1/environments/development/triggers:test", trgJSON(t, map[string]any{
		"trigger": unsaved("Preview", "properties.post.id =="), "event": segmentEvent("x"),
	}))
	wantStatus(t, r, http.StatusBadRequest)
	if _, x, _ := trgRESTError(t, r); x.GetField() != "condition" || x.GetLine() != 1 || x.GetColumn() != 21 {
		t.Fatalf("TestTrigger with a broken condition: ExpressionError = %v", x)
	}
	wantStatus(t, f.h.rest(t, http.MethodPost, "/v1/environments/development/triggers:test", `{}`), http.StatusBadRequest)
	wantStatus(t, f.h.rest(t, http.MethodPost, "/v1/environments/development/triggers:test", `{"triggerId":"trg_nope"}`), http.StatusNotFound)
}

// ---------------------------------------------------------------------------
// API triggers and cancellation.
// ---------------------------------------------------------------------------

func TestTriggersAPITrigger(t *testing.T) {
	t.Parallel()
	f := trgStart(t)
	const body = `{"recipients":["u2",{"id":"api-user","name":"API User"}],"actor":"actor1","tenant":"acme","data":{"k":"v","n":1},"cancellationKey":"ck-api"}`

	r := f.triggerWorkflow(t, "development", "new-comment", "key-1", body)
	wantStatus(t, r, http.StatusOK)
	if got := decodeMap(t, r); len(got) != 1 || got["workflowRunId"] == nil {
		t.Fatalf("API trigger response = %s, want {\"workflowRunId\": …}", r.body)
	}
	id := decode(t, r, &harkv1.TriggerWorkflowResponse{}).GetWorkflowRunId()
	if !strings.HasPrefix(id, "run_") || r.header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("first call: run id %q, Idempotent-Replayed %q; want a run id and no header", id, r.header.Get("Idempotent-Replayed"))
	}
	run := f.run(t, "development", id)
	want := &harkv1.WorkflowRun{
		Id: id, Environment: "development", WorkflowKey: "new-comment",
		Recipients: []string{"u2", "api-user"}, Actor: "actor1", Tenant: "acme",
		Data: trgStruct(t, map[string]any{"k": "v", "n": 1}), CancellationKey: "ck-api", Status: trgActive,
		RecipientStates: []*harkv1.RunRecipient{{Id: "u2", Status: trgActive}, {Id: "api-user", Status: trgActive}},
	}
	if !proto.Equal(trgStable(run), want) {
		t.Fatalf("API run =\n%v\nwant\n%v", run, want)
	}
	if u := f.user(t, "development", "api-user"); u.GetName() != "API User" {
		t.Fatalf("inline API recipient = %v, want identified", u)
	}

	// A replay returns the original response and starts nothing.
	r = f.triggerWorkflow(t, "development", "new-comment", "key-1", body)
	wantStatus(t, r, http.StatusOK)
	if got := decode(t, r, &harkv1.TriggerWorkflowResponse{}).GetWorkflowRunId(); got != id || r.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay: run id %q, Idempotent-Replayed %q; want %q and true", got, r.header.Get("Idempotent-Replayed"), id)
	}
	if got := f.runs(t, "development", url.Values{"workflowKey": {"new-comment"}}); !slices.Equal(trgRunIDs(got), []string{id}) {
		t.Fatalf("runs after the replay = %v, want only %s", trgRunIDs(got), id)
	}

	// The same key with other parameters is refused.
	r = f.triggerWorkflow(t, "development", "new-comment", "key-1", `{"recipients":["u2"]}`)
	if r.status < 400 || r.status >= 500 {
		t.Fatalf("same key, other parameters: HTTP %d %s, want a 4xx", r.status, r.body)
	}
	if !strings.Contains(string(r.body), "Idempotency-Key") {
		t.Fatalf("mismatch error %s does not name the Idempotency-Key", r.body)
	}
	// Also for another workflow.
	f.createWorkflow(t, "other-wf")
	if r := f.triggerWorkflow(t, "development", "other-wf", "key-1", body); r.status < 400 || r.status >= 500 {
		t.Fatalf("same key, other workflow: HTTP %d %s, want a 4xx", r.status, r.body)
	}
	if got := f.runs(t, "development", url.Values{}); len(got) != 1 {
		t.Fatalf("refused calls started runs: %v", trgRunIDs(got))
	}

	// Without a key, the same call starts a run each time.
	a, b := f.mustTriggerWorkflow(t, "development", "new-comment", body), f.mustTriggerWorkflow(t, "development", "new-comment", body)
	if a == b || a == id {
		t.Fatalf("calls without a key returned %s and %s (first %s), want new runs", a, b, id)
	}

	// A key is at most 255 characters.
	if r := f.triggerWorkflow(t, "development", "new-comment", strings.Repeat("k", 256), body); r.status != http.StatusBadRequest {
		t.Fatalf("256-character key: HTTP %d %s, want 400", r.status, r.body)
	}
	r = f.triggerWorkflow(t, "development", "new-comment", strings.Repeat("k", 255), body)
	wantStatus(t, r, http.StatusOK)

	// Only successful responses are kept: a refused call does not use up
	// its key.
	const unknownOnly = `{"recipients":["nobody"]}`
	if r := f.triggerWorkflow(t, "development", "new-comment", "key-2", unknownOnly); r.status != http.StatusBadRequest {
		t.Fatalf("API trigger for unidentified recipients only: HTTP %d %s, want 400", r.status, r.body)
	}
	f.identify(t, "development", "nobody", `{"name":"Somebody Now"}`)
	r = f.triggerWorkflow(t, "development", "new-comment", "key-2", unknownOnly)
	wantStatus(t, r, http.StatusOK)
	if r.header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("a key whose first call failed was replayed")
	}

	// Keys are per environment.
	r = f.triggerWorkflow(t, "production", "new-comment", "key-1", `{"recipients":[{"id":"prod-user"}]}`)
	wantStatus(t, r, http.StatusOK)
	if got := decode(t, r, &harkv1.TriggerWorkflowResponse{}).GetWorkflowRunId(); got == id || r.header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("key-1 in production returned %s (replayed %q), want a new production run", got, r.header.Get("Idempotent-Replayed"))
	}

	// Replays over Connect carry the header too.
	wc := f.h.workflows()
	creq := connect.NewRequest(&harkv1.TriggerWorkflowRequest{
		Environment: "development", Key: "new-comment", Recipients: []*structpb.Value{structpb.NewStringValue("u2")},
	})
	creq.Header().Set("Idempotency-Key", "connect-key")
	first, err := wc.TriggerWorkflow(ctxFor(t), creq)
	if err != nil {
		t.Fatalf("Connect TriggerWorkflow: %v", err)
	}
	second, err := wc.TriggerWorkflow(ctxFor(t), creq)
	if err != nil {
		t.Fatalf("Connect TriggerWorkflow replay: %v", err)
	}
	if first.Msg.GetWorkflowRunId() != second.Msg.GetWorkflowRunId() || first.Header().Get("Idempotent-Replayed") != "" ||
		second.Header().Get("Idempotent-Replayed") != "true" {
		t.Fatalf("Connect: first %s (replayed %q), second %s (replayed %q)", first.Msg.GetWorkflowRunId(), first.Header().Get("Idempotent-Replayed"),
			second.Msg.GetWorkflowRunId(), second.Header().Get("Idempotent-Replayed"))
	}

	// Refused requests.
	for _, c := range []struct {
		name, env, workflow, body string
		status                    int
	}{
		{"no recipients", "development", "new-comment", `{"data":{"a":1}}`, http.StatusBadRequest},
		{"collection recipient", "development", "new-comment", `{"recipients":[{"id":"p1","collection":"projects"}]}`, http.StatusBadRequest},
		{"object without id", "development", "new-comment", `{"recipients":[{"name":"x"}]}`, http.StatusBadRequest},
		{"too many recipients", "development", "new-comment", trgJSON(t, map[string]any{"recipients": slices.Repeat([]any{"u2"}, 1001)}), http.StatusBadRequest},
		{"tenant object without id", "development", "new-comment", `{"recipients":["u2"],"tenant":{"name":"x"}}`, http.StatusBadRequest},
		{"unknown workflow", "development", "no-such-workflow", `{"recipients":["u2"]}`, http.StatusNotFound},
		{"unknown environment", "staging", "new-comment", `{"recipients":["u2"]}`, http.StatusNotFound},
	} {
		if r := f.triggerWorkflow(t, c.env, c.workflow, "", c.body); r.status != c.status {
			t.Errorf("%s: HTTP %d %s, want %d", c.name, r.status, r.body, c.status)
		}
	}
	wantStatus(t, f.h.rest(t, http.MethodPatch, "/v1/workflows/other-wf", `{"active":false}`), http.StatusOK)
	if r := f.triggerWorkflow(t, "development", "other-wf", "", `{"recipients":["u2"]}`); r.status != http.StatusBadRequest ||
		!strings.Contains(string(r.body), `workflow \"other-wf\" is inactive`) {
		t.Fatalf("inactive workflow: HTTP %d %s, want 400 naming it inactive", r.status, r.body)
	}
}

func TestTriggersCancelWorkflow(t *testing.T) {
	t.Parallel()
	f := trgStart(t)
	f.identify(t, "development", "u3", `{}`)
	start := func(recipients, key string) *harkv1.WorkflowRun {
		id := f.mustTriggerWorkflow(t, "development", "new-comment", `{"recipients":`+recipients+`,"cancellationKey":"`+key+`"}`)
		return f.run(t, "development", id)
	}
	r1 := start(`["u2"]`, "ck-1")
	r2 := start(`["u3"]`, "ck-1")
	r3 := start(`["u2","u3"]`, "ck-1")
	other := start(`["u2"]`, "ck-other")
	f.createWorkflow(t, "second-wf")
	otherWF := f.mustTriggerWorkflow(t, "development", "second-wf", `{"recipients":["u2"],"cancellationKey":"ck-1"}`)

	// With recipients: the runs for one of them stop for that recipient
	// only; r3 goes on for u2.
	got := f.cancel(t, "development", "new-comment", `{"cancellationKey":"ck-1","recipients":["u3"]}`)
	slices.Sort(got)
	want := []string{r2.GetId(), r3.GetId()}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("cancel ck-1 for u3 = %v, want %v", got, want)
	}
	for _, c := range []struct {
		id     string
		status harkv1.WorkflowRunStatus
	}{{r1.GetId(), trgActive}, {r2.GetId(), trgCancelled}, {r3.GetId(), trgActive}, {other.GetId(), trgActive}, {otherWF, trgActive}} {
		if s := f.run(t, "development", c.id).GetStatus(); s != c.status {
			t.Errorf("run %s status = %v, want %v", c.id, s, c.status)
		}
	}
	// Without: every active run of the workflow with the key, for every
	// recipient still active.
	got = f.cancel(t, "development", "new-comment", `{"cancellationKey":"ck-1"}`)
	slices.Sort(got)
	want = []string{r1.GetId(), r3.GetId()}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("cancel ck-1 = %v, want the still active %v", got, want)
	}
	if got := f.cancel(t, "development", "new-comment", `{"cancellationKey":"ck-1"}`); len(got) != 0 {
		t.Fatalf("cancelling again = %v, want nothing", got)
	}
	cancelled := f.run(t, "development", r1.GetId())
	if cancelled.GetStatus() != trgCancelled || cancelled.GetCursor() <= r1.GetCursor() ||
		cancelled.GetUpdatedAt().AsTime().Before(r1.GetUpdatedAt().AsTime()) || !proto.Equal(trgStable(cancelled).GetData(), r1.GetData()) {
		t.Fatalf("cancelled run = %v, want CANCELLED with a newer cursor, the rest kept (was %v)", cancelled, r1)
	}
	if s := f.run(t, "development", otherWF).GetStatus(); s != trgActive {
		t.Fatalf("cancel in new-comment cancelled a run of second-wf")
	}
	// Over Connect.
	res := mustCall(t, f.h.workflows().CancelWorkflow, &harkv1.CancelWorkflowRequest{Environment: "development", Key: "second-wf", CancellationKey: "ck-1"})
	if !slices.Equal(res.GetWorkflowRunIds(), []string{otherWF}) {
		t.Fatalf("Connect cancel = %v, want [%s]", res.GetWorkflowRunIds(), otherWF)
	}
	// Refused: no key, unknown workflow.
	wantStatus(t, f.h.rest(t, http.MethodPost, "/v1/environments/development/workflows/new-comment/cancel", `{}`), http.StatusBadRequest)
	wantStatus(t, f.h.rest(t, http.MethodPost, "/v1/environments/development/workflows/nope/cancel", `{"cancellationKey":"x"}`), http.StatusNotFound)
}

// trgDo makes an admin HTTP request from any goroutine: it returns errors
// instead of failing the test.
func trgDo(ctx context.Context, h *harness, auth bool, path, body string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.base+path, strings.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if auth {
		req.Header.Set("Authorization", string(h.admin()))
	}
	res, err := h.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, b, err
}

// TestTriggersConcurrentRuns starts runs from concurrent deliveries and API
// triggers, which commit through different paths, while a watch follows:
// every event gets exactly one run, every run one feed position, and the
// watch sees each run once, in cursor order.
func TestTriggersConcurrentRuns(t *testing.T) {
	t.Parallel()
	f := trgStart(t)
	tr := f.createTrigger(t, "development", map[string]any{"event": "Burst", "mapping": map[string]any{"data": `{"n": properties.n}`}})
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	w := f.watchConnect(t, ctx, &harkv1.WatchWorkflowRunsRequest{Environment: "development"})

	// 32 concurrent API calls are a modest load for a trigger API.
	const deliveries, apiCalls = 24, 32
	ingestPath := f.h.ingestPath(t, f.ingestURL(t, "development"))
	type result struct {
		eventID, runID string
		err            error
	}
	results := make(chan result, deliveries+apiCalls)
	var wg sync.WaitGroup
	for i := range deliveries {
		wg.Go(func() {
			status, body, err := trgDo(ctx, f.h, false, ingestPath, fmt.Sprintf(`{"type":"track","event":"Burst","userId":"actor1","properties":{"n":%d}}`, i))
			if err == nil && status != http.StatusOK {
				err = fmt.Errorf("delivery %d: HTTP %d %s", i, status, body)
			}
			res := &harkv1.ReceiveResponse{}
			if err == nil {
				err = protojson.Unmarshal(body, res)
			}
			if err == nil && len(res.GetEvents()) != 1 {
				err = fmt.Errorf("delivery %d: %v", i, res)
			}
			if err != nil {
				results <- result{err: err}
				return
			}
			results <- result{eventID: res.GetEvents()[0].GetId()}
		})
	}
	for i := range apiCalls {
		wg.Go(func() {
			status, body, err := trgDo(ctx, f.h, true, "/v1/environments/development/workflows/new-comment/trigger", fmt.Sprintf(`{"recipients":["u2"],"data":{"api":%d}}`, i))
			if err == nil && status != http.StatusOK {
				err = fmt.Errorf("API trigger %d: HTTP %d %s", i, status, body)
			}
			res := &harkv1.TriggerWorkflowResponse{}
			if err == nil {
				err = protojson.Unmarshal(body, res)
			}
			results <- result{runID: res.GetWorkflowRunId(), err: err}
		})
	}
	wg.Wait()
	close(results)
	want := map[string]bool{}
	var (
		events []string
		failed []error
	)
	for r := range results {
		if r.err != nil {
			failed = append(failed, r.err)
			continue
		}
		if r.eventID != "" {
			events = append(events, r.eventID)
		} else {
			want[r.runID] = true
		}
	}
	if len(failed) > 0 {
		t.Fatalf("%d of %d concurrent deliveries and API triggers failed; the first: %v", len(failed), deliveries+apiCalls, failed[0])
	}
	for _, evID := range events {
		a := f.action(t, "development", evID, tr.GetId())
		trgWantAction(t, a, trgSuccess, "")
		if want[a.GetWorkflowRunId()] {
			t.Fatalf("run %s was started twice", a.GetWorkflowRunId())
		}
		want[a.GetWorkflowRunId()] = true
	}
	if len(want) != deliveries+apiCalls {
		t.Fatalf("%d distinct runs, want %d", len(want), deliveries+apiCalls)
	}
	if got := f.runs(t, "development", url.Values{"pageSize": {"7"}}); len(got) != len(want) {
		t.Fatalf("the run list holds %d runs, want %d", len(got), len(want))
	}
	seen := map[string]bool{}
	last := ""
	for range len(want) {
		run := w.next(t)
		if run.GetCursor() <= last {
			t.Fatalf("watch: cursor %s after %s", run.GetCursor(), last)
		}
		last = run.GetCursor()
		if !want[run.GetId()] || seen[run.GetId()] {
			t.Fatalf("watch sent run %s: unknown or twice", run.GetId())
		}
		seen[run.GetId()] = true
	}
}

// ---------------------------------------------------------------------------
// Runs: list, get, watch.
// ---------------------------------------------------------------------------

func TestTriggersRunsList(t *testing.T) {
	t.Parallel()
	f := trgStart(t)
	f.createWorkflow(t, "list-a")
	f.createWorkflow(t, "list-b")
	var created []string
	for i := range 3 {
		created = append(created, f.mustTriggerWorkflow(t, "development", "list-a", fmt.Sprintf(`{"recipients":["u2"],"data":{"i":%d}}`, i)))
	}
	for range 2 {
		created = append(created, f.mustTriggerWorkflow(t, "development", "list-b", `{"recipients":["u2"]}`))
	}
	tr := f.createTrigger(t, "development", map[string]any{"event": "Listed", "workflowKey": "list-b"})
	ev1 := f.track(t, "development", "Listed", "actor1", map[string]any{"n": 1})
	ev2 := f.track(t, "development", "Listed", "actor1", map[string]any{"n": 2})
	runOf := func(evID string) string { return f.action(t, "development", evID, tr.GetId()).GetWorkflowRunId() }
	created = append(created, runOf(ev1), runOf(ev2))

	newestFirst := slices.Clone(created)
	slices.Reverse(newestFirst)
	all := f.runs(t, "development", url.Values{})
	if got := trgRunIDs(all); !slices.Equal(got, newestFirst) {
		t.Fatalf("all runs = %v, want %v (newest first)", got, newestFirst)
	}
	for _, c := range []struct {
		query url.Values
		want  []string
	}{
		{url.Values{"workflowKey": {"list-a"}}, []string{created[2], created[1], created[0]}},
		{url.Values{"workflowKey": {"list-b"}}, []string{created[6], created[5], created[4], created[3]}},
		{url.Values{"triggerId": {tr.GetId()}}, []string{created[6], created[5]}},
		{url.Values{"sourceEventId": {ev1}}, []string{created[5]}},
		{url.Values{"workflowKey": {"list-a"}, "triggerId": {tr.GetId()}}, nil},
		{url.Values{"pageSize": {"2"}}, newestFirst},
		{url.Values{"pageSize": {"1"}, "workflowKey": {"list-a"}}, []string{created[2], created[1], created[0]}},
	} {
		if got := trgRunIDs(f.runs(t, "development", c.query)); !slices.Equal(got, c.want) {
			t.Errorf("runs %v = %v, want %v", c.query, got, c.want)
		}
	}
	r := f.h.rest(t, http.MethodGet, "/v1/environments/development/workflow-runs?pageSize=2", "")
	wantStatus(t, r, http.StatusOK)
	if page := decode(t, r, &harkv1.ListWorkflowRunsResponse{}); len(page.GetWorkflowRuns()) != 2 || page.GetNextPageToken() == "" {
		t.Fatalf("page of 2 = %v, want 2 runs and a next page token", page)
	}
	// Get agrees with the list, over REST and Connect.
	for _, run := range all {
		if got := f.run(t, "development", run.GetId()); !proto.Equal(got, run) {
			t.Fatalf("REST get = %v, listed %v", got, run)
		}
	}
	res := mustCall(t, f.runClient().ListWorkflowRuns, &harkv1.ListWorkflowRunsRequest{Environment: "development", WorkflowKey: "list-a", PageSize: 2})
	if got := trgRunIDs(res.GetWorkflowRuns()); !slices.Equal(got, []string{created[2], created[1]}) || res.GetNextPageToken() == "" {
		t.Fatalf("Connect list page = %v (next %q), want [%s %s] and a token", got, res.GetNextPageToken(), created[2], created[1])
	}
	res = mustCall(t, f.runClient().ListWorkflowRuns, &harkv1.ListWorkflowRunsRequest{Environment: "development", WorkflowKey: "list-a", PageSize: 2, PageToken: res.GetNextPageToken()})
	if got := trgRunIDs(res.GetWorkflowRuns()); !slices.Equal(got, []string{created[0]}) {
		t.Fatalf("Connect list second page = %v, want [%s]", got, created[0])
	}
	// Runs are per environment.
	if got := f.runs(t, "production", url.Values{}); len(got) != 0 {
		t.Fatalf("production runs = %v, want none", trgRunIDs(got))
	}
	wantStatus(t, f.h.rest(t, http.MethodGet, "/v1/environments/production/workflow-runs/"+created[0], ""), http.StatusNotFound)
	wantStatus(t, f.h.rest(t, http.MethodGet, "/v1/environments/development/workflow-runs/run_nope", ""), http.StatusNotFound)
	wantStatus(t, f.h.rest(t, http.MethodGet, "/v1/environments/staging/workflow-runs", ""), http.StatusNotFound)
	wantStatus(t, f.h.rest(t, http.MethodGet, "/v1/environments/development/workflow-runs?pageToken=%21%21not-a-token", ""), http.StatusBadRequest)
}

// trgWatch is an open run watch, over Connect or gRPC.
type trgWatch struct {
	name string
	recv func() (*harkv1.WorkflowRun, error)
}

// next receives the next run or fails.
func (w *trgWatch) next(t *testing.T) *harkv1.WorkflowRun {
	t.Helper()
	run, err := w.recv()
	if err != nil {
		t.Fatalf("%s watch: %v", w.name, err)
	}
	return run
}

// expect receives len(ids) runs and checks their ids, in order, and that
// their cursors rise above after; it returns the last cursor.
func (w *trgWatch) expect(t *testing.T, after string, ids ...string) (string, []*harkv1.WorkflowRun) {
	t.Helper()
	var got []*harkv1.WorkflowRun
	for range ids {
		run := w.next(t)
		if run.GetCursor() <= after {
			t.Fatalf("%s watch: run %s has cursor %q, not after %q", w.name, run.GetId(), run.GetCursor(), after)
		}
		after = run.GetCursor()
		got = append(got, run)
	}
	if !slices.Equal(trgRunIDs(got), ids) {
		t.Fatalf("%s watch sent %v, want %v", w.name, trgRunIDs(got), ids)
	}
	return after, got
}

// watchConnect opens a Connect watch bounded by ctx.
func (f *trgFixture) watchConnect(t *testing.T, ctx context.Context, req *harkv1.WatchWorkflowRunsRequest) *trgWatch {
	t.Helper()
	stream, err := f.runClient().WatchWorkflowRuns(ctx, connect.NewRequest(req))
	if err != nil {
		t.Fatalf("Connect WatchWorkflowRuns: %v", err)
	}
	t.Cleanup(func() { stream.Close() })
	return &trgWatch{name: "Connect", recv: func() (*harkv1.WorkflowRun, error) {
		if !stream.Receive() {
			if err := stream.Err(); err != nil {
				return nil, err
			}
			return nil, errors.New("the stream ended")
		}
		return stream.Msg().GetWorkflowRun(), nil
	}}
}

// watchGRPC opens a gRPC watch bounded by ctx, with the generated grpc-go
// client.
func (f *trgFixture) watchGRPC(t *testing.T, ctx context.Context, req *harkv1.WatchWorkflowRunsRequest) *trgWatch {
	t.Helper()
	client := harkv1.NewWorkflowRunServiceClient(f.h.grpcConn(t))
	stream, err := client.WatchWorkflowRuns(trgGRPCAuth(ctx, f.h), req)
	if err != nil {
		t.Fatalf("gRPC WatchWorkflowRuns: %v", err)
	}
	return &trgWatch{name: "gRPC", recv: func() (*harkv1.WorkflowRun, error) {
		msg, err := stream.Recv()
		if err != nil {
			return nil, err
		}
		return msg.GetWorkflowRun(), nil
	}}
}

// trgGRPCAuth adds h's admin token to a gRPC call context.
func trgGRPCAuth(ctx context.Context, h *harness) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", string(h.admin()))
}

func TestTriggersWatchWorkflowRuns(t *testing.T) {
	t.Parallel()
	f := trgStart(t)
	f.createWorkflow(t, "watched")
	tr := f.createTrigger(t, "development", map[string]any{"event": "Watched", "workflowKey": "watched"})
	api := func(key string) string {
		return f.mustTriggerWorkflow(t, "development", "watched", `{"recipients":["u2"],"cancellationKey":"`+key+`"}`)
	}
	r1 := api("k1")
	evID := f.track(t, "development", "Watched", "actor1", map[string]any{"n": 1})
	r2 := f.action(t, "development", evID, tr.GetId()).GetWorkflowRunId()
	r3 := api("k3")
	other := f.mustTriggerWorkflow(t, "development", "new-comment", `{"recipients":["u2"]}`)

	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()

	// Connect: replay from an empty cursor, then live runs and changes.
	w := f.watchConnect(t, ctx, &harkv1.WatchWorkflowRunsRequest{Environment: "development"})
	last, replayed := w.expect(t, "", r1, r2, r3, other)
	for _, run := range replayed {
		stored := f.run(t, "development", run.GetId())
		if !proto.Equal(run, stored) {
			t.Fatalf("watched run =\n%v\nstored\n%v", run, stored)
		}
	}
	r4 := api("k4")
	last, _ = w.expect(t, last, r4)
	if got := f.cancel(t, "development", "watched", `{"cancellationKey":"k1"}`); !slices.Equal(got, []string{r1}) {
		t.Fatalf("cancel k1 = %v", got)
	}
	var changed []*harkv1.WorkflowRun
	last, changed = w.expect(t, last, r1)
	if changed[0].GetStatus() != trgCancelled {
		t.Fatalf("the cancellation came as %v, want the run CANCELLED", changed[0])
	}
	// gRPC with the generated client, filtered by workflow: the same feed
	// from the start, including the change.
	g := f.watchGRPC(t, ctx, &harkv1.WatchWorkflowRunsRequest{Environment: "development", WorkflowKey: "watched"})
	gLast, gRuns := g.expect(t, "", r1, r2, r3, r4, r1)
	if gLast != last || gRuns[4].GetStatus() != trgCancelled {
		t.Fatalf("gRPC feed ends at %s with %v, want cursor %s and the cancellation", gLast, gRuns[4], last)
	}
	// Bad requests.
	_, err := f.watchConnect(t, ctx, &harkv1.WatchWorkflowRunsRequest{Environment: "development", AfterCursor: "zz"}).recv()
	wantCode(t, err, connect.CodeInvalidArgument)
	_, err = f.watchConnect(t, ctx, &harkv1.WatchWorkflowRunsRequest{Environment: "staging"}).recv()
	wantCode(t, err, connect.CodeNotFound)

	// A restart ends open watches; a consumer resumes from its last cursor
	// and gets only what came after it.
	open := f.watchConnect(t, ctx, &harkv1.WatchWorkflowRunsRequest{Environment: "development", AfterCursor: last})
	ended := make(chan error, 1)
	go func() {
		_, err := open.recv()
		ended <- err
	}()
	f.h.restart(t)
	select {
	case err := <-ended:
		if connect.CodeOf(err) != connect.CodeUnavailable {
			t.Fatalf("a watch open across the restart ended with %v, want Unavailable (watch again from the last cursor)", err)
		}
	case <-ctx.Done():
		t.Fatalf("a watch open across the restart did not end")
	}

	r5 := api("k5")
	if got := f.cancel(t, "development", "watched", `{"cancellationKey":"k3"}`); !slices.Equal(got, []string{r3}) {
		t.Fatalf("cancel k3 = %v", got)
	}
	resumed := []*trgWatch{
		f.watchConnect(t, ctx, &harkv1.WatchWorkflowRunsRequest{Environment: "development", AfterCursor: last}),
		f.watchGRPC(t, ctx, &harkv1.WatchWorkflowRunsRequest{Environment: "development", AfterCursor: last}),
	}
	cursors := make([]string, len(resumed))
	for i, w := range resumed {
		var got []*harkv1.WorkflowRun
		cursors[i], got = w.expect(t, last, r5, r3)
		if got[0].GetStatus() != trgActive || got[1].GetStatus() != trgCancelled {
			t.Fatalf("%s resume = %v, want r5 active then r3 cancelled", w.name, got)
		}
	}
	// Nothing else was pending: the next run each watch gets is a new one.
	marker := api("marker")
	for i, w := range resumed {
		w.expect(t, cursors[i], marker)
	}
}

// TestTriggersCancelManyRuns cancels more runs than one store transaction
// holds, while events keep arriving. CancelWorkflow used to scan the
// environment's runs and cancel at most 10,000 in one commit holding the
// lock every ingest commit takes (a larger one failed as too large, a
// 500). It now finds them through the cancellation index and cancels them
// in chunks, so an event delivered meanwhile commits between two chunks:
// its run's cursor lies between the cancellations' cursors.
func TestTriggersCancelManyRuns(t *testing.T) {
	t.Parallel()
	f := trgStart(t)
	bulk := f.createTrigger(t, "development", map[string]any{
		"event": "Bulk", "mapping": map[string]any{"recipients": `"u2"`, "cancellationKey": `"bulk"`},
	})
	f.createTrigger(t, "development", map[string]any{"event": "Meanwhile", "mapping": map[string]any{"recipients": `"u2"`}})
	const deliveries, perDelivery = 12, 1000
	events := make([]map[string]any, perDelivery)
	for i := range events {
		events[i] = map[string]any{"type": "track", "event": "Bulk", "userId": "u2"}
	}
	var first []string
	for i := range deliveries {
		ids := f.post(t, "development", events...)
		if i == 0 {
			first = ids[:8]
		}
	}
	var early []string // runs among the first the cancel reaches
	for _, id := range first {
		early = append(early, f.action(t, "development", id, bulk.GetId()).GetWorkflowRunId())
	}
	// A run of the same workflow with another key stays active.
	other := f.mustTriggerWorkflow(t, "development", "new-comment", `{"recipients":["u2"],"cancellationKey":"other"}`)

	type result struct {
		code int
		body []byte
		err  error
	}
	done := make(chan result, 1)
	go func() {
		code, body, err := trgDo(t.Context(), f.h, true, "/v1/environments/development/workflows/new-comment/cancel", `{"cancellationKey":"bulk"}`)
		done <- result{code, body, err}
	}()
	// Once the first chunk is committed, deliver an event.
	deadline := time.Now().Add(testTimeout)
	for !slices.ContainsFunc(early, func(id string) bool { return f.run(t, "development", id).GetStatus() == trgCancelled }) {
		if time.Now().After(deadline) {
			t.Fatal("no run was cancelled")
		}
		time.Sleep(time.Millisecond)
	}
	meanwhile := f.track(t, "development", "Meanwhile", "u2", nil)
	var res result
	select {
	case res = <-done:
	case <-time.After(testTimeout):
		t.Fatal("the cancel call did not return")
	}
	if res.err != nil || res.code != http.StatusOK {
		t.Fatalf("cancel: HTTP %d %s %v", res.code, res.body, res.err)
	}
	cancelled := &harkv1.CancelWorkflowResponse{}
	if err := protojson.Unmarshal(res.body, cancelled); err != nil {
		t.Fatal(err)
	}
	got := cancelled.GetWorkflowRunIds()
	if len(got) != deliveries*perDelivery {
		t.Fatalf("cancel cancelled %d runs, want %d", len(got), deliveries*perDelivery)
	}
	if len(slices.Compact(slices.Sorted(slices.Values(got)))) != len(got) {
		t.Fatalf("cancel listed a run twice")
	}
	for _, id := range []string{got[0], got[len(got)/2], got[len(got)-1]} {
		if s := f.run(t, "development", id).GetStatus(); s != trgCancelled {
			t.Fatalf("run %s status = %v, want CANCELLED", id, s)
		}
	}
	if s := f.run(t, "development", other).GetStatus(); s != trgActive {
		t.Fatalf("the run with another cancellation key is %v, want ACTIVE", s)
	}
	// The event delivered during the cancel committed between its chunks.
	mine := f.run(t, "development", trgActions(f.event(t, "development", meanwhile))[0].GetWorkflowRunId())
	firstCursor, lastCursor := f.run(t, "development", got[0]).GetCursor(), f.run(t, "development", got[len(got)-1]).GetCursor()
	if !(firstCursor < mine.GetCursor() && mine.GetCursor() < lastCursor) {
		t.Fatalf("the run of an event delivered during the cancel has cursor %s; the cancellations span %s..%s: ingestion waited for the whole cancel",
			mine.GetCursor(), firstCursor, lastCursor)
	}
	if again := f.cancel(t, "development", "new-comment", `{"cancellationKey":"bulk"}`); len(again) != 0 {
		t.Fatalf("cancelling again cancelled %d runs, want none", len(again))
	}
}
