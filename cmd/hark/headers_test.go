package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
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

// TestCLIEventsTailShowsRefusals: a delivery with a wrong signature shows
// in `hark events tail` as it is refused, with its status and reason; with
// -o json as a refusedDelivery line; --refusals=false leaves it out.
func TestCLIEventsTailShowsRefusals(t *testing.T) {
	t.Parallel()
	s := startCLIServer(t)
	env := s.env
	var src jsonSource
	harkJSON(t, env, &src, "sources", "create", "--type", "segment", "--name", "Signed")
	mustHark(t, env, "sources", "settings", src.ID, "--env", "development", "--set", "shared_secret=right")
	file := writeFile(t, "e.json", `{"type":"track","event":"Signed Up","userId":"u1"}`)
	refuse := func() {
		wantFail(t, env, "send", "--env", "development", "--source", src.ID, "--secret", "wrong", file)
	}

	tail := startStream(t, env, "events", "tail", "--env", "development")
	quiet := startStream(t, env, "events", "tail", "--env", "development", "--refusals=false", "-o", "json")
	jsonTail := startStream(t, env, "events", "tail", "--env", "development", "--source", src.ID, "-o", "json")
	// Nothing tells when a tail is live: refuse until both show one.
	var line, jsonLine string
	for i := 0; line == "" || jsonLine == ""; i++ {
		if i == 50 {
			t.Fatalf("events tail showed no refusal after 50 refused deliveries; stderr:\n%s", tail.stderr)
		}
		refuse()
		if line == "" {
			line, _ = tail.waitLine(t, "REFUSED", 200*time.Millisecond)
		}
		if jsonLine == "" {
			jsonLine, _ = jsonTail.waitLine(t, "refusedDelivery", 200*time.Millisecond)
		}
	}
	wantContains(t, "events tail", line, "(refused)", src.ID, "HTTP 401", "X-Signature")
	var m struct {
		RefusedDelivery struct {
			SourceID string `json:"sourceId"`
			Refusal  struct {
				StatusCode int `json:"statusCode"`
			} `json:"refusal"`
		} `json:"refusedDelivery"`
	}
	if err := json.Unmarshal([]byte(jsonLine), &m); err != nil || m.RefusedDelivery.SourceID != src.ID || m.RefusedDelivery.Refusal.StatusCode != 401 {
		t.Fatalf("events tail -o json printed %q (%v), want the refused delivery", jsonLine, err)
	}
	// The quiet tail shows accepted events and none of the refusals sent
	// meanwhile: read it until an accepted event shows.
	var r jsonReceived
	for i := 0; ; i++ {
		if i == 50 {
			t.Fatal("the --refusals=false tail showed no event")
		}
		harkJSON(t, env, &r, "send", "--env", "development", "--source", src.ID, "--secret", "right", file)
		refuse()
		if quietShows(t, quiet, r.Events[0].ID) {
			break
		}
	}
	tail.interrupt(t)
	quiet.interrupt(t)
	jsonTail.interrupt(t)
}

// quietShows reads a tail's lines for up to 200 ms until one holds want,
// failing on any refused delivery.
func quietShows(t *testing.T, h *harkStream, want string) bool {
	t.Helper()
	deadline := time.After(200 * time.Millisecond)
	for {
		select {
		case line, open := <-h.lines:
			if !open {
				t.Fatalf("the tail exited; stderr:\n%s", h.stderr)
			}
			if strings.Contains(line, "refusedDelivery") {
				t.Fatalf("--refusals=false printed %q", line)
			}
			if strings.Contains(line, want) {
				return true
			}
		case <-deadline:
			return false
		}
	}
}
