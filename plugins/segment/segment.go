// Package segment is hark's Segment source: it turns what Segment posts to a
// webhook (a single event, an HTTP API batch, or a bare array from Webhooks
// Actions batching) into events in hark's common form.
//
// It is built into the hark binary but, like every source, runs as its own
// process: hark re-executes itself as `hark plugin segment`, which calls
// Serve. The same parser, with other options, serves Segment-shaped senders
// such as RudderStack (see plugins/rudderstack).
//
// What it accepts, and why:
//   - Forms: an event object; {"batch":[…], "context":…, "integrations":…}
//     whose batch-level context and integrations merge into each event (the
//     event's own keys win); a bare JSON array of events.
//   - Types: `type`, or the legacy `action`. Events without either are passed
//     on with an empty type, and hark logs them as skipped, so nothing a
//     sender meant is silently dropped. A `track` without an `event` name is
//     rejected: no trigger could match it.
//   - Signature: with the `shared_secret` setting, X-Signature must be the
//     lowercase hex HMAC-SHA1 of the raw body (of the first element's raw
//     bytes, for a bare array), else the delivery is refused (401).
//   - Limits: 32 KiB per event (batch-level fields merged in), 4,000 events
//     per delivery, 64 levels of JSON nesting per event and 16 KiB of
//     batch-level context; an event over a limit, not an object, not UTF-8
//     or with a wrongly typed field is rejected alone, with the reason.
//   - Merging batch-level fields re-encodes the event: its members come out
//     sorted by key, each value as it was sent. The value is the same; the
//     bytes the sender signed are the body's, which hark does not need to
//     keep.
//   - Parsing is one json.Valid of the body and a walk over each event's
//     top-level members (json.go): every part of an event — the event
//     itself, its properties, traits and message id — is a slice of the
//     body (of the re-encoded event, when merged), never a copy, so the SDK
//     sends it to hark as an offset into bytes hark already holds.
package segment

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/harkhq/hark/plugins/sdk"
)

// Limits of DESIGN §5. A delivery as a whole is bounded by hark's body limit.
const (
	MaxEventBytes = 32 << 10
	MaxEvents     = 4000
	MaxDepth      = 64
	// MaxBatchContextBytes bounds the batch-level context and integrations
	// together. They are copied into every event of the batch, so without a
	// bound one large context, multiplied by 4,000 events, would turn a
	// 4 MiB body into gigabytes.
	MaxBatchContextBytes = 16 << 10
)

// maxBodyDepth bounds the nesting of a whole body before it is decoded. Each
// event is held to MaxDepth and rejected alone; this only refuses bodies so
// deep that no event in them could be accepted ({"batch":[…]} itself adds
// two levels).
const maxBodyDepth = 2*MaxDepth + 2

// SettingSharedSecret is the setting holding Segment's shared secret.
const SettingSharedSecret = "shared_secret"

// Version is the plugin's version, reported by Describe.
const Version = "0.1.0"

// TraitsSource says where identify traits are read from.
type TraitsSource int

const (
	// TraitsTopLevel reads `traits`, falling back to `context.traits`
	// (Segment's spec).
	TraitsTopLevel TraitsSource = iota
	// TraitsContext reads `context.traits`, falling back to `traits`
	// (RudderStack).
	TraitsContext
)

// Options describe a Segment-shaped source.
type Options struct {
	Type        string
	DisplayName string
	Version     string
	// Traits says where identify traits live.
	Traits TraitsSource
	// Signed enables the shared_secret setting and X-Signature checks.
	Signed bool
}

// Source translates Segment-shaped deliveries. It is safe for concurrent use.
type Source struct{ opts Options }

// New returns a Source for a Segment-shaped sender.
func New(opts Options) *Source { return &Source{opts: opts} }

// Segment is the Segment source itself.
func Segment() *Source {
	return New(Options{Type: "segment", DisplayName: "Segment", Version: Version, Traits: TraitsTopLevel, Signed: true})
}

// Serve runs the Segment source as a plugin process.
func Serve() { ServeSource(Segment()) }

// ServeSource runs src as a plugin process, on one processor unless the
// GOMAXPROCS environment variable says otherwise. hark sends a source type's
// batches one at a time and the parser needs a few microseconds per event, so
// one core is more than the plugin can use; a second processor costs every
// round trip wake-ups of idle threads in both directions. Measured with
// BenchmarkPluginHop (plugins/host): the plugin's CPU per single-event batch
// fell from about 140 to 80 µs, and per delivery in batches of 100 from about
// 16.5 to 14.5 µs.
func ServeSource(src *Source) {
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
	sdk.Serve(src)
}

// Describe implements sdk.Source.
func (s *Source) Describe(context.Context) (sdk.Description, error) {
	d := sdk.Description{
		Type:           s.opts.Type,
		DisplayName:    s.opts.DisplayName,
		Version:        s.opts.Version,
		IdempotencyKey: "messageId",
	}
	if s.opts.Signed {
		d.Settings = append(d.Settings, sdk.Setting{
			Key:         SettingSharedSecret,
			Description: "Shared secret of the Segment destination: when set, every delivery must carry X-Signature, the hex HMAC-SHA1 of the body.",
			Secret:      true,
		})
	}
	return d, nil
}

// Translate implements sdk.Source.
func (s *Source) Translate(ctx context.Context, ds []sdk.Delivery) ([]sdk.Result, error) {
	return sdk.TranslateEach(ctx, ds, s.translate), nil
}

func (s *Source) translate(_ context.Context, d sdk.Delivery) sdk.Result {
	body := bytes.TrimSpace(d.Body)
	if len(body) == 0 {
		return sdk.Result{Err: sdk.BadRequest("the body is empty; expected a JSON event, batch or array")}
	}
	secret := ""
	if s.opts.Signed {
		secret = d.Settings[SettingSharedSecret]
	}
	// A signature over the whole body can be checked before parsing: an
	// unsigned stranger learns nothing about what hark accepts.
	if secret != "" && body[0] != '[' {
		if err := checkSignature(d.Header.Get("X-Signature"), secret, d.Body); err != nil {
			return sdk.Result{Err: err}
		}
	}
	// Each event is held to MaxDepth below; this bounds the body before any
	// decoder walks it.
	depth := nesting(body)
	if depth > maxBodyDepth {
		return sdk.Result{Err: sdk.BadRequest("JSON nesting is %d levels deep; at most %d levels per event", depth, MaxDepth)}
	}
	var (
		elems        [][]byte
		batchContext []byte
		batchIntegr  []byte
	)
	switch body[0] {
	case '[':
		if !json.Valid(body) {
			return sdk.Result{Err: sdk.BadRequest("the body is not valid JSON: %s", jsonError(syntaxError(body)))}
		}
		elems = elements(nil, body)
		if len(elems) == 0 {
			return sdk.Result{Err: sdk.BadRequest("the array holds no events")}
		}
		if secret != "" {
			if err := checkSignature(d.Header.Get("X-Signature"), secret, elems[0]); err != nil {
				return sdk.Result{Err: err}
			}
		}
	case '{':
		if !json.Valid(body) {
			return sdk.Result{Err: sdk.BadRequest("the body is not valid JSON: %s", jsonError(syntaxError(body)))}
		}
		var buf [8]member
		top := members(buf[:0], body)
		batch := get(top, "batch")
		if batch == nil {
			elems = [][]byte{body}
			break
		}
		if batch[0] != '[' {
			return sdk.Result{Err: sdk.BadRequest("`batch` must be an array of events")}
		}
		if elems = elements(nil, batch); len(elems) == 0 {
			return sdk.Result{Err: sdk.BadRequest("`batch` holds no events")}
		}
		batchContext, batchIntegr = get(top, "context"), get(top, "integrations")
		if n := len(batchContext) + len(batchIntegr); n > MaxBatchContextBytes {
			return sdk.Result{Err: sdk.BadRequest("the batch-level context and integrations are %d bytes; at most %d, as they are copied into every event", n, MaxBatchContextBytes)}
		}
		if !utf8.Valid(batchContext) || !utf8.Valid(batchIntegr) {
			return sdk.Result{Err: sdk.BadRequest("the batch-level context or integrations are not valid UTF-8")}
		}
	default:
		return sdk.Result{Err: sdk.BadRequest("the body must be a JSON object or array")}
	}
	if len(elems) > MaxEvents {
		return sdk.Result{Err: sdk.BadRequest("the delivery holds %d events; at most %d are accepted per request", len(elems), MaxEvents)}
	}
	// What holds for the body holds for each of its events.
	p := parser{
		src:     s,
		utf8:    utf8.Valid(body),
		shallow: depth <= MaxDepth,
		context: batchMembers(batchContext), integr: batchMembers(batchIntegr),
	}
	res := sdk.Result{Events: make([]sdk.Event, 0, len(elems))}
	for i, raw := range elems {
		ev, reason := p.parseEvent(raw)
		if reason != "" {
			res.Rejections = append(res.Rejections, sdk.Rejection{Index: i, Reason: reason})
			continue
		}
		ev.Index = i
		res.Events = append(res.Events, ev)
	}
	if len(res.Events) == 0 {
		res.Events = nil
	}
	return res
}

// syntaxError is encoding/json's error for a body json.Valid refused.
func syntaxError(body []byte) error {
	var v json.RawMessage
	return json.Unmarshal(body, &v)
}

// batchMembers are the members of a batch-level object to merge into every
// event; nil when there is none or it is not an object.
func batchMembers(obj []byte) []member {
	if len(obj) == 0 || obj[0] != '{' {
		return nil
	}
	return members(nil, obj)
}

// parser reads the events of one delivery.
type parser struct {
	src *Source
	// utf8 and shallow say the whole body is valid UTF-8 and nested no
	// deeper than MaxDepth, so no event needs checking for either.
	utf8, shallow bool
	// context and integr are the batch-level members merged into events.
	context, integr []member
}

// checkSignature compares X-Signature with the HMAC-SHA1 of signed in
// constant time.
func checkSignature(header, secret string, signed []byte) *sdk.DeliveryError {
	if header == "" {
		return sdk.BadSignature("the X-Signature header is missing; this source environment has a shared secret")
	}
	got, err := hex.DecodeString(strings.TrimSpace(header))
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write(signed)
	if err != nil || !hmac.Equal(got, mac.Sum(nil)) {
		return sdk.BadSignature("X-Signature does not match the body's HMAC-SHA1 with the shared secret")
	}
	return nil
}

// parseEvent reads one event, raw (a slice of the body); a non-empty reason
// rejects it. Every JSON part of the event is a slice of its Original.
func (p *parser) parseEvent(raw []byte) (sdk.Event, string) {
	if len(raw) > MaxEventBytes {
		return sdk.Event{}, fmt.Sprintf("the event is %d bytes; at most %d are accepted", len(raw), MaxEventBytes)
	}
	if !p.utf8 && !utf8.Valid(raw) {
		return sdk.Event{}, "the event is not valid UTF-8"
	}
	if !p.shallow {
		if depth := nesting(raw); depth > MaxDepth {
			return sdk.Event{}, fmt.Sprintf("the event's JSON nesting is %d levels deep; at most %d", depth, MaxDepth)
		}
	}
	if raw[0] != '{' {
		return sdk.Event{}, "the event must be a JSON object"
	}
	var buf [16]member
	fields := members(buf[:0], raw)
	original := raw
	if p.context != nil || p.integr != nil {
		merged := p.merge(fields)
		if merged != nil {
			if len(merged) > MaxEventBytes {
				return sdk.Event{}, fmt.Sprintf("the event with the batch-level context merged in is %d bytes; at most %d are accepted", len(merged), MaxEventBytes)
			}
			original = merged
			fields = members(buf[:0], original)
		}
	}

	var ev sdk.Event
	var errs []string
	str := func(key string) string {
		v, err := stringField(get(fields, key))
		if err != nil {
			errs = append(errs, fmt.Sprintf("`%s` %s", key, err))
		}
		return v
	}
	ev.Type = str("type")
	if !has(fields, "type") {
		ev.Type = str("action")
	}
	ev.UserID = idField(fields, "userId", &errs)
	ev.AnonymousID = idField(fields, "anonymousId", &errs)
	switch ev.Type {
	case "track":
		ev.Name = str("event")
		if ev.Name == "" && len(errs) == 0 {
			errs = append(errs, "a track event needs an `event` name")
		}
	case "page", "screen":
		ev.Name = str("name")
	}
	props, err := objectField(get(fields, "properties"))
	if err != nil {
		errs = append(errs, "`properties` "+err.Error())
	}
	traits, err := objectField(get(fields, "traits"))
	if err != nil {
		errs = append(errs, "`traits` "+err.Error())
	}
	if len(errs) > 0 {
		return sdk.Event{}, strings.Join(errs, "; ")
	}
	switch ev.Type {
	case "track", "page", "screen":
		ev.Data = props
		if ev.Name == "" && ev.Type != "track" {
			ev.Name = nameFromProperties(props)
		}
	case "identify":
		ev.Traits = p.src.identifyTraits(traits, get(fields, "context"))
	case "group":
		ev.Traits = traits
	}
	if key := get(fields, "messageId"); key != nil && !isNull(key) {
		ev.IdempotencyKey = key
	}
	ev.Timestamp = timeField(get(fields, "timestamp"))
	if ev.Timestamp.IsZero() {
		ev.Timestamp = timeField(get(fields, "originalTimestamp"))
	}
	ev.Original = original
	return ev, ""
}

// merge returns the event re-encoded with the batch-level context and
// integrations merged into its own, or nil when neither changes it.
func (p *parser) merge(fields []member) []byte {
	ctx, ctxChanged := mergeObject(get(fields, "context"), p.context)
	integr, integrChanged := mergeObject(get(fields, "integrations"), p.integr)
	if !ctxChanged && !integrChanged {
		return nil
	}
	all := make(map[string][]byte, len(fields))
	for _, m := range fields {
		all[string(m.key)] = m.value
	}
	if ctxChanged {
		all["context"] = ctx
	}
	if integrChanged {
		all["integrations"] = integr
	}
	return encodeObject(all)
}

func (s *Source) identifyTraits(top, ctx []byte) []byte {
	// As decoding the context into a struct with a `traits` field would:
	// a context that is not an object has no traits.
	fromCtx, err := objectField(getFold(ctx, "TRAITS"))
	if err != nil {
		fromCtx = nil
	}
	first, second := top, fromCtx
	if s.opts.Traits == TraitsContext {
		first, second = fromCtx, top
	}
	if first != nil {
		return first
	}
	return second
}

// mergeObject merges the batch-level members batch into own, the event's
// value, the event's own keys winning. It changes nothing when there is no
// batch-level object or the event's value is not an object (Segment
// sometimes sends `"context": []`, which is kept as sent).
func mergeObject(own []byte, batch []member) ([]byte, bool) {
	if len(batch) == 0 {
		return nil, false
	}
	if own != nil && !isNull(own) && own[0] != '{' {
		return nil, false
	}
	merged := make(map[string][]byte, len(batch))
	for _, m := range batch {
		merged[string(m.key)] = m.value
	}
	if own != nil && !isNull(own) {
		var buf [16]member
		for _, m := range members(buf[:0], own) {
			merged[string(m.key)] = m.value
		}
	}
	return encodeObject(merged), true
}

func isNull(raw []byte) bool { return string(raw) == "null" }

var errNotString = errors.New("must be a string")

// stringField reads an optional string: absent or null is "".
func stringField(raw []byte) (string, error) {
	if raw == nil || isNull(raw) {
		return "", nil
	}
	v, ok := stringValue(raw)
	if !ok {
		return "", errNotString
	}
	return v, nil
}

// idField reads userId or anonymousId: a string, or a number as Segment's
// libraries send them, written out as its decimal text.
func idField(fields []member, key string, errs *[]string) string {
	raw := get(fields, key)
	if raw == nil || isNull(raw) {
		return ""
	}
	if v, ok := stringValue(raw); ok {
		return v
	}
	if c := raw[0]; c == '-' || '0' <= c && c <= '9' {
		return string(raw) // its JSON text, however large
	}
	*errs = append(*errs, fmt.Sprintf("`%s` must be a string or a number", key))
	return ""
}

// objectField reads an optional object: absent or null is nil.
func objectField(raw []byte) ([]byte, error) {
	if len(raw) == 0 || isNull(raw) {
		return nil, nil
	}
	if raw[0] != '{' {
		return nil, errors.New("must be an object")
	}
	return raw, nil
}

// timeField reads an RFC 3339 timestamp; anything else (Segment's own docs
// have "2015-2-02T00:30:08.276Z") is treated as unknown rather than
// rejecting the event.
func timeField(raw []byte) time.Time {
	s, err := stringField(raw)
	if err != nil || s == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t
}

// nameFromProperties is properties.name, matched as decoding into a
// struct with a `name` field would.
func nameFromProperties(props []byte) string {
	name, _ := stringField(getFold(props, "NAME"))
	return name
}

// nesting returns the deepest nesting of arrays and objects in a JSON text,
// without decoding it, so a hostile body is measured before any decoder
// recurses into it. Strings are skipped whole (closingQuote), so brackets
// in them do not count.
func nesting(b []byte) int {
	depth, deepest := 0, 0
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '"':
			if i = closingQuote(b, i); i < 0 { // the string never ends
				return deepest
			}
		case '{', '[':
			depth++
			deepest = max(deepest, depth)
		case '}', ']':
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
	var typ *json.UnmarshalTypeError
	if errors.As(err, &typ) {
		return fmt.Sprintf("unexpected %s at byte %d", typ.Value, typ.Offset)
	}
	return err.Error()
}
