// Package httpsource is hark's built-in `http` source: it takes any JSON
// webhook (Stripe, Clerk, Shopify, GitHub, a Standard Webhooks sender, a
// home-grown one), verifies its signature, and turns it into events in
// hark's common form. Its directory is plugins/http; the package is named
// httpsource so that it reads apart from net/http.
//
// It is built into the hark binary but, like every source, runs as its own
// process: hark re-executes itself as `hark plugin http`, which calls Serve.
//
// Each source environment configures it with settings:
//   - preset (required): how deliveries are signed, and where they say what
//     they are — stripe, clerk, shopify, github, standard_webhooks,
//     hmac_sha256_hex or none (see presets.go for each preset's paths).
//   - signing_secret (secret): the key signatures are checked with. Stripe's
//     whsec_… is the HMAC key as it is; a Standard Webhooks (Svix, Clerk)
//     whsec_… is base64 after the prefix; Shopify's and GitHub's are used as
//     given.
//   - signature_header: for hmac_sha256_hex, the header carrying the hex
//     HMAC-SHA256 of the body (an optional sha256= prefix is allowed).
//   - event_type_path, idempotency_key_path, timestamp_path, user_id_path:
//     paths (see path.go for the grammar) that replace the preset's.
//
// hark checks only that required settings are set, and cannot ask a plugin
// whether settings make sense when they are saved. So settings that
// cannot work are reported on each delivery: verification settings that
// cannot verify (a verifying preset with no signing_secret, a secret with
// preset none, an unknown preset) are 401 — nothing unverified gets in —
// and a path setting that is not of the grammar is 400, with the setting
// and the position in the message. Webhook senders retry any answer but a
// 2xx (Stripe for up to three days, Svix and so Clerk for about a day,
// Shopify for hours; GitHub not by itself, but its deliveries can be
// redelivered), so fixing the settings loses nothing still retried.
//
// What a delivery becomes:
//   - A JSON object is one event; a JSON array of objects is one event per
//     element (SendGrid's event webhook posts arrays), each refused alone
//     when it is not an object or is over a limit. The signature is always
//     over the raw body.
//   - Every event has type "track" and, as its name, the value at
//     event_type_path (a string, or a number as its text), or "webhook" when
//     there is no path or no value there. hark runs triggers on track events
//     by name, so a trigger on `customer.created` (event type track, the
//     default) fires for Stripe's customer.created, and one on `webhook`
//     catches deliveries without a type. A value at event_type_path that is
//     an object, array or boolean rejects the event, with the reason.
//   - The idempotency key is the value at idempotency_key_path, as JSON:
//     hark deduplicates strings of 1-255 characters and processes events
//     with other keys without deduplication. A key from a header, in an
//     array body, gets "#<index>" appended, so the elements stay distinct
//     and a redelivery of the array is still recognised.
//   - The timestamp at timestamp_path is RFC 3339, or Unix seconds (a
//     number, or a string of digits as headers carry them; fractions are
//     kept to the microsecond); numbers of 10^11 and more are Unix
//     milliseconds (Clerk's), which as seconds would be past the year 5000.
//     A value that is none of these, negative, or past year 9999 is unknown
//     (zero), not a reason to refuse the event.
//   - The user id at user_id_path is a string, or a number as its text;
//     other values reject the event.
//   - Data and the original event are the event's JSON object as received,
//     so trigger expressions read it as `body.x`, `data.x` or `x`.
//   - Limits: MaxEventBytes per event, MaxDepth levels of nesting,
//     MaxNameBytes per event type and MaxUserIDBytes per user id (an event
//     over any is rejected alone, with the reason), MaxEvents per delivery;
//     the body must be UTF-8.
package httpsource

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/harkhq/hark/plugins/sdk"
)

// Setting keys (DESIGN §10).
const (
	SettingPreset             = "preset"
	SettingSigningSecret      = "signing_secret"
	SettingSignatureHeader    = "signature_header"
	SettingEventTypePath      = "event_type_path"
	SettingIdempotencyKeyPath = "idempotency_key_path"
	SettingTimestampPath      = "timestamp_path"
	SettingUserIDPath         = "user_id_path"
)

// Type is the source type, and EventType the type of every event.
const (
	Type      = "http"
	EventType = "track"
	// DefaultEventName is the name of an event whose delivery says no type.
	DefaultEventName = "webhook"
)

// Version is the plugin's version, reported by Describe.
const Version = "0.1.0"

// Limits.
const (
	// MaxEventBytes bounds one event. It is larger than Segment's 32 KiB
	// because providers' payloads often are (a Shopify order, a GitHub
	// push), and it is the size of the largest value a trigger mapping may
	// pass on, so the default data mapping (the whole event) still fits.
	MaxEventBytes = 256 << 10
	// MaxEvents bounds the elements of an array body, as for Segment.
	MaxEvents = 4000
	// MaxDepth bounds the nesting of one event, as for Segment; it is
	// measured before any decoder walks the body.
	MaxDepth = 64
	// MaxNameBytes bounds an event's name: it is the longest event name a
	// trigger can match, and names are parts of store keys, which have a
	// size limit of their own (a 100 KB name would fail the commit it
	// shares with other deliveries).
	MaxNameBytes = 200
	// MaxUserIDBytes bounds a user id, as hark bounds the ids of users.
	MaxUserIDBytes = 255
)

// maxBodyDepth bounds the nesting of a whole body before it is decoded.
// Each event is held to MaxDepth and rejected alone; this refuses only
// bodies so deep that decoding them is not worth the work, as the Segment
// source does.
const maxBodyDepth = 2*MaxDepth + 2

// millisecondsFrom is where numeric timestamps switch from Unix seconds to
// Unix milliseconds: 10^11 seconds is in the year 5138, 10^11 milliseconds
// in 1973.
const millisecondsFrom = 1e11

// minUnixSeconds and maxUnixSeconds are the start of year 1 and the end of
// year 9999, the times protobuf timestamps (and RFC 3339) can hold.
const (
	minUnixSeconds = -62135596800
	maxUnixSeconds = 253402300799
)

// Options configure a Source.
type Options struct {
	// Now is the clock signed timestamps are checked against; nil is
	// time.Now. Tests set it to check the tolerance.
	Now func() time.Time
}

// Source translates webhook deliveries. It is safe for concurrent use.
type Source struct {
	now func() time.Time
}

// New returns a Source with the given options.
func New(opts Options) *Source {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	return &Source{now: now}
}

// HTTP is the http source as hark runs it.
func HTTP() *Source { return New(Options{}) }

// Serve runs the http source as a plugin process.
func Serve() { sdk.Serve(HTTP()) }

// Describe implements sdk.Source.
func (s *Source) Describe(context.Context) (sdk.Description, error) {
	return sdk.Description{
		Type:        Type,
		DisplayName: "HTTP",
		Version:     Version,
		Settings: []sdk.Setting{
			{Key: SettingPreset, Required: true, Description: "How deliveries are verified, and the default paths: " + presetNames + "."},
			{Key: SettingSigningSecret, Secret: true, RequiredWhen: []sdk.Condition{{Setting: SettingPreset, Values: []string{PresetNone}, Except: true}}, Description: "The key signatures are checked with (Stripe's and Svix's whsec_…, Shopify's and GitHub's webhook secret); every preset but none needs one."},
			{Key: SettingSignatureHeader, RequiredWhen: []sdk.Condition{{Setting: SettingPreset, Values: []string{PresetHMACSHA256Hex}}}, Description: "For preset hmac_sha256_hex: the header holding the hex HMAC-SHA256 of the body (optionally after sha256=)."},
			{Key: SettingEventTypePath, Description: `Path of the event type, the event's name (e.g. body.type, headers["x-github-event"]); replaces the preset's.`},
			{Key: SettingIdempotencyKeyPath, Description: `Path of the idempotency key (e.g. body.id, headers["x-github-delivery"]); replaces the preset's.`},
			{Key: SettingTimestampPath, Description: "Path of the event's time: RFC 3339, Unix seconds or Unix milliseconds (e.g. body.created); replaces the preset's."},
			{Key: SettingUserIDPath, Description: "Path of the user id (e.g. body.data.object.metadata.user_id)."},
		},
		IdempotencyKey: "idempotency_key_path",
	}, nil
}

// Translate implements sdk.Source.
func (s *Source) Translate(ctx context.Context, ds []sdk.Delivery) ([]sdk.Result, error) {
	return sdk.TranslateEach(ctx, ds, s.translate), nil
}

// fields are the paths a source environment reads, each a list of
// alternatives tried in order.
type fields struct {
	eventType, idempotencyKey, timestamp, userID []Path
}

func (s *Source) translate(_ context.Context, d sdk.Delivery) sdk.Result {
	name := strings.TrimSpace(d.Settings[SettingPreset])
	p, ok := presets[name]
	if !ok {
		if name == "" {
			return sdk.Result{Err: sdk.BadSignature("no preset is set for this source environment: set preset to one of %s", presetNames)}
		}
		return sdk.Result{Err: sdk.BadSignature("preset %q is not one of %s", name, presetNames)}
	}
	v, derr := newVerifier(name, p, d.Settings)
	if derr != nil {
		return sdk.Result{Err: derr}
	}
	headers := lowerHeaders(d.Header)
	// The signature is over the raw body and is checked before anything
	// else reads it: an unsigned stranger learns nothing about the setup.
	if derr := v.verify(headers, d.Body, s.now()); derr != nil {
		return sdk.Result{Err: derr}
	}
	f, derr := readFields(p, d.Settings)
	if derr != nil {
		return sdk.Result{Err: derr}
	}

	body := bytes.TrimSpace(d.Body)
	switch {
	case len(body) == 0:
		return sdk.Result{Err: sdk.BadRequest("the body is empty; expected a JSON object, or an array of objects")}
	case !utf8.Valid(body):
		return sdk.Result{Err: sdk.BadRequest("the body is not valid UTF-8")}
	case body[0] != '{' && body[0] != '[':
		return sdk.Result{Err: sdk.BadRequest("the body must be a JSON object, or an array of objects%s", contentTypeHint(d.ContentType))}
	}
	if depth := nesting(body); depth > maxBodyDepth {
		return sdk.Result{Err: sdk.BadRequest("JSON nesting is %d levels deep; at most %d levels per event", depth, MaxDepth)}
	}
	elems := []json.RawMessage{body}
	array := body[0] == '['
	if array {
		elems = nil
		if err := json.Unmarshal(body, &elems); err != nil {
			return sdk.Result{Err: sdk.BadRequest("the body is not valid JSON: %s", jsonError(err))}
		}
		switch {
		case len(elems) == 0:
			return sdk.Result{Err: sdk.BadRequest("the array holds no events")}
		case len(elems) > MaxEvents:
			return sdk.Result{Err: sdk.BadRequest("the array holds %d events; at most %d are accepted per delivery", len(elems), MaxEvents)}
		}
	} else if !json.Valid(body) {
		var decoded any
		return sdk.Result{Err: sdk.BadRequest("the body is not valid JSON: %s", jsonError(json.Unmarshal(body, &decoded)))}
	}

	var res sdk.Result
	for i, raw := range elems {
		ev, reason := f.event(raw, headers, array, i)
		if reason != "" {
			res.Rejections = append(res.Rejections, sdk.Rejection{Index: i, Reason: reason})
			continue
		}
		ev.Index = i
		res.Events = append(res.Events, ev)
	}
	return res
}

// readFields reads the path settings over the preset's paths. A path that
// is not of the grammar refuses the delivery (400), naming the setting.
func readFields(p preset, settings map[string]string) (fields, *sdk.DeliveryError) {
	f := fields{eventType: p.eventType, idempotencyKey: p.idempotencyKey, timestamp: p.timestamp, userID: p.userID}
	for _, s := range []struct {
		key string
		dst *[]Path
	}{
		{SettingEventTypePath, &f.eventType},
		{SettingIdempotencyKeyPath, &f.idempotencyKey},
		{SettingTimestampPath, &f.timestamp},
		{SettingUserIDPath, &f.userID},
	} {
		text := strings.TrimSpace(settings[s.key])
		if text == "" {
			continue
		}
		path, err := ParsePath(text)
		if err != nil {
			return fields{}, sdk.BadRequest("this source environment's %s is not a valid path: %v", s.key, err)
		}
		*s.dst = []Path{path}
	}
	return f, nil
}

// event reads one event; a non-empty reason rejects it.
func (f fields) event(raw json.RawMessage, headers map[string]string, array bool, index int) (sdk.Event, string) {
	if len(raw) > MaxEventBytes {
		return sdk.Event{}, fmt.Sprintf("the event is %d bytes; at most %d are accepted", len(raw), MaxEventBytes)
	}
	if depth := nesting(raw); depth > MaxDepth {
		return sdk.Event{}, fmt.Sprintf("the event's JSON nesting is %d levels deep; at most %d", depth, MaxDepth)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil || obj == nil {
		return sdk.Event{}, "the event must be a JSON object"
	}
	ev := sdk.Event{Type: EventType, Name: DefaultEventName, Data: raw, Original: raw}

	if path, v, ok := first(f.eventType, obj, headers); ok {
		name, err := text(v)
		if err != nil {
			return sdk.Event{}, fmt.Sprintf("event_type_path %s: %s; an event type is a string", path, err)
		}
		if len(name) > MaxNameBytes {
			return sdk.Event{}, fmt.Sprintf("event_type_path %s: the value is %d bytes; an event type is at most %d", path, len(name), MaxNameBytes)
		}
		if name != "" {
			ev.Name = name
		}
	}
	if path, v, ok := first(f.userID, obj, headers); ok {
		id, err := text(v)
		if err != nil {
			return sdk.Event{}, fmt.Sprintf("user_id_path %s: %s; a user id is a string or a number", path, err)
		}
		if len(id) > MaxUserIDBytes {
			return sdk.Event{}, fmt.Sprintf("user_id_path %s: the value is %d bytes; a user id is at most %d", path, len(id), MaxUserIDBytes)
		}
		ev.UserID = id
	}
	if path, v, ok := first(f.idempotencyKey, obj, headers); ok {
		if s, isString := v.(string); isString && path.IsHeader() && array {
			v = s + "#" + strconv.Itoa(index)
		}
		key, err := json.Marshal(v)
		if err != nil {
			return sdk.Event{}, fmt.Sprintf("idempotency_key_path %s: the value cannot be encoded: %v", path, err)
		}
		ev.IdempotencyKey = key
	}
	if _, v, ok := first(f.timestamp, obj, headers); ok {
		ev.Timestamp = timestamp(v)
	}
	return ev, ""
}

// first returns the first of paths that names a value other than null.
func first(paths []Path, body any, headers map[string]string) (Path, any, bool) {
	for _, p := range paths {
		if v, ok := p.lookup(body, headers); ok && v != nil {
			return p, v, true
		}
	}
	return Path{}, nil, false
}

// text reads a string, or a number as its JSON text, for names and ids.
func text(v any) (string, error) {
	switch v := v.(type) {
	case string:
		if !utf8.ValidString(v) {
			// Header values are bytes; hark's names and ids are text.
			return "", errors.New("the value is not valid UTF-8")
		}
		return v, nil
	case json.Number:
		return v.String(), nil
	case bool:
		return "", errors.New("the value is a boolean")
	case []any:
		return "", errors.New("the value is an array")
	default:
		return "", errors.New("the value is an object")
	}
}

// timestamp reads an RFC 3339 time, or Unix seconds (milliseconds from
// millisecondsFrom on); anything else, a negative number, or a time past
// year 9999, is unknown.
func timestamp(v any) time.Time {
	var digits string
	switch v := v.(type) {
	case string:
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			if t.Unix() < minUnixSeconds || t.Unix() > maxUnixSeconds {
				return time.Time{} // an offset took it past year 1 or 9999
			}
			return t
		}
		digits = v
	case json.Number:
		digits = v.String()
	default:
		return time.Time{}
	}
	// Integers exactly (a millisecond time does not survive float64
	// division); fractional seconds as a float.
	if n, err := strconv.ParseInt(digits, 10, 64); err == nil {
		switch {
		case n < 0:
			return time.Time{}
		case n >= millisecondsFrom:
			if n/1000 > maxUnixSeconds {
				return time.Time{}
			}
			return time.UnixMilli(n).UTC()
		default:
			return time.Unix(n, 0).UTC()
		}
	}
	f, err := strconv.ParseFloat(digits, 64)
	if err != nil || math.IsNaN(f) || f < 0 {
		return time.Time{}
	}
	if f >= millisecondsFrom {
		f /= 1000
	}
	if f > maxUnixSeconds {
		return time.Time{}
	}
	// A float64 of today's Unix seconds holds about a microsecond.
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(math.Round(frac*1e6))*1e3).UTC()
}

// lowerHeaders maps each header's lowercase name to its first value, as
// paths and trigger expressions see headers.
func lowerHeaders(h http.Header) map[string]string {
	out := make(map[string]string, len(h))
	for k, vs := range h {
		if len(vs) == 0 {
			continue
		}
		k = strings.ToLower(k)
		if _, dup := out[k]; !dup {
			out[k] = vs[0]
		}
	}
	return out
}

// contentTypeHint explains a body that is not JSON by its content type:
// GitHub, for one, can post application/x-www-form-urlencoded.
func contentTypeHint(contentType string) string {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil || mt == "" || mt == "application/json" || strings.HasSuffix(mt, "+json") {
		return ""
	}
	return fmt.Sprintf(" (the request's Content-Type is %s: set the sender to send JSON)", mt)
}

// nesting returns the deepest nesting of arrays and objects in a JSON text,
// without decoding it, so a hostile body is measured before any decoder
// recurses into it.
func nesting(b []byte) int {
	depth, deepest := 0, 0
	inString, escaped := false, false
	for _, c := range b {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
			deepest = max(deepest, depth)
		case c == '}' || c == ']':
			depth--
		}
	}
	return deepest
}

// jsonError describes a JSON decoding error with its byte offset.
func jsonError(err error) string {
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		return fmt.Sprintf("%s at byte %d", syn.Error(), syn.Offset)
	}
	return err.Error()
}
