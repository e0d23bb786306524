package segment_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/harkhq/hark/plugins/sdk"
	"github.com/harkhq/hark/plugins/segment"
)

const secret = "whsec_4f1b9c"

// rudder is the RudderStack configuration of plugins/rudderstack.
var rudder = segment.New(segment.Options{
	Type:        "rudderstack",
	DisplayName: "RudderStack",
	Version:     "0.1.0",
	Traits:      segment.TraitsContext,
	Signed:      false,
})

// rejected is an expected rejection: its index and a part of its reason.
type rejected struct {
	index    int
	contains string
}

type translateCase struct {
	name string
	// src defaults to segment.Segment().
	src *segment.Source
	d   sdk.Delivery
	// wantErr, when not zero, is the code the whole delivery is refused
	// with, and wantErrContains a part of its message.
	wantErr         sdk.ErrorCode
	wantErrContains string
	// want are the accepted events. Data, Traits and Original compare as
	// JSON values; nil Original is not compared (it is always checked to be
	// valid JSON).
	want     []sdk.Event
	rejected []rejected
	// rawOriginal compares Original byte for byte instead.
	rawOriginal bool
	// check, when set, replaces the comparison of want and rejected.
	check func(t *testing.T, r sdk.Result)
}

func body(s string) sdk.Delivery {
	return sdk.Delivery{Body: []byte(s), ContentType: "application/json"}
}

func signed(s, sig string) sdk.Delivery {
	d := body(s)
	d.Header = http.Header{}
	if sig != "" {
		d.Header.Set("X-Signature", sig)
	}
	d.Settings = map[string]string{segment.SettingSharedSecret: secret}
	return d
}

func hmacHex(key string, b []byte) string {
	m := hmac.New(sha1.New, []byte(key))
	m.Write(b)
	return hex.EncodeToString(m.Sum(nil))
}

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// deep returns a track event whose JSON nests depth levels, the event
// object itself being level 1.
func deep(depth int) string {
	inner := depth - 2
	return `{"type":"track","event":"Deep","properties":` +
		strings.Repeat(`{"a":`, inner) + `[]` + strings.Repeat(`}`, inner) + `}`
}

// sized returns a track event of exactly n bytes.
func sized(n int) string {
	head, tail := `{"type":"track","event":"Big","properties":{"pad":"`, `"}}`
	return head + strings.Repeat("x", n-len(head)-len(tail)) + tail
}

// events returns a bare array of n small track events.
func events(n int) string {
	var b strings.Builder
	b.WriteByte('[')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"type":"track","event":"E","messageId":%d}`, i)
	}
	b.WriteByte(']')
	return b.String()
}

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestTranslate(t *testing.T) {
	t.Parallel()

	const (
		arrayFirst  = `{"type":"track","event":"Exported","userId":"u1","messageId":"a-1"}`
		arraySecond = `{"type":"identify","userId":"u1","traits":{"plan":"pro"}}`
	)
	array := "[" + arrayFirst + ",\n  " + arraySecond + "]"
	trackFixture := string(fixture(t, "track.json"))
	single := `{"type":"track","event":"Signed Up","userId":"u1","properties":{"plan":"pro"}}`
	singleEvent := sdk.Event{Index: 0, Type: "track", Name: "Signed Up", UserID: "u1", Data: []byte(`{"plan":"pro"}`)}

	tests := []translateCase{
		// Forms.
		{
			name:        "single event from a file",
			d:           body(trackFixture),
			rawOriginal: true,
			want: []sdk.Event{{
				Index: 0, Type: "track", Name: "Invoice Paid", UserID: "user-7f3a", AnonymousID: "anon-0c41",
				IdempotencyKey: []byte(`"msg-invoice-0001"`),
				Timestamp:      ts("2025-11-03T08:15:42.250Z"),
				Data:           []byte(`{"amount": 129.5, "currency": "EUR", "lines": [{"sku": "A-1", "qty": 2}]}`),
				Original:       []byte(strings.TrimSpace(trackFixture)),
			}},
		},
		{
			name: "http api batch merges batch context and integrations, the event's own keys winning",
			d:    body(string(fixture(t, "batch.json"))),
			want: []sdk.Event{
				{
					Index: 0, Type: "identify", UserID: "user-7f3a", IdempotencyKey: []byte(`"msg-b-1"`),
					Traits: []byte(`{"email":"ada@example.org","name":"Ada","plan":"team"}`),
					Original: []byte(`{"type":"identify","userId":"user-7f3a","messageId":"msg-b-1",
						"traits":{"email":"ada@example.org","name":"Ada","plan":"team"},
						"context":{"locale":"de-DE","library":{"name":"analytics-go","version":"3.3.0"}},
						"integrations":{"All":false,"Amplitude":false,"Slack":true}}`),
				},
				{
					Index: 1, Type: "track", Name: "Seat Added", UserID: "user-7f3a", IdempotencyKey: []byte(`"msg-b-2"`),
					Data: []byte(`{"seats":4}`),
					Original: []byte(`{"type":"track","event":"Seat Added","userId":"user-7f3a","messageId":"msg-b-2",
						"properties":{"seats":4},
						"context":{"locale":"en-GB","library":{"name":"analytics-go","version":"3.3.0"}},
						"integrations":{"All":false,"Amplitude":true,"Slack":true}}`),
				},
				{
					Index: 2, Type: "page", Name: "Billing", UserID: "user-7f3a", IdempotencyKey: []byte(`"msg-b-3"`),
					Data: []byte(`{"name":"Billing","path":"/settings/billing"}`),
					Original: []byte(`{"type":"page","userId":"user-7f3a","messageId":"msg-b-3",
						"properties":{"name":"Billing","path":"/settings/billing"},
						"context":{"locale":"en-GB","library":{"name":"analytics-go","version":"3.3.0"}},
						"integrations":{"All":false,"Amplitude":false,"Slack":true}}`),
				},
			},
		},
		{
			name: "batch context is not merged into an event context that is not an object",
			d:    body(`{"batch":[{"type":"track","event":"A","context":[]}],"context":{"ip":"1.2.3.4"}}`),
			want: []sdk.Event{{
				Index: 0, Type: "track", Name: "A",
				Original: []byte(`{"type":"track","event":"A","context":[]}`),
			}},
		},
		{
			name:        "batch context that is not an object is ignored",
			d:           body(`{"batch":[{"type":"track","event":"A"}],"context":"nope","integrations":[]}`),
			rawOriginal: true,
			want:        []sdk.Event{{Index: 0, Type: "track", Name: "A", Original: []byte(`{"type":"track","event":"A"}`)}},
		},
		{
			name:        "bare array keeps each element's bytes",
			d:           body(array),
			rawOriginal: true,
			want: []sdk.Event{
				{Index: 0, Type: "track", Name: "Exported", UserID: "u1", IdempotencyKey: []byte(`"a-1"`), Original: []byte(arrayFirst)},
				{Index: 1, Type: "identify", UserID: "u1", Traits: []byte(`{"plan":"pro"}`), Original: []byte(arraySecond)},
			},
		},
		{
			name: "bare array from a file",
			d:    body(string(fixture(t, "array.json"))),
			want: []sdk.Event{
				{Index: 0, Type: "track", Name: "Report Exported", UserID: "user-91", IdempotencyKey: []byte(`"wa-1"`), Data: []byte(`{"format":"csv"}`)},
				{Index: 1, Type: "screen", Name: "Dashboard", AnonymousID: "anon-5", IdempotencyKey: []byte(`"wa-2"`), Data: []byte(`{"tab":"usage"}`)},
				{Index: 2, Type: "group", UserID: "user-91", Traits: []byte(`{"name":"Initech","employees":120}`)},
			},
		},
		{
			name:        "whitespace around the body is allowed",
			d:           body("\n\t " + single + "\r\n"),
			rawOriginal: true,
			want:        []sdk.Event{{Index: 0, Type: "track", Name: "Signed Up", UserID: "u1", Data: []byte(`{"plan":"pro"}`), Original: []byte(single)}},
		},

		// Types and their fields.
		{
			name: "legacy action is read as the type",
			d:    body(`{"action":"track","event":"Legacy","userId":"u1"}`),
			want: []sdk.Event{{Index: 0, Type: "track", Name: "Legacy", UserID: "u1"}},
		},
		{
			name: "type wins over action",
			d:    body(`{"type":"identify","action":"track","userId":"u1"}`),
			want: []sdk.Event{{Index: 0, Type: "identify", UserID: "u1"}},
		},
		{
			name: "identify reads top-level traits first",
			d:    body(`{"type":"identify","userId":"u1","traits":{"email":"top@example.org"},"context":{"traits":{"email":"ctx@example.org"}}}`),
			want: []sdk.Event{{Index: 0, Type: "identify", UserID: "u1", Traits: []byte(`{"email":"top@example.org"}`)}},
		},
		{
			name: "identify falls back to context traits",
			d:    body(`{"type":"identify","userId":"u1","context":{"traits":{"email":"ctx@example.org"}}}`),
			want: []sdk.Event{{Index: 0, Type: "identify", UserID: "u1", Traits: []byte(`{"email":"ctx@example.org"}`)}},
		},
		{
			name: "group traits",
			d:    body(`{"type":"group","groupId":"org-1","userId":"u1","traits":{"name":"Acme","plan":"enterprise"}}`),
			want: []sdk.Event{{Index: 0, Type: "group", UserID: "u1", Traits: []byte(`{"name":"Acme","plan":"enterprise"}`)}},
		},
		{
			name: "track data is its properties and name its event; traits are not carried",
			d:    body(`{"type":"track","event":"Clicked","properties":{"button":"buy"},"traits":{"x":1}}`),
			want: []sdk.Event{{Index: 0, Type: "track", Name: "Clicked", Data: []byte(`{"button":"buy"}`)}},
		},
		{
			name: "page name from name wins over properties.name",
			d:    body(`{"type":"page","name":"Pricing","properties":{"name":"Other","path":"/pricing"}}`),
			want: []sdk.Event{{Index: 0, Type: "page", Name: "Pricing", Data: []byte(`{"name":"Other","path":"/pricing"}`)}},
		},
		{
			name: "page name from properties.name",
			d:    body(`{"type":"page","properties":{"name":"Docs","path":"/docs"}}`),
			want: []sdk.Event{{Index: 0, Type: "page", Name: "Docs", Data: []byte(`{"name":"Docs","path":"/docs"}`)}},
		},
		{
			name: "page without any name",
			d:    body(`{"type":"page","properties":{"path":"/"}}`),
			want: []sdk.Event{{Index: 0, Type: "page", Data: []byte(`{"path":"/"}`)}},
		},
		{
			name: "screen name",
			d:    body(`{"type":"screen","name":"Home","userId":"u1"}`),
			want: []sdk.Event{{Index: 0, Type: "screen", Name: "Home", UserID: "u1"}},
		},
		{
			name: "delete is passed on with its type",
			d:    body(`{"type":"delete","userId":"u1","messageId":"del-1"}`),
			want: []sdk.Event{{Index: 0, Type: "delete", UserID: "u1", IdempotencyKey: []byte(`"del-1"`)}},
		},
		{
			name: "unknown types are passed on with their type",
			d:    body(`[{"type":"alias","previousId":"a","userId":"b"},{"type":"Made Up","userId":"c","event":"x"}]`),
			want: []sdk.Event{
				{Index: 0, Type: "alias", UserID: "b"},
				{Index: 1, Type: "Made Up", UserID: "c"},
			},
		},
		{
			name: "an event without a type is passed on with an empty type",
			d:    body(`{"userId":"u1","event":"Orphan","properties":{"a":1}}`),
			want: []sdk.Event{{Index: 0, Type: "", UserID: "u1"}},
		},
		{
			name:     "track without event is rejected",
			d:        body(`{"type":"track","userId":"u1","properties":{}}`),
			rejected: []rejected{{0, "needs an `event` name"}},
		},
		{
			name:     "track with an empty event is rejected",
			d:        body(`[{"type":"track","event":""},{"type":"track","event":null}]`),
			rejected: []rejected{{0, "`event`"}, {1, "`event`"}},
		},
		{
			name:     "type that is not a string is rejected",
			d:        body(`{"type":7,"event":"x"}`),
			rejected: []rejected{{0, "`type` must be a string"}},
		},

		// Per-event rejections inside a batch.
		{
			name: "non-object elements are rejected, the others pass",
			d:    body(`{"batch":[{"type":"track","event":"A"},42,"str",null,[],true,{"type":"identify","userId":"u"}]}`),
			want: []sdk.Event{
				{Index: 0, Type: "track", Name: "A"},
				{Index: 6, Type: "identify", UserID: "u"},
			},
			rejected: []rejected{
				{1, "must be a JSON object"}, {2, "must be a JSON object"}, {3, "must be a JSON object"},
				{4, "must be a JSON object"}, {5, "must be a JSON object"},
			},
		},
		{
			name: "numeric ids become their decimal text",
			d:    body(`[{"type":"identify","userId":12345},{"type":"identify","userId":12345678901234567890123,"anonymousId":-7}]`),
			want: []sdk.Event{
				{Index: 0, Type: "identify", UserID: "12345"},
				{Index: 1, Type: "identify", UserID: "12345678901234567890123", AnonymousID: "-7"},
			},
		},
		{
			name:     "userId as an object is rejected",
			d:        body(`[{"type":"identify","userId":{"id":"u1"}},{"type":"identify","userId":"ok"}]`),
			want:     []sdk.Event{{Index: 1, Type: "identify", UserID: "ok"}},
			rejected: []rejected{{0, "userId"}},
		},
		{
			name:     "anonymousId as a bool is rejected",
			d:        body(`{"type":"track","event":"A","anonymousId":true}`),
			rejected: []rejected{{0, "anonymousId"}},
		},
		{
			name:     "properties that is not an object is rejected",
			d:        body(`[{"type":"track","event":"A","properties":[1,2]},{"type":"page","properties":"home"},{"type":"track","event":"B","properties":null}]`),
			want:     []sdk.Event{{Index: 2, Type: "track", Name: "B"}},
			rejected: []rejected{{0, "properties"}, {1, "properties"}},
		},
		{
			name:     "traits that is not an object is rejected",
			d:        body(`{"type":"identify","userId":"u1","traits":"vip"}`),
			rejected: []rejected{{0, "traits"}},
		},

		// Idempotency keys and timestamps.
		{
			name: "messageId is passed as raw JSON",
			d: body(`[{"type":"track","event":"S","messageId":"m-1"},{"type":"track","event":"N","messageId":123},` +
				`{"type":"track","event":"A"},{"type":"track","event":"Z","messageId":null},{"type":"track","event":"O","messageId":{"k":1}}]`),
			want: []sdk.Event{
				{Index: 0, Type: "track", Name: "S", IdempotencyKey: []byte(`"m-1"`)},
				{Index: 1, Type: "track", Name: "N", IdempotencyKey: []byte(`123`)},
				{Index: 2, Type: "track", Name: "A"},
				{Index: 3, Type: "track", Name: "Z"},
				// hark, not the plugin, decides an object is no valid key.
				{Index: 4, Type: "track", Name: "O", IdempotencyKey: []byte(`{"k":1}`)},
			},
		},
		{
			name: "timestamps",
			d: body(`[` +
				`{"type":"track","event":"Z","timestamp":"2025-01-02T03:04:05Z"},` +
				`{"type":"track","event":"Offset","timestamp":"2025-01-02T04:04:05.123456+01:00"},` +
				`{"type":"track","event":"Docs","timestamp":"2015-2-02T00:30:08.276Z"},` +
				`{"type":"track","event":"Orig","originalTimestamp":"2024-12-31T23:59:59Z"},` +
				`{"type":"track","event":"Num","timestamp":1700000000}` +
				`]`),
			want: []sdk.Event{
				{Index: 0, Type: "track", Name: "Z", Timestamp: ts("2025-01-02T03:04:05Z")},
				{Index: 1, Type: "track", Name: "Offset", Timestamp: ts("2025-01-02T03:04:05.123456Z")},
				{Index: 2, Type: "track", Name: "Docs"}, // not RFC 3339: unknown, not rejected
				{Index: 3, Type: "track", Name: "Orig", Timestamp: ts("2024-12-31T23:59:59Z")},
				{Index: 4, Type: "track", Name: "Num"},
			},
		},

		// Limits.
		{
			name:     "invalid UTF-8 inside an event rejects that event",
			d:        body("[{\"type\":\"track\",\"event\":\"ok\"},{\"type\":\"track\",\"event\":\"caf\xe9\"}]"),
			want:     []sdk.Event{{Index: 0, Type: "track", Name: "ok"}},
			rejected: []rejected{{1, "UTF-8"}},
		},
		{
			name:     "an event over 32 KiB is rejected",
			d:        body("[" + sized(segment.MaxEventBytes+1) + `,{"type":"track","event":"Small"}]`),
			want:     []sdk.Event{{Index: 1, Type: "track", Name: "Small"}},
			rejected: []rejected{{0, fmt.Sprintf("%d bytes", segment.MaxEventBytes+1)}},
		},
		{
			name:  "an event of exactly 32 KiB is accepted",
			d:     body(sized(segment.MaxEventBytes)),
			check: oneEvent("Big", segment.MaxEventBytes),
		},
		{
			name:            "4001 events refuse the delivery",
			d:               body(events(segment.MaxEvents + 1)),
			wantErr:         sdk.CodeBadRequest,
			wantErrContains: "4001 events",
		},
		{
			name: "4000 events are accepted",
			d:    body(events(segment.MaxEvents)),
			check: func(t *testing.T, r sdk.Result) {
				if r.Err != nil || len(r.Rejections) != 0 || len(r.Events) != segment.MaxEvents {
					t.Fatalf("got err %v, %d rejections, %d events; want %d events", r.Err, len(r.Rejections), len(r.Events), segment.MaxEvents)
				}
				for i, e := range r.Events {
					if e.Index != i || string(e.IdempotencyKey) != fmt.Sprint(i) {
						t.Fatalf("event %d = index %d key %s", i, e.Index, e.IdempotencyKey)
					}
				}
			},
		},
		{
			name:     "nesting 65 levels rejects the event",
			d:        body(deep(segment.MaxDepth + 1)),
			rejected: []rejected{{0, "65 levels"}},
		},
		{
			name:            "nesting far past the limit refuses the delivery",
			d:               body(deep(3 * segment.MaxDepth)),
			wantErr:         sdk.CodeBadRequest,
			wantErrContains: "192 levels",
		},
		{
			name:  "nesting 64 levels inside a batch is accepted",
			d:     body(`{"batch":[` + deep(segment.MaxDepth) + `]}`),
			check: oneEvent("Deep", len(deep(segment.MaxDepth))),
		},
		{
			name:  "nesting 64 levels is accepted",
			d:     body(deep(segment.MaxDepth)),
			check: oneEvent("Deep", len(deep(segment.MaxDepth))),
		},
		{
			name: "brackets inside strings do not count as nesting",
			d:    body(`{"type":"track","event":"` + strings.Repeat(`[{\"`, 100) + `"}`),
			want: []sdk.Event{{Index: 0, Type: "track", Name: strings.Repeat(`[{"`, 100)}},
		},

		// Malformed deliveries.
		{
			name:            "truncated object",
			d:               body(`{"type":"track","event":"Cut`),
			wantErr:         sdk.CodeBadRequest,
			wantErrContains: "not valid JSON: unexpected end of JSON input",
		},
		{
			name:            "truncated array",
			d:               body(`[{"type":"track","event":"A"},{"type":`),
			wantErr:         sdk.CodeBadRequest,
			wantErrContains: "not valid JSON",
		},
		{
			name:            "garbage after the object",
			d:               body(`{"type":"track","event":"A"} x`),
			wantErr:         sdk.CodeBadRequest,
			wantErrContains: "not valid JSON: invalid character 'x' after top-level value",
		},
		{
			name:            "empty body",
			d:               body(``),
			wantErr:         sdk.CodeBadRequest,
			wantErrContains: "empty",
		},
		{
			name:            "whitespace-only body",
			d:               body(" \n\t"),
			wantErr:         sdk.CodeBadRequest,
			wantErrContains: "empty",
		},
		{
			name:            "empty batch",
			d:               body(`{"batch":[]}`),
			wantErr:         sdk.CodeBadRequest,
			wantErrContains: "`batch` holds no events",
		},
		{
			name:            "batch that is not an array",
			d:               body(`{"batch":{"type":"track"}}`),
			wantErr:         sdk.CodeBadRequest,
			wantErrContains: "`batch` must be an array",
		},
		{
			name:            "null batch",
			d:               body(`{"batch":null}`),
			wantErr:         sdk.CodeBadRequest,
			wantErrContains: "`batch` must be an array",
		},
		{
			name:            "empty array",
			d:               body(`[]`),
			wantErr:         sdk.CodeBadRequest,
			wantErrContains: "no events",
		},
		{
			name:            "a JSON string body",
			d:               body(`"track"`),
			wantErr:         sdk.CodeBadRequest,
			wantErrContains: "must be a JSON object or array",
		},
		{
			name:            "a JSON null body",
			d:               body(`null`),
			wantErr:         sdk.CodeBadRequest,
			wantErrContains: "must be a JSON object or array",
		},

		// Signatures (X-Signature: lowercase hex HMAC-SHA1 of the raw body).
		{
			name: "good signature",
			d:    signed(single, hmacHex(secret, []byte(single))),
			want: []sdk.Event{singleEvent},
		},
		{
			name: "signature over the raw body, whitespace included",
			d:    signed("\n"+single+"\n", hmacHex(secret, []byte("\n"+single+"\n"))),
			want: []sdk.Event{singleEvent},
		},
		{
			name:            "signature over the trimmed body of a padded delivery",
			d:               signed("\n"+single+"\n", hmacHex(secret, []byte(single))),
			wantErr:         sdk.CodeBadSignature,
			wantErrContains: "does not match",
		},
		{
			name:            "wrong signature",
			d:               signed(single, hmacHex("another secret", []byte(single))),
			wantErr:         sdk.CodeBadSignature,
			wantErrContains: "does not match",
		},
		{
			name:            "signature that is not hex",
			d:               signed(single, "sha1="+hmacHex(secret, []byte(single))),
			wantErr:         sdk.CodeBadSignature,
			wantErrContains: "does not match",
		},
		{
			name:            "missing signature",
			d:               signed(single, ""),
			wantErr:         sdk.CodeBadSignature,
			wantErrContains: "missing",
		},
		{
			name:            "missing signature is checked before the body is parsed",
			d:               signed(`{"type":`, ""),
			wantErr:         sdk.CodeBadSignature,
			wantErrContains: "missing",
		},
		{
			// DESIGN §5 says lowercase hex; the code decodes the hex
			// and compares bytes, so the same MAC in uppercase passes.
			name: "uppercase hex of the right MAC is accepted",
			d:    signed(single, strings.ToUpper(hmacHex(secret, []byte(single)))),
			want: []sdk.Event{singleEvent},
		},
		{
			name: "bare array signed over its first element's raw bytes",
			d:    signed(array, hmacHex(secret, []byte(arrayFirst))),
			want: []sdk.Event{
				{Index: 0, Type: "track", Name: "Exported", UserID: "u1", IdempotencyKey: []byte(`"a-1"`)},
				{Index: 1, Type: "identify", UserID: "u1", Traits: []byte(`{"plan":"pro"}`)},
			},
		},
		{
			name:            "bare array signed over the whole body",
			d:               signed(array, hmacHex(secret, []byte(array))),
			wantErr:         sdk.CodeBadSignature,
			wantErrContains: "does not match",
		},
		{
			name:            "bare array without a signature",
			d:               signed(array, ""),
			wantErr:         sdk.CodeBadSignature,
			wantErrContains: "missing",
		},
		{
			name: "without a secret the signature is ignored",
			d: sdk.Delivery{
				Header: http.Header{"X-Signature": {"0000"}},
				Body:   []byte(single),
			},
			want: []sdk.Event{singleEvent},
		},
		{
			name: "an empty secret is no secret",
			d: sdk.Delivery{
				Body:     []byte(single),
				Settings: map[string]string{segment.SettingSharedSecret: ""},
			},
			want: []sdk.Event{singleEvent},
		},

		// RudderStack options.
		{
			name: "rudderstack reads identify traits from context.traits first",
			src:  rudder,
			d:    body(`{"type":"identify","userId":"u1","traits":{"email":"top@example.org"},"context":{"traits":{"email":"ctx@example.org","name":"Ctx"}}}`),
			want: []sdk.Event{{Index: 0, Type: "identify", UserID: "u1", Traits: []byte(`{"email":"ctx@example.org","name":"Ctx"}`)}},
		},
		{
			name: "rudderstack falls back to top-level traits",
			src:  rudder,
			d:    body(`{"type":"identify","userId":"u1","traits":{"email":"top@example.org"},"context":{"ip":"1.2.3.4"}}`),
			want: []sdk.Event{{Index: 0, Type: "identify", UserID: "u1", Traits: []byte(`{"email":"top@example.org"}`)}},
		},
		{
			name: "rudderstack ignores a shared secret and any signature",
			src:  rudder,
			d:    signed(single, "bad"),
			want: []sdk.Event{singleEvent},
		},
	}

	seg := segment.Segment()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			src := tt.src
			if src == nil {
				src = seg
			}
			res, err := src.Translate(context.Background(), []sdk.Delivery{tt.d})
			if err != nil {
				t.Fatalf("Translate: %v", err)
			}
			if len(res) != 1 {
				t.Fatalf("Translate returned %d results for 1 delivery", len(res))
			}
			checkResult(t, tt, res[0])
		})
	}
}

// oneEvent checks a result of one accepted track event with that name,
// whose Original has size bytes and whose Data is its properties object.
func oneEvent(name string, size int) func(*testing.T, sdk.Result) {
	return func(t *testing.T, r sdk.Result) {
		t.Helper()
		if r.Err != nil || len(r.Rejections) != 0 || len(r.Events) != 1 {
			t.Fatalf("got err %v, rejections %+v, %d events; want one event", r.Err, r.Rejections, len(r.Events))
		}
		e := r.Events[0]
		if e.Type != "track" || e.Name != name || len(e.Original) != size {
			t.Fatalf("event = %s %q with a %d-byte Original, want track %q with %d bytes", e.Type, e.Name, len(e.Original), name, size)
		}
		if !json.Valid(e.Data) || !bytes.HasPrefix(e.Data, []byte("{")) {
			t.Fatalf("data is not the properties object: %.80s", e.Data)
		}
	}
}

func checkResult(t *testing.T, tt translateCase, r sdk.Result) {
	t.Helper()
	for _, e := range r.Events {
		if !json.Valid(e.Original) {
			t.Errorf("event %d: Original is not valid JSON: %s", e.Index, e.Original)
		}
	}
	if tt.check != nil {
		tt.check(t, r)
		return
	}
	if tt.wantErr != 0 {
		if r.Err == nil {
			t.Fatalf("result = %+v, want a %v error", r, tt.wantErr)
		}
		if r.Err.Code != tt.wantErr || !strings.Contains(r.Err.Message, tt.wantErrContains) {
			t.Fatalf("error = %v (code %d), want code %v with %q", r.Err, r.Err.Code, tt.wantErr, tt.wantErrContains)
		}
		if len(r.Events) != 0 || len(r.Rejections) != 0 {
			t.Fatalf("a refused delivery carries events %+v and rejections %+v", r.Events, r.Rejections)
		}
		return
	}
	if r.Err != nil {
		t.Fatalf("unexpected delivery error: %v", r.Err)
	}
	if len(r.Rejections) != len(tt.rejected) {
		t.Errorf("rejections = %+v, want %+v", r.Rejections, tt.rejected)
	} else {
		for i, rej := range r.Rejections {
			if rej.Index != tt.rejected[i].index || !strings.Contains(rej.Reason, tt.rejected[i].contains) {
				t.Errorf("rejection %d = %+v, want index %d with %q", i, rej, tt.rejected[i].index, tt.rejected[i].contains)
			}
		}
	}
	if len(r.Events) != len(tt.want) {
		t.Fatalf("%d events %+v, want %d", len(r.Events), r.Events, len(tt.want))
	}
	for i, got := range r.Events {
		if err := compareEvent(got, tt.want[i], tt.rawOriginal); err != nil {
			t.Errorf("event %d: %v", i, err)
		}
	}
}

func compareEvent(got, want sdk.Event, rawOriginal bool) error {
	switch {
	case got.Index != want.Index:
		return fmt.Errorf("index = %d, want %d", got.Index, want.Index)
	case got.Type != want.Type:
		return fmt.Errorf("type = %q, want %q", got.Type, want.Type)
	case got.Name != want.Name:
		return fmt.Errorf("name = %q, want %q", got.Name, want.Name)
	case got.UserID != want.UserID:
		return fmt.Errorf("user id = %q, want %q", got.UserID, want.UserID)
	case got.AnonymousID != want.AnonymousID:
		return fmt.Errorf("anonymous id = %q, want %q", got.AnonymousID, want.AnonymousID)
	case !bytes.Equal(got.IdempotencyKey, want.IdempotencyKey):
		return fmt.Errorf("idempotency key = %s, want %s", got.IdempotencyKey, want.IdempotencyKey)
	case !got.Timestamp.Equal(want.Timestamp):
		return fmt.Errorf("timestamp = %v, want %v", got.Timestamp, want.Timestamp)
	case !jsonEqual(got.Data, want.Data):
		return fmt.Errorf("data = %s, want %s", got.Data, want.Data)
	case !jsonEqual(got.Traits, want.Traits):
		return fmt.Errorf("traits = %s, want %s", got.Traits, want.Traits)
	case want.Original != nil && rawOriginal && !bytes.Equal(got.Original, want.Original):
		return fmt.Errorf("original = %s, want exactly %s", got.Original, want.Original)
	case want.Original != nil && !jsonEqual(got.Original, want.Original):
		return fmt.Errorf("original = %s, want %s", got.Original, want.Original)
	}
	return nil
}

// jsonEqual compares two JSON texts as values; nil equals only nil.
func jsonEqual(a, b []byte) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}

func TestDescribe(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		src  *segment.Source
		want sdk.Description
	}{
		{
			name: "segment has a secret shared_secret setting",
			src:  segment.Segment(),
			want: sdk.Description{
				Type: "segment", DisplayName: "Segment", Version: segment.Version, IdempotencyKey: "messageId",
				Settings: []sdk.Setting{{Key: segment.SettingSharedSecret, Secret: true}},
			},
		},
		{
			name: "rudderstack has no settings",
			src:  rudder,
			want: sdk.Description{Type: "rudderstack", DisplayName: "RudderStack", Version: "0.1.0", IdempotencyKey: "messageId"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for _, via := range []struct {
				name string
				src  sdk.Source
			}{{"direct", tt.src}, {"wire", sdk.TestSource(t, tt.src)}} {
				got, err := via.src.Describe(context.Background())
				if err != nil {
					t.Fatalf("%s: Describe: %v", via.name, err)
				}
				for i := range got.Settings {
					if got.Settings[i].Description == "" {
						t.Errorf("%s: setting %q has no description", via.name, got.Settings[i].Key)
					}
					got.Settings[i].Description = ""
				}
				want := tt.want
				if via.name == "wire" {
					want.ProtocolMinor = sdk.ProtocolMinor // the SDK says what it speaks
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s: Describe =\n%+v\nwant\n%+v", via.name, got, want)
				}
			}
		})
	}
}

// TestTranslateOverWire sends one batch of deliveries through the plugin
// protocol and checks that the host sees exactly what the parser produced.
func TestTranslateOverWire(t *testing.T) {
	t.Parallel()
	seg := segment.Segment()
	wire := sdk.TestSource(t, seg)

	batch := fixture(t, "batch.json")
	array := fixture(t, "array.json")
	ds := []sdk.Delivery{
		signed(string(batch), hmacHex(secret, batch)),
		body(string(fixture(t, "track.json"))),
		body(`{"batch":[{"type":"track","event":"A","messageId":7},{"type":"track"},1,"x"]}`),
		signed(string(array), "deadbeef"),
		body(`{"type":"track","event":`),
		body("[{\"type\":\"track\",\"event\":\"caf\xe9\"},{\"type\":\"identify\",\"userId\":42}]"),
	}
	direct, err := seg.Translate(context.Background(), ds)
	if err != nil {
		t.Fatalf("direct Translate: %v", err)
	}
	got, err := wire.Translate(context.Background(), ds)
	if err != nil {
		t.Fatalf("Translate over the wire: %v", err)
	}
	if len(got) != len(ds) {
		t.Fatalf("%d results for %d deliveries", len(got), len(ds))
	}
	for i := range ds {
		if err := sameResult(got[i], direct[i]); err != nil {
			t.Errorf("delivery %d: over the wire %v", i, err)
		}
	}

	// Spot checks that the batch is not trivially empty.
	if n := len(got[0].Events); n != 3 {
		t.Errorf("signed batch: %d events, want 3", n)
	}
	if got[2].Err != nil || len(got[2].Events) != 1 || len(got[2].Rejections) != 3 {
		t.Errorf("mixed batch = %+v, want 1 event and 3 rejections", got[2])
	}
	if got[3].Err == nil || got[3].Err.Code != sdk.CodeBadSignature {
		t.Errorf("badly signed array = %+v, want a bad signature", got[3])
	}
	if got[4].Err == nil || got[4].Err.Code != sdk.CodeBadRequest || got[4].Err.Message == "" {
		t.Errorf("truncated body = %+v, want a bad request with a message", got[4])
	}
	if len(got[5].Rejections) != 1 || len(got[5].Events) != 1 || got[5].Events[0].UserID != "42" {
		t.Errorf("UTF-8 batch = %+v, want event 1 (user 42) and rejection 0", got[5])
	}
}

func sameResult(got, want sdk.Result) error {
	switch {
	case (got.Err == nil) != (want.Err == nil):
		return fmt.Errorf("err = %v, want %v", got.Err, want.Err)
	case got.Err != nil && *got.Err != *want.Err:
		return fmt.Errorf("err = %#v, want %#v", got.Err, want.Err)
	case len(got.Events) != len(want.Events):
		return fmt.Errorf("%d events, want %d", len(got.Events), len(want.Events))
	case len(got.Rejections) != len(want.Rejections) || (len(want.Rejections) > 0 && !reflect.DeepEqual(got.Rejections, want.Rejections)):
		return fmt.Errorf("rejections = %+v, want %+v", got.Rejections, want.Rejections)
	}
	for i := range got.Events {
		g, w := got.Events[i], want.Events[i]
		if err := compareEvent(g, w, true); err != nil {
			return fmt.Errorf("event %d: %w", i, err)
		}
		// Byte-exact, not only JSON-equal.
		if !bytes.Equal(g.Data, w.Data) || !bytes.Equal(g.Traits, w.Traits) || !bytes.Equal(g.Original, w.Original) {
			return fmt.Errorf("event %d: JSON fields changed on the wire: %+v, want %+v", i, g, w)
		}
	}
	return nil
}

// TestBatchContextStaysWithinEventLimit checks that the 32 KiB limit holds
// for events as they leave the plugin: batch-level context is merged into
// every event, so without a check one large batch context is copied into
// each of up to 4,000 events.
func TestBatchContextStaysWithinEventLimit(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("y", 40<<10)
	d := body(`{"batch":[{"type":"track","event":"A"},{"type":"track","event":"B"}],"context":{"blob":"` + big + `"}}`)
	res, err := segment.Segment().Translate(context.Background(), []sdk.Delivery{d})
	if err != nil {
		t.Fatal(err)
	}
	r := res[0]
	for _, e := range r.Events {
		if len(e.Original) > segment.MaxEventBytes {
			t.Errorf("event %d accepted with a %d-byte Original; at most %d bytes per event", e.Index, len(e.Original), segment.MaxEventBytes)
		}
	}
	if r.Err == nil && len(r.Events)+len(r.Rejections) != 2 {
		t.Errorf("result = %+v, want every event accounted for", r)
	}
}

// TestBatchContextNotUTF8 checks that an accepted event is UTF-8 even when
// the invalid bytes come from the batch-level context merged into it.
func TestBatchContextNotUTF8(t *testing.T) {
	t.Parallel()
	d := body("{\"batch\":[{\"type\":\"track\",\"event\":\"A\"}],\"context\":{\"city\":\"Z\xfcrich\"}}")
	res, err := segment.Segment().Translate(context.Background(), []sdk.Delivery{d})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range res[0].Events {
		if !utf8.Valid(e.Original) {
			t.Errorf("event %d accepted with an Original that is not UTF-8: %q", e.Index, e.Original)
		}
	}
}
