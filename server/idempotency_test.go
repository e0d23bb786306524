package server_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/durationpb"

	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// idempotentSource creates a segment source with idempotencyEnabled (plus
// extra JSON settings, e.g. `"identifyEnabled":true`) in development.
func idempotentSource(t *testing.T, h *harness, name, extra string) *harkv1.Source {
	t.Helper()
	src := h.createSource(t, name)
	settings := `{"idempotencyEnabled":true`
	if extra != "" {
		settings += "," + extra
	}
	se := h.patchSourceEnv(t, src.GetId(), "development", settings+"}")
	if !se.GetIdempotencyEnabled() {
		t.Fatalf("idempotencyEnabled not set: %v", se)
	}
	return src
}

// statuses returns the statuses of a delivery's events.
func statuses(res *harkv1.ReceiveResponse) []harkv1.SourceEventStatus {
	out := make([]harkv1.SourceEventStatus, len(res.GetEvents()))
	for i, ev := range res.GetEvents() {
		out[i] = ev.GetStatus()
	}
	return out
}

// wantDuplicateOf fails unless the logged event id is an IDEMPOTENT
// duplicate of original with no actions.
func wantDuplicateOf(t *testing.T, h *harness, env, id, original string) *harkv1.SourceEvent {
	t.Helper()
	ev := h.getEvent(t, env, id)
	if ev.GetStatus() != statusIdempotent || ev.GetOriginalEventId() != original || len(ev.GetActions()) != 0 {
		t.Fatalf("event %s = status %v, originalEventId %q, actions %v; want IDEMPOTENT, original %s, no actions",
			id, ev.GetStatus(), ev.GetOriginalEventId(), ev.GetActions(), original)
	}
	return ev
}

func TestIdempotency(t *testing.T) {
	t.Parallel()
	h := startServer(t)

	t.Run("same event twice", func(t *testing.T) {
		t.Parallel()
		src := idempotentSource(t, h, "twice", `"identifyEnabled":true`)
		url := devURL(t, src)
		// An identify, so the first delivery has an action and the
		// duplicate visibly has none.
		first := h.deliverOne(t, url, []byte(`{"type":"identify","userId":"dup-user","messageId":"dup-1","traits":{"name":"First"}}`))
		if first.GetStatus() != statusProcessed {
			t.Fatalf("first delivery = %v, want PROCESSED", first)
		}
		ev := h.getEvent(t, "development", first.GetId())
		if len(ev.GetActions()) != 1 || ev.GetActions()[0].GetStatus() != harkv1.ActionStatus_ACTION_STATUS_SUCCESS {
			t.Fatalf("first event actions = %v, want one successful identify", ev.GetActions())
		}
		if ev.GetIdempotencyKey() != "dup-1" {
			t.Fatalf("first event idempotencyKey = %q, want dup-1", ev.GetIdempotencyKey())
		}

		// The retry carries other traits: it must not be executed.
		second := h.deliverOne(t, url, []byte(`{"type":"identify","userId":"dup-user","messageId":"dup-1","traits":{"name":"Second"}}`))
		if second.GetStatus() != statusIdempotent || second.GetId() == first.GetId() {
			t.Fatalf("second delivery = %v, want IDEMPOTENT with an id of its own", second)
		}
		dup := wantDuplicateOf(t, h, "development", second.GetId(), first.GetId())
		if dup.GetIdempotencyKey() != "dup-1" {
			t.Errorf("duplicate idempotencyKey = %q, want dup-1", dup.GetIdempotencyKey())
		}
		// On the wire: originalEventId, and no actions.
		r := h.rest(t, http.MethodGet, "/v1/environments/development/events/"+second.GetId(), "")
		wantStatus(t, r, http.StatusOK)
		raw := decodeMap(t, r)
		if raw["originalEventId"] != first.GetId() || raw["status"] != "SOURCE_EVENT_STATUS_IDEMPOTENT" {
			t.Errorf("REST duplicate = %s, want originalEventId %s and status SOURCE_EVENT_STATUS_IDEMPOTENT", r.body, first.GetId())
		}
		if acts, ok := raw["actions"].([]any); ok && len(acts) > 0 {
			t.Errorf("REST duplicate has actions: %s", r.body)
		}
		u := mustCall(t, h.users().GetUser, &harkv1.GetUserRequest{Environment: "development", Id: "dup-user"}).GetUser()
		if u.GetName() != "First" {
			t.Fatalf("user name = %q after the duplicate, want First: a duplicate must not execute", u.GetName())
		}

		// A third delivery links to the original, not to the second.
		third := h.deliverOne(t, url, []byte(`{"type":"identify","userId":"dup-user","messageId":"dup-1","traits":{"name":"Third"}}`))
		if third.GetStatus() != statusIdempotent {
			t.Fatalf("third delivery = %v, want IDEMPOTENT", third)
		}
		wantDuplicateOf(t, h, "development", third.GetId(), first.GetId())
		// Duplicates are logged, and the filter finds them.
		idem := h.listEvents(t, "development", urlValues("sourceId", src.GetId(), "status", "SOURCE_EVENT_STATUS_IDEMPOTENT"))
		if got, want := sortedStrings(eventIDs(idem)), sortedStrings([]string{second.GetId(), third.GetId()}); !slices.Equal(got, want) {
			t.Fatalf("IDEMPOTENT events = %q, want %q", got, want)
		}
	})

	t.Run("track twice", func(t *testing.T) {
		t.Parallel()
		src := idempotentSource(t, h, "track twice", "")
		body := []byte(`{"type":"track","event":"Paid","userId":"u1","messageId":"pay-1"}`)
		first := h.deliverOne(t, devURL(t, src), body)
		second := h.deliverOne(t, devURL(t, src), body)
		if first.GetStatus() != statusProcessed || second.GetStatus() != statusIdempotent {
			t.Fatalf("statuses = %v then %v, want PROCESSED then IDEMPOTENT", first.GetStatus(), second.GetStatus())
		}
		wantDuplicateOf(t, h, "development", second.GetId(), first.GetId())
	})

	t.Run("concurrent deliveries of one event", func(t *testing.T) {
		t.Parallel()
		src := idempotentSource(t, h, "concurrent", "")
		path := h.ingestPath(t, devURL(t, src))
		body := []byte(`{"type":"track","event":"Clicked","userId":"u1","messageId":"conc-1"}`)
		const n = 50
		ctx := ctxFor(t)
		start := make(chan struct{})
		var wg sync.WaitGroup
		results := make([]*harkv1.ReceiveResponse, n)
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				<-start
				status, res, err := h.postIngest(ctx, path, body)
				if err == nil && status != http.StatusOK {
					err = fmt.Errorf("HTTP %d", status)
				}
				results[i], errs[i] = res, err
			})
		}
		close(start)
		wg.Wait()
		processed := ""
		var duplicates []string
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("delivery %d: %v", i, errs[i])
			}
			if len(results[i].GetEvents()) != 1 {
				t.Fatalf("delivery %d answered %v, want one event", i, results[i])
			}
			re := results[i].GetEvents()[0]
			switch re.GetStatus() {
			case statusProcessed:
				if processed != "" {
					t.Fatalf("two deliveries were PROCESSED: %s and %s", processed, re.GetId())
				}
				processed = re.GetId()
			case statusIdempotent:
				duplicates = append(duplicates, re.GetId())
			default:
				t.Fatalf("delivery %d status = %v, want PROCESSED or IDEMPOTENT", i, re.GetStatus())
			}
		}
		if processed == "" || len(duplicates) != n-1 {
			t.Fatalf("%d deliveries: processed %q and %d duplicates; want exactly one PROCESSED", n, processed, len(duplicates))
		}
		logged := h.sourceEvents(t, "development", src.GetId())
		if len(logged) != n {
			t.Fatalf("the log holds %d events, want %d", len(logged), n)
		}
		for _, ev := range logged {
			if ev.GetId() == processed {
				continue
			}
			if ev.GetStatus() != statusIdempotent || ev.GetOriginalEventId() != processed {
				t.Fatalf("logged %s = %v (original %q), want IDEMPOTENT of %s", ev.GetId(), ev.GetStatus(), ev.GetOriginalEventId(), processed)
			}
		}
	})

	t.Run("same key twice in one batch", func(t *testing.T) {
		t.Parallel()
		src := idempotentSource(t, h, "batch", "")
		body := `{"batch":[
			{"type":"track","event":"A","userId":"u1","messageId":"b-1"},
			{"type":"track","event":"A","userId":"u1","messageId":"b-1"},
			{"type":"track","event":"A","userId":"u1","messageId":"b-2"}
		]}`
		res := h.mustDeliver(t, devURL(t, src), []byte(body), 3)
		if got, want := statuses(res), []harkv1.SourceEventStatus{statusProcessed, statusIdempotent, statusProcessed}; !slices.Equal(got, want) {
			t.Fatalf("statuses = %v, want %v", got, want)
		}
		wantDuplicateOf(t, h, "development", res.GetEvents()[1].GetId(), res.GetEvents()[0].GetId())
		// And across requests: both keys are now known.
		res = h.mustDeliver(t, devURL(t, src), []byte(body), 3)
		if got, want := statuses(res), []harkv1.SourceEventStatus{statusIdempotent, statusIdempotent, statusIdempotent}; !slices.Equal(got, want) {
			t.Fatalf("statuses on redelivery = %v, want %v", got, want)
		}
	})

	t.Run("same key on another event type", func(t *testing.T) {
		t.Parallel()
		src := idempotentSource(t, h, "types", "")
		url := devURL(t, src)
		for _, body := range []string{
			`{"type":"track","event":"A","userId":"u1","messageId":"shared-key"}`,
			`{"type":"identify","userId":"u1","messageId":"shared-key"}`,
			`{"type":"page","name":"Home","userId":"u1","messageId":"shared-key"}`,
			`{"type":"track","event":"Another name","userId":"u1","messageId":"other-key"}`,
		} {
			if re := h.deliverOne(t, url, []byte(body)); re.GetStatus() != statusProcessed {
				t.Fatalf("%s: status %v, want PROCESSED (the key is scoped by event type)", body, re.GetStatus())
			}
		}
		// The key is still deduplicated within its type, whatever the name.
		re := h.deliverOne(t, url, []byte(`{"type":"track","event":"B","userId":"u1","messageId":"shared-key"}`))
		if re.GetStatus() != statusIdempotent {
			t.Fatalf("track with a seen key = %v, want IDEMPOTENT", re.GetStatus())
		}
	})

	t.Run("key is scoped by source and environment", func(t *testing.T) {
		t.Parallel()
		a := idempotentSource(t, h, "scope a", "")
		b := idempotentSource(t, h, "scope b", "")
		h.patchSourceEnv(t, a.GetId(), "production", `{"idempotencyEnabled":true}`)
		body := []byte(`{"type":"track","event":"A","userId":"u1","messageId":"scoped"}`)
		for _, url := range []string{devURL(t, a), devURL(t, b), envByName(t, a, "production").GetIngestUrl()} {
			if re := h.deliverOne(t, url, body); re.GetStatus() != statusProcessed {
				t.Fatalf("first delivery to %s: %v, want PROCESSED", url, re.GetStatus())
			}
		}
		if re := h.deliverOne(t, envByName(t, a, "production").GetIngestUrl(), body); re.GetStatus() != statusIdempotent {
			t.Fatalf("second delivery to production: %v, want IDEMPOTENT", re.GetStatus())
		}
	})

	t.Run("invalid keys", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			name string
			key  string // the messageId's JSON
			why  string // the logged reason
		}{
			{"256 characters", `"` + strings.Repeat("k", 256) + `"`, "the idempotency key has 256 characters; at most 255"},
			{"256 two-byte characters", `"` + strings.Repeat("é", 256) + `"`, "the idempotency key has 256 characters; at most 255"},
			{"number", `12345`, "the idempotency key is a number, not a string"},
			{"empty string", `""`, "the idempotency key is empty"},
			{"object", `{"id":"x"}`, "the idempotency key is an object, not a string"},
			{"boolean", `true`, "the idempotency key is a boolean, not a string"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				src := idempotentSource(t, h, tt.name, "")
				body := []byte(`{"type":"track","event":"Keyed","userId":"u1","messageId":` + tt.key + `}`)
				for i := range 3 {
					re := h.deliverOne(t, devURL(t, src), body)
					if re.GetStatus() != statusProcessed {
						t.Fatalf("delivery %d: %v, want PROCESSED (an invalid key is not deduplicated)", i+1, re)
					}
					r := h.rest(t, http.MethodGet, "/v1/environments/development/events/"+re.GetId(), "")
					wantStatus(t, r, http.StatusOK)
					// Dropped from the log: absent, or empty where the codec
					// writes every field.
					if k, ok := decodeMap(t, r)["idempotencyKey"]; ok && k != "" {
						t.Fatalf("logged with idempotencyKey %v, want none: %s", k, r.body)
					}
					// The original event still shows what was sent.
					logged := decode(t, r, &harkv1.SourceEvent{})
					if _, ok := logged.GetEvent().GetFields()["messageId"]; !ok {
						t.Fatalf("the original event lost its messageId: %s", r.body)
					}
					// And the log says why the key was not used.
					if want := tt.why + "; the event was processed without deduplication"; logged.GetIdempotencyKeyError() != want {
						t.Fatalf("idempotencyKeyError = %q, want %q", logged.GetIdempotencyKeyError(), want)
					}
				}
			})
		}
	})

	t.Run("valid keys at the edges", func(t *testing.T) {
		t.Parallel()
		tests := []struct{ name, key string }{
			{"255 characters", strings.Repeat("k", 255)},
			{"255 two-byte characters", strings.Repeat("é", 255)},
			{"one character", "x"},
			{"unicode and quotes", `I'm "ünïcødé" 🔑`},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				src := idempotentSource(t, h, tt.name, "")
				body := fmt.Appendf(nil, `{"type":"track","event":"Keyed","userId":"u1","messageId":%q}`, tt.key)
				first := h.deliverOne(t, devURL(t, src), body)
				second := h.deliverOne(t, devURL(t, src), body)
				if first.GetStatus() != statusProcessed || second.GetStatus() != statusIdempotent {
					t.Fatalf("statuses = %v then %v, want PROCESSED then IDEMPOTENT", first.GetStatus(), second.GetStatus())
				}
				if got := h.getEvent(t, "development", first.GetId()).GetIdempotencyKey(); got != tt.key {
					t.Fatalf("idempotencyKey = %q, want %q", got, tt.key)
				}
				wantDuplicateOf(t, h, "development", second.GetId(), first.GetId())
			})
		}
	})

	t.Run("no key", func(t *testing.T) {
		t.Parallel()
		src := idempotentSource(t, h, "no key", "")
		for _, body := range []string{
			`{"type":"track","event":"Unkeyed","userId":"u1"}`,
			`{"type":"track","event":"Unkeyed","userId":"u1","messageId":null}`,
		} {
			for i := range 2 {
				if re := h.deliverOne(t, devURL(t, src), []byte(body)); re.GetStatus() != statusProcessed {
					t.Fatalf("%s delivery %d: %v, want PROCESSED", body, i+1, re.GetStatus())
				}
			}
		}
	})

	t.Run("off", func(t *testing.T) {
		t.Parallel()
		src := h.createSource(t, "off") // idempotency is off by default, in every environment
		se := mustCall(t, h.sources().GetSourceEnvironment, &harkv1.GetSourceEnvironmentRequest{SourceId: src.GetId(), Environment: "production"}).GetSourceEnvironment()
		if se.GetIdempotencyEnabled() {
			t.Fatalf("production idempotencyEnabled is on by default")
		}
		body := []byte(`{"type":"track","event":"A","userId":"u1","messageId":"off-1"}`)
		for _, env := range []string{"development", "production"} {
			for i := range 3 {
				if re := h.deliverOne(t, envByName(t, src, env).GetIngestUrl(), body); re.GetStatus() != statusProcessed {
					t.Fatalf("%s delivery %d: %v, want PROCESSED with idempotency off", env, i+1, re.GetStatus())
				}
			}
		}
		// Turned off after being on: duplicates run again.
		on := idempotentSource(t, h, "on then off", "")
		h.deliverOne(t, devURL(t, on), body)
		h.patchSourceEnv(t, on.GetId(), "development", `{"idempotencyEnabled":false}`)
		if re := h.deliverOne(t, devURL(t, on), body); re.GetStatus() != statusProcessed {
			t.Fatalf("after turning idempotency off: %v, want PROCESSED", re.GetStatus())
		}
	})
}

func TestIdempotencyAcrossRestart(t *testing.T) {
	t.Parallel()
	h := startServer(t)
	src := idempotentSource(t, h, "restart", "")
	body := []byte(`{"type":"track","event":"Ordered","userId":"u1","messageId":"restart-1"}`)
	batch := []byte(`[{"type":"identify","userId":"u1","messageId":"restart-2"}]`)
	first := h.deliverOne(t, devURL(t, src), body)
	firstBatch := h.deliverOne(t, devURL(t, src), batch)
	if first.GetStatus() != statusProcessed || firstBatch.GetStatus() != statusProcessed {
		t.Fatalf("before restart: %v, %v; want PROCESSED", first, firstBatch)
	}

	h.restart(t)

	second := h.deliverOne(t, devURL(t, src), body)
	if second.GetStatus() != statusIdempotent {
		t.Fatalf("after restart: %v, want IDEMPOTENT", second)
	}
	wantDuplicateOf(t, h, "development", second.GetId(), first.GetId())
	if re := h.deliverOne(t, devURL(t, src), batch); re.GetStatus() != statusIdempotent {
		t.Fatalf("identify after restart: %v, want IDEMPOTENT", re)
	}
	// The original is still there to link to.
	if ev := h.getEvent(t, "development", first.GetId()); ev.GetStatus() != statusProcessed {
		t.Fatalf("original after restart = %v, want PROCESSED", ev)
	}
	// A new key is processed.
	if re := h.deliverOne(t, devURL(t, src), []byte(`{"type":"track","event":"Ordered","userId":"u1","messageId":"restart-3"}`)); re.GetStatus() != statusProcessed {
		t.Fatalf("new key after restart: %v, want PROCESSED", re)
	}
}

func TestIdempotencyWindowSetting(t *testing.T) {
	t.Parallel()
	h := startServer(t)
	src := h.createSource(t, "window")
	path := "/v1/sources/" + src.GetId() + "/environments/development"
	window := func(t *testing.T) any {
		t.Helper()
		r := h.rest(t, http.MethodGet, path, "")
		wantStatus(t, r, http.StatusOK)
		return decodeMap(t, r)["idempotencyWindow"]
	}

	if got := window(t); got != "86400s" {
		t.Fatalf("default idempotencyWindow = %v, want \"86400s\"", got)
	}
	for _, env := range []string{"development", "production"} {
		se := mustCall(t, h.sources().GetSourceEnvironment, &harkv1.GetSourceEnvironmentRequest{SourceId: src.GetId(), Environment: env}).GetSourceEnvironment()
		if got := se.GetIdempotencyWindow().AsDuration(); got != 24*time.Hour {
			t.Fatalf("%s idempotency window over Connect = %v, want 24h", env, got)
		}
	}

	tests := []struct {
		name, window string
		wantStatus   int
		wantAfter    string
	}{
		{"59 seconds", "59s", http.StatusBadRequest, "86400s"},
		{"just under a minute", "59.999s", http.StatusBadRequest, "86400s"},
		{"negative", "-3600s", http.StatusBadRequest, "86400s"},
		{"30 days and a second", "2592001s", http.StatusBadRequest, "86400s"},
		{"a year", "31536000s", http.StatusBadRequest, "86400s"},
		{"one minute", "60s", http.StatusOK, "60s"},
		{"30 days", "2592000s", http.StatusOK, "2592000s"},
		{"two hours", "7200s", http.StatusOK, "7200s"},
	}
	for _, tt := range tests {
		// Sequential: each case reads the window the previous ones left.
		t.Run(tt.name, func(t *testing.T) {
			h.patchSourceEnv(t, src.GetId(), "development", `{"idempotencyWindow":"86400s"}`)
			r := h.rest(t, http.MethodPatch, path, `{"idempotencyWindow":"`+tt.window+`"}`)
			wantStatus(t, r, tt.wantStatus)
			if tt.wantStatus == http.StatusBadRequest {
				wantViolation(t, restViolations(t, r), "idempotencyWindow")
				// In the units the client writes (and a human reads),
				// not Go's "720h0m0s".
				if want := "must be between 60s and 2592000s (1m to 30d)"; !strings.Contains(string(r.body), want) {
					t.Fatalf("error %s, want it to say %q", r.body, want)
				}
			}
			if got := window(t); got != tt.wantAfter {
				t.Fatalf("idempotencyWindow = %v, want %q", got, tt.wantAfter)
			}
		})
	}

	t.Run("over connect", func(t *testing.T) {
		_, err := call(t, h.sources().UpdateSourceEnvironment, &harkv1.UpdateSourceEnvironmentRequest{
			SourceId: src.GetId(), Environment: "development", IdempotencyWindow: durationpb.New(30 * time.Second),
		})
		wantCode(t, err, connect.CodeInvalidArgument)
		wantViolation(t, connectViolations(t, err), "idempotencyWindow")
		se := mustCall(t, h.sources().UpdateSourceEnvironment, &harkv1.UpdateSourceEnvironmentRequest{
			SourceId: src.GetId(), Environment: "development", IdempotencyWindow: durationpb.New(90 * time.Minute),
		}).GetSourceEnvironment()
		if got := se.GetIdempotencyWindow().AsDuration(); got != 90*time.Minute {
			t.Fatalf("window = %v, want 90m", got)
		}
		// Production keeps its own.
		prod := mustCall(t, h.sources().GetSourceEnvironment, &harkv1.GetSourceEnvironmentRequest{SourceId: src.GetId(), Environment: "production"}).GetSourceEnvironment()
		if got := prod.GetIdempotencyWindow().AsDuration(); got != 24*time.Hour {
			t.Fatalf("production window = %v, want 24h unchanged", got)
		}
	})
}

// TestIdempotencyWindowExpiry moves the server's one clock past the window
// (the engine's and the store's expiry both follow it), so it needs no real
// time to pass.
func TestIdempotencyWindowExpiry(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	h := startServerWith(t, harnessOptions{clock: clock})
	src := idempotentSource(t, h, "expiry", `"idempotencyWindow":"60s"`)
	body := []byte(`{"type":"track","event":"A","userId":"u1","messageId":"expires"}`)
	first := h.deliverOne(t, devURL(t, src), body)
	if first.GetStatus() != statusProcessed {
		t.Fatalf("first: %v, want PROCESSED", first)
	}
	if re := h.deliverOne(t, devURL(t, src), body); re.GetStatus() != statusIdempotent {
		t.Fatalf("within the window: %v, want IDEMPOTENT", re)
	}
	clock.Advance(59 * time.Second)
	if re := h.deliverOne(t, devURL(t, src), body); re.GetStatus() != statusIdempotent {
		t.Fatalf("59 s into the 60 s window: %v, want IDEMPOTENT", re)
	}
	clock.Advance(2 * time.Second)
	re := h.deliverOne(t, devURL(t, src), body)
	if re.GetStatus() != statusProcessed {
		t.Fatalf("after the window: %v, want PROCESSED again", re)
	}
	// And the new execution starts a new window.
	if again := h.deliverOne(t, devURL(t, src), body); again.GetStatus() != statusIdempotent {
		t.Fatalf("right after the new execution: %v, want IDEMPOTENT", again)
	} else {
		wantDuplicateOf(t, h, "development", again.GetId(), re.GetId())
	}
}

// urlValues builds url.Values from name, value pairs.
func urlValues(kv ...string) map[string][]string {
	out := map[string][]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = append(out[kv[i]], kv[i+1])
	}
	return out
}

func sortedStrings(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}
