package server_test

// Browser tests of the console's pages for what issue 16 added (DESIGN §9,
// §11): action mappings in the trigger editor, tenants, objects with their
// subscriptions, audiences' members, runs' per-recipient state, refused
// deliveries in the live log and the logged request headers. The harness
// (newBrowser, b.wait, b.shot, …) is console_test.go's.

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/structpb"

	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// TestConsoleActions: a tenants_set trigger made in the editor (a typo'd
// root refused at its position, the dry run showing the action's values)
// sets the tenant of the next event, which its page shows; objects,
// subscriptions, audience members and tenants are listed and deleted
// (after a confirm) through the API; a run cancelled for one of two
// recipients shows each one's status; the live log shows a refused
// delivery; event detail shows the request headers, secrets redacted.
func TestConsoleActions(t *testing.T) {
	t.Parallel()
	chromium(t)
	h := startServer(t)
	const env = "development"
	src := h.createSource(t, "Web app")
	ingestURL := devURL(t, src)
	mustCall(t, h.workflows().CreateWorkflow, &harkv1.CreateWorkflowRequest{Key: "digest", Name: "Digest"})
	h.identify(t, env, "u1", "u2")
	b := newBrowser(t, h.base)
	b.open("/")
	b.signIn(h.token)
	// yes answers the browser's next "are you sure?" (a page load forgets it).
	yes := func() { b.exec(`window.confirm = () => true`) }

	// An event for the dry run, sent before the trigger exists; its
	// headers are logged, the authorization one redacted.
	first := h.deliverOne(t, ingestURL, []byte(`{"type":"track","event":"Org Created","userId":"u1","properties":{"org":"acme","orgName":"Acme Inc"},"messageId":"m-acme"}`),
		"X-Request-Origin", "console-test", "Authorization", "Bearer sender-secret")

	// The editor: tenants_set hides the workflow picker and shows its
	// mapping fields.
	b.open("/triggers/new?source=" + src.GetId() + "&type=track&name=Org%20Created")
	b.wait("editor", `!!document.querySelector("#trigger-action")`)
	b.fill("#trigger-action", fmt.Sprint(int32(harkv1.TriggerActionType_TRIGGER_ACTION_TYPE_TENANTS_SET)))
	b.wait("tenants_set fields", `!!document.querySelector("#trigger-actionMapping-id") && !document.querySelector("#trigger-workflow") && !document.querySelector("#trigger-mapping-recipients")`)
	// A typo'd root is refused at its position, from the save-time compile.
	b.typeInto("#trigger-actionMapping-id", `propertes.org`)
	b.waitText(`.field-error[data-field="actionMapping.id"]`, "line 1, column 1")
	b.shot("trigger-action-typo")
	b.typeInto("#trigger-actionMapping-id", `data.org`)
	b.typeInto("#trigger-actionMapping-properties", `{"name": data.orgName}`)
	b.wait("typo error gone", `!document.querySelector('.field-error[data-field="actionMapping.id"]')`)
	b.click("#run-test")
	b.waitText("#test-status", "tenants_set would apply")
	b.waitText("#test-panel pre.json", `"id": "acme"`)
	b.waitText("#test-panel pre.json", `"name": "Acme Inc"`)
	if n := countSel(b, "#test-recipients"); n != 0 {
		t.Errorf("the tenants_set dry run shows recipients")
	}
	b.shot("trigger-action-test")
	b.click("#save-trigger")
	b.wait("saved trigger", `location.pathname.startsWith("/triggers/trg_")`)
	triggerID := strings.TrimPrefix(b.path(), "/triggers/")
	trg := mustCall(t, consoleTriggers(h).GetTrigger, &harkv1.GetTriggerRequest{Environment: env, Id: triggerID}).GetTrigger()
	if trg.GetActionType() != harkv1.TriggerActionType_TRIGGER_ACTION_TYPE_TENANTS_SET || trg.GetActionMapping().GetId() != "data.org" ||
		trg.GetActionMapping().GetProperties() != `{"name": data.orgName}` || trg.GetWorkflowKey() != "" {
		t.Fatalf("saved trigger = %v", trg)
	}
	// Reloaded, the editor shows the saved action.
	b.open("/triggers/" + triggerID)
	b.wait("saved action in the editor", `document.querySelector("#trigger-actionMapping-id")?.value === "data.org"`)
	b.nav("/triggers")
	b.waitText(fmt.Sprintf(`#triggers tr[data-id=%q]`, triggerID), "tenants_set")
	b.shot("triggers-actions")

	// The next event sets its tenant, which the tenants page shows.
	globex := h.deliverOne(t, ingestURL, []byte(`{"type":"track","event":"Org Created","userId":"u1","properties":{"org":"globex","orgName":"Globex"},"messageId":"m-globex"}`))
	b.nav("/tenants")
	b.waitText("#tenants", "globex")
	if strings.Contains(b.text("#tenants"), "acme") {
		t.Errorf("the tenants page lists acme, whose event came before the trigger")
	}
	b.shot("tenants")
	b.click(`#tenants tr[data-id="globex"] a`)
	b.wait("tenant page", `location.pathname === "/tenants/globex"`)
	b.waitText("#tenant", "Globex")
	b.shot("tenant")
	// The event's action links to the tenant it set.
	b.open("/events/" + globex.GetId())
	b.waitText(`#actions a[href="/tenants/globex"]`, "globex")
	b.shot("event-detail-tenant-action")

	// Event detail: the request headers, the secret one redacted.
	b.open("/events/" + first.GetId())
	b.waitText("#headers", "x-request-origin")
	b.waitText("#headers", "console-test")
	if txt := b.text("#headers"); strings.Contains(txt, "sender-secret") || !strings.Contains(txt, "authorization") {
		t.Errorf("event headers = %q, want authorization listed and redacted", txt)
	}
	b.shot("event-detail-headers")

	// Objects by collection, with their subscriptions.
	h.setObject(t, env, "projects", "p1", `{"properties":{"name":"Apollo"}}`)
	h.setObject(t, env, "projects", "p2", `{}`)
	mustCall(t, h.objects().AddSubscriptions, &harkv1.AddSubscriptionsRequest{Environment: env, Collection: "projects", Id: "p1", Recipients: []string{"u1", "u2"}})
	b.nav("/objects")
	b.waitText(".empty", "enter one")
	b.typeInto("#collection", "projects")
	b.click(`#collection-form button[type=submit]`)
	b.waitText("#objects", "p2")
	b.shot("objects")
	b.click(`#objects tr[data-id="p1"] a`)
	b.wait("object page", `location.pathname === "/objects/projects/p1"`)
	b.waitText("#object", "Apollo")
	b.waitText("#subscriptions", "u2")
	b.shot("object")
	yes()
	b.click(`#subscriptions tr[data-id="u2"] button.unsubscribe`)
	b.wait("u2 unsubscribed", `!document.querySelector('#subscriptions tr[data-id="u2"]')`)
	if got := h.subscribers(t, env, "projects", "p1"); !slices.Equal(got, []string{"u1"}) {
		t.Fatalf("after unsubscribing u2 in the console, p1's subscribers = %v, want [u1]", got)
	}
	// The user's row lists the objects they are subscribed to.
	b.nav("/users")
	b.click(`#users tr[data-id="u1"]`)
	b.waitText("#user-subscriptions", "projects/p1")
	b.shot("users-subscriptions")
	// Deleting the object goes back to its collection.
	b.open("/objects/projects/p2")
	b.waitText("#object", "p2")
	yes()
	b.click("#delete")
	b.wait("back to the collection", `location.pathname === "/objects" && !!document.querySelector("#objects")`)
	if _, err := call(t, h.objects().GetObject, &harkv1.GetObjectRequest{Environment: env, Collection: "projects", Id: "p2"}); connect.CodeOf(err) != connect.CodeNotFound {
		t.Fatalf("GetObject after the console deleted it: %v, want NotFound", err)
	}

	// An audience's members, one removed.
	mustCall(t, h.audiences().AddAudienceMembers, &harkv1.AddAudienceMembersRequest{Environment: env, Key: "beta", Members: []*harkv1.AudienceMemberRef{{UserId: "u1"}, {UserId: "u2", Tenant: "globex"}}})
	b.nav("/audiences")
	b.waitText(".empty", "audience's key")
	b.waitText("#audience-keys", "beta")
	b.typeInto("#audience-key", "beta")
	b.click(`#audience-form button[type=submit]`)
	b.waitText("#members", "u2")
	b.waitText("#members", "globex")
	b.shot("audiences")
	yes()
	b.click(`#members tr[data-id="u2/globex"] button.remove-member`)
	b.wait("u2 removed", `!document.querySelector('#members tr[data-id="u2/globex"]')`)
	if got := h.members(t, env, "beta"); !slices.Equal(got, []string{"u1@"}) {
		t.Fatalf("after removing u2 in the console, beta's members = %v, want [u1@]", got)
	}

	// Deleting a tenant.
	b.open("/tenants/globex")
	b.waitText("#tenant", "Globex")
	yes()
	b.click("#delete")
	b.wait("back to tenants", `location.pathname === "/tenants"`)
	if _, err := call(t, h.tenants().GetTenant, &harkv1.GetTenantRequest{Environment: env, Id: "globex"}); connect.CodeOf(err) != connect.CodeNotFound {
		t.Fatalf("GetTenant after the console deleted it: %v, want NotFound", err)
	}

	// A run cancelled for one of its two recipients: each one's status.
	run := mustCall(t, h.workflows().TriggerWorkflow, &harkv1.TriggerWorkflowRequest{
		Environment: env, Key: "digest", CancellationKey: "k1",
		Recipients: []*structpb.Value{structpb.NewStringValue("u1"), structpb.NewStringValue("u2")},
	}).GetWorkflowRunId()
	mustCall(t, h.workflows().CancelWorkflow, &harkv1.CancelWorkflowRequest{Environment: env, Key: "digest", CancellationKey: "k1", Recipients: []string{"u2"}})
	b.nav("/runs")
	b.wait("u2 cancelled", fmt.Sprintf(`!!document.querySelector('#runs tr[data-id=%q] .recipient[data-recipient="u2"][data-status="CANCELLED"] .badge')`, run))
	if n := countSel(b, fmt.Sprintf(`#runs tr[data-id=%q] .recipient[data-recipient="u1"] .badge`, run)); n != 0 {
		t.Errorf("u1, still active like the run, has a badge of its own")
	}
	b.click(fmt.Sprintf(`#runs tr[data-id=%q]`, run))
	b.waitText(`#recipient-states [data-recipient="u2"]`, "CancelWorkflow")
	b.waitText(`#recipient-states [data-recipient="u1"]`, "active")
	b.shot("runs-recipients")

	// The live log shows a refused delivery as it is refused.
	b.nav("/events")
	b.waitText("#stream-status", "Live")
	h.deliver(t, ingestURL, []byte(`{"type":"track",`)) // not JSON: 400
	b.waitText("#refused-live", "refused 400")
	b.shot("events-refused")

	// Switching a saved trigger's action saves the new action's fields
	// only: tenants_delete reads no properties.
	b.open("/triggers/" + triggerID)
	b.wait("saved action in the editor", `document.querySelector("#trigger-actionMapping-id")?.value === "data.org"`)
	b.fill("#trigger-action", fmt.Sprint(int32(harkv1.TriggerActionType_TRIGGER_ACTION_TYPE_TENANTS_DELETE)))
	b.wait("tenants_delete fields", `!document.querySelector("#trigger-actionMapping-properties")`)
	b.click("#save-trigger")
	b.waitText("#saved", "Saved")
	trg = mustCall(t, consoleTriggers(h).GetTrigger, &harkv1.GetTriggerRequest{Environment: env, Id: triggerID}).GetTrigger()
	if trg.GetActionType() != harkv1.TriggerActionType_TRIGGER_ACTION_TYPE_TENANTS_DELETE || trg.GetActionMapping().GetId() != "data.org" || trg.GetActionMapping().GetProperties() != "" {
		t.Fatalf("trigger switched to tenants_delete = %v", trg)
	}
	// A workflows_trigger with a frequency.
	b.open("/triggers/new?source=" + src.GetId() + "&type=track&name=Digest%20Requested")
	b.waitText("#trigger-workflow", "Digest")
	b.fill("#trigger-frequency", fmt.Sprint(int32(harkv1.TriggerFrequency_TRIGGER_FREQUENCY_ONCE_PER_RECIPIENT)))
	b.click("#save-trigger")
	b.wait("saved workflow trigger", `location.pathname.startsWith("/triggers/trg_") && location.pathname !== "/triggers/`+triggerID+`"`)
	wfTrigger := mustCall(t, consoleTriggers(h).GetTrigger, &harkv1.GetTriggerRequest{Environment: env, Id: strings.TrimPrefix(b.path(), "/triggers/")}).GetTrigger()
	if wfTrigger.GetWorkflowKey() != "digest" || wfTrigger.GetFrequency() != harkv1.TriggerFrequency_TRIGGER_FREQUENCY_ONCE_PER_RECIPIENT ||
		(wfTrigger.GetActionType() != harkv1.TriggerActionType_TRIGGER_ACTION_TYPE_WORKFLOWS_TRIGGER) {
		t.Fatalf("saved workflows_trigger = %v", wfTrigger)
	}

	// The new pages at a narrow width.
	b.viewport(390, 844)
	for _, p := range []struct{ path, name, ready string }{
		{"/triggers/" + triggerID, "narrow-trigger-action", "#trigger-actionMapping-id"},
		{"/tenants", "narrow-tenants", "#tenants, .empty"},
		{"/objects?collection=projects", "narrow-objects", "#objects"},
		{"/objects/projects/p1", "narrow-object", "#subscriptions"},
		{"/audiences?key=beta", "narrow-audiences", "#members"},
		{"/runs?run=" + run, "narrow-runs-recipients", "#recipient-states"},
		{"/events/" + first.GetId(), "narrow-event-headers", "#headers"},
	} {
		b.open(p.path)
		b.wait(p.path, fmt.Sprintf(`!!document.querySelector(%q)`, p.ready))
		b.shot(p.name)
	}
	b.viewport(1280, 800)
}
