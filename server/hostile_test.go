package server_test

// Hostile input over the real server (issue 8, "Hostile input table test"):
// oversize bodies, oversize and deeply nested events, too many events,
// invalid UTF-8, wrongly typed Segment fields, huge numbers, duplicate keys,
// gzip bombs, slow clients, and expressions that try to exhaust memory or
// CPU. Every case asserts the exact status, a message that says what is
// wrong, that the server still answers afterwards, and that nothing was
// half written: a refused delivery stores no event, a partly rejected batch
// stores only its good events.

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"runtime/metrics"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/grpchealth"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"

	harkv1 "github.com/harkhq/hark/gen/hark/v1"
	"github.com/harkhq/hark/gen/hark/v1/harkv1connect"
	"github.com/harkhq/hark/server"
)

// hosGood is a valid track call that hostile batches carry beside bad events.
const hosGood = `{"type":"track","event":"Good","userId":"u1"}`

// hosPath says where a hostile delivery goes.
type hosPath int

const (
	hosREST    hosPath = iota // POST /integrations/receive/{token}, the body as is
	hosConnect                // POST /hark.v1.IngestService/Receive, the body in a Connect JSON envelope
)

// hosRequest is one raw delivery to a source environment's webhook.
type hosRequest struct {
	path hosPath
	// body is what Segment would post. For hosConnect it is wrapped in a
	// ReceiveRequest (token + HttpBody) unless raw is set.
	body []byte
	// raw sends body to the Connect path as it is, without an envelope (for
	// the limits that apply before any decoding).
	raw bool
	// chunked hides the length, so no Content-Length is sent.
	chunked bool
	method  string // POST when empty
	header  []string
	// noContentType sends no Content-Type header.
	noContentType bool
	// query is appended to the path, e.g. "?a=b".
	query string
}

// hosSend posts req to the webhook whose URL is ingestURL.
func (h *harness) hosSend(t *testing.T, ingestURL string, req hosRequest) httpResult {
	t.Helper()
	path := h.ingestPath(t, ingestURL)
	body := req.body
	if req.path == hosConnect {
		path = harkv1connect.IngestServiceReceiveProcedure
		if !req.raw {
			body = hosEnvelope(t, ingestToken(t, ingestURL), body)
		}
	}
	var r io.Reader = bytes.NewReader(body)
	if req.chunked {
		r = onlyReader{r}
	}
	method := req.method
	if method == "" {
		method = http.MethodPost
	}
	contentType := "application/json"
	if req.noContentType {
		contentType = ""
	}
	return h.send(t, "", method, path+req.query, contentType, r, req.header...)
}

// hosEnvelope is a Connect JSON ReceiveRequest carrying body.
func hosEnvelope(t *testing.T, token string, body []byte) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{
		"token": token,
		"body":  map[string]any{"contentType": "application/json", "data": base64.StdEncoding.EncodeToString(body)},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// hosMessage is the message of an error body: a google.rpc.Status on REST
// routes, a Connect error on Connect paths; both have "message".
func hosMessage(t *testing.T, r httpResult) string {
	t.Helper()
	var e struct {
		Message string `json:"message"`
	}
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Fatalf("error body is not JSON with a message: %v; body %.500s", err, r.body)
	}
	return e.Message
}

// hosCount is the number of events a source has in the development log.
func (h *harness) hosCount(t *testing.T, src *harkv1.Source) int {
	t.Helper()
	return len(h.sourceEvents(t, "development", src.GetId()))
}

// hosAlive fails unless the server still answers: a health check, and a
// good delivery to ingestURL that stores one event.
func (h *harness) hosAlive(t *testing.T, ingestURL string) {
	t.Helper()
	res, err := grpchealth.NewClient(h.http, h.base).Check(ctxFor(t), &grpchealth.CheckRequest{})
	if err != nil || res.Status != grpchealth.StatusServing {
		t.Fatalf("health check after the hostile request: %v, %v", res, err)
	}
	h.deliverOne(t, ingestURL, segmentTrack)
}

// hosNested returns a track call whose JSON nesting is depth levels (the
// event object itself is level 1).
func hosNested(depth int) string {
	return `{"type":"track","event":"Deep","userId":"u1","properties":` + deepObject(depth-1) + `}`
}

// hosEvents returns a bare JSON array of n small track calls.
func hosEvents(n int) []byte {
	var b bytes.Buffer
	b.WriteByte('[')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"type":"track","event":"Many","userId":"u1","messageId":"m%d"}`, i)
	}
	b.WriteByte(']')
	return b.Bytes()
}

// hosGzip compresses b.
func hosGzip(t testing.TB, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// hosGzipBomb is a gzip stream that inflates to 1 GiB of zeros, made
// without ever holding more than 1 MiB of them: one member of 64 MiB,
// compressed from a 1 MiB buffer written 64 times, repeated 16 times
// (gzip readers read concatenated members as one stream, as Go's does).
// It is about 1.3 MB.
func hosGzipBomb(t testing.TB) []byte {
	t.Helper()
	var member bytes.Buffer
	zw, err := gzip.NewWriterLevel(&member, gzip.BestSpeed)
	if err != nil {
		t.Fatal(err)
	}
	zeros := make([]byte, 1<<20)
	for range 64 {
		if _, err := zw.Write(zeros); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return bytes.Repeat(member.Bytes(), 16)
}

// hosCase is one hostile delivery and what the server must answer.
type hosCase struct {
	name string
	req  hosRequest
	// want is the HTTP status.
	want int
	// wantMsg is a substring of the error message (non-200), or of the
	// reason of every rejected event (200).
	wantMsg string
	// wantStatuses are the per-event statuses of a 200, in order.
	wantStatuses []harkv1.SourceEventStatus
	// check, when set, inspects the stored events of a 200.
	check func(t *testing.T, h *harness, res *harkv1.ReceiveResponse)
	// plain marks errors that may be answered by the HTTP layer (method,
	// content coding) in plain text rather than in JSON.
	plain bool
	// alsoOK is another acceptable error status, where two layers may
	// refuse the request.
	alsoOK int
}

// run sends the case to a source of its own and checks the answer, the
// event log (no partial write) and that the server still answers.
func (c hosCase) run(t *testing.T, h *harness) {
	t.Helper()
	src := h.createSource(t, "hostile")
	url := devURL(t, src)
	before := h.hosCount(t, src)

	r := h.hosSend(t, url, c.req)
	if r.status >= 500 && r.status != c.want {
		t.Fatalf("HTTP %d (a server error) for hostile input; body %.500s", r.status, r.body)
	}
	if r.status != c.want && (c.alsoOK == 0 || r.status != c.alsoOK) {
		t.Fatalf("HTTP status = %d, want %d; body %.500s", r.status, c.want, r.body)
	}
	stored := 0
	if r.status == http.StatusOK {
		res := decode(t, r, &harkv1.ReceiveResponse{})
		if len(res.GetEvents()) != len(c.wantStatuses) {
			t.Fatalf("ReceiveResponse has %d events, want %d: %.500s", len(res.GetEvents()), len(c.wantStatuses), r.body)
		}
		for i, re := range res.GetEvents() {
			if int(re.GetIndex()) != i || re.GetStatus() != c.wantStatuses[i] {
				t.Fatalf("event %d = %v, want index %d status %v", i, re, i, c.wantStatuses[i])
			}
			if re.GetStatus() == statusRejected {
				if re.GetId() != "" || re.GetReason() == "" {
					t.Fatalf("rejected event %d = %v, want no id and a reason", i, re)
				}
				if !strings.Contains(re.GetReason(), c.wantMsg) {
					t.Fatalf("rejected event %d reason = %q, want it to contain %q", i, re.GetReason(), c.wantMsg)
				}
				continue
			}
			if re.GetId() == "" {
				t.Fatalf("accepted event %d has no id: %v", i, re)
			}
			stored++
		}
		if c.check != nil {
			c.check(t, h, res)
		}
	} else if c.plain {
		if !strings.Contains(string(r.body), c.wantMsg) {
			t.Fatalf("error body = %q, want it to contain %q", r.body, c.wantMsg)
		}
	} else {
		if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("error Content-Type = %q, want application/json", ct)
		}
		if msg := hosMessage(t, r); !strings.Contains(msg, c.wantMsg) {
			t.Fatalf("error message = %q, want it to contain %q", msg, c.wantMsg)
		}
	}
	if after := h.hosCount(t, src); after != before+stored {
		t.Fatalf("the log holds %d events of the source after the delivery, want %d: a refused or partly rejected delivery wrote more than its accepted events", after, before+stored)
	}
	h.hosAlive(t, url)
	if after := h.hosCount(t, src); after != before+stored+1 {
		t.Fatalf("the log holds %d events after a good delivery, want %d", after, before+stored+1)
	}
}

// hosStatuses lists per-event statuses.
func hosStatuses(s ...harkv1.SourceEventStatus) []harkv1.SourceEventStatus { return s }

func TestHostileIngest(t *testing.T) {
	t.Parallel()
	h := startServer(t)

	over := bytes.Repeat([]byte("a"), server.DefaultMaxBodyBytes+1)
	bigEvent := `{"type":"track","event":"Big","userId":"u1","properties":{"pad":"` + strings.Repeat("x", 33<<10) + `"}}`
	bomb := hosGzipBomb(t)
	smallGzip := hosGzip(t, segmentTrack)
	// A gzip member cut in the middle, and one followed by garbage.
	truncatedGzip := hosGzip(t, bytes.Repeat(segmentTrack, 100))
	truncatedGzip = truncatedGzip[:len(truncatedGzip)/2]
	trailingGarbage := append(hosGzip(t, segmentTrack), []byte("not gzip at all")...)
	deepArray := strings.Repeat("[", 500) + strings.Repeat("]", 500)

	const (
		limitMsg   = "request body is larger than 4194304 bytes"
		gzipMsg    = "not valid gzip"
		utf8Msg    = "not valid UTF-8"
		deep65Msg  = "nesting is 65 levels deep; at most 64"
		tooManyMsg = "the delivery holds 4001 events; at most 4000"
	)

	tests := []hosCase{
		// Body limit: 400, never 413 or 429, before anything buffers it.
		{name: "body over 4 MiB with Content-Length", req: hosRequest{body: over}, want: 400, wantMsg: limitMsg},
		{name: "body over 4 MiB chunked", req: hosRequest{body: over, chunked: true}, want: 400, wantMsg: limitMsg},
		{name: "connect body over 4 MiB with Content-Length", req: hosRequest{path: hosConnect, raw: true, body: over}, want: 400, wantMsg: limitMsg},
		{name: "connect body over 4 MiB chunked", req: hosRequest{path: hosConnect, raw: true, body: over, chunked: true}, want: 400, wantMsg: limitMsg},

		// Event limits.
		{name: "one event over 32 KiB in a batch", req: hosRequest{body: []byte(`{"batch":[` + bigEvent + `,` + hosGood + `]}`)},
			want: 200, wantMsg: "at most 32768", wantStatuses: hosStatuses(statusRejected, statusProcessed)},
		{name: "one event over 32 KiB alone", req: hosRequest{body: []byte(bigEvent)}, want: 400, wantMsg: "at most 32768"},
		{name: "4,000 events", req: hosRequest{body: hosEvents(4000)}, want: 200, wantStatuses: hosRepeat(statusProcessed, 4000)},
		{name: "4,001 events", req: hosRequest{body: hosEvents(4001)}, want: 400, wantMsg: tooManyMsg},
		{name: "4,001 events in a batch", req: hosRequest{body: []byte(`{"batch":` + string(hosEvents(4001)) + `}`)}, want: 400, wantMsg: tooManyMsg},
		{name: "connect 4,001 events", req: hosRequest{path: hosConnect, body: hosEvents(4001)}, want: 400, wantMsg: tooManyMsg},

		// Nesting: 64 levels per event are fine, 65 reject the event, and a
		// body too deep for any event is refused before it is decoded.
		{name: "nesting 64 levels", req: hosRequest{body: []byte(hosNested(64))}, want: 200, wantStatuses: hosStatuses(statusProcessed)},
		{name: "nesting 65 levels in one event", req: hosRequest{body: []byte(hosNested(65))}, want: 400, wantMsg: deep65Msg},
		{name: "nesting 65 levels beside a good event", req: hosRequest{body: []byte(`[` + hosGood + `,` + hosNested(65) + `]`)},
			want: 200, wantMsg: deep65Msg, wantStatuses: hosStatuses(statusProcessed, statusRejected)},
		{name: "nesting 500 levels", req: hosRequest{body: []byte(hosNested(500))}, want: 400, wantMsg: "JSON nesting is 500 levels deep"},
		{name: "nesting 500 levels of arrays", req: hosRequest{body: []byte(deepArray)}, want: 400, wantMsg: "JSON nesting is 500 levels deep"},
		{name: "nesting 2,000,000 levels", req: hosRequest{body: []byte(strings.Repeat("[", 2_000_000))}, want: 400, wantMsg: "JSON nesting is 2000000 levels deep"},
		{name: "connect nesting 500 levels", req: hosRequest{path: hosConnect, body: []byte(hosNested(500))}, want: 400, wantMsg: "JSON nesting is 500 levels deep"},

		// Invalid UTF-8 anywhere in an event rejects that event.
		{name: "invalid UTF-8 in a string", req: hosRequest{body: []byte("{\"type\":\"track\",\"event\":\"caf\xe9\",\"userId\":\"u1\"}")}, want: 400, wantMsg: utf8Msg},
		{name: "invalid UTF-8 beside a good event", req: hosRequest{body: []byte("[" + hosGood + ",{\"type\":\"track\",\"event\":\"A\",\"userId\":\"u\xff\"}]")},
			want: 200, wantMsg: utf8Msg, wantStatuses: hosStatuses(statusProcessed, statusRejected)},
		{name: "invalid UTF-8 in a key", req: hosRequest{body: []byte("[{\"type\":\"track\",\"event\":\"A\",\"properties\":{\"k\xc0\xaf\":1}}," + hosGood + "]")},
			want: 200, wantMsg: utf8Msg, wantStatuses: hosStatuses(statusRejected, statusProcessed)},
		{name: "UTF-16 surrogate encoded as UTF-8", req: hosRequest{body: []byte("{\"type\":\"track\",\"event\":\"\xed\xa0\x80\",\"userId\":\"u1\"}")}, want: 400, wantMsg: utf8Msg},
		{name: "invalid UTF-8 in the batch-level context", req: hosRequest{body: []byte("{\"batch\":[" + hosGood + "],\"context\":{\"ip\":\"\xff\"}}")},
			want: 400, wantMsg: "batch-level context or integrations are not valid UTF-8"},
		{name: "connect invalid UTF-8", req: hosRequest{path: hosConnect, body: []byte("{\"type\":\"track\",\"event\":\"caf\xe9\",\"userId\":\"u1\"}")}, want: 400, wantMsg: utf8Msg},

		// Escapes that decode to odd text are valid JSON and valid UTF-8 on
		// the wire.
		{name: "NUL in the event name", req: hosRequest{body: []byte(`{"type":"track","event":"a\u0000b","userId":"u1"}`)},
			want: 200, wantStatuses: hosStatuses(statusProcessed),
			check: func(t *testing.T, h *harness, res *harkv1.ReceiveResponse) {
				if ev := h.getEvent(t, "development", res.GetEvents()[0].GetId()); ev.GetName() != "a\uFFFDb" {
					t.Fatalf("logged name = %q, want NUL shown as U+FFFD", ev.GetName())
				}
			}},

		// Gzip: decompressed under the same limit, before vanguard.
		{name: "gzip bomb of 1 GiB", req: hosRequest{body: bomb, header: []string{"Content-Encoding", "gzip"}}, want: 400, wantMsg: limitMsg},
		{name: "gzip bomb of 1 GiB chunked", req: hosRequest{body: bomb, chunked: true, header: []string{"Content-Encoding", "gzip"}}, want: 400, wantMsg: limitMsg},
		{name: "connect gzip bomb of 1 GiB", req: hosRequest{path: hosConnect, raw: true, body: bomb, header: []string{"Content-Encoding", "gzip"}}, want: 400, wantMsg: limitMsg},
		{name: "small valid gzip body", req: hosRequest{body: smallGzip, header: []string{"Content-Encoding", "gzip"}}, want: 200, wantStatuses: hosStatuses(statusProcessed)},
		{name: "small valid gzip body, upper-case coding", req: hosRequest{body: smallGzip, header: []string{"Content-Encoding", "GZIP"}}, want: 200, wantStatuses: hosStatuses(statusProcessed)},
		{name: "invalid gzip", req: hosRequest{body: segmentTrack, header: []string{"Content-Encoding", "gzip"}}, want: 400, wantMsg: gzipMsg},
		{name: "connect invalid gzip", req: hosRequest{path: hosConnect, raw: true, body: []byte("nope"), header: []string{"Content-Encoding", "gzip"}}, want: 400, wantMsg: gzipMsg},
		{name: "truncated gzip", req: hosRequest{body: truncatedGzip, header: []string{"Content-Encoding", "gzip"}}, want: 400, wantMsg: "read request body"},
		{name: "gzip followed by garbage", req: hosRequest{body: trailingGarbage, header: []string{"Content-Encoding", "gzip"}}, want: 400, wantMsg: "read request body"},
		{name: "gzip inside gzip", req: hosRequest{body: hosGzip(t, smallGzip), header: []string{"Content-Encoding", "gzip"}}, want: 400, wantMsg: "the body must be a JSON object or array"},

		// Huge numbers.
		{name: "1e400 in properties", req: hosRequest{body: []byte(`{"type":"track","event":"Num","userId":"u1","properties":{"n":1e400}}`)},
			want: 400, wantMsg: "1e400"},
		// Type and name are store keys: a long one is refused alone,
		// instead of failing the commit of every delivery beside it.
		{name: "a 2 KB event name beside a good event", req: hosRequest{body: []byte(`[{"type":"track","event":"` + strings.Repeat("n", 2048) + `","userId":"u1"},` + hosGood + `]`)},
			want: 200, wantMsg: "longer than 1024 bytes", wantStatuses: hosStatuses(statusRejected, statusProcessed)},
		{name: "1e400 in properties beside a good event", req: hosRequest{body: []byte(`[{"type":"track","event":"Num","userId":"u1","properties":{"n":-1e400}},` + hosGood + `]`)},
			want: 200, wantMsg: "1e400", wantStatuses: hosStatuses(statusRejected, statusProcessed)},
		{name: "30-digit integer in properties", req: hosRequest{body: []byte(`{"type":"track","event":"Num","userId":"u1","properties":{"n":123456789012345678901234567890}}`)},
			want: 200, wantStatuses: hosStatuses(statusProcessed),
			check: func(t *testing.T, h *harness, res *harkv1.ReceiveResponse) {
				ev := h.getEvent(t, "development", res.GetEvents()[0].GetId())
				// A float64 would round it: its digits are kept, as text.
				if got := field(ev.GetData(), "n").GetStringValue(); got != "123456789012345678901234567890" {
					t.Fatalf("data.n = %v, want the digits 123456789012345678901234567890", field(ev.GetData(), "n"))
				}
			}},
		{name: "1e-400 in properties", req: hosRequest{body: []byte(`{"type":"track","event":"Num","userId":"u1","properties":{"n":1e-400}}`)},
			want: 200, wantStatuses: hosStatuses(statusProcessed)},
		{name: "10,000-digit number in properties", req: hosRequest{body: []byte(`{"type":"track","event":"Num","userId":"u1","properties":{"n":1` + strings.Repeat("0", 10000) + `}}`)},
			want: 400, wantMsg: "invalid value for number: 100000000000000000000000… (10001 characters)"},
		{name: "1e400 as userId", req: hosRequest{body: []byte(`{"type":"track","event":"Num","userId":1e400}`)}, want: 400, wantMsg: "1e400"},
		{name: "30-digit integer as userId", req: hosRequest{body: []byte(`{"type":"track","event":"Num","userId":123456789012345678901234567890}`)},
			want: 200, wantStatuses: hosStatuses(statusProcessed),
			check: func(t *testing.T, h *harness, res *harkv1.ReceiveResponse) {
				ev := h.getEvent(t, "development", res.GetEvents()[0].GetId())
				if ev.GetUserId() != "123456789012345678901234567890" {
					t.Fatalf("user_id = %q, want the number's exact text", ev.GetUserId())
				}
			}},
		{name: "1e400 as messageId", req: hosRequest{body: []byte(`{"type":"track","event":"Num","userId":"u1","messageId":1e400}`)}, want: 400, wantMsg: "1e400"},

		// Duplicate keys: protojson refuses them when the event is logged.
		{name: "duplicate key at the top", req: hosRequest{body: []byte(`{"type":"track","event":"A","event":"B","userId":"u1"}`)},
			want: 400, wantMsg: `duplicate map key "event"`},
		{name: "duplicate key in properties beside a good event", req: hosRequest{body: []byte(`[{"type":"track","event":"A","userId":"u1","properties":{"k":1,"k":2}},` + hosGood + `]`)},
			want: 200, wantMsg: `duplicate map key "k"`, wantStatuses: hosStatuses(statusRejected, statusProcessed)},
		{name: "duplicate batch key", req: hosRequest{body: []byte(`{"batch":[` + hosGood + `],"batch":[` + hosGood + `,` + hosGood + `]}`)},
			want: 200, wantStatuses: hosStatuses(statusProcessed, statusProcessed)},

		// Wrongly typed batch-level fields.
		{name: "batch is a number", req: hosRequest{body: []byte(`{"batch":42}`)}, want: 400, wantMsg: "`batch` must be an array of events"},
		{name: "batch is an object", req: hosRequest{body: []byte(`{"batch":` + hosGood + `}`)}, want: 400, wantMsg: "`batch` must be an array of events"},
		{name: "batch-level context is a number", req: hosRequest{body: []byte(`{"batch":[` + hosGood + `],"context":42,"integrations":"x"}`)},
			want: 200, wantStatuses: hosStatuses(statusProcessed)},

		// Protocol oddities.
		{name: "no Content-Type", req: hosRequest{body: segmentTrack, noContentType: true}, want: 200, wantStatuses: hosStatuses(statusProcessed)},
		{name: "GET on the webhook", req: hosRequest{method: http.MethodGet}, want: 405, wantMsg: "Method Not Allowed", plain: true},
		// A coding hark does not decompress: refused (415 from vanguard, or
		// 400 when the bytes are read as they are), never a 5xx.
		{name: "unknown Content-Encoding", req: hosRequest{body: []byte("\x1b\x0b\x00\xf8\xa5\x02"), header: []string{"Content-Encoding", "br"}}, want: 400, alsoOK: 415, plain: true},
		// The Connect protocol's own answer to a compression it does not
		// know is unimplemented (501); Connect clients do not retry it.
		{name: "connect unknown Content-Encoding", req: hosRequest{path: hosConnect, raw: true, body: []byte("\x1b\x0b\x00\xf8\xa5\x02"), header: []string{"Content-Encoding", "br"}}, want: 501, wantMsg: `unknown compression "br"`},
		// A webhook URL configured with a query string (say, to tell
		// senders apart) is not malformed input.
		{name: "query string on the webhook URL", req: hosRequest{body: segmentTrack, query: "?from=segment"}, want: 200, wantStatuses: hosStatuses(statusProcessed)},
		{name: "empty body", req: hosRequest{body: nil}, want: 400, wantMsg: "the body is empty"},
		{name: "whitespace only", req: hosRequest{body: []byte(" \n\t ")}, want: 400, wantMsg: "the body is empty"},
		{name: "a JSON string", req: hosRequest{body: []byte(`"track"`)}, want: 400, wantMsg: "must be a JSON object or array"},
		{name: "null", req: hosRequest{body: []byte(`null`)}, want: 400, wantMsg: "must be a JSON object or array"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.run(t, h)
		})
	}

	t.Run("wrong JSON types", func(t *testing.T) {
		t.Parallel()
		hosWrongTypes(t, h)
	})
}

// hosRepeat is n times the status s.
func hosRepeat(s harkv1.SourceEventStatus, n int) []harkv1.SourceEventStatus {
	out := make([]harkv1.SourceEventStatus, n)
	for i := range out {
		out[i] = s
	}
	return out
}

// hosWrongTypes sends, for every field Segment defines, events where the
// field has each wrong JSON type. Each must be stored with the field
// ignored (checked on the logged event) or rejected with a reason naming
// the field; never a 5xx.
func hosWrongTypes(t *testing.T, h *harness) {
	base := map[string]string{
		"track":    `{"type":"track","event":"Typed","userId":"u1","messageId":"m-typed","properties":{"a":1}}`,
		"page":     `{"type":"page","name":"Home","userId":"u1","properties":{"a":1}}`,
		"identify": `{"type":"identify","userId":"u1","traits":{"name":"U"}}`,
		"none":     `{"event":"Typed","userId":"u1"}`,
	}
	with := func(t *testing.T, kind, key, raw string) []byte {
		t.Helper()
		var m map[string]json.RawMessage
		if err := json.Unmarshal([]byte(base[kind]), &m); err != nil {
			t.Fatal(err)
		}
		m[key] = json.RawMessage(raw)
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	wrong := []string{`42`, `-1.5`, `true`, `[1,"a"]`, `{"x":1}`, `"text"`, `null`}
	// outcome is what the server must do with a wrong value: reject the
	// event with a reason, or store it (and check the logged event).
	type outcome struct {
		reject string // a substring of the reason; "" means stored
		check  func(t *testing.T, ev *harkv1.SourceEvent)
	}
	noTimestamp := func(t *testing.T, ev *harkv1.SourceEvent) {
		if ev.GetTimestamp() != nil {
			t.Fatalf("timestamp = %v, want none for a wrongly typed timestamp", ev.GetTimestamp())
		}
	}
	noKey := func(t *testing.T, ev *harkv1.SourceEvent) {
		if ev.GetIdempotencyKey() != "" {
			t.Fatalf("idempotency key = %q, want none for a messageId that is not a string", ev.GetIdempotencyKey())
		}
	}
	fields := []struct {
		kind, key string
		// expect gives the outcome for a wrong value.
		expect func(raw string) outcome
	}{
		{"track", "type", func(raw string) outcome {
			if raw == `null` {
				return outcome{check: func(t *testing.T, ev *harkv1.SourceEvent) {
					if ev.GetType() != "" || ev.GetStatus() != statusSkipped {
						t.Fatalf("event = %v, want no type and SKIPPED", ev)
					}
				}}
			}
			if raw == `"text"` {
				return outcome{check: func(t *testing.T, ev *harkv1.SourceEvent) {
					if ev.GetStatus() != statusSkipped {
						t.Fatalf("event of an unknown type = %v, want SKIPPED", ev)
					}
				}}
			}
			return outcome{reject: "`type` must be a string"}
		}},
		{"none", "action", func(raw string) outcome {
			switch raw {
			case `null`, `"text"`:
				return outcome{check: func(t *testing.T, ev *harkv1.SourceEvent) {
					if ev.GetStatus() != statusSkipped {
						t.Fatalf("event = %v, want SKIPPED", ev)
					}
				}}
			}
			return outcome{reject: "`action` must be a string"}
		}},
		{"track", "event", func(raw string) outcome {
			switch raw {
			case `null`:
				return outcome{reject: "a track event needs an `event` name"}
			case `"text"`:
				return outcome{}
			}
			return outcome{reject: "`event` must be a string"}
		}},
		{"page", "name", func(raw string) outcome {
			switch raw {
			case `null`, `"text"`:
				return outcome{}
			}
			return outcome{reject: "`name` must be a string"}
		}},
		{"track", "name", func(string) outcome { return outcome{} }}, // not read for track calls
		{"track", "userId", func(raw string) outcome {
			switch raw {
			case `42`, `-1.5`:
				return outcome{check: func(t *testing.T, ev *harkv1.SourceEvent) {
					if ev.GetUserId() != raw {
						t.Fatalf("user_id = %q, want the number's text %q", ev.GetUserId(), raw)
					}
				}}
			case `null`, `"text"`:
				return outcome{}
			}
			return outcome{reject: "`userId` must be a string or a number"}
		}},
		{"track", "anonymousId", func(raw string) outcome {
			switch raw {
			case `42`, `-1.5`, `null`, `"text"`:
				return outcome{}
			}
			return outcome{reject: "`anonymousId` must be a string or a number"}
		}},
		{"track", "properties", func(raw string) outcome {
			switch raw {
			case `{"x":1}`:
				return outcome{}
			case `null`:
				return outcome{check: func(t *testing.T, ev *harkv1.SourceEvent) {
					if ev.GetData() != nil {
						t.Fatalf("data = %v, want none for null properties", ev.GetData())
					}
				}}
			}
			return outcome{reject: "`properties` must be an object"}
		}},
		{"identify", "traits", func(raw string) outcome {
			switch raw {
			case `{"x":1}`, `null`:
				return outcome{}
			}
			return outcome{reject: "`traits` must be an object"}
		}},
		{"track", "traits", func(raw string) outcome {
			switch raw {
			case `{"x":1}`, `null`:
				return outcome{}
			}
			return outcome{reject: "`traits` must be an object"}
		}},
		{"track", "context", func(raw string) outcome { return outcome{} }},
		{"identify", "context", func(raw string) outcome { return outcome{} }},
		{"track", "integrations", func(raw string) outcome { return outcome{} }},
		{"track", "messageId", func(raw string) outcome {
			if raw == `"text"` {
				return outcome{}
			}
			return outcome{check: noKey}
		}},
		{"track", "timestamp", func(raw string) outcome { return outcome{check: noTimestamp} }},
		{"track", "originalTimestamp", func(raw string) outcome { return outcome{check: noTimestamp} }},
		{"track", "sentAt", func(raw string) outcome { return outcome{} }},
		{"track", "receivedAt", func(raw string) outcome { return outcome{} }},
		{"track", "version", func(raw string) outcome { return outcome{} }},
		{"track", "channel", func(raw string) outcome { return outcome{} }},
	}
	src := h.createSource(t, "wrong types")
	url := devURL(t, src)
	for _, f := range fields {
		for _, raw := range wrong {
			t.Run(f.kind+"/"+f.key+"="+raw, func(t *testing.T) {
				want := f.expect(raw)
				before := h.hosCount(t, src)
				r, res := h.deliver(t, url, with(t, f.kind, f.key, raw))
				if r.status >= 500 {
					t.Fatalf("HTTP %d for a wrongly typed %s; body %s", r.status, f.key, r.body)
				}
				stored := 0
				if want.reject != "" {
					wantStatus(t, r, http.StatusBadRequest)
					if msg := hosMessage(t, r); !strings.Contains(msg, want.reject) || !strings.Contains(msg, f.key) {
						t.Fatalf("error message = %q, want it to contain %q", msg, want.reject)
					}
					wantViolation(t, restViolations(t, r), "events[0]")
				} else {
					wantStatus(t, r, http.StatusOK)
					if len(res.GetEvents()) != 1 || res.GetEvents()[0].GetId() == "" {
						t.Fatalf("ReceiveResponse = %v, want one stored event", res)
					}
					stored = 1
					ev := h.getEvent(t, "development", res.GetEvents()[0].GetId())
					if want.check != nil {
						want.check(t, ev)
					}
				}
				if after := h.hosCount(t, src); after != before+stored {
					t.Fatalf("the log holds %d events, want %d", after, before+stored)
				}
			})
		}
	}
	h.hosAlive(t, url)
}

// ---------------------------------------------------------------------------
// Slow clients.
// ---------------------------------------------------------------------------

// TestHostileSlowClients checks that the server's ReadHeaderTimeout (10s)
// cuts off clients that hold a connection without completing their
// headers: one that sends nothing, one that stops in the middle of its
// headers, and a slow-loris that sends a header byte per second.
func TestHostileSlowClients(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: waits for the server's 10s header timeout")
	}
	t.Parallel()
	h := startServer(t)
	src := h.createSource(t, "slow")
	path := h.ingestPath(t, devURL(t, src))
	headers := "POST " + path + " HTTP/1.1\r\nHost: " + h.addr + "\r\nContent-Type: application/json\r\nX-Slow: "

	// closedWithin is how long the server may take: its 10s header
	// timeout plus slack for a loaded machine.
	const closedWithin = 15 * time.Second
	tests := []struct {
		name string
		// send writes to the connection until the server closes it or
		// stop is closed.
		send func(conn net.Conn, stop <-chan struct{})
	}{
		{"no bytes after connecting", func(net.Conn, <-chan struct{}) {}},
		{"partial headers", func(conn net.Conn, _ <-chan struct{}) {
			_, _ = io.WriteString(conn, headers)
		}},
		{"one header byte per second", func(conn net.Conn, stop <-chan struct{}) {
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for {
				if _, err := io.WriteString(conn, "x"); err != nil {
					return
				}
				select {
				case <-stop:
					return
				case <-tick.C:
				}
			}
		}},
	}
	// Every client connects at once and is read in its own goroutine, so
	// the cases take one header timeout together, whatever -parallel is.
	type outcome struct {
		got     []byte
		err     error
		elapsed time.Duration
	}
	results := make([]chan outcome, len(tests))
	for i, tt := range tests {
		conn, err := net.Dial("tcp", h.addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		if tt.name == "one header byte per second" {
			if _, err := io.WriteString(conn, headers); err != nil {
				t.Fatal(err)
			}
		}
		stop := make(chan struct{})
		t.Cleanup(func() { close(stop) })
		go tt.send(conn, stop)
		start := time.Now()
		if err := conn.SetReadDeadline(start.Add(closedWithin)); err != nil {
			t.Fatal(err)
		}
		results[i] = make(chan outcome, 1)
		go func(done chan<- outcome) {
			got, err := io.ReadAll(bufio.NewReader(conn))
			done <- outcome{got, err, time.Since(start)}
		}(results[i])
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := <-results[i]
			// The server may answer 408 before closing; either way the read
			// ends with EOF (or a reset) before the deadline.
			var ne net.Error
			if errors.As(o.err, &ne) && ne.Timeout() {
				t.Fatalf("the server kept the connection open for %v without complete headers (read %q)", closedWithin, o.got)
			}
			if len(o.got) > 0 && !bytes.HasPrefix(o.got, []byte("HTTP/1.1 408")) {
				t.Fatalf("the server answered %q, want it to close the connection (or 408)", o.got)
			}
			t.Logf("closed by the server after %v (answer %q, err %v)", o.elapsed.Round(100*time.Millisecond), o.got, o.err)
		})
	}
	h.hosAlive(t, devURL(t, src))
}

// ---------------------------------------------------------------------------
// Expressions that try to exhaust memory or CPU.
// ---------------------------------------------------------------------------

// hosExprLimit is the heap the server may reach while running one hostile
// expression. Legitimate mappings build kilobytes; the whole test server
// idles at a few tens of megabytes.
const hosExprLimit = 512 << 20

// hosHeapSampler samples the live heap every millisecond, so a transient
// peak is seen even when the garbage is gone by the time the request ends.
type hosHeapSampler struct {
	stop chan struct{}
	done chan struct{}
	peak atomic.Uint64
}

func hosSampleHeap() *hosHeapSampler {
	s := &hosHeapSampler{stop: make(chan struct{}), done: make(chan struct{})}
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			metrics.Read(sample)
			if v := sample[0].Value.Uint64(); v > s.peak.Load() {
				s.peak.Store(v)
			}
			select {
			case <-s.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

// end stops sampling and returns the peak heap.
func (s *hosHeapSampler) end() uint64 {
	close(s.stop)
	<-s.done
	return s.peak.Load()
}

// TestHostileExpressions saves triggers whose expressions try to exhaust
// memory or CPU. At save time, oversize expressions are refused with an
// ExpressionError. At run time, each hostile trigger's action must be
// ERROR with the reason, the trigger saved after it on the same event must
// still start its run, the server must stay healthy, and its heap must stay
// under hosExprLimit while the expression runs.
//
// It is not parallel: the heap it measures is the whole test process's, and
// parallel tests wait until sequential ones are done.
func TestHostileExpressions(t *testing.T) {
	h := startServer(t)
	src := h.createSource(t, "exprs")
	url := devURL(t, src)
	wantStatus(t, h.rest(t, http.MethodPost, "/v1/workflows", `{"key":"hostile"}`), http.StatusOK)
	wantStatus(t, h.rest(t, http.MethodPut, "/v1/environments/development/users/u1", `{"name":"U One"}`), http.StatusOK)
	triggerPath := "/v1/environments/development/triggers"
	createTrigger := func(t *testing.T, fields map[string]any) httpResult {
		t.Helper()
		body := map[string]any{"sourceId": src.GetId(), "workflowKey": "hostile"}
		for k, v := range fields {
			body[k] = v
		}
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		return h.rest(t, http.MethodPost, triggerPath, string(b))
	}

	t.Run("refused at save", func(t *testing.T) {
		tests := []struct {
			name, field, expr string
			wantMsg           string
		}{
			// Under the length limit, over the node limit.
			{"too many nodes", "mapping.data", "{\"n\": 1" + strings.Repeat("+1", 2500) + "}", "exceeds maximum allowed nodes"},
			{"too many nodes in a condition", "condition", strings.Repeat("a&&", 2100) + "a", "exceeds maximum allowed nodes"},
			{"too long", "mapping.cancellationKey", `"` + strings.Repeat("x", 9000) + `"`, "the expression is 9002 bytes; at most 8192"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				fields := map[string]any{"event": "Saved"}
				switch tt.field {
				case "condition":
					fields["condition"] = tt.expr
				case "mapping.data":
					fields["mapping"] = map[string]any{"data": tt.expr}
				case "mapping.cancellationKey":
					fields["mapping"] = map[string]any{"cancellationKey": tt.expr}
				}
				r := createTrigger(t, fields)
				wantStatus(t, r, http.StatusBadRequest)
				st := decode(t, r, &rpcstatus.Status{})
				var xe *harkv1.ExpressionError
				for _, d := range st.GetDetails() {
					if m, err := d.UnmarshalNew(); err == nil {
						if x, ok := m.(*harkv1.ExpressionError); ok {
							xe = x
						}
					}
				}
				if xe == nil {
					t.Fatalf("400 without a hark.v1.ExpressionError detail: %s", r.body)
				}
				if xe.GetField() != tt.field || !strings.Contains(xe.GetMessage(), tt.wantMsg) || xe.GetLine() < 1 || xe.GetColumn() < 1 {
					t.Fatalf("ExpressionError = %v, want field %s, a message containing %q, line and column", xe, tt.field, tt.wantMsg)
				}
				if !strings.Contains(st.GetMessage(), tt.field) {
					t.Errorf("message = %q, want it to name %s", st.GetMessage(), tt.field)
				}
			})
		}
		// Nothing was saved.
		r := h.rest(t, http.MethodGet, triggerPath, "")
		wantStatus(t, r, http.StatusOK)
		if n := len(decode(t, r, &harkv1.ListTriggersResponse{}).GetTriggers()); n != 0 {
			t.Fatalf("%d triggers saved by refused requests", n)
		}
	})

	// The event every run-time case receives (under the 32 KiB limit):
	// context.blob is 25,000 bytes, and context.list 500 short strings.
	blob := strings.Repeat("x", 25000)
	list := make([]string, 500)
	for i := range list {
		list[i] = "u1"
	}
	eventFor := func(t *testing.T, name string) []byte {
		t.Helper()
		b, err := json.Marshal(map[string]any{
			"type": "track", "event": name, "userId": "u1",
			"properties": map[string]any{"title": "Ünïcödé"},
			"context":    map[string]any{"blob": blob, "list": list},
		})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	// Each hostile expression is the cancellation key, turned into a short
	// string: a run that survives the budgets is stored, so a value that
	// slips through shows up as SUCCESS instead of the ERROR wanted.
	doubling := "let a = \"xxxxxxxx\";\n"
	prev := "a"
	for i := range 30 {
		next := fmt.Sprintf("b%d", i)
		doubling += fmt.Sprintf("let %s = %s + %s;\n", next, prev, prev)
		prev = next
	}
	doubling += "string(len(" + prev + "))"
	tests := []struct {
		name, expr string
		// mayRun marks an expression within the budgets: it may run to a
		// value, but still only within the memory bound.
		mayRun bool
	}{
		{name: "repeat 100,000,000", expr: `repeat("x", 100000000)`},
		{name: "doubling with let 30 times", expr: doubling},
		{name: "join of 100,000 references to a 25 KB string", expr: `string(len(join(map(1..100000, body.context.blob))))`},
		{name: "reduce doubling 40 times", expr: `string(len(reduce(1..40, #acc + #acc, "x")))`},
		// A budget that counts elements, not bytes, lets each element be a
		// long string: 3,000 of 256 KiB are 750 MiB.
		{name: "list of 3,000 strings of 256 KiB", expr: `string(len(map(1..3000, repeat("x", 262144))))`},
		// As many elements of the longest string as the budgets allow.
		{name: "list of 4,900 strings of 32 KiB", expr: `string(len(map(1..4900, repeat("x", 32768))))`, mayRun: true},
		// toJSON and string() must stop before encoding/json or fmt has
		// built the whole text.
		{name: "toJSON of 8,000 references to a 25 KB string", expr: `string(len(toJSON(map(1..8000, body.context.blob))))`},
		{name: "string() of 16,000 references to a 25 KB string", expr: `string(len(string(map(1..16000, body.context.blob))))`},
		// Widths make a short format arbitrarily long.
		{name: "sprintf with 300 verbs of width 999,999", expr: `string(len(sprintf(repeat("%999999[1]d", 300), 1)))`},
		// 150 splits of 256 KiB into characters are 600 MiB of string
		// headers.
		{name: "150 splits of 256 KiB into characters", expr: `string(len(map(1..150, split(repeat("x", 262144), ""))))`},
		// Time: nothing in expr bounds steps. 8,000² steps take seconds
		// (and a sum of 200 such terms fits the node limit: about ten
		// minutes of a stopped ingest committer).
		{name: "64 million steps", expr: `let r = 1..8000; string(sum(r, sum(r, 1)))`},
		// A regular expression built at run time: linear in the text, but
		// times the pattern's size, 25 KB × 6 KB, for seconds per match
		// (and any(1..9000, …) repeats it for hours).
		{name: "pathological regular expression", expr: `string(body.context.blob matches (repeat("x?", 3000) + repeat("x", 3000) + "y"))`},
	}
	other := h.createSource(t, "bystander")
	otherPath := h.ingestPath(t, devURL(t, other))
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := ctxFor(t)
			name := fmt.Sprintf("Hostile %d", i)
			bad := createTrigger(t, map[string]any{"event": name, "mapping": map[string]any{"cancellationKey": tt.expr}})
			if bad.status == http.StatusBadRequest {
				// Refused at save: as good as stopped at run time, if it
				// says why.
				if fields := restViolations(t, bad); !slices.Contains(fields, "mapping.cancellationKey") {
					t.Fatalf("refused at save without naming the field: %s", bad.body)
				}
				t.Logf("refused at save: %s", hosMessage(t, bad))
				return
			}
			wantStatus(t, bad, http.StatusOK)
			badID := decode(t, bad, &harkv1.Trigger{}).GetId()
			good := createTrigger(t, map[string]any{"event": name})
			wantStatus(t, good, http.StatusOK)
			goodID := decode(t, good, &harkv1.Trigger{}).GetId()

			body := eventFor(t, name)
			// Twice: what a previous case left in a sync.Pool (encoding/json
			// keeps its buffers there) survives one collection.
			runtime.GC()
			runtime.GC()
			var before runtime.MemStats
			runtime.ReadMemStats(&before)
			sampler := hosSampleHeap()
			// A delivery to another source, sent while the expression
			// runs, shows what the one ingest committer is doing meanwhile.
			bystander := make(chan string, 1)
			go func() {
				time.Sleep(50 * time.Millisecond)
				began := time.Now()
				status, _, err := h.postIngest(ctx, otherPath, segmentTrack)
				bystander <- fmt.Sprintf("HTTP %d (%v) after %v", status, err, time.Since(began).Round(time.Millisecond))
			}()
			start := time.Now()
			r, res := h.deliver(t, url, body)
			elapsed := time.Since(start)
			peak := sampler.end()
			t.Logf("a delivery to another source sent 50ms in: %s", <-bystander)
			var after runtime.MemStats
			runtime.ReadMemStats(&after)
			t.Logf("delivery took %v; heap %d MiB before, peak %d MiB; %d MiB allocated",
				elapsed.Round(time.Millisecond), before.HeapAlloc>>20, peak>>20, (after.TotalAlloc-before.TotalAlloc)>>20)

			wantStatus(t, r, http.StatusOK)
			if len(res.GetEvents()) != 1 || res.GetEvents()[0].GetStatus() != statusProcessed {
				t.Fatalf("ReceiveResponse = %v, want one PROCESSED event", res)
			}
			ev := h.getEvent(t, "development", res.GetEvents()[0].GetId())
			actions := map[string]*harkv1.Action{}
			for _, a := range ev.GetActions() {
				actions[a.GetTriggerId()] = a
			}
			if a := actions[goodID]; a.GetStatus() != harkv1.ActionStatus_ACTION_STATUS_SUCCESS || a.GetWorkflowRunId() == "" {
				t.Errorf("the other trigger of the event: action %v, want SUCCESS with a run", a)
			}
			a := actions[badID]
			switch {
			case tt.mayRun && a.GetStatus() == harkv1.ActionStatus_ACTION_STATUS_SUCCESS:
			case a.GetStatus() != harkv1.ActionStatus_ACTION_STATUS_ERROR:
				t.Errorf("hostile trigger: action %v, want ERROR: the expression was not stopped (it ran for %v)", a, elapsed.Round(time.Millisecond))
			case !strings.HasPrefix(a.GetReason(), "mapping.cancellationKey: ") || len(a.GetReason()) <= len("mapping.cancellationKey: "):
				t.Errorf("hostile trigger: reason %q, want mapping.cancellationKey: and what stopped it", a.GetReason())
			default:
				t.Logf("stopped: %s", a.GetReason())
			}
			if peak > hosExprLimit {
				t.Errorf("the heap reached %d MiB while the expression ran, over the %d MiB a bounded run may use", peak>>20, hosExprLimit>>20)
			}

			// Healthy afterwards, and the hostile trigger no longer runs.
			wantStatus(t, h.rest(t, http.MethodDelete, triggerPath+"/"+badID, ""), http.StatusOK)
			wantStatus(t, h.rest(t, http.MethodDelete, triggerPath+"/"+goodID, ""), http.StatusOK)
			h.hosAlive(t, url)
		})
	}

	// A mapping that cuts a string inside a multi-byte character makes
	// invalid UTF-8, which no stored record may hold. It must fail its own
	// trigger, not the delivery (and every other delivery committed with
	// it).
	t.Run("mapping yields invalid UTF-8", func(t *testing.T) {
		for _, tt := range []struct{ name, expr string }{
			{"a byte slice inside a character", `properties.title[0:1]`},
			{"fromBase64", `fromBase64("/w==")`},
		} {
			t.Run(tt.name, func(t *testing.T) {
				name := "UTF-8 " + tt.name
				bad := createTrigger(t, map[string]any{"event": name, "mapping": map[string]any{"cancellationKey": tt.expr}})
				wantStatus(t, bad, http.StatusOK)
				badID := decode(t, bad, &harkv1.Trigger{}).GetId()
				defer h.rest(t, http.MethodDelete, triggerPath+"/"+badID, "")

				// A delivery to another source, committed with it when
				// they arrive together, must not fail with it.
				other := h.createSource(t, "bystander")
				otherPath, ctx := h.ingestPath(t, devURL(t, other)), ctxFor(t)
				var wg sync.WaitGroup
				var otherStatus int
				var otherErr error
				wg.Go(func() {
					otherStatus, _, otherErr = h.postIngest(ctx, otherPath, segmentTrack)
				})
				r, res := h.deliver(t, url, eventFor(t, name))
				wg.Wait()
				if r.status != http.StatusOK {
					t.Errorf("delivery: HTTP %d, want 200 with the trigger's action ERROR; body %s", r.status, r.body)
				} else {
					ev := h.getEvent(t, "development", res.GetEvents()[0].GetId())
					if len(ev.GetActions()) != 1 || ev.GetActions()[0].GetStatus() != harkv1.ActionStatus_ACTION_STATUS_ERROR ||
						!strings.Contains(ev.GetActions()[0].GetReason(), "UTF-8") {
						t.Errorf("actions = %v, want one ERROR that names invalid UTF-8", ev.GetActions())
					}
				}
				if otherStatus != http.StatusOK {
					t.Errorf("a delivery to another source sent at the same time: HTTP %d (%v), want 200", otherStatus, otherErr)
				}
				h.hosAlive(t, url)
			})
		}
	})
}
