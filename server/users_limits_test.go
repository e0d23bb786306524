package server_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/harkhq/hark/server"
)

// TestUserPropertyLimits identifies past the limits on a user's properties
// (count and bytes), from a source, the API and an inline recipient: the
// user is left as it was, the identify or trigger action is ERROR with the
// reason, the event is still logged, the API answers 400. Users used to
// grow without bound (12 deliveries made a 32 MB record, each identify of
// it taking ~50 s in the committer every source waits on).
func TestUserPropertyLimits(t *testing.T) {
	t.Parallel()
	h := startServerWith(t, harnessOptions{config: func(c *server.Config) {
		c.MaxUserProperties = 10
		c.MaxUserBytes = 4 << 10
	}})
	f := &trgFixture{h: h, src: h.createSource(t, "Limits")}
	f.setIdentify(t, "development", true)
	f.createWorkflow(t, "new-comment")
	props := func(prefix string, n int) map[string]any {
		m := map[string]any{}
		for i := range n {
			m[fmt.Sprintf("%s%d", prefix, i)] = i
		}
		return m
	}
	identify := func(traits map[string]any) string {
		return f.post(t, "development", map[string]any{"type": "identify", "userId": "u1", "traits": traits})[0]
	}
	identifyAction := func(evID string) (string, string) {
		for _, a := range f.event(t, "development", evID).GetActions() {
			return a.GetStatus().String(), a.GetReason()
		}
		t.Fatalf("event %s has no action", evID)
		return "", ""
	}

	if st, _ := identifyAction(identify(props("a", 8))); st != "ACTION_STATUS_SUCCESS" {
		t.Fatalf("8 properties: %s, want SUCCESS", st)
	}
	st, reason := identifyAction(identify(props("b", 5)))
	if st != "ACTION_STATUS_ERROR" || reason != "the user would have 13 properties; at most 10" {
		t.Fatalf("5 more: %s %q, want ERROR saying 13 of at most 10", st, reason)
	}
	st, reason = identifyAction(identify(map[string]any{"a0": strings.Repeat("x", 5000)}))
	if st != "ACTION_STATUS_ERROR" || !strings.HasPrefix(reason, "the user's properties would take ") || !strings.HasSuffix(reason, "bytes; at most 4096") {
		t.Fatalf("a 5,000-byte value: %s %q, want ERROR about bytes", st, reason)
	}
	if n := len(f.user(t, "development", "u1").GetProperties().GetFields()); n != 8 {
		t.Fatalf("the user has %d properties, want the 8 of the first identify", n)
	}

	// The API: 400 naming properties.
	r := h.rest(t, http.MethodPut, "/v1/environments/development/users/u1", trgJSON(t, map[string]any{"properties": props("c", 3)}))
	wantStatus(t, r, http.StatusBadRequest)
	wantViolation(t, restViolations(t, r), "properties")

	// An inline recipient past the limits: the trigger's action is ERROR,
	// no run starts, and the other inline recipient is not written either.
	trg := f.createTrigger(t, "development", map[string]any{"event": "Invite", "mapping": map[string]any{
		"recipients": `[{"id": "fresh"}, {"id": "u1", "more": properties.more}]`,
	}})
	ev := f.track(t, "development", "Invite", "u1", map[string]any{"more": strings.Repeat("y", 5000)})
	a := f.action(t, "development", ev, trg.GetId())
	if a.GetStatus().String() != "ACTION_STATUS_ERROR" || a.GetWorkflowRunId() != "" || !strings.Contains(a.GetReason(), `user "u1": the user's properties would take`) {
		t.Fatalf("trigger action = %v, want ERROR about u1's properties and no run", a)
	}
	if f.userExists(t, "development", "fresh") {
		t.Fatal("the other inline recipient was written though no run started")
	}
}
