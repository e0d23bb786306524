package server_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/structpb"

	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// End-to-end tests of the action model (DESIGN §9): real server, real
// Segment plugin process, real Badger, over REST as users call it.

// actionTypes are an event's logged action types, in order.
func actionTypes(ev *harkv1.SourceEvent) []harkv1.ActionType {
	out := make([]harkv1.ActionType, len(ev.GetActions()))
	for i, a := range ev.GetActions() {
		out[i] = a.GetType()
	}
	return out
}

// createAction creates a trigger of a non-workflow action type (no
// workflow key) over REST.
func (f *trgFixture) createAction(t *testing.T, env, actionType string, fields map[string]any) *harkv1.Trigger {
	t.Helper()
	body := map[string]any{"workflowKey": "", "actionType": actionType}
	for k, v := range fields {
		body[k] = v
	}
	return f.createTrigger(t, env, body)
}

func (f *trgFixture) get(t *testing.T, path string, want int) httpResult {
	t.Helper()
	r := f.h.rest(t, http.MethodGet, path, "")
	wantStatus(t, r, want)
	return r
}

// One Segment track runs identify, object set, tenant set, object
// subscribe and a workflow trigger in Knock's order, whatever order the
// triggers were created in: the trigger, whose recipient is the object,
// sees the subscription made by the same event.
func TestActionsOneTrackInKnockOrder(t *testing.T) {
	t.Parallel()
	f := trgStart(t)
	const dev = "development"
	const name = "Project Joined"
	trigger := f.createTrigger(t, dev, map[string]any{"event": name, "mapping": map[string]any{
		"recipients": `[{"collection": "projects", "id": properties.project.id}]`,
		"tenant":     `properties.account.id`,
	}})
	subscribe := f.createAction(t, dev, "TRIGGER_ACTION_TYPE_OBJECTS_SUBSCRIBE", map[string]any{"event": name,
		"actionMapping": map[string]any{"collection": `"projects"`, "id": `properties.project.id`, "properties": `{"role": properties.role}`}})
	tenant := f.createAction(t, dev, "TRIGGER_ACTION_TYPE_TENANTS_SET", map[string]any{"event": name,
		"actionMapping": map[string]any{"id": `properties.account.id`, "properties": `{"name": properties.account.name, "plan": properties.account.plan}`}})
	object := f.createAction(t, dev, "TRIGGER_ACTION_TYPE_OBJECTS_SET", map[string]any{"event": name,
		"actionMapping": map[string]any{"collection": `"projects"`, "id": `properties.project.id`, "properties": `{"title": properties.project.title}`}})
	identify := f.createAction(t, dev, "TRIGGER_ACTION_TYPE_USERS_IDENTIFY", map[string]any{"event": name,
		"actionMapping": map[string]any{"properties": `{"email": properties.email, "name": "New User"}`}})

	evID := f.track(t, dev, name, "newcomer", map[string]any{
		"email": "new@example.com", "role": "editor",
		"project": map[string]any{"id": "p-7", "title": "Apollo"},
		"account": map[string]any{"id": 1234, "name": "Acme", "plan": "pro"},
	})
	ev := f.event(t, dev, evID)
	want := []harkv1.ActionType{
		harkv1.ActionType_ACTION_TYPE_IDENTIFY_USER, harkv1.ActionType_ACTION_TYPE_SET_OBJECT,
		harkv1.ActionType_ACTION_TYPE_SET_TENANT, harkv1.ActionType_ACTION_TYPE_SUBSCRIBE,
		harkv1.ActionType_ACTION_TYPE_TRIGGER_WORKFLOW,
	}
	if got := actionTypes(ev); !slices.Equal(got, want) {
		t.Fatalf("action order = %v, want %v (actions %v)", got, want, ev.GetActions())
	}
	wantIDs := []string{identify.GetId(), object.GetId(), tenant.GetId(), subscribe.GetId(), trigger.GetId()}
	for i, a := range ev.GetActions() {
		if a.GetStatus() != trgSuccess || a.GetTriggerId() != wantIDs[i] {
			t.Fatalf("action %d = %v, want SUCCESS of trigger %s", i, a, wantIDs[i])
		}
	}
	if a := ev.GetActions()[3]; a.GetCollection() != "projects" || a.GetObjectId() != "p-7" || !slices.Equal(a.GetRecipients(), []string{"newcomer"}) {
		t.Errorf("subscribe action = %v, want projects/p-7 for newcomer", a)
	}

	u := f.user(t, dev, "newcomer")
	if u.GetEmail() != "new@example.com" || u.GetName() != "New User" {
		t.Errorf("user = %v, want the mapped email and name", u)
	}
	ten := decode(t, f.get(t, "/v1/environments/development/tenants/1234", http.StatusOK), &harkv1.Tenant{})
	if ten.GetName() != "Acme" || ten.GetProperties().GetFields()["plan"].GetStringValue() != "pro" {
		t.Errorf("tenant = %v, want Acme on plan pro", ten)
	}
	obj := decode(t, f.get(t, "/v1/environments/development/objects/projects/p-7", http.StatusOK), &harkv1.Object{})
	if obj.GetProperties().GetFields()["title"].GetStringValue() != "Apollo" {
		t.Errorf("object = %v, want title Apollo", obj)
	}
	subs := decode(t, f.get(t, "/v1/environments/development/objects/projects/p-7/subscriptions", http.StatusOK), &harkv1.ListSubscriptionsResponse{})
	if len(subs.GetSubscriptions()) != 1 || subs.GetSubscriptions()[0].GetRecipient() != "newcomer" ||
		subs.GetSubscriptions()[0].GetProperties().GetFields()["role"].GetStringValue() != "editor" {
		t.Errorf("subscriptions = %v, want newcomer as editor", subs)
	}
	run := f.run(t, dev, ev.GetActions()[4].GetWorkflowRunId())
	if !slices.Equal(run.GetRecipients(), []string{"newcomer"}) || run.GetTenant() != "1234" {
		t.Errorf("run = %v, want it fanned out to newcomer in tenant 1234", run)
	}
}

// A recipient object fans out to its subscribers, after the ids the
// mapping names and without duplicates.
func TestActionsRecipientObjectFansOut(t *testing.T) {
	t.Parallel()
	f := trgStart(t)
	const dev = "development"
	f.identify(t, dev, "u3", `{}`)
	wantStatus(t, f.h.rest(t, http.MethodPut, "/v1/environments/development/objects/projects/p1", `{"properties":{"title":"P1"}}`), http.StatusOK)
	wantStatus(t, f.h.rest(t, http.MethodPost, "/v1/environments/development/objects/projects/p1/subscriptions", `{"recipients":["u3","u2"]}`), http.StatusOK)
	wantStatus(t, f.h.rest(t, http.MethodPut, "/v1/environments/development/objects/projects/empty", `{}`), http.StatusOK)
	tr := f.createTrigger(t, dev, map[string]any{"event": "Deployed", "mapping": map[string]any{
		"recipients": `["u2", {"collection": "projects", "id": "p1"}, {"collection": "projects", "id": "empty"}, {"collection": "projects", "id": "gone"}]`,
	}})
	evID := f.track(t, dev, "Deployed", "actor1", nil)
	a := f.action(t, dev, evID, tr.GetId())
	trgWantAction(t, a, trgSuccess, "")
	run := f.run(t, dev, a.GetWorkflowRunId())
	if !slices.Equal(run.GetRecipients(), []string{"u2", "u3"}) {
		t.Errorf("run recipients = %q, want u2 then p1's other subscriber u3", run.GetRecipients())
	}
	if s := run.GetSkippedRecipients(); len(s) != 1 || s[0].GetId() != "projects/gone" || s[0].GetReason() != "object not found" {
		t.Errorf("skipped = %v, want projects/gone (object not found)", s)
	}

	// The API trigger fans out the same way; an object alone with no
	// subscribers leaves no recipient, which the API refuses.
	apiRun := f.run(t, dev, f.mustTriggerWorkflow(t, dev, "new-comment", `{"recipients":[{"collection":"projects","id":"p1"}]}`))
	if !slices.Equal(apiRun.GetRecipients(), []string{"u2", "u3"}) {
		t.Errorf("API run recipients = %q, want p1's subscribers u2, u3", apiRun.GetRecipients())
	}
	r := f.triggerWorkflow(t, dev, "new-comment", "", `{"recipients":[{"collection":"projects","id":"empty"}]}`)
	wantStatus(t, r, http.StatusBadRequest)
}

// Fan-out past 10,000 subscribers is an ERROR action, not a stall; the
// other actions of the event still run.
func TestActionsFanOutLimit(t *testing.T) {
	t.Parallel()
	f := trgStart(t)
	const dev = "development"
	const n = 10001
	// Identify n users with Segment batches, then subscribe them 1,000 at a time.
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("fan-%05d", i)
	}
	for start := 0; start < n; start += 4000 {
		var evs []map[string]any
		for _, id := range ids[start:min(start+4000, n)] {
			evs = append(evs, map[string]any{"type": "identify", "userId": id})
		}
		f.post(t, dev, evs...)
	}
	wantStatus(t, f.h.rest(t, http.MethodPut, "/v1/environments/development/objects/channels/all", `{}`), http.StatusOK)
	for start := 0; start < n; start += 1000 {
		body := trgJSON(t, map[string]any{"recipients": ids[start:min(start+1000, n)]})
		wantStatus(t, f.h.rest(t, http.MethodPost, "/v1/environments/development/objects/channels/all/subscriptions", body), http.StatusOK)
	}
	big := f.createTrigger(t, dev, map[string]any{"event": "Broadcast", "mapping": map[string]any{"recipients": `{"collection": "channels", "id": "all"}`}})
	other := f.createTrigger(t, dev, map[string]any{"event": "Broadcast", "mapping": map[string]any{"recipients": `"u2"`}})
	evID := f.track(t, dev, "Broadcast", "actor1", nil)
	trgWantAction(t, f.action(t, dev, evID, big.GetId()), trgError, "subscribers are more than 10000")
	trgWantAction(t, f.action(t, dev, evID, other.GetId()), trgSuccess, "")
	if runs := f.runs(t, dev, url.Values{"triggerId": {big.GetId()}}); len(runs) != 0 {
		t.Errorf("the fan-out past the limit started runs %v", trgRunIDs(runs))
	}
}

// A mapping of the wrong shape for its action is an ERROR naming the
// field; the event's other actions run.
func TestActionsWrongShapeIsAnErrorOthersRun(t *testing.T) {
	t.Parallel()
	f := trgStart(t)
	const dev = "development"
	bad := f.createAction(t, dev, "TRIGGER_ACTION_TYPE_OBJECTS_SET", map[string]any{"event": "Shape",
		"actionMapping": map[string]any{"collection": `properties.meta`, "id": `"x"`}})
	badProps := f.createAction(t, dev, "TRIGGER_ACTION_TYPE_TENANTS_SET", map[string]any{"event": "Shape",
		"actionMapping": map[string]any{"id": `"t1"`, "properties": `properties.tags`}})
	badRules := f.createAction(t, dev, "TRIGGER_ACTION_TYPE_OBJECTS_SET", map[string]any{"event": "Shape",
		"actionMapping": map[string]any{"collection": `"has space"`, "id": `"x"`}})
	good := f.createAction(t, dev, "TRIGGER_ACTION_TYPE_OBJECTS_SET", map[string]any{"event": "Shape",
		"actionMapping": map[string]any{"collection": `"docs"`, "id": `"d1"`}})
	run := f.createTrigger(t, dev, map[string]any{"event": "Shape", "mapping": map[string]any{"recipients": `"u2"`}})
	evID := f.track(t, dev, "Shape", "u2", map[string]any{"meta": map[string]any{"a": 1}, "tags": []any{"a"}})
	ev := f.event(t, dev, evID)
	byTrigger := map[string]*harkv1.Action{}
	for _, a := range ev.GetActions() {
		byTrigger[a.GetTriggerId()] = a
	}
	for _, c := range []struct {
		id, reason string
		status     harkv1.ActionStatus
	}{
		{bad.GetId(), "actionMapping.collection: must be a string, not an object", trgError},
		{badProps.GetId(), "actionMapping.properties: must be an object or null, not a list", trgError},
		{badRules.GetId(), "collection", trgError},
		{good.GetId(), "", trgSuccess},
		{run.GetId(), "", trgSuccess},
	} {
		a := byTrigger[c.id]
		if a.GetStatus() != c.status || !strings.Contains(a.GetReason(), c.reason) || (c.reason == "" && a.GetReason() != "") {
			t.Errorf("action of %s = %v, want %v %q", c.id, a, c.status, c.reason)
		}
	}
	f.get(t, "/v1/environments/development/objects/docs/d1", http.StatusOK)
	f.get(t, "/v1/environments/development/objects/x/x", http.StatusNotFound)
	f.get(t, "/v1/environments/development/tenants/t1", http.StatusNotFound)
}

// A typo'd root fails to save for every action type, with the field and a
// "did you mean"; a field the action does not read, or a missing required
// one, is a field violation.
func TestActionsSaveChecks(t *testing.T) {
	t.Parallel()
	f := trgStart(t)
	const dev = "development"
	for _, c := range []struct {
		typ   string
		field string // where the typo goes
		body  map[string]any
	}{
		{"TRIGGER_ACTION_TYPE_USERS_IDENTIFY", "actionMapping.id", map[string]any{"actionMapping": map[string]any{"id": "usrId"}}},
		{"TRIGGER_ACTION_TYPE_USERS_DELETE", "actionMapping.id", map[string]any{"actionMapping": map[string]any{"id": "usrId"}}},
		{"TRIGGER_ACTION_TYPE_OBJECTS_SET", "actionMapping.properties", map[string]any{"actionMapping": map[string]any{"collection": `"c"`, "id": `"i"`, "properties": "propertes.x"}}},
		{"TRIGGER_ACTION_TYPE_OBJECTS_DELETE", "actionMapping.id", map[string]any{"actionMapping": map[string]any{"collection": `"c"`, "id": "propertes.id"}}},
		{"TRIGGER_ACTION_TYPE_TENANTS_SET", "actionMapping.id", map[string]any{"actionMapping": map[string]any{"id": "propertes.account"}}},
		{"TRIGGER_ACTION_TYPE_TENANTS_DELETE", "actionMapping.id", map[string]any{"actionMapping": map[string]any{"id": "propertes.account"}}},
		{"TRIGGER_ACTION_TYPE_OBJECTS_SUBSCRIBE", "actionMapping.recipients", map[string]any{"actionMapping": map[string]any{"collection": `"c"`, "id": `"i"`, "recipients": "usrId"}}},
		{"TRIGGER_ACTION_TYPE_OBJECTS_UNSUBSCRIBE", "actionMapping.collection", map[string]any{"actionMapping": map[string]any{"collection": "propertes.c", "id": `"i"`}}},
		{"TRIGGER_ACTION_TYPE_AUDIENCES_ADD_MEMBER", "actionMapping.audienceKey", map[string]any{"actionMapping": map[string]any{"audienceKey": "propertes.list"}}},
		{"TRIGGER_ACTION_TYPE_AUDIENCES_REMOVE_MEMBER", "actionMapping.tenant", map[string]any{"actionMapping": map[string]any{"audienceKey": `"a"`, "tenant": "contxt.groupId"}}},
		{"TRIGGER_ACTION_TYPE_WORKFLOWS_TRIGGER", "mapping.recipients", map[string]any{"workflowKey": "new-comment", "mapping": map[string]any{"recipients": "usrId"}}},
		{"TRIGGER_ACTION_TYPE_WORKFLOWS_CANCEL", "mapping.cancellationKey", map[string]any{"workflowKey": "new-comment", "mapping": map[string]any{"cancellationKey": "propertes.id"}}},
	} {
		t.Run(c.typ, func(t *testing.T) {
			body := map[string]any{"sourceId": f.src.GetId(), "event": "Typo", "actionType": c.typ}
			for k, v := range c.body {
				body[k] = v
			}
			r := f.h.rest(t, http.MethodPost, "/v1/environments/development/triggers", trgJSON(t, body))
			wantStatus(t, r, http.StatusBadRequest)
			_, x, _ := trgRESTError(t, r)
			if x == nil || x.GetField() != c.field || !strings.Contains(x.GetMessage(), "did you mean") {
				t.Errorf("expression error = %v, want one on %s with a suggestion", x, c.field)
			}
		})
	}
	for _, c := range []struct {
		name   string
		body   map[string]any
		fields []string
	}{
		{"field not read", map[string]any{"actionType": "TRIGGER_ACTION_TYPE_TENANTS_SET", "actionMapping": map[string]any{"id": `"t"`, "collection": `"c"`}}, []string{"actionMapping.collection"}},
		{"required missing", map[string]any{"actionType": "TRIGGER_ACTION_TYPE_OBJECTS_SET", "actionMapping": map[string]any{"id": `"i"`}}, []string{"actionMapping.collection"}},
		{"workflow on a resource action", map[string]any{"actionType": "TRIGGER_ACTION_TYPE_USERS_DELETE", "workflowKey": "new-comment"}, []string{"workflowKey"}},
		{"trigger mapping on a resource action", map[string]any{"actionType": "TRIGGER_ACTION_TYPE_USERS_DELETE", "mapping": map[string]any{"recipients": "userId"}}, []string{"mapping"}},
		{"action mapping on a workflow action", map[string]any{"workflowKey": "new-comment", "actionMapping": map[string]any{"id": "userId"}}, []string{"actionMapping.id"}},
		{"cancel without a key", map[string]any{"actionType": "TRIGGER_ACTION_TYPE_WORKFLOWS_CANCEL", "workflowKey": "new-comment"}, []string{"mapping.cancellationKey"}},
		{"frequency on a cancel", map[string]any{"actionType": "TRIGGER_ACTION_TYPE_WORKFLOWS_CANCEL", "workflowKey": "new-comment", "mapping": map[string]any{"cancellationKey": "messageId"}, "frequency": "TRIGGER_FREQUENCY_ONCE_PER_RECIPIENT"}, []string{"frequency"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			body := map[string]any{"sourceId": f.src.GetId(), "event": "Checks"}
			for k, v := range c.body {
				body[k] = v
			}
			r := f.h.rest(t, http.MethodPost, "/v1/environments/development/triggers", trgJSON(t, body))
			wantStatus(t, r, http.StatusBadRequest)
			if _, _, fields := trgRESTError(t, r); !slices.Equal(fields, c.fields) {
				t.Errorf("violations = %q, want %q (body %s)", fields, c.fields, r.body)
			}
		})
	}
	if ts := f.listTriggers(t, dev, nil); len(ts) != 0 {
		t.Errorf("refused triggers were stored: %v", trgTriggerIDs(ts))
	}
}

// Segment's group sets the tenant groupId with its traits and delete
// deletes the user with their subscriptions, each behind its toggle; alias
// is logged as skipped.
func TestActionsSegmentDefaults(t *testing.T) {
	t.Parallel()
	f := trgStart(t)
	const dev = "development"
	srcEnv := "/v1/sources/" + f.src.GetId() + "/environments/development"
	group := map[string]any{"type": "group", "userId": "u2", "groupId": "acme", "traits": map[string]any{"name": "Acme Inc", "plan": "enterprise"}}

	// Group: off by default, logged as skipped.
	ev := f.event(t, dev, f.post(t, dev, group)[0])
	if a := ev.GetActions(); len(a) != 1 || a[0].GetType() != harkv1.ActionType_ACTION_TYPE_SET_TENANT || a[0].GetStatus() != trgSkipped || a[0].GetReason() != "group handling is off" {
		t.Fatalf("group with the toggle off: actions %v, want one skipped SET_TENANT", a)
	}
	f.get(t, "/v1/environments/development/tenants/acme", http.StatusNotFound)
	se := decode(t, f.h.rest(t, http.MethodPatch, srcEnv, `{"groupEnabled":true}`), &harkv1.SourceEnvironment{})
	if !se.GetGroupEnabled() {
		t.Fatalf("source environment = %v, want groupEnabled", se)
	}
	ev = f.event(t, dev, f.post(t, dev, group)[0])
	if a := ev.GetActions(); len(a) != 1 || a[0].GetStatus() != trgSuccess || a[0].GetTenantId() != "acme" {
		t.Fatalf("group with the toggle on: actions %v, want SET_TENANT acme SUCCESS", a)
	}
	ten := decode(t, f.get(t, "/v1/environments/development/tenants/acme", http.StatusOK), &harkv1.Tenant{})
	if ten.GetName() != "Acme Inc" || ten.GetProperties().GetFields()["plan"].GetStringValue() != "enterprise" {
		t.Errorf("tenant = %v, want the group's traits", ten)
	}

	// Delete: on by default when identify is on; the subscriptions go too.
	wantStatus(t, f.h.rest(t, http.MethodPut, "/v1/environments/development/objects/projects/p1", `{}`), http.StatusOK)
	wantStatus(t, f.h.rest(t, http.MethodPost, "/v1/environments/development/objects/projects/p1/subscriptions", `{"recipients":["u2","actor1"]}`), http.StatusOK)
	ev = f.event(t, dev, f.post(t, dev, map[string]any{"type": "delete", "userId": "u2"})[0])
	if a := ev.GetActions(); len(a) != 1 || a[0].GetType() != harkv1.ActionType_ACTION_TYPE_DELETE_USER || a[0].GetStatus() != trgSuccess {
		t.Fatalf("delete: actions %v, want DELETE_USER SUCCESS", a)
	}
	if f.userExists(t, dev, "u2") {
		t.Error("u2 still exists after Segment's delete")
	}
	subs := decode(t, f.get(t, "/v1/environments/development/objects/projects/p1/subscriptions", http.StatusOK), &harkv1.ListSubscriptionsResponse{})
	if len(subs.GetSubscriptions()) != 1 || subs.GetSubscriptions()[0].GetRecipient() != "actor1" {
		t.Errorf("subscriptions after deleting u2 = %v, want only actor1's", subs.GetSubscriptions())
	}
	// Turned off, a delete is logged and the user stays.
	wantStatus(t, f.h.rest(t, http.MethodPatch, srcEnv, `{"deleteEnabled":false}`), http.StatusOK)
	ev = f.event(t, dev, f.post(t, dev, map[string]any{"type": "delete", "userId": "actor1"})[0])
	if a := ev.GetActions(); len(a) != 1 || a[0].GetStatus() != trgSkipped || a[0].GetReason() != "delete handling is off" {
		t.Fatalf("delete with the toggle off: actions %v, want skipped", a)
	}
	if !f.userExists(t, dev, "actor1") {
		t.Error("actor1 was deleted with delete handling off")
	}

	// Alias: logged, no merge.
	ev = f.event(t, dev, f.post(t, dev, map[string]any{"type": "alias", "userId": "actor1", "previousId": "anon-1"})[0])
	if a := ev.GetActions(); len(a) != 1 || a[0].GetType() != harkv1.ActionType_ACTION_TYPE_ALIAS_USER || a[0].GetStatus() != trgSkipped || a[0].GetReason() != "hark does not merge users" {
		t.Fatalf("alias: actions %v, want one skipped ALIAS_USER", a)
	}
}

// The delete toggle follows identify until it is set.
func TestActionsDeleteFollowsIdentify(t *testing.T) {
	t.Parallel()
	f := trgStart(t)
	f.setIdentify(t, "development", false)
	ev := f.event(t, "development", f.post(t, "development", map[string]any{"type": "delete", "userId": "u2"})[0])
	if a := ev.GetActions(); len(a) != 1 || a[0].GetStatus() != trgSkipped || a[0].GetReason() != "delete handling is off" {
		t.Fatalf("delete with identify off: actions %v, want skipped", a)
	}
	if !f.userExists(t, "development", "u2") {
		t.Error("u2 was deleted with identify (and so delete) handling off")
	}
}

// workflows_cancel cancels the active runs with the mapped key in the
// ingest commit, even a run started earlier in the same batch.
func TestActionsWorkflowsCancel(t *testing.T) {
	t.Parallel()
	f := trgStart(t)
	const dev = "development"
	start := f.createTrigger(t, dev, map[string]any{"event": "Comment Created", "mapping": map[string]any{"recipients": `"u2"`, "cancellationKey": `properties.comment`}})
	cancel := f.createTrigger(t, dev, map[string]any{"event": "Comment Deleted", "actionType": "TRIGGER_ACTION_TYPE_WORKFLOWS_CANCEL",
		"mapping": map[string]any{"cancellationKey": `properties.comment`}})
	ids := f.post(t, dev,
		map[string]any{"type": "track", "event": "Comment Created", "userId": "actor1", "properties": map[string]any{"comment": "c1"}},
		map[string]any{"type": "track", "event": "Comment Created", "userId": "actor1", "properties": map[string]any{"comment": "c2"}},
		map[string]any{"type": "track", "event": "Comment Deleted", "userId": "actor1", "properties": map[string]any{"comment": "c1"}},
	)
	c1 := f.action(t, dev, ids[0], start.GetId()).GetWorkflowRunId()
	c2 := f.action(t, dev, ids[1], start.GetId()).GetWorkflowRunId()
	ev := f.event(t, dev, ids[2])
	if a := ev.GetActions(); len(a) != 1 || a[0].GetType() != harkv1.ActionType_ACTION_TYPE_CANCEL_WORKFLOW || a[0].GetStatus() != trgSuccess ||
		a[0].GetTriggerId() != cancel.GetId() || !slices.Equal(a[0].GetCancelledWorkflowRunIds(), []string{c1}) {
		t.Fatalf("cancel actions = %v, want CANCEL_WORKFLOW of %s", a, c1)
	}
	if r := f.run(t, dev, c1); r.GetStatus() != trgCancelled {
		t.Errorf("run c1 = %v, want cancelled", r.GetStatus())
	}
	if r := f.run(t, dev, c2); r.GetStatus() != trgActive {
		t.Errorf("run c2 = %v, want active", r.GetStatus())
	}
	// Nothing left to cancel: skipped with the reason.
	id := f.track(t, dev, "Comment Deleted", "actor1", map[string]any{"comment": "c1"})
	if a := f.event(t, dev, id).GetActions(); len(a) != 1 || a[0].GetStatus() != trgSkipped {
		t.Errorf("second cancel = %v, want skipped", a)
	}

	// With recipients, the action stops the run for those only, as
	// CancelWorkflow does: the run stays active for the other recipient
	// until a second cancel names it too.
	f.createTrigger(t, dev, map[string]any{"event": "Thread Created", "mapping": map[string]any{"recipients": `properties.to`, "cancellationKey": `properties.thread`}})
	f.createTrigger(t, dev, map[string]any{"event": "Thread Muted", "actionType": "TRIGGER_ACTION_TYPE_WORKFLOWS_CANCEL",
		"mapping": map[string]any{"cancellationKey": `properties.thread`, "recipients": `[properties.who]`}})
	thread := f.track(t, dev, "Thread Created", "actor1", map[string]any{"thread": "t1", "to": []any{"u2", "actor1"}})
	runID := f.event(t, dev, thread).GetActions()[0].GetWorkflowRunId()
	muted := f.track(t, dev, "Thread Muted", "actor1", map[string]any{"thread": "t1", "who": "u2"})
	if a := f.event(t, dev, muted).GetActions(); len(a) != 1 || a[0].GetStatus() != trgSuccess || !slices.Equal(a[0].GetCancelledWorkflowRunIds(), []string{runID}) {
		t.Fatalf("cancel for u2 = %v, want run %s", a, runID)
	}
	run := f.run(t, dev, runID)
	states := map[string]harkv1.WorkflowRunStatus{}
	for _, st := range run.GetRecipientStates() {
		states[st.GetId()] = st.GetStatus()
	}
	if run.GetStatus() != trgActive || states["u2"] != trgCancelled || states["actor1"] != trgActive {
		t.Fatalf("after cancelling u2: run %v with recipients %v, want active with u2 cancelled and actor1 active", run.GetStatus(), states)
	}
	f.track(t, dev, "Thread Muted", "actor1", map[string]any{"thread": "t1", "who": "actor1"})
	if r := f.run(t, dev, runID); r.GetStatus() != trgCancelled {
		t.Fatalf("after cancelling both recipients: run %v, want cancelled", r.GetStatus())
	}
}

// Trigger frequency: once per recipient skips recipients already
// triggered, with the reason; per tenant counts each tenant apart.
func TestActionsTriggerFrequency(t *testing.T) {
	t.Parallel()
	f := trgStart(t)
	const dev = "development"
	once := f.createTrigger(t, dev, map[string]any{"event": "Welcome", "frequency": "TRIGGER_FREQUENCY_ONCE_PER_RECIPIENT",
		"mapping": map[string]any{"recipients": `properties.to`}})
	perTenant := f.createTrigger(t, dev, map[string]any{"event": "Welcome", "frequency": "TRIGGER_FREQUENCY_ONCE_PER_RECIPIENT_PER_TENANT",
		"mapping": map[string]any{"recipients": `properties.to`, "tenant": `properties.tenant`}})
	every := f.createTrigger(t, dev, map[string]any{"event": "Welcome", "mapping": map[string]any{"recipients": `properties.to`}})

	first := f.track(t, dev, "Welcome", "actor1", map[string]any{"to": []any{"u2"}, "tenant": "t1"})
	trgWantAction(t, f.action(t, dev, first, once.GetId()), trgSuccess, "")
	trgWantAction(t, f.action(t, dev, first, perTenant.GetId()), trgSuccess, "")

	second := f.track(t, dev, "Welcome", "actor1", map[string]any{"to": []any{"u2", "actor1"}, "tenant": "t2"})
	a := f.action(t, dev, second, once.GetId())
	trgWantAction(t, a, trgSuccess, "")
	run := f.run(t, dev, a.GetWorkflowRunId())
	if !slices.Equal(run.GetRecipients(), []string{"actor1"}) || len(run.GetSkippedRecipients()) != 1 ||
		run.GetSkippedRecipients()[0].GetId() != "u2" || !strings.Contains(run.GetSkippedRecipients()[0].GetReason(), "already triggered") {
		t.Errorf("once-per-recipient run = %v, want actor1 with u2 skipped as already triggered", run)
	}
	if a := f.action(t, dev, second, perTenant.GetId()); a.GetStatus() != trgSuccess || len(f.run(t, dev, a.GetWorkflowRunId()).GetRecipients()) != 2 {
		t.Errorf("per-tenant action in a new tenant = %v, want a run for both", a)
	}

	third := f.track(t, dev, "Welcome", "actor1", map[string]any{"to": []any{"u2", "actor1"}, "tenant": "t2"})
	trgWantAction(t, f.action(t, dev, third, once.GetId()), trgSkipped, "every recipient was already triggered")
	trgWantAction(t, f.action(t, dev, third, perTenant.GetId()), trgSkipped, "every recipient was already triggered")
	trgWantAction(t, f.action(t, dev, third, every.GetId()), trgSuccess, "")
}

// TestTrigger dry-runs any action type: it returns the mapped values and
// writes nothing.
func TestActionsTestTrigger(t *testing.T) {
	t.Parallel()
	f := trgStart(t)
	body := trgJSON(t, map[string]any{
		"trigger": map[string]any{"sourceId": f.src.GetId(), "event": "Dry", "actionType": "TRIGGER_ACTION_TYPE_OBJECTS_SET",
			"actionMapping": map[string]any{"collection": `"projects"`, "id": `properties.project`, "properties": `{"title": properties.title}`}},
		"event": map[string]any{"type": "track", "event": "Dry", "userId": "u2", "properties": map[string]any{"project": "p9", "title": "Nine"}},
	})
	r := f.h.rest(t, http.MethodPost, "/v1/environments/development/triggers:test", body)
	wantStatus(t, r, http.StatusOK)
	res := decode(t, r, &harkv1.TestTriggerResponse{})
	vals := res.GetActionValues().GetFields()
	if res.GetStatus() != trgSuccess || res.GetActionType() != harkv1.TriggerActionType_TRIGGER_ACTION_TYPE_OBJECTS_SET ||
		vals["collection"].GetStringValue() != "projects" || vals["id"].GetStringValue() != "p9" ||
		vals["properties"].GetStructValue().GetFields()["title"].GetStringValue() != "Nine" {
		t.Fatalf("TestTrigger = %v, want objects_set of projects/p9 with its title", res)
	}
	f.get(t, "/v1/environments/development/objects/projects/p9", http.StatusNotFound)

	// A wrong shape shows as the action would log it.
	body = strings.Replace(body, `properties.project`, `properties.title == \"Nine\"`, 1)
	res = decode(t, f.h.rest(t, http.MethodPost, "/v1/environments/development/triggers:test", body), &harkv1.TestTriggerResponse{})
	if res.GetStatus() != trgError || res.GetReason() != "actionMapping.id: must be a string, not a boolean" {
		t.Errorf("TestTrigger of a wrong shape = %v, want the ERROR naming actionMapping.id", res)
	}
}

// Action triggers over Connect and gRPC: created over Connect, dry-run over
// gRPC, and an inline tenant object in a workflow trigger is set before
// its run.
func TestActionsOverConnectAndGRPC(t *testing.T) {
	t.Parallel()
	f := trgStart(t)
	ctx := context.Background()
	created, err := f.triggerClient().CreateTrigger(ctx, connect.NewRequest(&harkv1.CreateTriggerRequest{
		Environment: "development", SourceId: f.src.GetId(), Event: "Joined Team",
		ActionType:    harkv1.TriggerActionType_TRIGGER_ACTION_TYPE_AUDIENCES_ADD_MEMBER,
		ActionMapping: &harkv1.ActionMapping{AudienceKey: `"team-" + properties.team`, Tenant: `properties.account`},
	}))
	if err != nil {
		t.Fatalf("CreateTrigger over Connect: %v", err)
	}
	tr := created.Msg.GetTrigger()
	if tr.GetActionType() != harkv1.TriggerActionType_TRIGGER_ACTION_TYPE_AUDIENCES_ADD_MEMBER || tr.GetActionMapping().GetTenant() != "properties.account" {
		t.Fatalf("created %v", tr)
	}
	event, err := structpb.NewStruct(map[string]any{"type": "track", "event": "Joined Team", "userId": "u2", "properties": map[string]any{"team": "red", "account": "acme"}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := harkv1.NewTriggerServiceClient(f.h.grpcConn(t)).TestTrigger(grpcCtx(t, f.h.admin()),
		&harkv1.TestTriggerRequest{Environment: "development", TriggerId: tr.GetId(), Event: event})
	if err != nil {
		t.Fatalf("TestTrigger over gRPC: %v", err)
	}
	vals := res.GetActionValues().GetFields()
	if res.GetStatus() != trgSuccess || vals["audienceKey"].GetStringValue() != "team-red" || vals["users"].GetStringValue() != "u2" || vals["tenant"].GetStringValue() != "acme" {
		t.Fatalf("TestTrigger = %v, want team-red, u2 (the default userId), acme", res)
	}

	evID := f.track(t, "development", "Joined Team", "u2", map[string]any{"team": "red", "account": "acme"})
	a := f.event(t, "development", evID).GetActions()
	if len(a) != 1 || a[0].GetType() != harkv1.ActionType_ACTION_TYPE_ADD_AUDIENCE_MEMBER || a[0].GetStatus() != trgSuccess || a[0].GetAudienceKey() != "team-red" {
		t.Fatalf("actions = %v, want ADD_AUDIENCE_MEMBER team-red", a)
	}
	members := decodeMap(t, f.get(t, "/v1/environments/development/audiences/team-red/members", http.StatusOK))
	if got := trgJSON(t, members["members"]); !strings.Contains(got, `"userId":"u2"`) || !strings.Contains(got, `"tenant":"acme"`) {
		t.Errorf("members = %s, want u2 in acme", got)
	}

	inline := f.createTrigger(t, "development", map[string]any{"event": "Upgraded", "mapping": map[string]any{
		"recipients": `"u2"`, "tenant": `{"id": properties.account, "name": "Acme", "tier": 2}`,
	}})
	a2 := f.action(t, "development", f.track(t, "development", "Upgraded", "u2", map[string]any{"account": "acme"}), inline.GetId())
	trgWantAction(t, a2, trgSuccess, "")
	if run := f.run(t, "development", a2.GetWorkflowRunId()); run.GetTenant() != "acme" {
		t.Errorf("run tenant = %q, want acme", run.GetTenant())
	}
	ten := decode(t, f.get(t, "/v1/environments/development/tenants/acme", http.StatusOK), &harkv1.Tenant{})
	if ten.GetName() != "Acme" || ten.GetProperties().GetFields()["tier"].GetNumberValue() != 2 {
		t.Errorf("tenant = %v, want the inline tenant set", ten)
	}
}
