package delivery_test

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/harkhq/hark/engine/delivery"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// The Standard Webhooks spec's published test vector, as its official
// libraries test it.
const (
	vectorSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vectorID        = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vectorTimestamp = 1614265330
	vectorPayload   = `{"test": 2432232314}`
	vectorSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func TestSignMatchesStandardWebhooksTestVector(t *testing.T) {
	t.Parallel()
	got, err := delivery.Sign(vectorID, time.Unix(vectorTimestamp, 0), []byte(vectorPayload), vectorSecret)
	if err != nil {
		t.Fatal(err)
	}
	if got != vectorSignature {
		t.Fatalf("Sign = %q, want the spec's %q", got, vectorSignature)
	}
	// The prefix is optional, as in the official libraries.
	bare, err := delivery.Sign(vectorID, time.Unix(vectorTimestamp, 0), []byte(vectorPayload), strings.TrimPrefix(vectorSecret, delivery.SecretPrefix))
	if err != nil || bare != vectorSignature {
		t.Fatalf("Sign without prefix = %q, %v; want %q", bare, err, vectorSignature)
	}
	wh, err := standardwebhooks.NewWebhook(vectorSecret)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	h.Set(standardwebhooks.HeaderWebhookID, vectorID)
	h.Set(standardwebhooks.HeaderWebhookTimestamp, fmt.Sprint(vectorTimestamp))
	h.Set(standardwebhooks.HeaderWebhookSignature, got)
	if err := wh.VerifyIgnoringTimestamp([]byte(vectorPayload), h); err != nil {
		t.Fatalf("official library refuses our signature of the vector: %v", err)
	}
}

func TestNewSecretWorksWithOfficialLibrary(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 20 {
		secret := delivery.NewSecret()
		if !strings.HasPrefix(secret, "whsec_") {
			t.Fatalf("NewSecret = %q, want the whsec_ prefix", secret)
		}
		key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
		if err != nil || len(key) != 32 {
			t.Fatalf("NewSecret = %q: decodes to %d bytes (%v), want 32", secret, len(key), err)
		}
		if seen[secret] {
			t.Fatalf("NewSecret repeated %q", secret)
		}
		seen[secret] = true

		now := time.Now()
		body := []byte(`{"type":"ping"}`)
		sig, err := delivery.Sign("dlv_1", now, body, secret)
		if err != nil {
			t.Fatal(err)
		}
		wh, err := standardwebhooks.NewWebhook(secret)
		if err != nil {
			t.Fatalf("official library refuses NewSecret's %q: %v", secret, err)
		}
		h := http.Header{}
		h.Set("webhook-id", "dlv_1")
		h.Set("webhook-timestamp", fmt.Sprint(now.Unix()))
		h.Set("webhook-signature", sig)
		if err := wh.Verify(body, h); err != nil {
			t.Fatalf("official library refuses the signature: %v", err)
		}
	}
}

func TestParseSecretRefusesMalformedSecrets(t *testing.T) {
	t.Parallel()
	for name, secret := range map[string]string{
		"empty":          "",
		"prefix only":    "whsec_",
		"not base64":     "whsec_not*base64!",
		"url base64":     "whsec_" + base64.URLEncoding.EncodeToString([]byte(strings.Repeat("\xfb\xff", 16))),
		"16 bytes":       "whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 16)),
		"65 bytes":       "whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 65)),
		"stray spaces":   " " + vectorSecret,
		"another prefix": "sk_" + base64.StdEncoding.EncodeToString(make([]byte, 32)),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := delivery.ParseSecret(secret)
			if !errors.Is(err, delivery.ErrInvalidSecret) {
				t.Fatalf("ParseSecret(%q) = %v, want ErrInvalidSecret", secret, err)
			}
			if _, err := delivery.Sign("id", time.Now(), nil, secret); !errors.Is(err, delivery.ErrInvalidSecret) {
				t.Fatalf("Sign with %q = %v, want ErrInvalidSecret", secret, err)
			}
		})
	}
	if _, err := delivery.ParseSecret(vectorSecret); err != nil {
		t.Fatalf("ParseSecret(spec vector) = %v", err)
	}
	if _, err := delivery.Sign("id", time.Now(), nil); !errors.Is(err, delivery.ErrInvalidSecret) {
		t.Fatalf("Sign without secrets = %v, want ErrInvalidSecret", err)
	}
}

func TestSecretsRotationOverlap(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	first := delivery.Secrets{}.Rotate(now)
	if first.Current == "" || first.Previous != "" {
		t.Fatalf("first Rotate = %+v, want a current secret and no previous", first)
	}
	if got := first.Active(now); len(got) != 1 || got[0] != first.Current {
		t.Fatalf("Active = %v, want only the current secret", got)
	}
	second := first.Rotate(now)
	if second.Current == first.Current || second.Previous != first.Current || !second.PreviousExpiresAt.Equal(now.Add(24*time.Hour)) {
		t.Fatalf("second Rotate = %+v, want a new current and the old one until %v", second, now.Add(24*time.Hour))
	}
	if got := second.Active(now.Add(24*time.Hour - time.Second)); len(got) != 2 || got[0] != second.Current || got[1] != first.Current {
		t.Fatalf("Active within the overlap = %v, want [new old]", got)
	}
	if got := second.Active(now.Add(24 * time.Hour)); len(got) != 1 || got[0] != second.Current {
		t.Fatalf("Active after the overlap = %v, want only the new secret", got)
	}
	third := second.Rotate(now.Add(time.Hour))
	if third.Previous != second.Current {
		t.Fatalf("third Rotate kept %q as previous, want the secret it replaced", third.Previous)
	}
}
