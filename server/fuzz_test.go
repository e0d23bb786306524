package server_test

// FuzzIngest fuzzes the ingest handler end to end (issue 8, "Fuzzing"): one
// real server per fuzzing process, fuzzed bodies and X-Signature headers
// posted to real webhook URLs, some of them of a source environment with a
// shared secret. Crashers are kept in testdata/fuzz/FuzzIngest.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	harkv1 "github.com/harkhq/hark/gen/hark/v1"
	"github.com/harkhq/hark/server"
)

// fzSecret is the shared secret of the signed sources.
const fzSecret = "fuzz-secret"

// fzServer is a real server for a fuzz target: startServer needs a
// *testing.T, and the server must outlive every input.
type fzServer struct {
	base string
	// publicURL is the base of ingest URLs; it is the listener's address.
	publicURL string
	token     string
	http      *http.Client
	logs      *syncBuffer
}

func fzStartServer(f *testing.F) *fzServer {
	f.Helper()
	s := &fzServer{token: "test_" + rand.Text(), http: &http.Client{Timeout: testTimeout}, logs: &syncBuffer{}}
	ln := listenTB(f)
	s.base = "http://" + ln.Addr().String()
	s.publicURL = s.base
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, server.Config{
		DataDir:        f.TempDir(),
		PublicURL:      s.publicURL,
		AdminToken:     s.token,
		BuiltinPlugins: builtinPlugins(),
		Logger:         slog.New(slog.NewTextHandler(s.logs, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		cancel()
		ln.Close()
		f.Fatalf("server.New: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	f.Cleanup(func() {
		defer cancel()
		sctx, scancel := context.WithTimeout(context.Background(), testTimeout)
		defer scancel()
		if err := srv.Shutdown(sctx); err != nil {
			f.Errorf("Shutdown: %v", err)
		}
		if err := <-done; err != nil {
			f.Errorf("Serve: %v", err)
		}
		if err := srv.Close(); err != nil {
			f.Errorf("Close: %v", err)
		}
		s.http.CloseIdleConnections()
		if f.Failed() {
			f.Logf("server log:\n%s", s.logs)
		}
	})
	return s
}

// listenTB is listen for any test.
func listenTB(tb testing.TB) net.Listener {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen: %v", err)
	}
	return ln
}

// do makes a request and returns the status and body; failures to reach
// the server are fatal.
func (s *fzServer) do(tb testing.TB, method, path string, body []byte, header ...string) (int, []byte) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, s.base+path, bytes.NewReader(body))
	if err != nil {
		tb.Fatalf("new request: %v", err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := s.http.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		tb.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return res.StatusCode, b
}

// admin makes an API call that must answer 200 and decodes it into m.
func (s *fzServer) admin(tb testing.TB, method, path, body string, m proto.Message) {
	tb.Helper()
	status, b := s.do(tb, method, path, []byte(body), "Authorization", "Bearer "+s.token)
	if status != http.StatusOK {
		tb.Fatalf("%s %s: HTTP %d %s", method, path, status, b)
	}
	if err := protojson.Unmarshal(b, m); err != nil {
		tb.Fatalf("%s %s: decode %s: %v", method, path, b, err)
	}
}

// source creates a Segment source, with the shared secret when signed, and
// returns its id and development webhook path.
func (s *fzServer) source(tb testing.TB, signed bool) (id, path string) {
	tb.Helper()
	src := &harkv1.Source{}
	s.admin(tb, http.MethodPost, "/v1/sources", `{"name":"fuzz","type":"segment"}`, src)
	for _, se := range src.GetEnvironments() {
		if se.GetEnvironment() == "development" {
			path = strings.TrimPrefix(se.GetIngestUrl(), s.publicURL)
		}
	}
	if !strings.HasPrefix(path, "/integrations/receive/") {
		tb.Fatalf("source %v has no development webhook on %s", src, s.publicURL)
	}
	if signed {
		s.admin(tb, http.MethodPatch, "/v1/sources/"+src.GetId()+"/environments/development",
			`{"pluginSettings":{"shared_secret":"`+fzSecret+`"}}`, &harkv1.SourceEnvironment{})
	}
	return src.GetId(), path
}

// stored counts a source's logged events in development from its catalog
// of unique events, which counts every logged event once, and returns how
// many unique events there are.
func (s *fzServer) stored(tb testing.TB, sourceID string) (events, types int) {
	tb.Helper()
	res := &harkv1.ListEventTypesResponse{}
	s.admin(tb, http.MethodGet, "/v1/environments/development/sources/"+sourceID+"/event-types?pageSize=1000", "", res)
	if res.GetNextPageToken() != "" {
		tb.Fatalf("more than 1,000 event types: the count would need paging")
	}
	for _, et := range res.GetEventTypes() {
		events += int(et.GetCount())
	}
	return events, len(res.GetEventTypes())
}

// fzSource is a source the fuzz inputs share until its catalog grows large.
type fzSource struct {
	id, path string
	types    int
}

// fzMaxTypes is when a shared source is replaced by a fresh one, so its
// catalog of unique events stays one page.
const fzMaxTypes = 500

// fzEventCount is how many events a delivery holds, read as the Segment
// plugin reads it (same decoder): a bare array, a {"batch":[…]} object, or
// one event. ok is false when the body is not one of these forms.
func fzEventCount(body []byte) (n int, ok bool) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return 0, false
	}
	var elems []json.RawMessage
	switch body[0] {
	case '[':
		if json.Unmarshal(body, &elems) != nil {
			return 0, false
		}
		return len(elems), true
	case '{':
		var top map[string]json.RawMessage
		if json.Unmarshal(body, &top) != nil {
			return 0, false
		}
		batch, isBatch := top["batch"]
		if !isBatch {
			return 1, true
		}
		if json.Unmarshal(batch, &elems) != nil {
			return 0, false
		}
		return len(elems), true
	}
	return 0, false
}

// fzFirstElement is the raw bytes of a bare array's first element, which is
// what Segment signs for an array.
func fzFirstElement(body []byte) []byte {
	var elems []json.RawMessage
	if json.Unmarshal(bytes.TrimSpace(body), &elems) != nil || len(elems) == 0 {
		return nil
	}
	return elems[0]
}

// fzHeaderValue keeps what an HTTP client can send in a header value.
func fzHeaderValue(s string) string {
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < 512; i++ {
		if c := s[i]; c >= 0x20 && c < 0x7f {
			b.WriteByte(c)
		}
	}
	return strings.TrimSpace(b.String())
}

// Signature modes of FuzzIngest.
const (
	fzNoSignature    = iota // no X-Signature header
	fzFuzzedHeader          // the fuzzed header value
	fzSignedBody            // the right signature of the whole body
	fzSignedFirst           // the right signature of a bare array's first element
	fzSignatureModes        // count
)

var fzReceivedStatuses = map[harkv1.SourceEventStatus]bool{
	harkv1.SourceEventStatus_SOURCE_EVENT_STATUS_PROCESSED:  true,
	harkv1.SourceEventStatus_SOURCE_EVENT_STATUS_IDEMPOTENT: true,
	harkv1.SourceEventStatus_SOURCE_EVENT_STATUS_SKIPPED:    true,
	harkv1.SourceEventStatus_SOURCE_EVENT_STATUS_FAILED:     true,
	harkv1.SourceEventStatus_SOURCE_EVENT_STATUS_REJECTED:   true,
}

// FuzzIngest posts fuzzed deliveries to a source without and one with a
// shared secret, counts the source's events before and after from its
// catalog, and checks what must hold for any input:
//   - never a 5xx (not even 503: nothing here is unavailable);
//   - the answer is JSON;
//   - a 200 lists one entry per event of the delivery, in order, each with
//     a valid status, an id unless REJECTED and a reason if REJECTED, and
//     the log holds exactly the entries that are not REJECTED;
//   - a 400 or 401 stores nothing;
//   - 401 only for a signed source without the right signature, and a
//     signed source never answers 200 to a delivery without it.
func FuzzIngest(f *testing.F) {
	seeds := []string{
		string(segmentTrack),
		`{"type":"identify","userId":"u1","traits":{"name":"A","email":"a@example.com"},"messageId":"i1"}`,
		`{"batch":[{"type":"track","event":"A","userId":"u1"},{"type":"page","name":"Home","anonymousId":"x"}],"context":{"ip":"10.0.0.1"}}`,
		`[{"type":"track","event":"A","userId":1},{"type":"screen","properties":{"name":"S"}},42]`,
		`{"batch":[{"type":"track"},"x"]}`,
		`{"type":"track","event":"Cut`,
		``,
		`[]`,
		`{"batch":[]}`,
		`null`,
		"{\"type\":\"track\",\"event\":\"caf\xe9\"}",
		`{"type":"track","event":"A","event":"B"}`,
		`{"type":"track","event":"N","properties":{"n":1e400}}`,
		`{"action":"track","event":"Legacy","userId":"u1","messageId":{"id":1}}`,
		`{"type":"delete","userId":"u9"}`,
		hosNested(65),
		strings.Repeat("[", 200),
	}
	for _, s := range seeds {
		f.Add([]byte(s), false, uint8(fzNoSignature), "")
		f.Add([]byte(s), true, uint8(fzSignedBody), "")
	}
	f.Add(segmentTrack, true, uint8(fzFuzzedHeader), "deadbeef")
	f.Add(segmentTrack, true, uint8(fzFuzzedHeader), sign(fzSecret, segmentTrack))
	f.Add([]byte(`[`+string(segmentTrack)+`,{"type":"track","event":"B"}]`), true, uint8(fzSignedFirst), "")
	f.Add([]byte(`[`+string(segmentTrack)+`]`), true, uint8(fzSignedBody), "")

	s := fzStartServer(f)
	// One source of each kind, shared by the inputs this process runs (one
	// at a time).
	var sources [2]*fzSource

	f.Fuzz(func(t *testing.T, body []byte, signed bool, mode uint8, sig string) {
		if len(body) > server.DefaultMaxBodyBytes {
			t.Skip("over the body limit, which TestHostileIngest covers")
		}
		kind := 0
		if signed {
			kind = 1
		}
		if sources[kind] == nil || sources[kind].types > fzMaxTypes {
			id, path := s.source(t, signed)
			sources[kind] = &fzSource{id: id, path: path}
		}
		src := sources[kind]
		sourceID, path := src.id, src.path
		before, _ := s.stored(t, sourceID)
		var header []string
		switch mode % fzSignatureModes {
		case fzFuzzedHeader:
			if v := fzHeaderValue(sig); v != "" {
				header = []string{"X-Signature", v}
			}
		case fzSignedBody:
			header = []string{"X-Signature", sign(fzSecret, body)}
		case fzSignedFirst:
			if first := fzFirstElement(body); first != nil {
				header = []string{"X-Signature", sign(fzSecret, first)}
			}
		}
		status, answer := s.do(t, http.MethodPost, path, body, header...)
		if status >= 500 {
			t.Fatalf("HTTP %d for %q (signed %v, header %q): %s", status, body, signed, header, answer)
		}
		if !json.Valid(answer) {
			t.Fatalf("HTTP %d answer is not JSON: %q", status, answer)
		}
		after, types := s.stored(t, sourceID)
		src.types = types
		after -= before
		switch status {
		case http.StatusOK:
			res := &harkv1.ReceiveResponse{}
			if err := protojson.Unmarshal(answer, res); err != nil {
				t.Fatalf("200 answer is not a ReceiveResponse: %v: %s", err, answer)
			}
			want, ok := fzEventCount(body)
			if !ok {
				t.Fatalf("200 for a body that is not an event, batch or array: %q", body)
			}
			if len(res.GetEvents()) != want {
				t.Fatalf("200 lists %d events, the delivery holds %d: %s", len(res.GetEvents()), want, answer)
			}
			accepted := 0
			for i, ev := range res.GetEvents() {
				if int(ev.GetIndex()) != i || !fzReceivedStatuses[ev.GetStatus()] {
					t.Fatalf("entry %d = %v: want index %d and a valid status", i, ev, i)
				}
				if ev.GetStatus() == statusRejected {
					if ev.GetId() != "" || ev.GetReason() == "" {
						t.Fatalf("rejected entry %d = %v, want no id and a reason", i, ev)
					}
					continue
				}
				if ev.GetId() == "" {
					t.Fatalf("stored entry %d has no id: %v", i, ev)
				}
				accepted++
			}
			if accepted == 0 {
				t.Fatalf("200 with every event rejected (want 400): %s", answer)
			}
			if after != accepted {
				t.Fatalf("the log holds %d events, the answer accepted %d: %s", after, accepted, answer)
			}
			if signed {
				var right string
				if first := fzFirstElement(body); bytes.HasPrefix(bytes.TrimSpace(body), []byte("[")) && first != nil {
					right = sign(fzSecret, first)
				} else {
					right = sign(fzSecret, body)
				}
				if len(header) == 0 || !strings.EqualFold(header[1], right) {
					t.Fatalf("a source with a shared secret accepted a delivery with X-Signature %q (right: %s)", header, right)
				}
			}
		case http.StatusBadRequest, http.StatusUnauthorized:
			if after != 0 {
				t.Fatalf("HTTP %d stored %d events: %s", status, after, answer)
			}
			var e struct {
				Message string `json:"message"`
			}
			if json.Unmarshal(answer, &e) != nil || e.Message == "" {
				t.Fatalf("HTTP %d without a message: %s", status, answer)
			}
			if status == http.StatusUnauthorized && !signed {
				t.Fatalf("401 from a source without a shared secret: %s", answer)
			}
		default:
			t.Fatalf("HTTP %d, want 200, 400 or 401: %s", status, answer)
		}
	})
}
