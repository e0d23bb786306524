package server_test

import (
	"fmt"
	"net/http"
	"testing"
)

// TestDeleteSourceDropsTriggers checks that deleting a source deletes its
// triggers in every environment, and only its own.
func TestDeleteSourceDropsTriggers(t *testing.T) {
	t.Parallel()
	h := startServer(t)
	gone, kept := h.createSource(t, "gone"), h.createSource(t, "kept")
	wantStatus(t, h.rest(t, http.MethodPost, "/v1/workflows", `{"key":"wf-delete"}`), http.StatusOK)
	for _, env := range []string{"development", "production"} {
		for _, src := range []string{gone.GetId(), kept.GetId()} {
			wantStatus(t, h.rest(t, http.MethodPost, "/v1/environments/"+env+"/triggers",
				fmt.Sprintf(`{"workflowKey":"wf-delete","sourceId":%q,"event":"E"}`, src)), http.StatusOK)
		}
	}
	wantStatus(t, h.rest(t, http.MethodDelete, "/v1/sources/"+gone.GetId(), ""), http.StatusOK)
	for _, env := range []string{"development", "production"} {
		list := decodeMap(t, h.rest(t, http.MethodGet, "/v1/environments/"+env+"/triggers", ""))["triggers"].([]any)
		if len(list) != 1 || list[0].(map[string]any)["sourceId"] != kept.GetId() {
			t.Fatalf("%s triggers after deleting a source = %v, want only the kept source's", env, list)
		}
	}
	// The kept source's trigger still runs (the registry kept it).
	wantStatus(t, h.rest(t, http.MethodPut, "/v1/environments/development/users/u1", `{}`), http.StatusOK)
	res := h.mustDeliver(t, devURL(t, kept), []byte(`{"type":"track","event":"E","userId":"u1"}`), 1)
	ev := h.getEvent(t, "development", res.GetEvents()[0].GetId())
	if len(ev.GetActions()) != 1 || ev.GetActions()[0].GetWorkflowRunId() == "" {
		t.Fatalf("actions = %v, want one run from the kept trigger", ev.GetActions())
	}
}
