package delivery

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The Standard Webhooks headers (https://www.standardwebhooks.com), lower
// case as the spec writes them; HTTP header names are case-insensitive.
const (
	// HeaderID carries the delivery id, the same on every attempt: receivers
	// deduplicate by it.
	HeaderID = "webhook-id"
	// HeaderTimestamp carries the attempt's time in Unix seconds, so
	// receivers can refuse replays of old messages (the official libraries
	// allow 5 minutes of skew).
	HeaderTimestamp = "webhook-timestamp"
	// HeaderSignature carries one or more space-separated `v1,<base64>`
	// signatures.
	HeaderSignature = "webhook-signature"
)

const (
	// SecretPrefix starts every signing secret, as the spec and Svix write
	// them; the official libraries strip it before decoding.
	SecretPrefix = "whsec_"
	// secretBytes is the size of a generated secret: 256 bits, the HMAC-SHA256
	// key size.
	secretBytes = 32
	// minSecretBytes and maxSecretBytes are the spec's bounds on a secret's
	// decoded length (24 to 64 bytes), checked so that a typo in an imported
	// secret is refused when saved, not found at the receiver.
	minSecretBytes = 24
	maxSecretBytes = 64
	// RotationOverlap is how long the secret a rotation replaced keeps
	// signing beside the new one, so receivers can switch secrets without
	// refusing a delivery.
	RotationOverlap = 24 * time.Hour
)

// ErrInvalidSecret is what every signing-secret error matches.
var ErrInvalidSecret = errors.New("invalid signing secret")

// NewSecret returns a new signing secret: SecretPrefix and the standard
// base64 of 32 random bytes.
func NewSecret() string {
	b := make([]byte, secretBytes)
	// crypto/rand.Read never returns an error (it aborts the program if the
	// system's generator fails), so there is nothing to handle.
	_, _ = rand.Read(b)
	return SecretPrefix + base64.StdEncoding.EncodeToString(b)
}

// ParseSecret decodes a signing secret into its HMAC key. The prefix is
// optional, as in the official libraries; the rest must be standard base64
// of 24 to 64 bytes. Errors match ErrInvalidSecret and never repeat the
// secret.
func ParseSecret(secret string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, SecretPrefix))
	if err != nil {
		return nil, fmt.Errorf("%w: not %s followed by standard base64", ErrInvalidSecret, SecretPrefix)
	}
	if len(key) < minSecretBytes || len(key) > maxSecretBytes {
		return nil, fmt.Errorf("%w: decodes to %d bytes, want %d to %d", ErrInvalidSecret, len(key), minSecretBytes, maxSecretBytes)
	}
	return key, nil
}

// Sign returns the webhook-signature header value for a message: one
// `v1,<base64 HMAC-SHA256 of "id.timestamp.body">` per secret, separated by
// spaces, in the order given. The timestamp is taken in whole Unix seconds,
// as webhook-timestamp carries it.
func Sign(id string, timestamp time.Time, body []byte, secrets ...string) (string, error) {
	if len(secrets) == 0 {
		return "", fmt.Errorf("%w: no secret to sign with", ErrInvalidSecret)
	}
	prefix := id + "." + strconv.FormatInt(timestamp.Unix(), 10) + "."
	var b strings.Builder
	for i, secret := range secrets {
		key, err := ParseSecret(secret)
		if err != nil {
			return "", err
		}
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte(prefix))
		mac.Write(body)
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString("v1,")
		b.WriteString(base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	}
	return b.String(), nil
}

// Secrets are a webhook destination's signing secrets: the current one, and
// the one the last rotation replaced while it still signs.
type Secrets struct {
	// Current signs every delivery.
	Current string
	// Previous also signs until PreviousExpiresAt; empty when none.
	Previous string
	// PreviousExpiresAt is when Previous stops signing.
	PreviousExpiresAt time.Time
}

// Active returns the secrets that sign at now: Current first, then
// Previous while it has not expired.
func (s Secrets) Active(now time.Time) []string {
	var out []string
	if s.Current != "" {
		out = append(out, s.Current)
	}
	if s.Previous != "" && now.Before(s.PreviousExpiresAt) {
		out = append(out, s.Previous)
	}
	return out
}

// Rotate returns s with a new Current secret and the old one as Previous for
// RotationOverlap from now. A second rotation within the overlap drops the
// oldest secret: only the last two ever sign.
func (s Secrets) Rotate(now time.Time) Secrets {
	out := Secrets{Current: NewSecret()}
	if s.Current != "" {
		out.Previous = s.Current
		out.PreviousExpiresAt = now.Add(RotationOverlap)
	}
	return out
}
