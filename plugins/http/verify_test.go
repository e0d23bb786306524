package httpsource

import (
	"strings"
	"testing"
	"time"

	"github.com/harkhq/hark/plugins/sdk"
)

// The providers' own test vectors. Each is checked as documented, then
// tampered with (body, secret, signature) to see it refused.
const (
	// GitHub, "Validating webhook deliveries", section "Testing the webhook
	// payload validation" (docs.github.com/en/webhooks/using-webhooks/
	// validating-webhook-deliveries).
	githubSecret    = "It's a Secret to Everybody"
	githubPayload   = "Hello, World!"
	githubSignature = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"

	// Standard Webhooks, the reference libraries' signing test
	// (github.com/standard-webhooks/standard-webhooks, libraries/go/
	// webhook_test.go TestWebhookSign; the same vector is in Svix's
	// libraries). Its invalid signature is from the same file.
	swSecret         = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	swID             = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	swTimestamp      = 1614265330
	swPayload        = `{"test": 2432232314}`
	swSignature      = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	swWrongSignature = "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="

	// A Shopify-shaped body with both encodings of its HMAC-SHA256, as
	// published in SQLPage's HMAC tests (sqlpage.hmac 'sha256-base64' and
	// 'sha256'); checked with openssl dgst -sha256 -hmac. Shopify documents
	// the scheme (base64 HMAC-SHA256 of the raw body with the app's client
	// secret) but no vector.
	hmacSecret    = "test-webhook-secret"
	hmacPayload   = `{"id":1234567890,"email":"customer@example.com","total_price":"123.45"}`
	hmacBase64    = "QNyObTlKbMx2qDlPF/ZOZcBqg5OgPg+2oky3zldc0Gw="
	hmacHexDigest = "40dc8e6d394a6ccc76a8394f17f64e65c06a8393a03e0fb6a24cb7ce575cd06c"

	// Stripe documents its scheme (Stripe-Signature t=…,v1=…: the hex
	// HMAC-SHA256 of "t.body" keyed with the whsec_ secret as it is) and
	// an example header, but no secret and body to go with it. This vector
	// uses stripe-go's test secret (webhook/client_test.go) and the shape of
	// Stripe's documented event object, signed with openssl dgst -sha256
	// -hmac whsec_test_secret over "1686089972.<body>".
	stripeSecret    = "whsec_test_secret"
	stripeTimestamp = 1686089972
	stripePayload   = `{"id":"evt_1NG8Du2eZvKYlo2CUI79vXWy","object":"event","api_version":"2019-02-19","created":1686089970,"data":{"object":{"id":"cus_NffrFeUfNV2Hib","object":"customer","email":"jennyrosen@example.com","name":"Jenny Rosen"}},"livemode":false,"pending_webhooks":0,"request":{"id":null,"idempotency_key":null},"type":"customer.created"}`
	stripeSignature = "298b94daba8fc071044341130140036b7b7c1d30d86e8464d14365f6409bbf6f"
)

func TestVerifyDocumentedVectors(t *testing.T) {
	t.Parallel()
	swAt := time.Unix(swTimestamp, 0)
	stripeAt := time.Unix(stripeTimestamp, 0)
	swHeaders := func(sig string) map[string]string {
		return map[string]string{"webhook-id": swID, "webhook-timestamp": "1614265330", "webhook-signature": sig}
	}
	stripeHeader := func(h string) map[string]string { return map[string]string{"stripe-signature": h} }
	tests := []struct {
		name    string
		v       verifier
		headers map[string]string
		body    string
		now     time.Time
		want    string // "" accepts; else a part of the 401's message
	}{
		{"github vector", verifier{scheme: schemeGitHub, secret: githubSecret},
			map[string]string{"x-hub-signature-256": githubSignature}, githubPayload, swAt, ""},
		{"github tampered body", verifier{scheme: schemeGitHub, secret: githubSecret},
			map[string]string{"x-hub-signature-256": githubSignature}, "Hello, World?", swAt, "X-Hub-Signature-256 does not match"},
		{"github wrong secret", verifier{scheme: schemeGitHub, secret: "It's a secret to everybody"},
			map[string]string{"x-hub-signature-256": githubSignature}, githubPayload, swAt, "X-Hub-Signature-256 does not match"},
		{"github without sha256= prefix", verifier{scheme: schemeGitHub, secret: githubSecret},
			map[string]string{"x-hub-signature-256": strings.TrimPrefix(githubSignature, "sha256=")}, githubPayload, swAt, "X-Hub-Signature-256 must be sha256=<hex"},
		{"github sha1 header only", verifier{scheme: schemeGitHub, secret: githubSecret},
			map[string]string{"x-hub-signature": "sha1=01dc10d0c83e72ed246219cdd91669667fe2ca59"}, githubPayload, swAt, "the X-Hub-Signature-256 header is missing"},
		{"github truncated signature", verifier{scheme: schemeGitHub, secret: githubSecret},
			map[string]string{"x-hub-signature-256": githubSignature[:20]}, githubPayload, swAt, "does not match"},

		{"standard webhooks vector", verifier{scheme: schemeStandardWebhooks, secret: swSecret},
			swHeaders(swSignature), swPayload, swAt, ""},
		{"standard webhooks secret without whsec_", verifier{scheme: schemeStandardWebhooks, secret: strings.TrimPrefix(swSecret, "whsec_")},
			swHeaders(swSignature), swPayload, swAt, ""},
		{"standard webhooks as svix-* headers", verifier{scheme: schemeStandardWebhooks, secret: swSecret},
			map[string]string{"svix-id": swID, "svix-timestamp": "1614265330", "svix-signature": swSignature}, swPayload, swAt, ""},
		{"standard webhooks several signatures", verifier{scheme: schemeStandardWebhooks, secret: swSecret},
			swHeaders(swWrongSignature + " v2," + swSignature[3:] + " " + swSignature + " " + swWrongSignature), swPayload, swAt, ""},
		{"standard webhooks invalid signature", verifier{scheme: schemeStandardWebhooks, secret: swSecret},
			swHeaders(swWrongSignature), swPayload, swAt, "no v1 signature in webhook-signature matches"},
		{"standard webhooks right signature under another version", verifier{scheme: schemeStandardWebhooks, secret: swSecret},
			swHeaders("v1a," + swSignature[3:]), swPayload, swAt, "no v1 signature in webhook-signature matches"},
		{"standard webhooks tampered body", verifier{scheme: schemeStandardWebhooks, secret: swSecret},
			swHeaders(swSignature), `{"test": 2432232315}`, swAt, "no v1 signature"},
		{"standard webhooks tampered id", verifier{scheme: schemeStandardWebhooks, secret: swSecret},
			map[string]string{"webhook-id": swID + "x", "webhook-timestamp": "1614265330", "webhook-signature": swSignature}, swPayload, swAt, "no v1 signature"},
		{"standard webhooks wrong secret", verifier{scheme: schemeStandardWebhooks, secret: "whsec_c2VjcmV0LW9mLWEtcm90YXRlZC1lbmRwb2ludA=="},
			swHeaders(swSignature), swPayload, swAt, "no v1 signature"},
		{"standard webhooks secret not base64", verifier{scheme: schemeStandardWebhooks, secret: "whsec_not base64!"},
			swHeaders(swSignature), swPayload, swAt, "signing_secret is not a Standard Webhooks secret"},
		{"standard webhooks 5 minutes old", verifier{scheme: schemeStandardWebhooks, secret: swSecret},
			swHeaders(swSignature), swPayload, swAt.Add(Tolerance), ""},
		{"standard webhooks stale", verifier{scheme: schemeStandardWebhooks, secret: swSecret},
			swHeaders(swSignature), swPayload, swAt.Add(Tolerance + time.Second), "webhook-timestamp is 5m1s old; at most 5m0s is accepted"},
		{"standard webhooks from the future", verifier{scheme: schemeStandardWebhooks, secret: swSecret},
			swHeaders(swSignature), swPayload, swAt.Add(-Tolerance - time.Second), "webhook-timestamp is 5m1s ahead of this server's clock"},
		{"standard webhooks missing timestamp", verifier{scheme: schemeStandardWebhooks, secret: swSecret},
			map[string]string{"webhook-id": swID, "webhook-signature": swSignature}, swPayload, swAt, "the webhook-timestamp header is missing"},
		{"standard webhooks missing everything", verifier{scheme: schemeStandardWebhooks, secret: swSecret},
			map[string]string{}, swPayload, swAt, "the webhook-id header is missing"},
		{"standard webhooks timestamp not a number", verifier{scheme: schemeStandardWebhooks, secret: swSecret},
			map[string]string{"webhook-id": swID, "webhook-timestamp": "2021-02-25T15:02:10Z", "webhook-signature": swSignature}, swPayload, swAt, `webhook-timestamp "2021-02-25T15:02:10Z" is not a Unix time in seconds`},

		{"stripe vector", verifier{scheme: schemeStripe, secret: stripeSecret},
			stripeHeader("t=1686089972,v1=" + stripeSignature), stripePayload, stripeAt, ""},
		{"stripe vector beside a v0 and a rolled key", verifier{scheme: schemeStripe, secret: stripeSecret},
			stripeHeader("t=1686089972,v1=" + strings.Repeat("ab", 32) + ",v1=" + stripeSignature + ",v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39"), stripePayload, stripeAt, ""},
		{"stripe unreadable extra v1 is ignored", verifier{scheme: schemeStripe, secret: stripeSecret},
			stripeHeader("t=1686089972, v1=" + stripeSignature + ", v1=bad_signature"), stripePayload, stripeAt, ""},
		{"stripe tampered body", verifier{scheme: schemeStripe, secret: stripeSecret},
			stripeHeader("t=1686089972,v1=" + stripeSignature), strings.Replace(stripePayload, "Jenny", "Jonny", 1), stripeAt, "no v1 signature in Stripe-Signature matches"},
		{"stripe tampered timestamp", verifier{scheme: schemeStripe, secret: stripeSecret},
			stripeHeader("t=1686089973,v1=" + stripeSignature), stripePayload, stripeAt, "no v1 signature in Stripe-Signature matches"},
		{"stripe wrong secret", verifier{scheme: schemeStripe, secret: "whsec_test_secret_rolled_key"},
			stripeHeader("t=1686089972,v1=" + stripeSignature), stripePayload, stripeAt, "no v1 signature"},
		{"stripe only v0", verifier{scheme: schemeStripe, secret: stripeSecret},
			stripeHeader("t=1686089972,v0=" + stripeSignature), stripePayload, stripeAt, "Stripe-Signature has no v1 signature"},
		{"stripe no timestamp", verifier{scheme: schemeStripe, secret: stripeSecret},
			stripeHeader("v1=" + stripeSignature), stripePayload, stripeAt, "Stripe-Signature has no timestamp (t=)"},
		{"stripe malformed header", verifier{scheme: schemeStripe, secret: stripeSecret},
			stripeHeader("v1,t=1"), stripePayload, stripeAt, "Stripe-Signature is not of the form t=<timestamp>,v1=<signature>"},
		{"stripe empty timestamp", verifier{scheme: schemeStripe, secret: stripeSecret},
			stripeHeader("t="), stripePayload, stripeAt, `Stripe-Signature's timestamp "" is not a Unix time in seconds`},
		{"stripe missing header", verifier{scheme: schemeStripe, secret: stripeSecret},
			map[string]string{}, stripePayload, stripeAt, "the Stripe-Signature header is missing"},
		{"stripe 5 minutes old", verifier{scheme: schemeStripe, secret: stripeSecret},
			stripeHeader("t=1686089972,v1=" + stripeSignature), stripePayload, stripeAt.Add(Tolerance), ""},
		{"stripe stale", verifier{scheme: schemeStripe, secret: stripeSecret},
			stripeHeader("t=1686089972,v1=" + stripeSignature), stripePayload, stripeAt.Add(Tolerance + time.Second), "Stripe-Signature's timestamp is 5m1s old"},
		{"stripe ahead of the clock, as Stripe's libraries accept", verifier{scheme: schemeStripe, secret: stripeSecret},
			stripeHeader("t=1686089972,v1=" + stripeSignature), stripePayload, stripeAt.Add(-time.Hour), ""},

		{"shopify vector", verifier{scheme: schemeShopify, secret: hmacSecret},
			map[string]string{"x-shopify-hmac-sha256": hmacBase64}, hmacPayload, swAt, ""},
		{"shopify tampered body", verifier{scheme: schemeShopify, secret: hmacSecret},
			map[string]string{"x-shopify-hmac-sha256": hmacBase64}, strings.Replace(hmacPayload, "123.45", "1.45", 1), swAt, "X-Shopify-Hmac-Sha256 does not match"},
		{"shopify wrong secret", verifier{scheme: schemeShopify, secret: "test-webhook-secret2"},
			map[string]string{"x-shopify-hmac-sha256": hmacBase64}, hmacPayload, swAt, "X-Shopify-Hmac-Sha256 does not match"},
		{"shopify hex instead of base64", verifier{scheme: schemeShopify, secret: hmacSecret},
			map[string]string{"x-shopify-hmac-sha256": hmacHexDigest}, hmacPayload, swAt, "X-Shopify-Hmac-Sha256 does not match"},
		{"shopify missing header", verifier{scheme: schemeShopify, secret: hmacSecret},
			map[string]string{}, hmacPayload, swAt, "the X-Shopify-Hmac-Sha256 header is missing"},

		{"hmac hex vector", verifier{scheme: schemeHMACSHA256Hex, secret: hmacSecret, header: "x-signature"},
			map[string]string{"x-signature": hmacHexDigest}, hmacPayload, swAt, ""},
		{"hmac hex vector with sha256= and capitals", verifier{scheme: schemeHMACSHA256Hex, secret: hmacSecret, header: "x-signature"},
			map[string]string{"x-signature": "sha256=" + strings.ToUpper(hmacHexDigest)}, hmacPayload, swAt, ""},
		{"hmac hex tampered body", verifier{scheme: schemeHMACSHA256Hex, secret: hmacSecret, header: "x-signature"},
			map[string]string{"x-signature": hmacHexDigest}, hmacPayload + " ", swAt, "x-signature does not match"},
		{"hmac hex in another header", verifier{scheme: schemeHMACSHA256Hex, secret: hmacSecret, header: "x-signature"},
			map[string]string{"x-hub-signature-256": hmacHexDigest}, hmacPayload, swAt, "the x-signature header is missing"},
		{"none", verifier{scheme: schemeNone}, map[string]string{}, "anything", swAt, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.v.verify(tt.headers, []byte(tt.body), tt.now)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("verify = %v, want it accepted", err)
			case tt.want == "":
			case err == nil:
				t.Fatalf("verify accepted, want a refusal containing %q", tt.want)
			case err.Code != sdk.CodeBadSignature || !strings.Contains(err.Message, tt.want):
				t.Fatalf("verify = %v, want a bad signature containing %q", err, tt.want)
			}
		})
	}
}
