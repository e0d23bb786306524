package httpsource

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strconv"
	"strings"
	"time"

	"github.com/harkhq/hark/plugins/sdk"
)

// Tolerance is how far a signed timestamp (Stripe's t=, Standard Webhooks'
// webhook-timestamp) may be from the plugin's clock: both providers' own
// libraries use five minutes, which bounds how long a captured delivery can
// be replayed.
const Tolerance = 5 * time.Minute

// scheme is a way deliveries are signed.
type scheme int

const (
	schemeNone scheme = iota
	schemeStandardWebhooks
	schemeStripe
	schemeShopify
	schemeGitHub
	schemeHMACSHA256Hex
)

// verifier checks one source environment's deliveries.
type verifier struct {
	scheme scheme
	secret string
	// header is the lowercase name of the signature header of
	// schemeHMACSHA256Hex.
	header string
}

// newVerifier reads the verification settings. Every problem is a 401: a
// delivery that cannot be verified is refused as unverified, never let
// through, and the message says which setting to fix.
func newVerifier(presetName string, p preset, settings map[string]string) (verifier, *sdk.DeliveryError) {
	v := verifier{scheme: p.scheme, secret: settings[SettingSigningSecret]}
	if v.scheme == schemeNone {
		if v.secret != "" {
			return v, sdk.BadSignature("signing_secret is set, but preset %q verifies nothing: set the preset the sender signs with, or remove the secret", presetName)
		}
		return v, nil
	}
	if v.secret == "" {
		return v, sdk.BadSignature("preset %q verifies signatures, but no signing_secret is set for this source environment", presetName)
	}
	if v.scheme == schemeHMACSHA256Hex {
		name := strings.TrimSpace(settings[SettingSignatureHeader])
		if name == "" {
			return v, sdk.BadSignature("preset %q needs signature_header, the name of the header that carries the signature, but none is set", presetName)
		}
		if !isToken(name) {
			return v, sdk.BadSignature("signature_header %q is not an HTTP header name", name)
		}
		v.header = strings.ToLower(name)
	}
	return v, nil
}

// verify checks the delivery's signature with the raw body. headers has
// lowercase names.
func (v verifier) verify(headers map[string]string, body []byte, now time.Time) *sdk.DeliveryError {
	switch v.scheme {
	case schemeStandardWebhooks:
		return verifyStandardWebhooks(headers, body, v.secret, now)
	case schemeStripe:
		return verifyStripe(headers, body, v.secret, now)
	case schemeShopify:
		return verifyBase64Body(headers, "x-shopify-hmac-sha256", "X-Shopify-Hmac-Sha256", body, v.secret)
	case schemeGitHub:
		return verifyHexBody(headers, "x-hub-signature-256", "X-Hub-Signature-256", true, body, v.secret)
	case schemeHMACSHA256Hex:
		return verifyHexBody(headers, v.header, v.header, false, body, v.secret)
	default:
		return nil
	}
}

func mac(secret []byte, parts ...[]byte) []byte {
	m := hmac.New(sha256.New, secret)
	for _, p := range parts {
		m.Write(p)
	}
	return m.Sum(nil)
}

// verifyStandardWebhooks checks a Standard Webhooks (Svix) signature:
// webhook-signature holds space-separated `v1,<base64>` entries, each an
// HMAC-SHA256 of "id.timestamp.body" with the secret's decoded bytes; one
// must match, and webhook-timestamp must be within Tolerance either way.
// Svix and Clerk send the same headers named svix-*: those are read when
// webhook-id is absent.
func verifyStandardWebhooks(headers map[string]string, body []byte, secret string, now time.Time) *sdk.DeliveryError {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil || len(key) == 0 {
		return sdk.BadSignature("signing_secret is not a Standard Webhooks secret: expected whsec_ followed by base64")
	}
	prefix := "webhook-"
	if _, ok := headers["webhook-id"]; !ok {
		if _, ok := headers["svix-id"]; ok {
			prefix = "svix-"
		}
	}
	id, ts, sigs := headers[prefix+"id"], headers[prefix+"timestamp"], headers[prefix+"signature"]
	for _, h := range []struct{ name, value string }{{"id", id}, {"timestamp", ts}, {"signature", sigs}} {
		if strings.TrimSpace(h.value) == "" {
			return sdk.BadSignature("the %s%s header is missing; Standard Webhooks deliveries carry webhook-id, webhook-timestamp and webhook-signature (or svix-id, svix-timestamp and svix-signature)", prefix, h.name)
		}
	}
	sec, err := strconv.ParseInt(strings.TrimSpace(ts), 10, 64)
	if err != nil {
		return sdk.BadSignature("%stimestamp %q is not a Unix time in seconds", prefix, ts)
	}
	if err := checkAge(prefix+"timestamp", time.Unix(sec, 0), now, true); err != nil {
		return err
	}
	want := base64.StdEncoding.EncodeToString(mac(key, []byte(id), []byte("."), []byte(strconv.FormatInt(sec, 10)), []byte("."), body))
	for _, entry := range strings.Fields(sigs) {
		version, sig, ok := strings.Cut(entry, ",")
		if ok && version == "v1" && hmac.Equal([]byte(sig), []byte(want)) {
			return nil
		}
	}
	return sdk.BadSignature("no v1 signature in %ssignature matches the delivery's HMAC-SHA256 with the signing secret", prefix)
}

// verifyStripe checks Stripe-Signature: `t=<unix>,v1=<hex>[,v1=<hex>…]`,
// each v1 an HMAC-SHA256 of "t.body" keyed with the signing secret as it
// is (whsec_… included). As Stripe's libraries do, entries of other schemes
// (v0) and v1 values that are not hex are ignored, and only timestamps
// older than Tolerance are refused: a timestamp ahead of the clock is the
// clock's problem, not a replay.
func verifyStripe(headers map[string]string, body []byte, secret string, now time.Time) *sdk.DeliveryError {
	header := strings.TrimSpace(headers["stripe-signature"])
	if header == "" {
		return sdk.BadSignature("the Stripe-Signature header is missing")
	}
	var (
		t     string
		found bool
		sigs  [][]byte
	)
	for item := range strings.SplitSeq(header, ",") {
		key, value, ok := strings.Cut(strings.TrimSpace(item), "=")
		if !ok {
			return sdk.BadSignature("Stripe-Signature is not of the form t=<timestamp>,v1=<signature>")
		}
		switch key {
		case "t":
			t, found = value, true
		case "v1":
			if sig, err := hex.DecodeString(value); err == nil {
				sigs = append(sigs, sig)
			}
		}
	}
	if !found {
		return sdk.BadSignature("Stripe-Signature has no timestamp (t=)")
	}
	sec, err := strconv.ParseInt(t, 10, 64)
	if err != nil {
		return sdk.BadSignature("Stripe-Signature's timestamp %q is not a Unix time in seconds", t)
	}
	if err := checkAge("Stripe-Signature's timestamp", time.Unix(sec, 0), now, false); err != nil {
		return err
	}
	if len(sigs) == 0 {
		return sdk.BadSignature("Stripe-Signature has no v1 signature")
	}
	want := mac([]byte(secret), []byte(strconv.FormatInt(sec, 10)), []byte("."), body)
	for _, sig := range sigs {
		if hmac.Equal(sig, want) {
			return nil
		}
	}
	return sdk.BadSignature("no v1 signature in Stripe-Signature matches the delivery's HMAC-SHA256 with the signing secret")
}

// checkAge refuses a signed timestamp older than Tolerance, or, when
// future is set, further than Tolerance ahead. The reason tells the two
// apart, since the fix differs (a replay or a queue against a clock).
func checkAge(what string, at, now time.Time, future bool) *sdk.DeliveryError {
	switch {
	case now.Sub(at) > Tolerance:
		return sdk.BadSignature("%s is %s old; at most %s is accepted", what, now.Sub(at).Round(time.Second), Tolerance)
	case future && at.Sub(now) > Tolerance:
		return sdk.BadSignature("%s is %s ahead of this server's clock; at most %s is accepted", what, at.Sub(now).Round(time.Second), Tolerance)
	}
	return nil
}

// verifyBase64Body checks a header holding the base64 HMAC-SHA256 of the
// body (Shopify's X-Shopify-Hmac-Sha256).
func verifyBase64Body(headers map[string]string, name, display string, body []byte, secret string) *sdk.DeliveryError {
	got := strings.TrimSpace(headers[name])
	if got == "" {
		return sdk.BadSignature("the %s header is missing", display)
	}
	want := base64.StdEncoding.EncodeToString(mac([]byte(secret), body))
	if !hmac.Equal([]byte(got), []byte(want)) {
		return sdk.BadSignature("%s does not match the body's HMAC-SHA256 with the signing secret", display)
	}
	return nil
}

// verifyHexBody checks a header holding the hex HMAC-SHA256 of the body,
// after a `sha256=` prefix: required for GitHub's X-Hub-Signature-256,
// optional for hmac_sha256_hex.
func verifyHexBody(headers map[string]string, name, display string, needPrefix bool, body []byte, secret string) *sdk.DeliveryError {
	got := strings.TrimSpace(headers[name])
	if got == "" {
		return sdk.BadSignature("the %s header is missing", display)
	}
	digits, had := strings.CutPrefix(got, "sha256=")
	if needPrefix && !had {
		return sdk.BadSignature("%s must be sha256=<hex HMAC-SHA256 of the body>", display)
	}
	sig, err := hex.DecodeString(digits)
	if err != nil || !hmac.Equal(sig, mac([]byte(secret), body)) {
		return sdk.BadSignature("%s does not match the body's HMAC-SHA256 with the signing secret", display)
	}
	return nil
}

// isToken reports whether s is an HTTP token (RFC 9110), as header names
// are.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}
