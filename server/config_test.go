package server_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"

	harkv1 "github.com/harkhq/hark/gen/hark/v1"
	"github.com/harkhq/hark/gen/hark/v1/harkv1connect"
)

func (h *harness) configService() harkv1connect.ConfigServiceClient {
	return harkv1connect.NewConfigServiceClient(h.http, h.base, h.opts()...)
}

func cfgTrigger(event, workflow, condition string) *harkv1.ConfigTrigger {
	return &harkv1.ConfigTrigger{Source: "Shop", Event: event, WorkflowKey: workflow, Condition: condition,
		Mapping: &harkv1.TriggerMapping{Recipients: `{"id": userId}`}}
}

func cfgKinds(changes []*harkv1.ConfigChange) []string {
	out := make([]string, len(changes))
	for i, c := range changes {
		out[i] = c.GetAction().String() + " " + c.GetKind() + " " + c.GetName()
	}
	return out
}

// TestConfigService is ConfigService over Connect, gRPC and REST: a
// document whose middle item fails changes nothing (not even the items
// before it); plan writes nothing; apply writes everything in one go and the
// new triggers fire at once; a second apply is a no-op; prune within `only`
// deletes, and the deleted triggers stop firing.
func TestConfigService(t *testing.T) {
	t.Parallel()
	h := startServer(t)
	src := h.createSource(t, "Shop")
	mustCall(t, h.workflows().CreateWorkflow, &harkv1.CreateWorkflowRequest{Key: "welcome"})
	ingestURL := envByName(t, src, "development").GetIngestUrl()

	doc := &harkv1.ConfigDocument{
		ApiVersion: "hark/v1",
		Workflows:  []*harkv1.ConfigWorkflow{{Key: "fresh", Name: "Fresh"}},
		Triggers: []*harkv1.ConfigTrigger{
			cfgTrigger("A", "welcome", ""),
			cfgTrigger("B", "fresh", "properties.plan =="),
			cfgTrigger("C", "welcome", `properties.plan == "pro"`),
		},
	}
	_, err := call(t, h.configService().ApplyConfig, &harkv1.ApplyConfigRequest{Environment: "development", Document: doc})
	wantCode(t, err, connect.CodeInvalidArgument)
	if x := trgConnectExpressionError(t, err); x.GetField() != "triggers[1].condition" || x.GetLine() != 1 || x.GetColumn() != 18 {
		t.Fatalf("expression error %v, want triggers[1].condition at 1:18", x)
	}
	exported := mustCall(t, h.configService().ExportConfig, &harkv1.ExportConfigRequest{Environment: "development"}).GetDocument()
	if len(exported.GetTriggers()) != 0 || len(exported.GetWorkflows()) != 1 {
		t.Fatalf("after a failed apply: %v, want only the workflow welcome and no triggers", exported)
	}
	_, err = call(t, h.workflows().GetWorkflow, &harkv1.GetWorkflowRequest{Key: "fresh"})
	wantCode(t, err, connect.CodeNotFound)

	// Violations name the document's fields, all at once.
	bad := &harkv1.ConfigDocument{ApiVersion: "hark/v1", Triggers: []*harkv1.ConfigTrigger{
		cfgTrigger("A", "nope", ""), {Source: "Nobody", Event: "X", WorkflowKey: "welcome"}, {Source: "Shop", WorkflowKey: "welcome"},
	}}
	_, err = call(t, h.configService().PlanConfig, &harkv1.PlanConfigRequest{Environment: "development", Document: bad})
	wantCode(t, err, connect.CodeInvalidArgument)
	fields := connectViolations(t, err)
	for _, f := range []string{"triggers[0].workflowKey", "triggers[1].source", "triggers[2].event"} {
		wantViolation(t, fields, f)
	}

	// Plan over REST: the changes, nothing written.
	doc.Triggers[1].Condition = ""
	body, err := protojson.Marshal(&harkv1.PlanConfigRequest{Document: doc})
	if err != nil {
		t.Fatal(err)
	}
	r := h.rest(t, http.MethodPost, "/v1/environments/development/config:plan", string(body))
	wantStatus(t, r, http.StatusOK)
	plan := decode(t, r, &harkv1.PlanConfigResponse{})
	want := []string{
		`CONFIG_CHANGE_ACTION_CREATE workflow fresh`,
		`CONFIG_CHANGE_ACTION_CREATE trigger Shop track "A" → welcome`,
		`CONFIG_CHANGE_ACTION_CREATE trigger Shop track "B" → fresh`,
		`CONFIG_CHANGE_ACTION_CREATE trigger Shop track "C" → welcome`,
	}
	if got := cfgKinds(plan.GetChanges()); !slices.Equal(got, want) {
		t.Fatalf("plan = %q, want %q", got, want)
	}
	if n := len(mustCall(t, h.configService().ExportConfig, &harkv1.ExportConfigRequest{Environment: "development"}).GetDocument().GetTriggers()); n != 0 {
		t.Fatalf("plan wrote %d triggers", n)
	}

	// Apply over gRPC: what the plan said.
	grpcConfig := harkv1.NewConfigServiceClient(h.grpcConn(t))
	applied, err := grpcConfig.ApplyConfig(grpcCtx(t, h.admin()), &harkv1.ApplyConfigRequest{Environment: "development", Document: doc})
	if err != nil {
		t.Fatalf("gRPC ApplyConfig: %v", err)
	}
	if got := cfgKinds(applied.GetChanges()); !slices.Equal(got, want) {
		t.Fatalf("applied %q, want %q", got, want)
	}
	runs := func() int {
		res := mustCall(t, harkv1connect.NewWorkflowRunServiceClient(h.http, h.base, h.opts()...).ListWorkflowRuns,
			&harkv1.ListWorkflowRunsRequest{Environment: "development", WorkflowKey: "welcome"})
		return len(res.GetWorkflowRuns())
	}
	wantAccepted(t, h.ingest(t, ingestURL, []byte(`{"type":"track","event":"A","userId":"u1","messageId":"m1"}`)))
	if n := runs(); n != 1 {
		t.Fatalf("after an event the applied trigger matches: %d runs, want 1", n)
	}

	// Apply again over REST: no changes.
	r = h.rest(t, http.MethodPost, "/v1/environments/development/config:apply", string(body))
	wantStatus(t, r, http.StatusOK)
	if again := decode(t, r, &harkv1.ApplyConfigResponse{}); len(again.GetChanges()) != 0 {
		t.Fatalf("second apply changed %q", cfgKinds(again.GetChanges()))
	}

	// Prune, managing triggers only: they go, the workflows stay.
	pruned := mustCall(t, h.configService().ApplyConfig, &harkv1.ApplyConfigRequest{
		Environment: "development", Document: &harkv1.ConfigDocument{ApiVersion: "hark/v1"}, Prune: true, Only: []string{"triggers"},
	})
	if len(pruned.GetChanges()) != 3 || pruned.GetChanges()[0].GetAction() != harkv1.ConfigChangeAction_CONFIG_CHANGE_ACTION_DELETE {
		t.Fatalf("prune: %q, want 3 deletions", cfgKinds(pruned.GetChanges()))
	}
	mustCall(t, h.workflows().GetWorkflow, &harkv1.GetWorkflowRequest{Key: "fresh"})
	wantAccepted(t, h.ingest(t, ingestURL, []byte(`{"type":"track","event":"A","userId":"u1","messageId":"m2"}`)))
	if n := runs(); n != 1 {
		t.Fatalf("after prune an event started a run: %d runs, want still 1", n)
	}

	// A section outside `only` is refused, not ignored.
	_, err = call(t, h.configService().PlanConfig, &harkv1.PlanConfigRequest{Environment: "development", Document: doc, Only: []string{"triggers"}})
	wantCode(t, err, connect.CodeInvalidArgument)
	wantViolation(t, connectViolations(t, err), "workflows")
}

// TestConfigServiceErrors: unknown environments are 404 on every RPC; bad
// requests are 400 with field violations.
func TestConfigServiceErrors(t *testing.T) {
	t.Parallel()
	h := startServer(t)
	wantStatus(t, h.rest(t, http.MethodGet, "/v1/environments/nope/config", ""), http.StatusNotFound)
	wantStatus(t, h.rest(t, http.MethodPost, "/v1/environments/nope/config:plan", `{"document":{"apiVersion":"hark/v1"}}`), http.StatusNotFound)
	_, err := call(t, h.configService().ApplyConfig, &harkv1.ApplyConfigRequest{Environment: "nope", Document: &harkv1.ConfigDocument{ApiVersion: "hark/v1"}})
	wantCode(t, err, connect.CodeNotFound)

	r := h.rest(t, http.MethodGet, "/v1/environments/development/config?only=bogus", "")
	wantStatus(t, r, http.StatusBadRequest)
	wantViolation(t, restViolations(t, r), "only[0]")

	r = h.rest(t, http.MethodPost, "/v1/environments/development/config:apply", `{"document":{"apiVersion":"hark/v2","workflows":[{"key":"Bad Key"},{"key":"ok","name":"x"}],"sources":[{"name":"S","type":"nope"}],"destinations":[{"name":"d","type":"webhook","status":"broken"}]}}`)
	wantStatus(t, r, http.StatusBadRequest)
	fields := restViolations(t, r)
	for _, f := range []string{"apiVersion", "workflows[0].key", "sources[0].type", "destinations[0].status"} {
		wantViolation(t, fields, f)
	}
	if _, err := call(t, h.workflows().GetWorkflow, &harkv1.GetWorkflowRequest{Key: "ok"}); connect.CodeOf(err) != connect.CodeNotFound {
		t.Fatalf("a refused apply created workflow ok: %v", err)
	}
}

// TestConfigServiceNewSource: a document may create the source and the
// workflow its trigger names; the new source gets a configuration in every
// environment, the document's settings in the one applied to.
func TestConfigServiceNewSource(t *testing.T) {
	t.Parallel()
	h := startServer(t)
	doc := &harkv1.ConfigDocument{
		ApiVersion: "hark/v1",
		Workflows:  []*harkv1.ConfigWorkflow{{Key: "welcome"}},
		Sources: []*harkv1.ConfigSource{{Name: "New", Type: "segment", IdempotencyEnabled: true, IdempotencyWindow: "7d",
			Settings: map[string]string{"shared_secret": "s3cret"}}},
		Triggers: []*harkv1.ConfigTrigger{{Source: "New", Event: "Signed Up", WorkflowKey: "welcome"}},
		// Paused, and at a name that never resolves: nothing is sent.
		Destinations: []*harkv1.ConfigDestination{{Name: "hook", Type: "webhook", Url: "https://receiver.invalid/hark", Status: "paused"}},
	}
	plan := mustCall(t, h.configService().PlanConfig, &harkv1.PlanConfigRequest{Environment: "production", Document: doc})
	if len(plan.GetChanges()) != 4 || plan.GetChanges()[3].GetSigningSecret() != "" {
		t.Fatalf("plan %v, want 4 changes and no signing secret", plan.GetChanges())
	}
	res := mustCall(t, h.configService().ApplyConfig, &harkv1.ApplyConfigRequest{Environment: "production", Document: doc})
	if len(res.GetChanges()) != 4 {
		t.Fatalf("changes %q, want the workflow, the source, the trigger and the destination", cfgKinds(res.GetChanges()))
	}
	if s := res.GetChanges()[3].GetSigningSecret(); !strings.HasPrefix(s, "whsec_") {
		t.Fatalf("the new webhook destination's signing secret is %q, want it shown once", s)
	}
	for _, f := range res.GetChanges()[1].GetFields() {
		if f.GetField() == "settings.shared_secret" && f.GetAfter() != "(secret)" {
			t.Fatalf("a plan shows a secret: %v", f)
		}
	}
	srcs := mustCall(t, h.sources().ListSources, &harkv1.ListSourcesRequest{}).GetSources()
	if len(srcs) != 1 || len(srcs[0].GetEnvironments()) != 2 {
		t.Fatalf("sources %v, want New with a configuration in both environments", srcs)
	}
	prod, dev := envByName(t, srcs[0], "production"), envByName(t, srcs[0], "development")
	if !prod.GetIdempotencyEnabled() || prod.GetIdempotencyWindow().AsDuration().Hours() != 7*24 || prod.GetPluginSettings()["shared_secret"] != "********" {
		t.Fatalf("production's configuration %v, want the document's", prod)
	}
	if dev.GetIdempotencyEnabled() || len(dev.GetPluginSettings()) != 0 {
		t.Fatalf("development's configuration %v, want the defaults", dev)
	}
	exported := mustCall(t, h.configService().ExportConfig, &harkv1.ExportConfigRequest{Environment: "production"}).GetDocument()
	if s := exported.GetSources()[0]; s.GetSettings()["shared_secret"] != "${NEW_SHARED_SECRET}" || s.GetIdempotencyWindow() != "7d" {
		t.Fatalf("exported source %v", s)
	}
	if d := exported.GetDestinations()[0]; len(d.GetSettings()) != 0 || d.GetStatus() != "paused" {
		t.Fatalf("exported destination %v, want it paused and without its secret", d)
	}
	// Applying the export with the secret resolved changes nothing.
	exported.GetSources()[0].GetSettings()["shared_secret"] = "s3cret"
	if again := mustCall(t, h.configService().PlanConfig, &harkv1.PlanConfigRequest{Environment: "production", Document: exported}); len(again.GetChanges()) != 0 {
		t.Fatalf("plan of the export: %q", cfgKinds(again.GetChanges()))
	}
}

// TestConfigServiceActions is an action trigger and the source's group
// toggle through ConfigService over REST, as an editor's JSON sends them:
// a wrong action type or a mapping field the action does not read is 400
// with the field and writes nothing; a tenants_set trigger applied in
// production fires on the next event there and is exported as it was
// written.
func TestConfigServiceActions(t *testing.T) {
	t.Parallel()
	h := startServer(t)
	src := h.createSource(t, "Shop")
	ingestURL := envByName(t, src, "production").GetIngestUrl()
	const apply = "/v1/environments/production/config:apply"
	for field, trigger := range map[string]string{
		"triggers[0].action":               `{"source":"Shop","event":"Signed Up","action":"tenant_set"}`,
		"triggers[0].actionMapping.users":  `{"source":"Shop","event":"Signed Up","action":"tenants_set","actionMapping":{"id":"userId","users":"userId"}}`,
		"triggers[0].actionMapping.id":     `{"source":"Shop","event":"Signed Up","action":"tenants_delete"}`,
		"triggers[0].workflowKey":          `{"source":"Shop","event":"Signed Up","action":"workflows_cancel","mapping":{"cancellationKey":"userId"}}`,
		"triggers[0].frequency":            `{"source":"Shop","event":"Signed Up","action":"tenants_set","frequency":"once_per_recipient","actionMapping":{"id":"userId"}}`,
		"triggers[0].actionMapping.tenant": `{"source":"Shop","event":"Signed Up","workflowKey":"w","actionMapping":{"tenant":"userId"}}`,
		"sources[0].groupEnabled":          ``,
	} {
		body := `{"document":{"apiVersion":"hark/v1","workflows":[{"key":"w"}],"triggers":[` + trigger + `]}}`
		if trigger == "" {
			// Not a violation: a wrong JSON type is refused by the codec.
			body = `{"document":{"apiVersion":"hark/v1","sources":[{"name":"Shop","groupEnabled":"yes"}]}}`
		}
		r := h.rest(t, http.MethodPost, apply, body)
		wantStatus(t, r, http.StatusBadRequest)
		if trigger != "" {
			wantViolation(t, restViolations(t, r), field)
		}
	}
	if got := mustCall(t, h.configService().ExportConfig, &harkv1.ExportConfigRequest{Environment: "production"}).GetDocument(); len(got.GetTriggers())+len(got.GetWorkflows()) != 0 {
		t.Fatalf("refused documents wrote %v", got)
	}

	doc := `{"document":{"apiVersion":"hark/v1",` +
		`"sources":[{"name":"Shop","groupEnabled":true}],` +
		`"triggers":[{"source":"Shop","event":"Signed Up","action":"tenants_set",` +
		`"actionMapping":{"id":"properties.company.id","properties":"{name: properties.company.name}"}}]}}`
	r := h.rest(t, http.MethodPost, apply, doc)
	wantStatus(t, r, http.StatusOK)
	res := decode(t, r, &harkv1.ApplyConfigResponse{})
	if got := cfgKinds(res.GetChanges()); !slices.Equal(got, []string{"CONFIG_CHANGE_ACTION_UPDATE source Shop",
		`CONFIG_CHANGE_ACTION_CREATE trigger Shop track "Signed Up" → tenants_set`}) {
		t.Fatalf("changes %q", got)
	}
	if se := mustCall(t, h.sources().GetSource, &harkv1.GetSourceRequest{Id: src.GetId()}).GetSource(); !envByName(t, se, "production").GetGroupEnabled() {
		t.Fatalf("production's Shop after apply: %v, want group on", se)
	}
	wantAccepted(t, h.ingest(t, ingestURL, []byte(`{"type":"track","event":"Signed Up","userId":"u1","messageId":"m1",`+
		`"properties":{"company":{"id":"acme","name":"Acme Inc."}}}`)))
	tr := h.rest(t, http.MethodGet, "/v1/environments/production/tenants/acme", "")
	wantStatus(t, tr, http.StatusOK)
	if !strings.Contains(string(tr.body), "Acme Inc.") {
		t.Fatalf("tenant acme = %s, want the mapped name", tr.body)
	}

	exp := h.rest(t, http.MethodGet, "/v1/environments/production/config?only=triggers", "")
	wantStatus(t, exp, http.StatusOK)
	got := decode(t, exp, &harkv1.ExportConfigResponse{}).GetDocument().GetTriggers()
	if len(got) != 1 || got[0].GetAction() != "tenants_set" || got[0].GetActionMapping().GetId() != "properties.company.id" ||
		got[0].GetWorkflowKey() != "" || got[0].GetFrequency() != "" {
		t.Fatalf("exported triggers %v", got)
	}
	if again := mustCall(t, h.configService().PlanConfig, &harkv1.PlanConfigRequest{Environment: "production",
		Document: &harkv1.ConfigDocument{ApiVersion: "hark/v1", Triggers: got}, Only: []string{"triggers"}}); len(again.GetChanges()) != 0 {
		t.Fatalf("plan of the export: %q", cfgKinds(again.GetChanges()))
	}
}
