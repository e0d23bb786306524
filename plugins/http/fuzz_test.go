package httpsource_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	httpsource "github.com/harkhq/hark/plugins/http"
	"github.com/harkhq/hark/plugins/sdk"
)

// FuzzHTTPTranslate feeds arbitrary deliveries, settings and paths to the
// http source and checks what must hold for any input:
//   - ParsePath never panics, and a path it accepts prints in a form that
//     parses back to the same path;
//   - Translate never panics and gives one result; a refused delivery is a
//     400 or 401 with a message and carries no events;
//   - a delivery is accepted under a verifying preset only if its signature
//     header holds the body's HMAC, checked here by an oracle written from
//     the providers' documentation;
//   - every event of an accepted delivery is accounted for once, in order,
//     with type track, a name, UTF-8 text within its bounds, and JSON
//     objects for data and the original.
func FuzzHTTPTranslate(f *testing.F) {
	seed := func(body, preset, secret, sig, path string) { f.Add([]byte(body), preset, secret, sig, path) }
	// The providers' documented vectors (see verify_test.go).
	seed("Hello, World!", "github", "It's a Secret to Everybody", "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17", "body.x")
	seed(`{"test": 2432232314}`, "standard_webhooks", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", "body.test")
	seed(`{"id":1234567890,"email":"customer@example.com","total_price":"123.45"}`, "shopify", "test-webhook-secret", "QNyObTlKbMx2qDlPF/ZOZcBqg5OgPg+2oky3zldc0Gw=", "body.email")
	seed(`{"id":1234567890,"email":"customer@example.com","total_price":"123.45"}`, "hmac_sha256_hex", "test-webhook-secret", "sha256=40dc8e6d394a6ccc76a8394f17f64e65c06a8393a03e0fb6a24cb7ce575cd06c", "body.id")
	seed(stripeBody, "stripe", stripeSecret, stripeSign(stripeSecret, stripeBody, clock), "body.data.object.id")
	seed(githubBody, "github", githubSecret, "sha256="+hexSign(githubSecret, githubBody), `headers["x-github-event"]`)
	seed(`[{"t":"a"},2,{"t":{"x":1}},null,{"t":7}]`, "none", "", "", "body.t")
	seed(`{"a":[{"b":"c"}]}`, "none", "", "", `body["a"][0]["b"]`)
	seed(`{"a":1}`, "none", "", "", `headers["X-Sig"]`)
	seed(`{"a":1}`, "none", "", "", "body[01]")
	seed(`{"a":1}`, "clerk", "whsec_%%%", "v1,x", `body["\u00e9"]`)
	seed("{\"a\":\"caf\xe9\"}", "none", "", "", "body.a")
	seed(`{"ts":1.7724456001e12}`, "none", "", "", "body.ts")
	seed(strings.Repeat("[", 200), "none", "", "", "body")

	now := time.Unix(1614265330, 0)
	s := httpsource.New(httpsource.Options{Now: func() time.Time { return now }})
	f.Fuzz(func(t *testing.T, body []byte, preset, secret, sig, path string) {
		if p, err := httpsource.ParsePath(path); err == nil {
			again, err := httpsource.ParsePath(p.String())
			if err != nil || !reflect.DeepEqual(again, p) || again.String() != p.String() {
				t.Fatalf("path %q prints as %q, which parses to %+v, %v", path, p.String(), again, err)
			}
		} else if _, ok := err.(*httpsource.PathError); !ok {
			t.Fatalf("ParsePath(%q) error %T is not a *PathError", path, err)
		}

		header := http.Header{}
		for _, name := range []string{"Stripe-Signature", "Webhook-Signature", "X-Shopify-Hmac-Sha256", "X-Hub-Signature-256", "X-Sig", "X-Event"} {
			header.Set(name, sig)
		}
		header.Set("Webhook-Id", "msg_p5jXN8AQM9LWM0D4loKWxJek")
		header.Set("Webhook-Timestamp", "1614265330")
		settings := map[string]string{
			"preset": preset, "signing_secret": secret, "signature_header": "X-Sig",
			"event_type_path": path, "user_id_path": path, "idempotency_key_path": path, "timestamp_path": path,
		}
		res, err := s.Translate(context.Background(), []sdk.Delivery{{Header: header, Body: body, ContentType: "application/json", Settings: settings}})
		if err != nil {
			t.Fatalf("Translate failed the whole batch: %v", err)
		}
		if len(res) != 1 {
			t.Fatalf("%d results for 1 delivery", len(res))
		}
		r := res[0]
		if r.Err != nil {
			if len(r.Events) != 0 || len(r.Rejections) != 0 {
				t.Fatalf("refused delivery (%v) carries %d events and %d rejections", r.Err, len(r.Events), len(r.Rejections))
			}
			if (r.Err.Code != sdk.CodeBadRequest && r.Err.Code != sdk.CodeBadSignature) || r.Err.Message == "" {
				t.Fatalf("unexpected refusal %#v", r.Err)
			}
			return
		}
		if !signedAsDocumented(preset, secret, sig, body, now) {
			t.Fatalf("preset %q accepted a delivery its signature does not cover: secret %q, signature %q", preset, secret, sig)
		}
		checkAccounted(t, body, r)
	})
}

// signedAsDocumented is the fuzz target's oracle: whether sig is a valid
// signature of body under preset, computed as the providers document it.
func signedAsDocumented(preset, secret, sig string, body []byte, now time.Time) bool {
	sum := macOf([]byte(secret), string(body))
	hexOK := func(s string) bool { b, err := hex.DecodeString(s); return err == nil && hmac.Equal(b, sum) }
	sig = strings.TrimSpace(sig)
	switch preset {
	case "none":
		return secret == ""
	case "github":
		digits, ok := strings.CutPrefix(sig, "sha256=")
		return ok && hexOK(digits)
	case "hmac_sha256_hex":
		return hexOK(strings.TrimPrefix(sig, "sha256="))
	case "shopify":
		return sig == base64.StdEncoding.EncodeToString(sum)
	case "stripe":
		// Some t= and some v1= of the header must sign "t.body".
		var ts, sigs []string
		for item := range strings.SplitSeq(sig, ",") {
			switch k, v, _ := strings.Cut(strings.TrimSpace(item), "="); k {
			case "t":
				ts = append(ts, v)
			case "v1":
				sigs = append(sigs, v)
			}
		}
		for _, t := range ts {
			for _, v := range sigs {
				if b, err := hex.DecodeString(v); err == nil && hmac.Equal(b, macOf([]byte(secret), t, ".", string(body))) {
					return true
				}
			}
		}
		return false
	case "standard_webhooks", "clerk":
		key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
		if err != nil {
			return false
		}
		want := "v1," + base64.StdEncoding.EncodeToString(macOf(key, "msg_p5jXN8AQM9LWM0D4loKWxJek.1614265330.", string(body)))
		return slices.Contains(strings.Fields(sig), want)
	}
	return false
}

// checkAccounted checks the events of an accepted delivery against the
// body, decoded here on its own.
func checkAccounted(t *testing.T, body []byte, r sdk.Result) {
	t.Helper()
	var v any
	if err := json.Unmarshal(bytes.TrimSpace(body), &v); err != nil {
		t.Fatalf("delivery accepted, but its body is not JSON: %q", body)
	}
	n := 1
	switch v := v.(type) {
	case []any:
		n = len(v)
	case map[string]any:
	default:
		t.Fatalf("delivery accepted, but its body is no JSON object or array: %q", body)
	}
	seen := make([]int, n)
	prev := -1
	for _, e := range r.Events {
		if e.Index < 0 || e.Index >= n || e.Index <= prev {
			t.Fatalf("event index %d out of order or range [0,%d) after %d", e.Index, n, prev)
		}
		prev = e.Index
		seen[e.Index]++
		if e.Type != "track" || e.Name == "" || len(e.Name) > httpsource.MaxNameBytes || len(e.UserID) > httpsource.MaxUserIDBytes ||
			!utf8.ValidString(e.Name) || !utf8.ValidString(e.UserID) {
			t.Fatalf("event %d: type %q, name %q, user %q", e.Index, e.Type, e.Name, e.UserID)
		}
		if !json.Valid(e.Original) || !bytes.HasPrefix(e.Original, []byte("{")) || !bytes.Equal(e.Data, e.Original) {
			t.Fatalf("event %d: original %q, data %q", e.Index, e.Original, e.Data)
		}
		if e.IdempotencyKey != nil && !json.Valid(e.IdempotencyKey) {
			t.Fatalf("event %d: idempotency key %q is not JSON", e.Index, e.IdempotencyKey)
		}
		if !e.Timestamp.IsZero() && (e.Timestamp.Year() < 1 || e.Timestamp.Year() > 9999) {
			t.Fatalf("event %d: timestamp %v", e.Index, e.Timestamp)
		}
	}
	for _, rej := range r.Rejections {
		if rej.Index < 0 || rej.Index >= n || rej.Reason == "" {
			t.Fatalf("rejection %+v out of range [0,%d) or without a reason", rej, n)
		}
		seen[rej.Index]++
	}
	for i, c := range seen {
		if c != 1 {
			t.Fatalf("event %d of %d appears %d times across events and rejections", i, n, c)
		}
	}
}
