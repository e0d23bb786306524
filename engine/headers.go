package engine

import (
	"maps"
	"net/http"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"

	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// Request headers kept with each logged event.
//
// The event log keeps the headers a delivery came with, so a mapping that
// reads `headers.x-foo` can be tested later against a real event
// (TestTrigger). What is kept: the first value of each header, by
// lowercase name (as expressions see them); secrets keep their name with
// the value redactedValue, as the log is read by whoever operates hark, not
// only by whoever holds the webhook's secrets; and at most
// maxLoggedHeaderBytes of names and values, a bound the largest legitimate
// header sets stay well under, so a sender cannot grow every event's record
// with junk headers. Headers past the bound are dropped whole, in name
// order (the same request keeps the same ones), and counted in
// headers_dropped.
//
// The kept headers are encoded once per delivery and the bytes appended to
// the record of each of its events (protobuf encodings concatenate), so a
// batch of 100 events pays for one encoding, not 100.

const (
	// maxLoggedHeaderBytes bounds the names and values kept per event.
	maxLoggedHeaderBytes = 8 << 10
	// redactedValue stands in for a secret header's value.
	redactedValue = "[redacted]"
)

// secretHeaderNames are redacted by their exact (lowercase) name.
var secretHeaderNames = map[string]bool{
	"authorization": true, "proxy-authorization": true, "cookie": true, "set-cookie": true,
	"x-shopify-hmac-sha256": true, "stripe-signature": true, "webhook-signature": true,
}

// secretHeaderParts redact any header whose name holds one of them:
// signatures of every provider (x-signature, x-hub-signature-256,
// svix-signature), tokens, API keys and the like.
var secretHeaderParts = []string{
	"signature", "secret", "token", "api-key", "apikey", "api_key", "password", "hmac", "auth", "cookie", "session", "credential",
}

// secretHeader reports whether a header (by lowercase name) holds a secret.
func secretHeader(name string) bool {
	if secretHeaderNames[name] {
		return true
	}
	for _, part := range secretHeaderParts {
		if strings.Contains(name, part) {
			return true
		}
	}
	return false
}

// loggedHeaders returns the headers to keep with a delivery's events, and
// how many were dropped past the bound.
func loggedHeaders(h http.Header) (map[string]string, int32) {
	if len(h) == 0 {
		return nil, 0
	}
	first := make(map[string]string, len(h))
	for k, v := range h {
		if len(v) == 0 {
			continue
		}
		name := strings.ToLower(k)
		if _, seen := first[name]; seen {
			continue // a non-canonical duplicate name: the first one wins
		}
		value := v[0]
		if secretHeader(name) {
			value = redactedValue
		}
		first[name] = value
	}
	size := 0
	for name, value := range first {
		size += len(name) + len(value)
	}
	if size <= maxLoggedHeaderBytes {
		return first, 0
	}
	kept := make(map[string]string, len(first))
	var dropped int32
	size = 0
	for _, name := range slices.Sorted(maps.Keys(first)) {
		n := len(name) + len(first[name])
		if size+n > maxLoggedHeaderBytes {
			dropped++
			continue
		}
		size += n
		kept[name] = first[name]
	}
	return kept, dropped
}

// encodeLoggedHeaders is the encoding of a delivery's logged headers as
// SourceEvent fields, to append to each of its events' records.
func encodeLoggedHeaders(headers map[string]string, dropped int32) ([]byte, error) {
	if len(headers) == 0 && dropped == 0 {
		return nil, nil
	}
	return proto.MarshalOptions{Deterministic: true}.Marshal(&harkv1.SourceEvent{Headers: headers, HeadersDropped: dropped})
}

// testHeaders are the headers a trigger test runs with: those logged with
// the event (none for an event given in the request), with the request's
// laid over them by lowercase name.
func testHeaders(logged, given map[string]string) http.Header {
	h := make(http.Header, len(logged)+len(given))
	for k, v := range logged {
		h[strings.ToLower(k)] = []string{v}
	}
	for k, v := range given {
		h[strings.ToLower(k)] = []string{v}
	}
	return h
}
