package main

import (
	"encoding/json"
	"testing"
)

// TestCLIEventHeaders: `hark events get` shows the request headers logged
// with an event (secrets redacted), and `hark triggers test --event-id`
// dry-runs a header mapping against them, --header laid over.
func TestCLIEventHeaders(t *testing.T) {
	t.Parallel()
	s := startCLIServer(t)
	env := s.env
	var src jsonSource
	harkJSON(t, env, &src, "sources", "create", "--type", "segment", "--name", "X")
	mustHark(t, env, "sources", "settings", src.ID, "--env", "development", "--set", "shared_secret=s3cret")
	mustHark(t, env, "workflows", "create", "welcome")
	file := writeFile(t, "e.json", `{"type":"track","event":"Signed Up","userId":"u1"}`)
	mustHark(t, env, "send", "--env", "development", "--source", src.ID, "--secret", "s3cret", file)
	var events struct {
		SourceEvents []jsonEvent `json:"sourceEvents"`
	}
	harkJSON(t, env, &events, "events", "list", "--env", "development")
	if len(events.SourceEvents) != 1 {
		t.Fatalf("events list = %+v, want the one event sent", events.SourceEvents)
	}
	id := events.SourceEvents[0].ID
	out := mustHark(t, env, "events", "get", id, "--env", "development")
	wantContains(t, "events get", out, "Headers:", "user-agent: hark-cli", "content-type: application/json", "x-signature: [redacted]")

	out = mustHark(t, env, "triggers", "test", "--env", "development", "--workflow", "welcome", "--source", src.ID,
		"--event", "Signed Up", "--data", `{"agent": headers["user-agent"], "sig": headers["x-signature"], "extra": headers["x-extra"]}`,
		"--event-id", id, "--header", "X-Extra=given", "-o", "json")
	var res struct {
		SourceEventID string                     `json:"sourceEventId"`
		Data          map[string]json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("triggers test -o json: %v\n%s", err, out)
	}
	if res.SourceEventID != id || string(res.Data["agent"]) != `"hark-cli"` || string(res.Data["sig"]) != `"[redacted]"` || string(res.Data["extra"]) != `"given"` {
		t.Fatalf("triggers test --event-id = %s, want the logged user-agent, the redacted signature and the given x-extra", out)
	}
}
