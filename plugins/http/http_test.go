package httpsource_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	httpsource "github.com/harkhq/hark/plugins/http"
	"github.com/harkhq/hark/plugins/sdk"
)

// clock is the time the tests' deliveries are sent at.
var clock = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

// src is the http source on the tests' clock.
var src = httpsource.New(httpsource.Options{Now: func() time.Time { return clock }})

func macOf(secret []byte, parts ...string) []byte {
	m := hmac.New(sha256.New, secret)
	for _, p := range parts {
		m.Write([]byte(p))
	}
	return m.Sum(nil)
}

// Signers of each provider, as the providers' documentation describes them.
func stripeSign(secret, body string, at time.Time) string {
	t := strconv.FormatInt(at.Unix(), 10)
	return "t=" + t + ",v1=" + hex.EncodeToString(macOf([]byte(secret), t, ".", body))
}

func standardSign(secret, id string, at time.Time, body string) string {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		panic(err)
	}
	return "v1," + base64.StdEncoding.EncodeToString(macOf(key, id, ".", strconv.FormatInt(at.Unix(), 10), ".", body))
}

func shopifySign(secret, body string) string {
	return base64.StdEncoding.EncodeToString(macOf([]byte(secret), body))
}

func hexSign(secret, body string) string { return hex.EncodeToString(macOf([]byte(secret), body)) }

// delivery builds a delivery; header is name, value pairs.
func delivery(body string, settings map[string]string, header ...string) sdk.Delivery {
	h := http.Header{}
	for i := 0; i+1 < len(header); i += 2 {
		h.Set(header[i], header[i+1])
	}
	return sdk.Delivery{Header: h, Body: []byte(body), ContentType: "application/json", Settings: settings}
}

func translateOne(t *testing.T, s sdk.Source, d sdk.Delivery) sdk.Result {
	t.Helper()
	res, err := s.Translate(context.Background(), []sdk.Delivery{d})
	if err != nil {
		t.Fatalf("Translate failed the batch: %v", err)
	}
	if len(res) != 1 {
		t.Fatalf("%d results for one delivery", len(res))
	}
	return res[0]
}

// Provider samples: bodies as each provider documents its payloads.
const (
	stripeSecret = "whsec_3fd1c7f2a0e94b6c"
	stripeBody   = `{"id":"evt_1NG8Du2eZvKYlo2CUI79vXWy","object":"event","api_version":"2019-02-19","created":1686089970,"data":{"object":{"id":"cus_NffrFeUfNV2Hib","object":"customer","email":"jennyrosen@example.com","metadata":{"user_id":"u1"}}},"livemode":false,"type":"customer.created"}`

	clerkSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	clerkBody   = `{"data":{"id":"user_29w83sxmDNGwOuEthce5gg56FcC","first_name":"Example","created_at":1654012591514},"instance_id":"ins_123","object":"event","timestamp":1654012591835,"type":"user.created"}`

	shopifySecret = "shpss_5c9e1d"
	shopifyBody   = `{"id":9554194432293,"title":"T-Shirt","status":"active","updated_at":"2025-04-22T14:30:00-05:00"}`

	githubSecret = "It's a Secret to Everybody"
	githubBody   = `{"action":"opened","issue":{"number":1347,"title":"Found a bug"},"repository":{"full_name":"octocat/Hello-World"},"sender":{"login":"octocat","id":1}}`
)

func settings(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func key(s string) json.RawMessage { b, _ := json.Marshal(s); return b }

// wantEvent is what one accepted event must be: Data and Original are the
// body (or the array element) byte for byte.
type wantEvent struct {
	index    int
	name     string
	userID   string
	key      json.RawMessage // nil: no key
	ts       time.Time
	original string
}

func checkEvents(t *testing.T, r sdk.Result, want ...wantEvent) {
	t.Helper()
	if r.Err != nil {
		t.Fatalf("delivery refused: %v", r.Err)
	}
	if len(r.Events) != len(want) {
		t.Fatalf("%d events (rejections %+v), want %d", len(r.Events), r.Rejections, len(want))
	}
	for i, w := range want {
		e := r.Events[i]
		got := fmt.Sprintf("index=%d type=%s name=%q user=%q key=%s ts=%s", e.Index, e.Type, e.Name, e.UserID, e.IdempotencyKey, e.Timestamp.UTC().Format(time.RFC3339Nano))
		exp := fmt.Sprintf("index=%d type=track name=%q user=%q key=%s ts=%s", w.index, w.name, w.userID, w.key, w.ts.UTC().Format(time.RFC3339Nano))
		if got != exp {
			t.Errorf("event %d:\n got %s\nwant %s", i, got, exp)
		}
		if string(e.Original) != w.original || string(e.Data) != w.original {
			t.Errorf("event %d: original %s, data %s; want both %s", i, e.Original, e.Data, w.original)
		}
		if e.Traits != nil || e.AnonymousID != "" {
			t.Errorf("event %d: traits %s, anonymous id %q; want none", i, e.Traits, e.AnonymousID)
		}
	}
}

func wantRefused(t *testing.T, r sdk.Result, code sdk.ErrorCode, message string) {
	t.Helper()
	if r.Err == nil {
		t.Fatalf("delivery accepted (%d events, rejections %+v), want %v %q", len(r.Events), r.Rejections, code, message)
	}
	if r.Err.Code != code || r.Err.Message != message {
		t.Fatalf("refused with %v %q\nwant %v %q", r.Err.Code, r.Err.Message, code, message)
	}
}

func TestTranslatePresets(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		d    sdk.Delivery
		want []wantEvent
	}{
		{
			name: "stripe",
			d: delivery(stripeBody, settings("preset", "stripe", "signing_secret", stripeSecret),
				"Stripe-Signature", stripeSign(stripeSecret, stripeBody, clock.Add(-time.Minute))),
			want: []wantEvent{{name: "customer.created", key: key("evt_1NG8Du2eZvKYlo2CUI79vXWy"), ts: time.Unix(1686089970, 0), original: stripeBody}},
		},
		{
			name: "stripe with a user id path",
			d: delivery(stripeBody, settings("preset", "stripe", "signing_secret", stripeSecret, "user_id_path", "body.data.object.metadata.user_id"),
				"Stripe-Signature", stripeSign(stripeSecret, stripeBody, clock)),
			want: []wantEvent{{name: "customer.created", userID: "u1", key: key("evt_1NG8Du2eZvKYlo2CUI79vXWy"), ts: time.Unix(1686089970, 0), original: stripeBody}},
		},
		{
			name: "clerk, through svix",
			d: delivery(clerkBody, settings("preset", "clerk", "signing_secret", clerkSecret, "user_id_path", "body.data.id"),
				"Svix-Id", "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", "Svix-Timestamp", strconv.FormatInt(clock.Unix(), 10),
				"Svix-Signature", standardSign(clerkSecret, "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", clock, clerkBody)),
			want: []wantEvent{{name: "user.created", userID: "user_29w83sxmDNGwOuEthce5gg56FcC", key: key("msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"),
				ts: time.UnixMilli(1654012591835), original: clerkBody}},
		},
		{
			name: "standard webhooks, as hark's own destinations send",
			d: func() sdk.Delivery {
				body := `{"type":"workflow_run.created","timestamp":"2026-03-02T09:59:58.5Z","data":{"id":"run_1"}}`
				return delivery(body, settings("preset", "standard_webhooks", "signing_secret", clerkSecret),
					"Webhook-Id", "dlv_1", "Webhook-Timestamp", strconv.FormatInt(clock.Unix(), 10),
					"Webhook-Signature", standardSign(clerkSecret, "dlv_1", clock, body))
			}(),
			want: []wantEvent{{name: "workflow_run.created", key: key("dlv_1"), ts: time.Date(2026, 3, 2, 9, 59, 58, 5e8, time.UTC),
				original: `{"type":"workflow_run.created","timestamp":"2026-03-02T09:59:58.5Z","data":{"id":"run_1"}}`}},
		},
		{
			name: "shopify",
			d: delivery(shopifyBody, settings("preset", "shopify", "signing_secret", shopifySecret),
				"X-Shopify-Topic", "products/update", "X-Shopify-Hmac-Sha256", shopifySign(shopifySecret, shopifyBody),
				"X-Shopify-Webhook-Id", "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043", "X-Shopify-Triggered-At", "2023-03-29T18:00:27.877041743Z"),
			want: []wantEvent{{name: "products/update", key: key("b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"),
				ts: time.Date(2023, 3, 29, 18, 0, 27, 877041743, time.UTC), original: shopifyBody}},
		},
		{
			name: "github",
			d: delivery(githubBody, settings("preset", "github", "signing_secret", githubSecret, "user_id_path", "body.sender.id"),
				"X-GitHub-Event", "issues", "X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958",
				"X-Hub-Signature-256", "sha256="+hexSign(githubSecret, githubBody)),
			want: []wantEvent{{name: "issues", userID: "1", key: key("72d3162e-cc78-11e3-81ab-4c9367dc0958"), original: githubBody}},
		},
		{
			name: "hmac_sha256_hex with paths of its own",
			d: delivery(`{"event":"invoice.paid","at":1772445600,"uid":42}`,
				settings("preset", "hmac_sha256_hex", "signing_secret", "s3cret", "signature_header", "X-Acme-Signature",
					"event_type_path", "body.event", "timestamp_path", "body.at", "user_id_path", "body.uid", "idempotency_key_path", `headers["x-acme-delivery"]`),
				"X-Acme-Signature", "sha256="+hexSign("s3cret", `{"event":"invoice.paid","at":1772445600,"uid":42}`), "X-Acme-Delivery", "d-9"),
			want: []wantEvent{{name: "invoice.paid", userID: "42", key: key("d-9"), ts: time.Unix(1772445600, 0), original: `{"event":"invoice.paid","at":1772445600,"uid":42}`}},
		},
		{
			name: "a path setting replaces the preset's",
			d: delivery(stripeBody, settings("preset", "stripe", "signing_secret", stripeSecret, "event_type_path", "body.object", "idempotency_key_path", "body.data.object.id", "timestamp_path", "body.missing"),
				"Stripe-Signature", stripeSign(stripeSecret, stripeBody, clock)),
			want: []wantEvent{{name: "event", key: key("cus_NffrFeUfNV2Hib"), original: stripeBody}},
		},
		{
			name: "none, with no paths: every delivery is a webhook",
			d:    delivery(` {"anything":true} `, settings("preset", "none")),
			want: []wantEvent{{name: "webhook", original: `{"anything":true}`}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			checkEvents(t, translateOne(t, src, tt.d), tt.want...)
		})
	}
}

// TestTranslateRefusesUnverified covers every way a delivery fails
// verification or its settings cannot verify: 401, with what to fix.
func TestTranslateRefusesUnverified(t *testing.T) {
	t.Parallel()
	stripeSettings := settings("preset", "stripe", "signing_secret", stripeSecret)
	good := stripeSign(stripeSecret, stripeBody, clock)
	tests := []struct {
		name string
		d    sdk.Delivery
		want string
	}{
		{"no preset", delivery(stripeBody, nil),
			"no preset is set for this source environment: set preset to one of clerk, github, hmac_sha256_hex, none, shopify, standard_webhooks, stripe"},
		{"unknown preset", delivery(stripeBody, settings("preset", "Stripe")),
			`preset "Stripe" is not one of clerk, github, hmac_sha256_hex, none, shopify, standard_webhooks, stripe`},
		{"a verifying preset without a secret", delivery(stripeBody, settings("preset", "stripe"), "Stripe-Signature", good),
			`preset "stripe" verifies signatures, but no signing_secret is set for this source environment`},
		{"a secret with preset none", delivery(stripeBody, settings("preset", "none", "signing_secret", stripeSecret)),
			`signing_secret is set, but preset "none" verifies nothing: set the preset the sender signs with, or remove the secret`},
		{"hmac_sha256_hex without signature_header", delivery("{}", settings("preset", "hmac_sha256_hex", "signing_secret", "s")),
			`preset "hmac_sha256_hex" needs signature_header, the name of the header that carries the signature, but none is set`},
		{"hmac_sha256_hex with a header name that is none", delivery("{}", settings("preset", "hmac_sha256_hex", "signing_secret", "s", "signature_header", "X Sig:")),
			`signature_header "X Sig:" is not an HTTP header name`},
		{"stripe unsigned", delivery(stripeBody, stripeSettings), "the Stripe-Signature header is missing"},
		{"stripe tampered", delivery(strings.Replace(stripeBody, "customer.created", "customer.deleted", 1), stripeSettings, "Stripe-Signature", good),
			"no v1 signature in Stripe-Signature matches the delivery's HMAC-SHA256 with the signing secret"},
		{"stripe stale", delivery(stripeBody, stripeSettings, "Stripe-Signature", stripeSign(stripeSecret, stripeBody, clock.Add(-6*time.Minute))),
			"Stripe-Signature's timestamp is 6m0s old; at most 5m0s is accepted"},
		{"stripe signed with another secret", delivery(stripeBody, stripeSettings, "Stripe-Signature", stripeSign("whsec_other", stripeBody, clock)),
			"no v1 signature in Stripe-Signature matches the delivery's HMAC-SHA256 with the signing secret"},
		{"clerk stale", delivery(clerkBody, settings("preset", "clerk", "signing_secret", clerkSecret),
			"Svix-Id", "m", "Svix-Timestamp", strconv.FormatInt(clock.Add(-10*time.Minute).Unix(), 10), "Svix-Signature", standardSign(clerkSecret, "m", clock.Add(-10*time.Minute), clerkBody)),
			"svix-timestamp is 10m0s old; at most 5m0s is accepted"},
		{"shopify tampered", delivery(shopifyBody+" ", settings("preset", "shopify", "signing_secret", shopifySecret),
			"X-Shopify-Hmac-Sha256", shopifySign(shopifySecret, shopifyBody)),
			"X-Shopify-Hmac-Sha256 does not match the body's HMAC-SHA256 with the signing secret"},
		{"github unsigned", delivery(githubBody, settings("preset", "github", "signing_secret", githubSecret), "X-GitHub-Event", "issues"),
			"the X-Hub-Signature-256 header is missing"},
		// A bad path is a 400, but only once the delivery is verified: a
		// stranger learns nothing about the setup.
		{"a bad path behind a bad signature", delivery(stripeBody, settings("preset", "stripe", "signing_secret", stripeSecret, "event_type_path", "type")),
			"the Stripe-Signature header is missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			wantRefused(t, translateOne(t, src, tt.d), sdk.CodeBadSignature, tt.want)
		})
	}
}

func TestTranslateRefusesBadRequests(t *testing.T) {
	t.Parallel()
	none := settings("preset", "none")
	// Past what any event may nest, with the array: the body is not decoded.
	deep := strings.Repeat(`{"a":`, 2*httpsource.MaxDepth+2) + "1" + strings.Repeat("}", 2*httpsource.MaxDepth+2)
	tests := []struct {
		name string
		d    sdk.Delivery
		want string
	}{
		{"bad event type path", delivery("{}", settings("preset", "none", "event_type_path", "body.a-b")),
			`this source environment's event_type_path is not a valid path: path "body.a-b", column 7: unexpected '-': segments start with "." or "["`},
		{"bad user id path", delivery("{}", settings("preset", "none", "user_id_path", `headers["X-User"]`)),
			`this source environment's user_id_path is not a valid path: path "headers[\"X-User\"]", column 8: header names are lowercase in paths: headers["x-user"]`},
		{"bad idempotency key path on a verified delivery", delivery(stripeBody, settings("preset", "stripe", "signing_secret", stripeSecret, "idempotency_key_path", "id"),
			"Stripe-Signature", stripeSign(stripeSecret, stripeBody, clock)),
			`this source environment's idempotency_key_path is not a valid path: path "id", column 1: a path starts with body or headers, not "id" (body.id names a field of the body)`},
		{"empty body", delivery(" \n", none), "the body is empty; expected a JSON object, or an array of objects"},
		{"not JSON", delivery("Hello, World!", none), "the body must be a JSON object, or an array of objects"},
		{"a form post", func() sdk.Delivery {
			d := delivery("payload=%7B%7D", none)
			d.ContentType = "application/x-www-form-urlencoded"
			return d
		}(), "the body must be a JSON object, or an array of objects (the request's Content-Type is application/x-www-form-urlencoded: set the sender to send JSON)"},
		{"a JSON string", delivery(`"customer.created"`, none), "the body must be a JSON object, or an array of objects"},
		{"cut short", delivery(`{"type":"a"`, none), "the body is not valid JSON: unexpected end of JSON input at byte 11"},
		{"two objects", delivery(`{"type":"a"} {"type":"b"}`, none), "the body is not valid JSON: invalid character '{' after top-level value at byte 14"},
		{"cut short array", delivery(`[{"type":"a"},`, none), "the body is not valid JSON: unexpected end of JSON input at byte 14"},
		{"not UTF-8", delivery("{\"type\":\"caf\xe9\"}", none), "the body is not valid UTF-8"},
		{"empty array", delivery(" [ ] ", none), "the array holds no events"},
		{"too many events", delivery("["+strings.Repeat("{},", httpsource.MaxEvents)+"{}]", none),
			fmt.Sprintf("the array holds %d events; at most %d are accepted per delivery", httpsource.MaxEvents+1, httpsource.MaxEvents)},
		{"too deep", delivery("["+deep+"]", none), fmt.Sprintf("JSON nesting is %d levels deep; at most %d levels per event", 2*httpsource.MaxDepth+3, httpsource.MaxDepth)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			wantRefused(t, translateOne(t, src, tt.d), sdk.CodeBadRequest, tt.want)
		})
	}
}

func TestTranslateArray(t *testing.T) {
	t.Parallel()
	// SendGrid's event webhook posts arrays; the elements are events.
	body := `[
		{"email":"a@example.com","event":"delivered","sg_event_id":"e1","timestamp":1772445600},
		"not an object",
		{"email":"b@example.com","event":{"nested":true},"sg_event_id":"e3"},
		{"email":"c@example.com","sg_event_id":"e4"},
		null
	]`
	r := translateOne(t, src, delivery(body, settings("preset", "none", "event_type_path", "body.event", "idempotency_key_path", "body.sg_event_id",
		"timestamp_path", "body.timestamp", "user_id_path", "body.email")))
	checkEvents(t, sdk.Result{Events: r.Events},
		wantEvent{index: 0, name: "delivered", userID: "a@example.com", key: key("e1"), ts: time.Unix(1772445600, 0),
			original: `{"email":"a@example.com","event":"delivered","sg_event_id":"e1","timestamp":1772445600}`},
		wantEvent{index: 3, name: "webhook", userID: "c@example.com", key: key("e4"), original: `{"email":"c@example.com","sg_event_id":"e4"}`},
	)
	want := []sdk.Rejection{
		{Index: 1, Reason: "the event must be a JSON object"},
		{Index: 2, Reason: "event_type_path body.event: the value is an object; an event type is a string"},
		{Index: 4, Reason: "the event must be a JSON object"},
	}
	if !reflect.DeepEqual(r.Rejections, want) {
		t.Fatalf("rejections = %+v\nwant %+v", r.Rejections, want)
	}

	// A key from a header is the same for every element: each gets its
	// index, so the elements stay distinct and a redelivery is still known.
	r = translateOne(t, src, delivery(`[{"a":1},{"a":2}]`, settings("preset", "none", "idempotency_key_path", `headers["x-delivery"]`), "X-Delivery", "d1"))
	checkEvents(t, r,
		wantEvent{index: 0, name: "webhook", key: key("d1#0"), original: `{"a":1}`},
		wantEvent{index: 1, name: "webhook", key: key("d1#1"), original: `{"a":2}`},
	)
}

func TestTranslateFieldValues(t *testing.T) {
	t.Parallel()
	paths := settings("preset", "none", "event_type_path", "body.t", "user_id_path", "body.u", "timestamp_path", "body.ts", "idempotency_key_path", "body.k")
	tests := []struct {
		name   string
		body   string
		want   wantEvent // original is the body
		reject string
	}{
		{name: "strings", body: `{"t":"a.b","u":"u1","k":"k1","ts":"2026-03-02T10:00:00+01:00"}`,
			want: wantEvent{name: "a.b", userID: "u1", key: key("k1"), ts: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}},
		{name: "numbers as their text", body: `{"t":404,"u":12345678901234567890,"k":7,"ts":1772445600}`,
			want: wantEvent{name: "404", userID: "12345678901234567890", key: json.RawMessage("7"), ts: time.Unix(1772445600, 0)}},
		{name: "milliseconds", body: `{"ts":1772445600123}`, want: wantEvent{name: "webhook", ts: time.UnixMilli(1772445600123)}},
		{name: "fractional seconds", body: `{"ts":1772445600.25}`, want: wantEvent{name: "webhook", ts: time.Unix(1772445600, 25e7)}},
		{name: "seconds as a string", body: `{"ts":"1772445600"}`, want: wantEvent{name: "webhook", ts: time.Unix(1772445600, 0)}},
		{name: "nulls and empty strings are absent", body: `{"t":"","u":null,"k":null,"ts":null}`, want: wantEvent{name: "webhook"}},
		{name: "unreadable times are unknown", body: `{"ts":"yesterday"}`, want: wantEvent{name: "webhook"}},
		{name: "negative times are unknown", body: `{"ts":-5}`, want: wantEvent{name: "webhook"}},
		{name: "times past year 9999 are unknown", body: `{"ts":1e300}`, want: wantEvent{name: "webhook"}},
		{name: "RFC 3339 before year 1 is unknown", body: `{"ts":"0001-01-01T00:30:00+01:00"}`, want: wantEvent{name: "webhook"}},
		{name: "milliseconds as an exponent", body: `{"ts":1.7724456001e12}`, want: wantEvent{name: "webhook", ts: time.Unix(1772445600, 1e8)}},
		{name: "not a number at all", body: `{"ts":"NaN"}`, want: wantEvent{name: "webhook"}},
		{name: "keys of other types are passed on for hark to judge", body: `{"k":{"id":1}}`, want: wantEvent{name: "webhook", key: json.RawMessage(`{"id":1}`)}},
		{name: "an array type", body: `{"t":["a"]}`, reject: "event_type_path body.t: the value is an array; an event type is a string"},
		{name: "a boolean user", body: `{"u":true}`, reject: "user_id_path body.u: the value is a boolean; a user id is a string or a number"},
		{name: "an object user", body: `{"u":{"id":"u1"}}`, reject: "user_id_path body.u: the value is an object; a user id is a string or a number"},
		{name: "the longest type", body: `{"t":"` + strings.Repeat("t", httpsource.MaxNameBytes) + `"}`, want: wantEvent{name: strings.Repeat("t", httpsource.MaxNameBytes)}},
		{name: "a type too long", body: `{"t":"` + strings.Repeat("t", httpsource.MaxNameBytes+1) + `"}`, reject: "event_type_path body.t: the value is 201 bytes; an event type is at most 200"},
		{name: "the longest user id", body: `{"u":"` + strings.Repeat("u", httpsource.MaxUserIDBytes) + `"}`, want: wantEvent{name: "webhook", userID: strings.Repeat("u", httpsource.MaxUserIDBytes)}},
		{name: "a user id too long", body: `{"u":"` + strings.Repeat("u", httpsource.MaxUserIDBytes+1) + `"}`, reject: "user_id_path body.u: the value is 256 bytes; a user id is at most 255"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := translateOne(t, src, delivery(tt.body, paths))
			if tt.reject != "" {
				want := []sdk.Rejection{{Index: 0, Reason: tt.reject}}
				if r.Err != nil || len(r.Events) != 0 || !reflect.DeepEqual(r.Rejections, want) {
					t.Fatalf("result = %+v, want rejections %+v", r, want)
				}
				return
			}
			tt.want.original = tt.body
			checkEvents(t, r, tt.want)
		})
	}
}

func TestTranslateEventLimits(t *testing.T) {
	t.Parallel()
	none := settings("preset", "none")
	big := `{"a":"` + strings.Repeat("x", httpsource.MaxEventBytes) + `"}`
	deep := strings.Repeat(`{"a":`, httpsource.MaxDepth) + "1" + strings.Repeat("}", httpsource.MaxDepth)
	tooDeep := `{"b":` + deep + "}"
	r := translateOne(t, src, delivery("["+big+`,{"ok":1},`+tooDeep+","+deep+"]", none))
	want := []sdk.Rejection{
		{Index: 0, Reason: fmt.Sprintf("the event is %d bytes; at most %d are accepted", len(big), httpsource.MaxEventBytes)},
		{Index: 2, Reason: fmt.Sprintf("the event's JSON nesting is %d levels deep; at most %d", httpsource.MaxDepth+1, httpsource.MaxDepth)},
	}
	if !reflect.DeepEqual(r.Rejections, want) {
		t.Fatalf("rejections = %+v\nwant %+v", r.Rejections, want)
	}
	checkEvents(t, sdk.Result{Events: r.Events},
		wantEvent{index: 1, name: "webhook", original: `{"ok":1}`},
		wantEvent{index: 3, name: "webhook", original: deep})

	// A single object over a limit is that one event rejected: hark answers
	// 400 with the reason, as for any delivery whose events are all refused.
	r = translateOne(t, src, delivery(tooDeep, none))
	if r.Err != nil || len(r.Events) != 0 || len(r.Rejections) != 1 || r.Rejections[0].Index != 0 {
		t.Fatalf("result = %+v, want event 0 rejected", r)
	}
}

// TestTranslateOverTheWire runs deliveries through a real gRPC connection,
// as hark calls the plugin: values from headers are bytes, and a name or id
// that is not UTF-8 is a rejection, never a call that cannot be encoded.
func TestTranslateOverTheWire(t *testing.T) {
	t.Parallel()
	wire := sdk.TestSource(t, src)
	stripe := delivery(stripeBody, settings("preset", "stripe", "signing_secret", stripeSecret), "Stripe-Signature", stripeSign(stripeSecret, stripeBody, clock))
	latin1 := delivery(`{"a":1}`, settings("preset", "none", "event_type_path", `headers["x-event"]`, "idempotency_key_path", `headers["x-event"]`), "X-Event", "caf\xe9")
	latin1User := delivery(`{"a":1}`, settings("preset", "none", "user_id_path", `headers["x-user"]`), "X-User", "\xff")
	res, err := wire.Translate(context.Background(), []sdk.Delivery{stripe, latin1, latin1User})
	if err != nil {
		t.Fatalf("Translate: %v", err)
	}
	checkEvents(t, res[0], wantEvent{name: "customer.created", key: key("evt_1NG8Du2eZvKYlo2CUI79vXWy"), ts: time.Unix(1686089970, 0), original: stripeBody})
	for i, want := range []string{
		`event_type_path headers["x-event"]: the value is not valid UTF-8; an event type is a string`,
		`user_id_path headers["x-user"]: the value is not valid UTF-8; a user id is a string or a number`,
	} {
		r := res[i+1]
		if r.Err != nil || len(r.Events) != 0 || len(r.Rejections) != 1 || r.Rejections[0].Reason != want {
			t.Errorf("delivery %d = %+v, want one rejection %q", i+1, r, want)
		}
	}
}

func TestDescribe(t *testing.T) {
	t.Parallel()
	d, err := sdk.TestSource(t, httpsource.HTTP()).Describe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if d.Type != "http" || d.DisplayName != "HTTP" || d.Version != httpsource.Version || d.IdempotencyKey != "idempotency_key_path" {
		t.Errorf("description = %+v", d)
	}
	var got []string
	for _, s := range d.Settings {
		got = append(got, fmt.Sprintf("%s secret=%v required=%v", s.Key, s.Secret, s.Required))
		if s.Description == "" {
			t.Errorf("setting %s has no description", s.Key)
		}
	}
	want := []string{
		"preset secret=false required=true",
		"signing_secret secret=true required=false",
		"signature_header secret=false required=false",
		"event_type_path secret=false required=false",
		"idempotency_key_path secret=false required=false",
		"timestamp_path secret=false required=false",
		"user_id_path secret=false required=false",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("settings =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestTranslateBatchKeepsOrder checks a batched call: one result per
// delivery, in order, each judged alone.
func TestTranslateBatchKeepsOrder(t *testing.T) {
	t.Parallel()
	ds := []sdk.Delivery{
		delivery(`{"type":"a"}`, settings("preset", "none", "event_type_path", "body.type")),
		delivery(`{}`, settings("preset", "stripe")),
		delivery(`{"type":"c"}`, settings("preset", "none", "event_type_path", "body.type")),
	}
	res, err := src.Translate(context.Background(), ds)
	if err != nil || len(res) != 3 {
		t.Fatalf("Translate = %d results, %v", len(res), err)
	}
	if res[0].Err != nil || res[0].Events[0].Name != "a" || res[1].Err == nil || res[2].Err != nil || res[2].Events[0].Name != "c" {
		t.Fatalf("results = %+v", res)
	}
	if !bytes.Equal(res[2].Events[0].Original, []byte(`{"type":"c"}`)) {
		t.Fatalf("original = %s", res[2].Events[0].Original)
	}
}
