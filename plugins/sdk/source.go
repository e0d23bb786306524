package sdk

import (
	"context"
	"encoding/json"
	"net/http"
	"time"
)

// Source is the interface a source plugin implements. Methods take a context
// that carries the host's deadline; hark calls them concurrently.
type Source interface {
	// Describe says who the plugin is. It is called once per start.
	Describe(ctx context.Context) (Description, error)
	// Translate turns deliveries into results: exactly one per delivery, in
	// the same order. An error fails the whole batch (503, senders retry);
	// refuse one delivery with Result.Err instead.
	Translate(ctx context.Context, deliveries []Delivery) ([]Result, error)
}

// Description describes a plugin.
type Description struct {
	// Type is the source type name (e.g. "segment"): lowercase letters,
	// digits and dashes. It must match the binary's name, hark-source-<type>.
	Type string
	// DisplayName is the human-readable name (e.g. "Segment").
	DisplayName string
	// Version is the plugin's own version.
	Version string
	// Settings a source environment may set.
	Settings []Setting
	// IdempotencyKey says which field Event.IdempotencyKey comes from.
	IdempotencyKey string
	// ProtocolMinor is filled in by the SDK on the host's side: the minor
	// protocol version the plugin was built with. Plugins leave it zero.
	ProtocolMinor int
}

// Setting describes one per-source-environment setting.
type Setting struct {
	Key         string
	Description string
	// Secret settings are write-only in hark's API.
	Secret bool
	// Required settings must be set before deliveries are accepted.
	Required bool
	// RequiredWhen makes the setting required while any condition holds:
	// hark then refuses to save a source environment without it, where
	// every delivery could only be refused.
	RequiredWhen []Condition
}

// Condition is a condition on another setting of the same source
// environment. It holds only when that setting is set (not empty): to one
// of Values, or, with Except, to anything else.
type Condition struct {
	Setting string
	Values  []string
	Except  bool
}

// Delivery is one HTTP request a source made.
type Delivery struct {
	// Header holds the request headers.
	Header http.Header
	// Body is the exact raw body, as signatures are computed over it.
	Body []byte
	// ContentType is the request's Content-Type.
	ContentType string
	// Settings are the source environment's settings, secrets included.
	Settings map[string]string
}

// Result is what became of one delivery.
type Result struct {
	// Events accepted, in delivery order.
	Events []Event
	// Rejections are single events refused, with the reason.
	Rejections []Rejection
	// Err refuses the whole delivery; Events and Rejections are then ignored.
	Err *DeliveryError
}

// Rejection is one refused event.
type Rejection struct {
	// Index of the event in the delivery, from 0.
	Index int
	// Reason it was refused, shown to the sender.
	Reason string
}

// Event is one event in hark's common form.
type Event struct {
	// Index of the event in the delivery, from 0.
	Index int
	// Type is track, identify, page, screen, group, alias, or any other
	// string the sender used; empty when the event had none.
	Type string
	// Name is the track event name, or the page/screen name.
	Name string
	// UserID and AnonymousID identify the sender's user.
	UserID      string
	AnonymousID string
	// IdempotencyKey is the raw JSON value of the event's idempotency key
	// (e.g. Segment's messageId), nil when absent. hark checks it is a
	// string of 1-255 characters; other values disable deduplication for
	// the event.
	IdempotencyKey json.RawMessage
	// Timestamp is when the event happened; zero when unknown.
	Timestamp time.Time
	// Data is a JSON object: track/page/screen properties. Nil means {}.
	// A slice of Original costs least to send (see the package doc).
	Data json.RawMessage
	// Traits is a JSON object: identify/group traits. Nil means {}. A slice
	// of Original costs least to send.
	Traits json.RawMessage
	// Original is the event object as JSON, as the sender meant it. A slice
	// of the delivery's Body costs least to send.
	Original json.RawMessage
}

// TranslateEach adapts a function of one delivery to Source.Translate.
func TranslateEach(ctx context.Context, deliveries []Delivery, fn func(context.Context, Delivery) Result) []Result {
	out := make([]Result, len(deliveries))
	for i, d := range deliveries {
		out[i] = fn(ctx, d)
	}
	return out
}
