package server_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/api/httpbody"
	"google.golang.org/protobuf/proto"

	harkv1 "github.com/harkhq/hark/gen/hark/v1"
	"github.com/harkhq/hark/gen/hark/v1/harkv1connect"
)

// loggedAs is the type, name and user id an event must be logged with.
type loggedAs struct{ typ, name, userID string }

func loggedOf(ev *harkv1.SourceEvent) loggedAs {
	return loggedAs{ev.GetType(), ev.GetName(), ev.GetUserId()}
}

// wantLogged fails unless the events a delivery stored (by the ids of res,
// in order) are logged as want.
func wantLogged(t *testing.T, h *harness, env string, res *harkv1.ReceiveResponse, want []loggedAs) {
	t.Helper()
	var got []loggedAs
	for _, re := range res.GetEvents() {
		if re.GetId() == "" {
			continue
		}
		got = append(got, loggedOf(h.getEvent(t, env, re.GetId())))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("logged events = %+v, want %+v", got, want)
	}
}

// ---------------------------------------------------------------------------
// Request forms (DESIGN §5).
// ---------------------------------------------------------------------------

func TestIngestRequestForms(t *testing.T) {
	t.Parallel()
	h := startServer(t)
	tests := []struct {
		name string
		body string
		want []loggedAs
		// contextLibrary is the context.library.name each original event
		// must carry, when set (the batch-level context merged in).
		contextLibrary string
	}{
		{
			name: "single event",
			body: `{"type":"track","event":"Signed Up","userId":"u1","messageId":"m-1","properties":{"plan":"pro"}}`,
			want: []loggedAs{{"track", "Signed Up", "u1"}},
		},
		{
			name: "HTTP API batch",
			body: `{"batch":[
				{"type":"track","event":"Clicked","userId":"u1"},
				{"type":"identify","userId":"u1","traits":{"name":"Ann"}},
				{"type":"page","name":"Home","userId":"u2","context":{"library":{"name":"own"}}}
			],"context":{"library":{"name":"batch-lib"},"ip":"10.0.0.1"}}`,
			want: []loggedAs{{"track", "Clicked", "u1"}, {"identify", "", "u1"}, {"page", "Home", "u2"}},
		},
		{
			name: "bare array",
			body: `[{"type":"track","event":"Opened","userId":"u3"},{"type":"screen","name":"Main","userId":"u3"}]`,
			want: []loggedAs{{"track", "Opened", "u3"}, {"screen", "Main", "u3"}},
		},
		{
			name: "legacy action key",
			body: `{"action":"track","event":"Legacy","userId":"u4"}`,
			want: []loggedAs{{"track", "Legacy", "u4"}},
		},
		{
			name: "numeric userId",
			body: `{"type":"track","event":"Numbered","userId":12345}`,
			want: []loggedAs{{"track", "Numbered", "12345"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			src := h.createSource(t, tt.name)
			res := h.mustDeliver(t, devURL(t, src), []byte(tt.body), len(tt.want))
			for i, re := range res.GetEvents() {
				if re.GetId() == "" || re.GetStatus() != statusProcessed {
					t.Fatalf("response event %d = %v, want PROCESSED with an id", i, re)
				}
			}
			wantLogged(t, h, "development", res, tt.want)
			if n := len(h.sourceEvents(t, "development", src.GetId())); n != len(tt.want) {
				t.Fatalf("source has %d logged events, want %d", n, len(tt.want))
			}
		})
	}

	t.Run("batch context merges into each event", func(t *testing.T) {
		t.Parallel()
		src := h.createSource(t, "merge")
		body := `{"batch":[
			{"type":"track","event":"A","userId":"u1"},
			{"type":"track","event":"B","userId":"u1","context":{"library":{"name":"own"}}}
		],"context":{"library":{"name":"batch-lib"},"ip":"10.0.0.1"},"integrations":{"All":false}}`
		res := h.mustDeliver(t, devURL(t, src), []byte(body), 2)
		a := h.getEvent(t, "development", res.GetEvents()[0].GetId())
		b := h.getEvent(t, "development", res.GetEvents()[1].GetId())
		if got := field(a.GetEvent(), "context", "library", "name").GetStringValue(); got != "batch-lib" {
			t.Errorf("event A context.library.name = %q, want batch-lib", got)
		}
		if got := field(a.GetEvent(), "integrations", "All"); got == nil || got.GetBoolValue() {
			t.Errorf("event A integrations.All = %v, want false from the batch", got)
		}
		// The event's own keys win; other batch-level keys still merge in.
		if got := field(b.GetEvent(), "context", "library", "name").GetStringValue(); got != "own" {
			t.Errorf("event B context.library.name = %q, want its own value", got)
		}
		if got := field(b.GetEvent(), "context", "ip").GetStringValue(); got != "10.0.0.1" {
			t.Errorf("event B context.ip = %q, want 10.0.0.1 from the batch", got)
		}
	})
}

// ---------------------------------------------------------------------------
// Rejections and skips.
// ---------------------------------------------------------------------------

// deepObject returns a JSON object nested depth levels deep.
func deepObject(depth int) string {
	return strings.Repeat(`{"a":`, depth-1) + `{}` + strings.Repeat(`}`, depth-1)
}

func TestIngestRejections(t *testing.T) {
	t.Parallel()
	h := startServer(t)
	good := `{"type":"track","event":"Good","userId":"u1"}`
	// An event one level deeper than the 64 allowed: properties add one
	// level to the event object.
	tooDeep := `{"type":"track","event":"Deep","userId":"u1","properties":` + deepObject(64) + `}`
	tooBig := `{"type":"track","event":"Big","userId":"u1","properties":{"pad":"` + strings.Repeat("x", 33<<10) + `"}}`

	t.Run("whole delivery refused", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			name string
			body string
			// wantViolation, when set, names the google.rpc.BadRequest
			// field the 400 must carry.
			wantViolation string
		}{
			{"truncated JSON", `{"type":"track","event":"Signed Up","userId":"u1"`, ""},
			{"truncated batch", `{"batch":[{"type":"track","event":"A","userId":"u1"}`, ""},
			{"not JSON", `type=track&event=A`, ""},
			{"empty body", ``, ""},
			{"lone track without event", `{"type":"track","userId":"u1"}`, "events[0]"},
			{"lone non-object in an array", `[42]`, "events[0]"},
			{"every event of a batch rejected", `{"batch":[{"type":"track"},"x"]}`, "events[1]"},
			{"empty batch", `{"batch":[]}`, ""},
			{"empty array", `[]`, ""},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				src := h.createSource(t, tt.name)
				r, _ := h.deliver(t, devURL(t, src), []byte(tt.body))
				wantStatus(t, r, http.StatusBadRequest)
				// REST errors are a google.rpc.Status with code 3.
				if got := decodeMap(t, r)["code"]; got != float64(3) {
					t.Errorf("error code = %v, want 3 (invalid argument); body %s", got, r.body)
				}
				if tt.wantViolation != "" {
					wantViolation(t, restViolations(t, r), tt.wantViolation)
				}
				if evs := h.sourceEvents(t, "development", src.GetId()); len(evs) != 0 {
					t.Fatalf("a refused delivery stored %d events", len(evs))
				}
			})
		}
	})

	t.Run("bad events rejected alone", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			name       string
			body       string
			want       []harkv1.SourceEventStatus // per event, in order
			wantLogged []loggedAs
		}{
			{
				name:       "batch mixing a good event, a track without event and a non-object",
				body:       `{"batch":[` + good + `,{"type":"track","userId":"u1"},42]}`,
				want:       []harkv1.SourceEventStatus{statusProcessed, statusRejected, statusRejected},
				wantLogged: []loggedAs{{"track", "Good", "u1"}},
			},
			{
				name:       "array with rejects around a good event",
				body:       `["nope",` + good + `,{"type":"track","event":42,"userId":"u1"}]`,
				want:       []harkv1.SourceEventStatus{statusRejected, statusProcessed, statusRejected},
				wantLogged: []loggedAs{{"track", "Good", "u1"}},
			},
			{
				name:       "an event over 32 KiB",
				body:       `{"batch":[` + tooBig + `,` + good + `]}`,
				want:       []harkv1.SourceEventStatus{statusRejected, statusProcessed},
				wantLogged: []loggedAs{{"track", "Good", "u1"}},
			},
			{
				name:       "an event nested over 64 levels in an array",
				body:       `[` + good + `,` + tooDeep + `]`,
				want:       []harkv1.SourceEventStatus{statusProcessed, statusRejected},
				wantLogged: []loggedAs{{"track", "Good", "u1"}},
			},
			{
				name:       "an event nested over 64 levels in a batch",
				body:       `{"batch":[` + good + `,` + tooDeep + `]}`,
				want:       []harkv1.SourceEventStatus{statusProcessed, statusRejected},
				wantLogged: []loggedAs{{"track", "Good", "u1"}},
			},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				src := h.createSource(t, "rejects")
				res := h.mustDeliver(t, devURL(t, src), []byte(tt.body), len(tt.want))
				for i, re := range res.GetEvents() {
					if re.GetStatus() != tt.want[i] {
						t.Fatalf("event %d status = %v, want %v; response %v", i, re.GetStatus(), tt.want[i], res)
					}
					rejected := re.GetStatus() == statusRejected
					if rejected && (re.GetId() != "" || re.GetReason() == "") {
						t.Errorf("rejected event %d = %v, want no id and a reason", i, re)
					}
					if !rejected && re.GetId() == "" {
						t.Errorf("accepted event %d has no id", i)
					}
				}
				wantLogged(t, h, "development", res, tt.wantLogged)
				evs := h.sourceEvents(t, "development", src.GetId())
				if len(evs) != len(tt.wantLogged) {
					t.Fatalf("the log holds %d events, want only the %d good ones", len(evs), len(tt.wantLogged))
				}
			})
		}
	})

	t.Run("reasons name the problem", func(t *testing.T) {
		t.Parallel()
		src := h.createSource(t, "reasons")
		res := h.mustDeliver(t, devURL(t, src), []byte(`{"batch":[`+good+`,{"type":"track","userId":"u1"},42]}`), 3)
		if reason := res.GetEvents()[1].GetReason(); !strings.Contains(reason, "event") {
			t.Errorf("reason for a track without event = %q, want it to mention `event`", reason)
		}
		if reason := res.GetEvents()[2].GetReason(); !strings.Contains(reason, "object") {
			t.Errorf("reason for a non-object = %q, want it to say an event must be an object", reason)
		}
	})

	t.Run("skipped types", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			name, body string
			want       loggedAs
		}{
			{"unknown type", `{"type":"flush","userId":"u9"}`, loggedAs{"flush", "", "u9"}},
			{"no type", `{"userId":"u9","properties":{"a":1}}`, loggedAs{"", "", "u9"}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				src := h.createSource(t, tt.name)
				re := h.deliverOne(t, devURL(t, src), []byte(tt.body))
				if re.GetStatus() != statusSkipped || re.GetReason() == "" {
					t.Fatalf("response = %v, want SKIPPED with a reason", re)
				}
				ev := h.getEvent(t, "development", re.GetId())
				if loggedOf(ev) != tt.want || ev.GetStatus() != statusSkipped || ev.GetReason() == "" || len(ev.GetActions()) != 0 {
					t.Fatalf("logged = %v, want %+v SKIPPED with a reason and no actions", ev, tt.want)
				}
			})
		}
	})
}

// ---------------------------------------------------------------------------
// Event log and catalog.
// ---------------------------------------------------------------------------

func TestEventLog(t *testing.T) {
	t.Parallel()
	h := startServer(t)
	a := h.createSource(t, "A")
	b := h.createSource(t, "B")

	type delivery struct {
		label string
		src   *harkv1.Source
		body  string
	}
	deliveries := []delivery{
		{"order1", a, `{"type":"track","event":"Order Completed","userId":"u1","messageId":"m-1","properties":{"item":"拉面 🍜","note":"Grüße","n":1}}`},
		{"order2", a, `{"type":"track","event":"Order Completed","userId":"u2","properties":{"item":"寿司 🍣","n":2}}`},
		{"signup", a, `{"type":"track","event":"Signed Up","userId":"u1","properties":{"emoji":"👩‍💻"}}`},
		{"identify", a, `{"type":"identify","userId":"u1","traits":{"name":"Zoë 🦊"}}`},
		{"skipped", a, `{"type":"flush","userId":"u3"}`}, // an unknown type: logged as SKIPPED
		{"other", b, `{"type":"track","event":"Order Completed","userId":"u1"}`},
	}
	ids := map[string]string{} // label → event id
	for _, d := range deliveries {
		ids[d.label] = h.deliverOne(t, devURL(t, d.src), []byte(d.body)).GetId()
	}
	idsOf := func(labels ...string) []string {
		out := make([]string, len(labels))
		for i, l := range labels {
			out[i] = ids[l]
		}
		slices.Sort(out)
		return out
	}
	sortedIDs := func(evs []*harkv1.SourceEvent) []string {
		out := eventIDs(evs)
		slices.Sort(out)
		return out
	}

	t.Run("event types", func(t *testing.T) {
		t.Parallel()
		r := h.rest(t, http.MethodGet, "/v1/environments/development/sources/"+a.GetId()+"/event-types", "")
		wantStatus(t, r, http.StatusOK)
		ets := decode(t, r, &harkv1.ListEventTypesResponse{}).GetEventTypes()
		type row struct {
			typ, name string
			count     int64
		}
		var got []row
		for _, et := range ets {
			got = append(got, row{et.GetType(), et.GetName(), et.GetCount()})
			if et.GetSourceId() != a.GetId() || et.GetEnvironment() != "development" {
				t.Errorf("event type %v names source %q environment %q", et, et.GetSourceId(), et.GetEnvironment())
			}
			first, last := et.GetFirstReceivedAt(), et.GetLastReceivedAt()
			if first == nil || last == nil || last.AsTime().Before(first.AsTime()) {
				t.Errorf("event type %s/%s first %v last %v, want both set, last not before first", et.GetType(), et.GetName(), first, last)
			}
		}
		want := []row{{"flush", "", 1}, {"identify", "", 1}, {"track", "Order Completed", 2}, {"track", "Signed Up", 1}}
		if !slices.Equal(got, want) {
			t.Fatalf("event types = %+v, want %+v", got, want)
		}

		// Over Connect, paged one at a time.
		var paged []row
		token := ""
		for range 10 {
			res := mustCall(t, h.events().ListEventTypes, &harkv1.ListEventTypesRequest{
				Environment: "development", SourceId: a.GetId(), PageSize: 1, PageToken: token,
			})
			for _, et := range res.GetEventTypes() {
				paged = append(paged, row{et.GetType(), et.GetName(), et.GetCount()})
			}
			if token = res.GetNextPageToken(); token == "" {
				break
			}
		}
		if !slices.Equal(paged, want) {
			t.Fatalf("paged event types = %+v, want %+v", paged, want)
		}

		// Production saw nothing.
		r = h.rest(t, http.MethodGet, "/v1/environments/production/sources/"+a.GetId()+"/event-types", "")
		wantStatus(t, r, http.StatusOK)
		if ets := decode(t, r, &harkv1.ListEventTypesResponse{}).GetEventTypes(); len(ets) != 0 {
			t.Fatalf("production event types = %v, want none", ets)
		}
		wantStatus(t, h.rest(t, http.MethodGet, "/v1/environments/nope/sources/"+a.GetId()+"/event-types", ""), http.StatusNotFound)
		wantStatus(t, h.rest(t, http.MethodGet, "/v1/environments/development/sources/src_nope/event-types", ""), http.StatusNotFound)
	})

	t.Run("list shows the common form", func(t *testing.T) {
		t.Parallel()
		r := h.rest(t, http.MethodGet, "/v1/environments/development/events?sourceId="+a.GetId(), "")
		wantStatus(t, r, http.StatusOK)
		// Wire names first.
		raw := decodeMap(t, r)
		rawEvents, _ := raw["sourceEvents"].([]any)
		if len(rawEvents) != 5 {
			t.Fatalf("sourceEvents = %d entries, want 5; body %s", len(rawEvents), r.body)
		}
		for _, re := range rawEvents {
			m := re.(map[string]any)
			for _, k := range []string{"id", "sourceId", "type", "event", "status", "receivedAt"} {
				if _, ok := m[k]; !ok {
					t.Errorf("event %v has no %q", m["id"], k)
				}
			}
		}
		if !bytes.Contains(r.body, []byte("拉面 🍜")) && !bytes.Contains(r.body, []byte(`\u`)) {
			t.Errorf("REST body holds neither the raw nor an escaped form of the unicode data: %s", r.body)
		}

		evs := decode(t, r, &harkv1.ListSourceEventsResponse{}).GetSourceEvents()
		if !slices.IsSortedFunc(evs, func(x, y *harkv1.SourceEvent) int { return strings.Compare(y.GetId(), x.GetId()) }) {
			t.Errorf("events are not newest first: %q", eventIDs(evs))
		}
		byID := map[string]*harkv1.SourceEvent{}
		for _, ev := range evs {
			byID[ev.GetId()] = ev
		}
		order := byID[ids["order1"]]
		if order == nil {
			t.Fatalf("order1 (%s) is not listed", ids["order1"])
		}
		if order.GetUserId() != "u1" || order.GetType() != "track" || order.GetName() != "Order Completed" {
			t.Errorf("order1 = %v, want track Order Completed by u1", order)
		}
		if got := field(order.GetData(), "item").GetStringValue(); got != "拉面 🍜" {
			t.Errorf("data.item = %q, want 拉面 🍜", got)
		}
		if got := field(order.GetData(), "note").GetStringValue(); got != "Grüße" {
			t.Errorf("data.note = %q, want Grüße", got)
		}
		// event is the original, and its properties are the data.
		if got := field(order.GetEvent(), "messageId").GetStringValue(); got != "m-1" {
			t.Errorf("event.messageId = %q, want m-1", got)
		}
		if got := field(order.GetEvent(), "properties").GetStructValue(); !proto.Equal(got, order.GetData()) {
			t.Errorf("event.properties = %v, want the same as data %v", got, order.GetData())
		}
		if got := order.GetIdempotencyKey(); got != "m-1" {
			t.Errorf("idempotencyKey = %q, want m-1 (kept even with idempotency off)", got)
		}
		if got := field(byID[ids["signup"]].GetData(), "emoji").GetStringValue(); got != "👩‍💻" {
			t.Errorf("signup data.emoji = %q, want 👩‍💻", got)
		}
		if got := field(byID[ids["identify"]].GetTraits(), "name").GetStringValue(); got != "Zoë 🦊" {
			t.Errorf("identify traits.name = %q, want Zoë 🦊", got)
		}
	})

	t.Run("production stays empty", func(t *testing.T) {
		t.Parallel()
		if evs := h.listEvents(t, "production", nil); len(evs) != 0 {
			t.Fatalf("production events = %d, want none", len(evs))
		}
		if evs := h.listEvents(t, "production", url.Values{"sourceId": {a.GetId()}}); len(evs) != 0 {
			t.Fatalf("production events of A = %d, want none", len(evs))
		}
	})

	t.Run("filters", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			name  string
			query url.Values
			req   *harkv1.ListSourceEventsRequest
			want  []string
		}{
			{"sourceId A", url.Values{"sourceId": {a.GetId()}},
				&harkv1.ListSourceEventsRequest{SourceId: a.GetId()},
				idsOf("order1", "order2", "signup", "identify", "skipped")},
			{"sourceId B", url.Values{"sourceId": {b.GetId()}},
				&harkv1.ListSourceEventsRequest{SourceId: b.GetId()},
				idsOf("other")},
			{"no filter", nil, &harkv1.ListSourceEventsRequest{},
				idsOf("order1", "order2", "signup", "identify", "skipped", "other")},
			{"type", url.Values{"type": {"track"}, "sourceId": {a.GetId()}},
				&harkv1.ListSourceEventsRequest{Type: "track", SourceId: a.GetId()},
				idsOf("order1", "order2", "signup")},
			{"name across sources", url.Values{"name": {"Order Completed"}},
				&harkv1.ListSourceEventsRequest{Name: "Order Completed"},
				idsOf("order1", "order2", "other")},
			{"status", url.Values{"status": {"SOURCE_EVENT_STATUS_SKIPPED"}},
				&harkv1.ListSourceEventsRequest{Status: statusSkipped},
				idsOf("skipped")},
			{"userId", url.Values{"userId": {"u1"}},
				&harkv1.ListSourceEventsRequest{UserId: "u1"},
				idsOf("order1", "signup", "identify", "other")},
			{"userId and sourceId", url.Values{"userId": {"u1"}, "sourceId": {b.GetId()}},
				&harkv1.ListSourceEventsRequest{UserId: "u1", SourceId: b.GetId()},
				idsOf("other")},
			{"type and name", url.Values{"type": {"track"}, "name": {"Signed Up"}},
				&harkv1.ListSourceEventsRequest{Type: "track", Name: "Signed Up"},
				idsOf("signup")},
			{"nothing matches", url.Values{"userId": {"nobody"}},
				&harkv1.ListSourceEventsRequest{UserId: "nobody"},
				nil},
		}
		for _, tt := range tests {
			t.Run(tt.name+"/rest", func(t *testing.T) {
				t.Parallel()
				if got := sortedIDs(h.listEvents(t, "development", tt.query)); !slices.Equal(got, tt.want) {
					t.Fatalf("events = %q, want %q", got, tt.want)
				}
			})
			t.Run(tt.name+"/connect", func(t *testing.T) {
				t.Parallel()
				req := proto.CloneOf(tt.req)
				req.Environment = "development"
				req.PageSize = 1000
				res := mustCall(t, h.events().ListSourceEvents, req)
				if got := sortedIDs(res.GetSourceEvents()); !slices.Equal(got, tt.want) {
					t.Fatalf("events = %q, want %q", got, tt.want)
				}
			})
		}
	})

	t.Run("paging", func(t *testing.T) {
		t.Parallel()
		all := h.listEvents(t, "development", nil)
		if len(all) != 6 {
			t.Fatalf("%d events, want 6", len(all))
		}
		pagers := []struct {
			name string
			page func(t *testing.T, token string) (*harkv1.ListSourceEventsResponse, error)
		}{
			{"connect", func(t *testing.T, token string) (*harkv1.ListSourceEventsResponse, error) {
				return call(t, h.events().ListSourceEvents, &harkv1.ListSourceEventsRequest{Environment: "development", PageSize: 4, PageToken: token})
			}},
			{"rest", func(t *testing.T, token string) (*harkv1.ListSourceEventsResponse, error) {
				q := url.Values{"pageSize": {"4"}}
				if token != "" {
					q.Set("pageToken", token)
				}
				r := h.rest(t, http.MethodGet, "/v1/environments/development/events?"+q.Encode(), "")
				if r.status != http.StatusOK {
					return nil, fmt.Errorf("HTTP %d: %s", r.status, r.body)
				}
				return decode(t, r, &harkv1.ListSourceEventsResponse{}), nil
			}},
		}
		for _, p := range pagers {
			t.Run(p.name, func(t *testing.T) {
				t.Parallel()
				var sizes []int
				var got []string
				token := ""
				for range 10 {
					res, err := p.page(t, token)
					if err != nil {
						t.Fatalf("page %d: %v", len(sizes)+1, err)
					}
					sizes = append(sizes, len(res.GetSourceEvents()))
					got = append(got, eventIDs(res.GetSourceEvents())...)
					if token = res.GetNextPageToken(); token == "" {
						break
					}
				}
				if !slices.Equal(sizes, []int{4, 2}) {
					t.Fatalf("page sizes = %v, want [4 2]", sizes)
				}
				// Pages continue where the last ended: the same events in the
				// same newest-first order as one big page.
				if want := eventIDs(all); !slices.Equal(got, want) {
					t.Fatalf("paged ids = %q, want %q", got, want)
				}
			})
		}
		t.Run("bad token", func(t *testing.T) {
			t.Parallel()
			r := h.rest(t, http.MethodGet, "/v1/environments/development/events?pageToken=%21%21", "")
			wantStatus(t, r, http.StatusBadRequest)
			wantViolation(t, restViolations(t, r), "pageToken")
		})
	})

	t.Run("get", func(t *testing.T) {
		t.Parallel()
		id := ids["order1"]
		r := h.rest(t, http.MethodGet, "/v1/environments/development/events/"+id, "")
		wantStatus(t, r, http.StatusOK)
		viaREST := decode(t, r, &harkv1.SourceEvent{}) // response_body: source_event
		viaConnect := h.getEvent(t, "development", id)
		if viaREST.GetId() != id || !proto.Equal(viaREST, viaConnect) {
			t.Fatalf("REST GET = %v\nConnect GET = %v\nwant both event %s", viaREST, viaConnect, id)
		}
		viaGRPC, err := harkv1.NewEventServiceClient(h.grpcConn(t)).GetSourceEvent(grpcCtx(t, h.admin()), &harkv1.GetSourceEventRequest{Environment: "development", Id: id})
		if err != nil {
			t.Fatalf("gRPC GetSourceEvent: %v", err)
		}
		if !proto.Equal(viaGRPC.GetSourceEvent(), viaConnect) {
			t.Fatalf("gRPC GET = %v, want %v", viaGRPC.GetSourceEvent(), viaConnect)
		}
		var listed *harkv1.SourceEvent
		for _, ev := range h.sourceEvents(t, "development", a.GetId()) {
			if ev.GetId() == id {
				listed = ev
			}
		}
		if !proto.Equal(listed, viaConnect) {
			t.Fatalf("GetSourceEvent = %v, want what the list shows: %v", viaConnect, listed)
		}

		wantStatus(t, h.rest(t, http.MethodGet, "/v1/environments/development/events/evt_nope", ""), http.StatusNotFound)
		_, err = call(t, h.events().GetSourceEvent, &harkv1.GetSourceEventRequest{Environment: "development", Id: "evt_nope"})
		wantCode(t, err, connect.CodeNotFound)
		// An event belongs to its environment.
		wantStatus(t, h.rest(t, http.MethodGet, "/v1/environments/production/events/"+id, ""), http.StatusNotFound)
		wantStatus(t, h.rest(t, http.MethodGet, "/v1/environments/nope/events/"+id, ""), http.StatusNotFound)
		wantStatus(t, h.rest(t, http.MethodGet, "/v1/environments/nope/events", ""), http.StatusNotFound)
	})
}

// ---------------------------------------------------------------------------
// Signatures (DESIGN §5).
// ---------------------------------------------------------------------------

func TestIngestSignatures(t *testing.T) {
	t.Parallel()
	h := startServer(t)
	src := h.createSource(t, "Signed")
	ingestURL := devURL(t, src)
	const secret, rotated = "first-s3cret-value", "second-s3cret-value"

	// Every response body is kept; none may contain a secret.
	var (
		mu     sync.Mutex
		bodies [][]byte
	)
	keep := func(b []byte) {
		mu.Lock()
		defer mu.Unlock()
		bodies = append(bodies, b)
	}
	stored := func(t *testing.T) int {
		t.Helper()
		return len(h.sourceEvents(t, "development", src.GetId()))
	}

	se := h.patchSourceEnv(t, src.GetId(), "development", `{"pluginSettings":{"shared_secret":"`+secret+`"}}`)
	if got := se.GetPluginSettings()["shared_secret"]; got != "********" {
		t.Fatalf("PATCH answered shared_secret %q, want ********", got)
	}

	single := []byte(`{"type":"track","event":"Signed Up","userId":"u1"}`)
	elem0 := []byte(`{"type":"track","event":"First","userId":"u1"}`)
	elem1 := []byte(`{"type":"track","event":"Second","userId":"u1"}`)
	array := []byte("[" + string(elem0) + ",\n  " + string(elem1) + "]")
	// Pretty-printed, as a sender's JSON encoder may write it: the signed
	// bytes are the first element's own, without the whitespace around it.
	spaced := []byte("[\n  " + string(elem0) + ",\n  " + string(elem1) + "\n]\n")

	tests := []struct {
		name string
		body []byte
		sig  string // "" sends no X-Signature
		want int
	}{
		{"unsigned", single, "", http.StatusUnauthorized},
		{"signed with another secret", single, sign("not-the-secret", single), http.StatusUnauthorized},
		{"signature of another body", single, sign(secret, elem0), http.StatusUnauthorized},
		{"not hex", single, "zz-not-hex", http.StatusUnauthorized},
		{"signed over the raw body", single, sign(secret, single), http.StatusOK},
		{"bare array unsigned", array, "", http.StatusUnauthorized},
		{"bare array signed over the whole body", array, sign(secret, array), http.StatusUnauthorized},
		{"bare array signed over the second element", array, sign(secret, elem1), http.StatusUnauthorized},
		{"bare array signed over the first element's raw bytes", array, sign(secret, elem0), http.StatusOK},
		{"pretty-printed bare array signed over the first element", spaced, sign(secret, elem0), http.StatusOK},
		{"pretty-printed bare array signed over the whole body", spaced, sign(secret, spaced), http.StatusUnauthorized},
	}
	for _, tt := range tests {
		// Sequential: each case checks the stored count before and after.
		t.Run(tt.name, func(t *testing.T) {
			before := stored(t)
			var header []string
			if tt.sig != "" {
				header = []string{"X-Signature", tt.sig}
			}
			r, res := h.deliver(t, ingestURL, tt.body, header...)
			keep(r.body)
			wantStatus(t, r, tt.want)
			after := stored(t)
			if tt.want != http.StatusOK {
				if after != before {
					t.Fatalf("a %d delivery stored %d events", tt.want, after-before)
				}
				return
			}
			if after-before != len(res.GetEvents()) {
				t.Fatalf("a signed delivery of %d events stored %d", len(res.GetEvents()), after-before)
			}
		})
	}

	t.Run("over connect", func(t *testing.T) {
		c := harkv1connect.NewIngestServiceClient(h.http, h.base) // no admin token
		receive := func(t *testing.T, sig string) (*harkv1.ReceiveResponse, error) {
			t.Helper()
			req := connect.NewRequest(&harkv1.ReceiveRequest{
				Token: ingestToken(t, ingestURL),
				Body:  &httpbody.HttpBody{ContentType: "application/json", Data: single},
			})
			if sig != "" {
				req.Header().Set("X-Signature", sig)
			}
			res, err := c.Receive(ctxFor(t), req)
			if err != nil {
				return nil, err
			}
			return res.Msg, nil
		}
		before := stored(t)
		_, err := receive(t, "")
		wantCode(t, err, connect.CodeUnauthenticated)
		_, err = receive(t, sign("not-the-secret", single))
		wantCode(t, err, connect.CodeUnauthenticated)
		if after := stored(t); after != before {
			t.Fatalf("refused Connect deliveries stored %d events", after-before)
		}
		res, err := receive(t, sign(secret, single))
		if err != nil {
			t.Fatalf("signed Receive over Connect: %v", err)
		}
		wantStored(t, res)
		if after := stored(t); after != before+1 {
			t.Fatalf("stored %d events after a signed Connect delivery, want 1", after-before)
		}
	})

	t.Run("rotated secret", func(t *testing.T) {
		h.patchSourceEnv(t, src.GetId(), "development", `{"pluginSettings":{"shared_secret":"`+rotated+`"}}`)
		before := stored(t)
		r, _ := h.deliver(t, ingestURL, single, "X-Signature", sign(secret, single))
		keep(r.body)
		wantStatus(t, r, http.StatusUnauthorized)
		r, _ = h.deliver(t, ingestURL, array, "X-Signature", sign(secret, elem0))
		keep(r.body)
		wantStatus(t, r, http.StatusUnauthorized)
		if after := stored(t); after != before {
			t.Fatalf("deliveries signed with the old secret stored %d events", after-before)
		}
		r, _ = h.deliver(t, ingestURL, single, "X-Signature", sign(rotated, single))
		keep(r.body)
		wantStatus(t, r, http.StatusOK)
	})

	t.Run("other environments are not signed", func(t *testing.T) {
		// The secret is per source environment: production has none.
		wantAccepted(t, h.ingest(t, envByName(t, src, "production").GetIngestUrl(), single))
	})

	t.Run("reads never show the secret", func(t *testing.T) {
		for _, path := range []string{
			"/v1/sources/" + src.GetId() + "/environments/development",
			"/v1/sources/" + src.GetId(),
			"/v1/sources",
		} {
			r := h.rest(t, http.MethodGet, path, "")
			wantStatus(t, r, http.StatusOK)
			keep(r.body)
			if !bytes.Contains(r.body, []byte(`"shared_secret":"********"`)) {
				t.Errorf("GET %s does not show shared_secret masked: %s", path, r.body)
			}
		}
		se := mustCall(t, h.sources().GetSourceEnvironment, &harkv1.GetSourceEnvironmentRequest{SourceId: src.GetId(), Environment: "development"}).GetSourceEnvironment()
		if got := se.GetPluginSettings()["shared_secret"]; got != "********" {
			t.Errorf("Connect GetSourceEnvironment shared_secret = %q, want ********", got)
		}
		b, _ := proto.Marshal(se)
		keep(b)
		// The event log does not carry the secret either.
		for _, ev := range h.sourceEvents(t, "development", src.GetId()) {
			b, _ := proto.Marshal(ev)
			keep(b)
		}
		mu.Lock()
		defer mu.Unlock()
		for _, body := range bodies {
			if bytes.Contains(body, []byte(secret)) || bytes.Contains(body, []byte(rotated)) {
				t.Errorf("a response holds a shared secret: %s", body)
			}
		}
	})
}

// ---------------------------------------------------------------------------
// Source types and the third-party RudderStack plugin.
// ---------------------------------------------------------------------------

func TestRudderStackPlugin(t *testing.T) {
	t.Parallel()
	h := startServerWith(t, harnessOptions{before: func(t *testing.T, h *harness) {
		buildRudderStack(t, filepath.Join(h.dir, "plugins"))
	}})

	t.Run("source types", func(t *testing.T) {
		r := h.rest(t, http.MethodGet, "/v1/source-types", "")
		wantStatus(t, r, http.StatusOK)
		types := decode(t, r, &harkv1.ListSourceTypesResponse{}).GetSourceTypes()
		byType := map[string]*harkv1.SourceType{}
		for _, st := range types {
			byType[st.GetType()] = st
		}
		seg, rud := byType["segment"], byType["rudderstack"]
		if seg == nil || rud == nil {
			t.Fatalf("source types = %v, want segment and rudderstack", types)
		}
		if seg.GetOrigin() != harkv1.SourceTypeOrigin_SOURCE_TYPE_ORIGIN_BUILT_IN || seg.GetHealth() != harkv1.SourceTypeHealth_SOURCE_TYPE_HEALTH_SERVING {
			t.Errorf("segment = %v, want built in and serving", seg)
		}
		if rud.GetOrigin() != harkv1.SourceTypeOrigin_SOURCE_TYPE_ORIGIN_PLUGIN_DIR || rud.GetHealth() != harkv1.SourceTypeHealth_SOURCE_TYPE_HEALTH_SERVING {
			t.Errorf("rudderstack = %v, want from the plugin dir and serving", rud)
		}
		if rud.GetDisplayName() != "RudderStack" || rud.GetVersion() == "" || rud.GetIdempotencyKey() != "messageId" {
			t.Errorf("rudderstack = %v, want display name RudderStack, a version, idempotency key messageId", rud)
		}
		// RudderStack signs nothing: no shared_secret setting.
		if slices.ContainsFunc(rud.GetSettings(), func(s *harkv1.SourceTypeSetting) bool { return s.GetKey() == "shared_secret" }) {
			t.Errorf("rudderstack settings = %v, want no shared_secret", rud.GetSettings())
		}
	})

	t.Run("identify traits from context.traits", func(t *testing.T) {
		src := h.createSourceOfType(t, "Rudder", "rudderstack")
		if src.GetType() != "rudderstack" || len(src.GetEnvironments()) != 2 {
			t.Fatalf("created source = %v, want type rudderstack with 2 environments", src)
		}
		h.patchSourceEnv(t, src.GetId(), "development", `{"identifyEnabled":true}`)
		body := `{"type":"identify","userId":"rs-1","anonymousId":"anon-1","messageId":"rs-m1",
			"context":{"traits":{"name":"Rudy Stack","email":"rudy@example.com","phone":"+4912345","plan":"gold","address":{"city":"Berlin"}},
			"library":{"name":"rudder-sdk-js"}}}`
		re := h.deliverOne(t, devURL(t, src), []byte(body))
		if re.GetStatus() != statusProcessed {
			t.Fatalf("response = %v, want PROCESSED", re)
		}
		ev := h.getEvent(t, "development", re.GetId())
		if len(ev.GetActions()) != 1 || ev.GetActions()[0].GetType() != harkv1.ActionType_ACTION_TYPE_IDENTIFY_USER ||
			ev.GetActions()[0].GetStatus() != harkv1.ActionStatus_ACTION_STATUS_SUCCESS {
			t.Fatalf("actions = %v, want one successful IDENTIFY_USER", ev.GetActions())
		}
		u := mustCall(t, h.users().GetUser, &harkv1.GetUserRequest{Environment: "development", Id: "rs-1"}).GetUser()
		if u.GetName() != "Rudy Stack" || u.GetEmail() != "rudy@example.com" || u.GetPhoneNumber() != "+4912345" {
			t.Fatalf("user = %v, want the context.traits name, email and phone", u)
		}
		if field(u.GetProperties(), "plan").GetStringValue() != "gold" || field(u.GetProperties(), "address", "city").GetStringValue() != "Berlin" {
			t.Fatalf("user properties = %v, want plan gold and address.city Berlin", u.GetProperties())
		}

		// A track goes through the same plugin into the log.
		re = h.deliverOne(t, devURL(t, src), []byte(`{"type":"track","event":"Product Viewed","userId":"rs-1","properties":{"sku":"A1"}}`))
		ev = h.getEvent(t, "development", re.GetId())
		if loggedOf(ev) != (loggedAs{"track", "Product Viewed", "rs-1"}) || ev.GetSourceId() != src.GetId() {
			t.Fatalf("logged track = %v", ev)
		}
		// RudderStack has no signature: an X-Signature is irrelevant and a
		// shared_secret setting is unknown.
		h.deliverOne(t, devURL(t, src), []byte(`{"type":"track","event":"Signed?","userId":"rs-1"}`), "X-Signature", "deadbeef")
		r := h.rest(t, http.MethodPatch, "/v1/sources/"+src.GetId()+"/environments/development", `{"pluginSettings":{"shared_secret":"x"}}`)
		wantStatus(t, r, http.StatusBadRequest)
	})
}

// ---------------------------------------------------------------------------
// A crashed plugin: 503, nothing stored, then recovery.
// ---------------------------------------------------------------------------

func TestPluginKilled(t *testing.T) {
	t.Parallel()
	marker := rand.Text()
	h := startServerWith(t, harnessOptions{pluginMarker: marker})
	src := h.createSource(t, "Crash")
	ingestURL := devURL(t, src)
	body := []byte(`{"type":"track","event":"During Crash","userId":"u1"}`)
	wantAccepted(t, h.ingest(t, ingestURL, body))

	segmentPID := func(t *testing.T) int {
		t.Helper()
		pids := pluginPIDs(t, "segment", marker)
		if len(pids) != 1 {
			t.Fatalf("found %d segment plugin processes of this server (%v), want 1", len(pids), pids)
		}
		return pids[0]
	}
	first := segmentPID(t)

	// Kill the plugin and deliver at once. The supervisor restarts it after
	// a backoff; should it win the race, kill the new process and try again.
	accepted := 1
	got503 := false
	pid := first
	for attempt := 0; attempt < 5 && !got503; attempt++ {
		if attempt > 0 {
			pid = waitForPlugin(t, marker, pid)
		}
		killProcess(t, pid)
		r := h.ingest(t, ingestURL, body)
		switch r.status {
		case http.StatusServiceUnavailable:
			got503 = true
			if code := decodeMap(t, r)["code"]; code != float64(14) {
				t.Errorf("503 body code = %v, want 14 (unavailable); body %s", code, r.body)
			}
		case http.StatusOK:
			accepted++ // already restarted
		default:
			t.Fatalf("delivery after kill -9: HTTP %d, want 503; body %s", r.status, r.body)
		}
	}
	if !got503 {
		t.Fatalf("no delivery got 503 in 5 kill attempts")
	}
	if n := len(h.sourceEvents(t, "development", src.GetId())); n != accepted {
		t.Fatalf("the log holds %d events, want the %d accepted ones (a 503 stores nothing)", n, accepted)
	}

	// It comes back by itself.
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := h.ingest(t, ingestURL, body)
		if r.status == http.StatusOK {
			wantStored(t, decode(t, r, &harkv1.ReceiveResponse{}))
			accepted++
			break
		}
		if r.status != http.StatusServiceUnavailable {
			t.Fatalf("delivery while the plugin restarts: HTTP %d, want 503 or 200; body %s", r.status, r.body)
		}
		if time.Now().After(deadline) {
			t.Fatalf("deliveries still get 503 10s after the plugin was killed")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if now := segmentPID(t); now == first {
		t.Fatalf("the plugin process is still %d; want a new one", now)
	}
	r := h.rest(t, http.MethodGet, "/v1/source-types", "")
	wantStatus(t, r, http.StatusOK)
	types := decode(t, r, &harkv1.ListSourceTypesResponse{}).GetSourceTypes()
	i := slices.IndexFunc(types, func(st *harkv1.SourceType) bool { return st.GetType() == "segment" })
	if i < 0 || types[i].GetHealth() != harkv1.SourceTypeHealth_SOURCE_TYPE_HEALTH_SERVING {
		t.Fatalf("source types after recovery = %v, want segment serving", types)
	}
	if n := len(h.sourceEvents(t, "development", src.GetId())); n != accepted {
		t.Fatalf("the log holds %d events, want %d", n, accepted)
	}
}

// waitForPlugin waits (bounded) for a segment plugin of marker other than
// old to run, and returns its pid.
func waitForPlugin(t *testing.T, marker string, old int) int {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		for _, pid := range pluginPIDs(t, "segment", marker) {
			if pid != old {
				return pid
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no new segment plugin process 15s after killing %d", old)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ---------------------------------------------------------------------------
// Live tail.
// ---------------------------------------------------------------------------

func TestWatchSourceEvents(t *testing.T) {
	t.Parallel()
	h := startServer(t)
	src := h.createSource(t, "Watched")
	other := h.createSource(t, "Unwatched")
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()

	// The watch sees only events logged after it subscribed, and the
	// subscription happens on the server at some point after the call
	// starts (over HTTP/1.1 the call itself returns only with the first
	// event). So a poster keeps delivering, each time first to the other
	// source, whose events the source filter must drop, until an event
	// arrives or it has tried for long enough.
	var (
		mu     sync.Mutex
		posted = map[string]bool{}
	)
	stop := make(chan struct{})
	posterDone := make(chan error, 1)
	srcPath, otherPath := h.ingestPath(t, devURL(t, src)), h.ingestPath(t, devURL(t, other))
	// post delivers one event and returns its id; the poster goroutine
	// calls it too, so it reports errors instead of failing the test.
	post := func(path, body string) (string, error) {
		status, res, err := h.postIngest(ctx, path, []byte(body))
		switch {
		case err != nil:
			return "", err
		case status != http.StatusOK || len(res.GetEvents()) != 1:
			return "", fmt.Errorf("delivery: HTTP %d, response %v", status, res)
		}
		return res.GetEvents()[0].GetId(), nil
	}
	go func() {
		posterDone <- func() error {
			for n := range 150 { // 15 s at most
				if _, err := post(otherPath, `{"type":"track","event":"Elsewhere","userId":"u2"}`); err != nil {
					return err
				}
				id, err := post(srcPath, fmt.Sprintf(`{"type":"track","event":"Live","userId":"u1","properties":{"n":%d,"s":"ライブ 📡"}}`, n))
				if err != nil {
					return err
				}
				mu.Lock()
				posted[id] = true
				mu.Unlock()
				select {
				case <-stop:
					return nil
				case <-time.After(100 * time.Millisecond):
				}
			}
			return nil
		}()
	}()

	stream, err := h.events().WatchSourceEvents(ctx, connect.NewRequest(&harkv1.WatchSourceEventsRequest{
		Environment: "development", SourceId: src.GetId(),
	}))
	if err != nil {
		close(stop)
		t.Fatalf("WatchSourceEvents: %v (poster: %v)", err, <-posterDone)
	}
	defer stream.Close()
	ok := stream.Receive()
	close(stop)
	if perr := <-posterDone; perr != nil {
		t.Fatalf("posting events: %v", perr)
	}
	if !ok {
		t.Fatalf("the watch ended without an event: %v", stream.Err())
	}
	ev := stream.Msg().GetSourceEvent()
	mu.Lock()
	known := posted[ev.GetId()]
	mu.Unlock()
	if !known || ev.GetSourceId() != src.GetId() {
		t.Fatalf("watched event = %v, want one of those posted to %s", ev, src.GetId())
	}
	if ev.GetType() != "track" || ev.GetName() != "Live" || ev.GetUserId() != "u1" ||
		ev.GetStatus() != statusProcessed || field(ev.GetData(), "s").GetStringValue() != "ライブ 📡" {
		t.Fatalf("watched event = %v, want the track Live by u1 with its data", ev)
	}
	// Later events follow on the same stream, still only the watched source's.
	if _, err := post(otherPath, `{"type":"track","event":"Elsewhere","userId":"u2"}`); err != nil {
		t.Fatal(err)
	}
	id, err := post(srcPath, `{"type":"track","event":"Later","userId":"u1"}`)
	if err != nil {
		t.Fatal(err)
	}
	for stream.Receive() {
		ev := stream.Msg().GetSourceEvent()
		if ev.GetSourceId() != src.GetId() {
			t.Fatalf("watch of %s delivered an event of %s", src.GetId(), ev.GetSourceId())
		}
		if ev.GetId() == id {
			if ev.GetName() != "Later" {
				t.Fatalf("later event = %v, want the track Later", ev)
			}
			return
		}
	}
	t.Fatalf("the watch ended before the later event %s: %v", id, stream.Err())
}
