package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// signSchemes are the ways `hark send --sign` signs a body: Segment's, and
// those of the http source's verification presets (DESIGN §10), so a source
// can be tried with the same signature its real sender would put on it.
var signSchemes = []string{"segment", "stripe", "standard_webhooks", "clerk", "shopify", "github", "hmac_sha256_hex"}

// signer is how send signs one body.
type signer struct {
	scheme, secret string
	// header names the signature header of hmac_sha256_hex.
	header string
}

// newSigner checks the --sign, --secret and --signature-header flags
// together, so a mistake is said before anything is sent. No secret means
// no signature.
func newSigner(scheme, secret, header string) (*signer, error) {
	if secret == "" {
		if scheme != "" {
			return nil, fmt.Errorf("--sign %s needs --secret, the signing secret", scheme)
		}
		if header != "" {
			return nil, fmt.Errorf("--signature-header needs --sign hmac_sha256_hex and --secret")
		}
		return nil, nil
	}
	if scheme == "" {
		scheme = "segment"
	}
	if !slices.Contains(signSchemes, scheme) {
		return nil, fmt.Errorf("--sign must be one of %s, not %q", strings.Join(signSchemes, ", "), scheme)
	}
	if (scheme == "hmac_sha256_hex") != (header != "") {
		return nil, fmt.Errorf("--signature-header goes with --sign hmac_sha256_hex, and only with it")
	}
	if scheme == "standard_webhooks" || scheme == "clerk" {
		if _, err := standardWebhooksKey(secret); err != nil {
			return nil, fmt.Errorf("--secret: %v", err)
		}
	}
	return &signer{scheme: scheme, secret: secret, header: header}, nil
}

// sign sets the signature headers of body on h, as the sender of the scheme
// does, at now. A Standard Webhooks id already in h (webhook-id or svix-id)
// is signed as it is; otherwise a fresh msg_ id is sent.
func (s *signer) sign(h http.Header, body []byte, now time.Time) error {
	ts := strconv.FormatInt(now.Unix(), 10)
	switch s.scheme {
	case "segment":
		h.Set("X-Signature", segmentSignature(body, s.secret))
	case "stripe":
		h.Set("Stripe-Signature", "t="+ts+",v1="+hex.EncodeToString(hmacSHA256([]byte(s.secret), []byte(ts), []byte("."), body)))
	case "standard_webhooks", "clerk":
		key, err := standardWebhooksKey(s.secret)
		if err != nil {
			return err
		}
		prefix := "webhook-"
		if s.scheme == "clerk" {
			prefix = "svix-"
		}
		id := h.Get(prefix + "id")
		if id == "" {
			var b [12]byte
			_, _ = rand.Read(b[:])
			id = "msg_" + hex.EncodeToString(b[:])
			h.Set(prefix+"id", id)
		}
		h.Set(prefix+"timestamp", ts)
		h.Set(prefix+"signature", "v1,"+base64.StdEncoding.EncodeToString(hmacSHA256(key, []byte(id), []byte("."), []byte(ts), []byte("."), body)))
	case "shopify":
		h.Set("X-Shopify-Hmac-Sha256", base64.StdEncoding.EncodeToString(hmacSHA256([]byte(s.secret), body)))
	case "github":
		h.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(hmacSHA256([]byte(s.secret), body)))
	case "hmac_sha256_hex":
		h.Set(s.header, hex.EncodeToString(hmacSHA256([]byte(s.secret), body)))
	}
	return nil
}

// standardWebhooksKey is the HMAC key of a Standard Webhooks secret:
// the base64 after "whsec_".
func standardWebhooksKey(secret string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil || len(key) == 0 {
		return nil, fmt.Errorf("a Standard Webhooks secret is whsec_ followed by base64")
	}
	return key, nil
}

func hmacSHA256(key []byte, parts ...[]byte) []byte {
	m := hmac.New(sha256.New, key)
	for _, p := range parts {
		m.Write(p)
	}
	return m.Sum(nil)
}

// segmentSignature is Segment's X-Signature: the hex HMAC-SHA1 of the body,
// or of the first element's raw bytes when the body is a bare array.
func segmentSignature(body []byte, secret string) string {
	signed := body
	if t := bytes.TrimSpace(body); len(t) > 0 && t[0] == '[' {
		var elems []json.RawMessage
		if json.Unmarshal(t, &elems) == nil && len(elems) > 0 {
			signed = elems[0]
		}
	}
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write(signed)
	return hex.EncodeToString(mac.Sum(nil))
}

// parseHeaders reads --header values, "Name: value" each.
func parseHeaders(values []string) (http.Header, error) {
	h := http.Header{}
	for _, v := range values {
		name, value, ok := strings.Cut(v, ":")
		name = strings.TrimSpace(name)
		if !ok || name == "" || strings.ContainsAny(name, " \t") {
			return nil, fmt.Errorf("--header %q: want \"Name: value\"", v)
		}
		h.Add(name, strings.TrimSpace(value))
	}
	return h, nil
}
