package sdk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"net/http"
	"net/textproto"
	"strings"
	"unsafe"

	"google.golang.org/protobuf/types/known/timestamppb"

	pluginv1 "github.com/harkhq/hark/gen/hark/plugin/v1"
)

// This file converts deliveries and results to the protocol's messages and
// back. It runs for every delivery and event that crosses the boundary, so
// it allocates in blocks, never once per header or per event part:
//
//   - over TranslateStream (protocol 1.1) a delivery's headers travel as one
//     block (Delivery.header_block) and are rebuilt on the plugin's side as
//     substrings of one string;
//   - an event's JSON that is a slice of its delivery's body travels as an
//     offset into the body the host already holds, and data or traits that
//     are slices of the event's JSON as offsets into it: the plugin sends no
//     byte twice, nor back what it was sent.
//
// Unary Translate answers keep every part in its bytes field, as protocol
// 1.0 hosts read them.

// errBatchTooLarge refuses a batch the plugin could not receive.
var errBatchTooLarge = errors.New("the batch is larger than a plugin message may be")

// deliveriesToProto builds a Translate request. With headerBlock (the
// stream), headers go as one block each. It refuses batches over
// MaxMessageBytes, which the connection would refuse less clearly.
func deliveriesToProto(ds []Delivery, headerBlock bool) (*pluginv1.TranslateRequest, error) {
	blocks := make([]pluginv1.Delivery, len(ds))
	req := &pluginv1.TranslateRequest{Deliveries: make([]*pluginv1.Delivery, len(ds))}
	size := 0
	for i, d := range ds {
		pd := &blocks[i]
		pd.Body, pd.ContentType, pd.Settings = d.Body, strings.ToValidUTF8(d.ContentType, "\uFFFD"), d.Settings
		if headerBlock {
			pd.HeaderBlock = appendHeaderBlock(nil, d.Header)
			size += len(pd.HeaderBlock)
		} else {
			pd.Headers = headersToProto(d.Header)
		}
		size += len(d.Body)
		req.Deliveries[i] = pd
	}
	// Headers of the unary form and settings are small beside the bodies;
	// the margin covers them and the framing.
	if size > MaxMessageBytes-MaxMessageBytes/8 {
		return nil, fmt.Errorf("%w: %d bytes of bodies and headers, at most %d", errBatchTooLarge, size, MaxMessageBytes-MaxMessageBytes/8)
	}
	return req, nil
}

// headersToProto lists h's values as messages, allocated as one block. The
// values' bytes are h's own strings, not copies: the message is only read
// (marshalled) and dropped before the call returns.
func headersToProto(h http.Header) []*pluginv1.Header {
	n := 0
	for _, vs := range h {
		n += len(vs)
	}
	if n == 0 {
		return nil
	}
	block := make([]pluginv1.Header, n)
	out := make([]*pluginv1.Header, 0, n)
	for name, vs := range h {
		name = strings.ToValidUTF8(name, "\uFFFD")
		for _, v := range vs {
			ph := &block[len(out)]
			ph.Name, ph.Value = name, readOnlyBytes(v)
			out = append(out, ph)
		}
	}
	return out
}

// readOnlyBytes is s's bytes without a copy, for a message that is only
// marshalled: writing to it would be writing to an immutable string.
func readOnlyBytes(s string) []byte {
	if s == "" {
		return nil
	}
	return unsafe.Slice(unsafe.StringData(s), len(s))
}

// appendHeaderBlock appends h in the header_block encoding (see the
// protocol): for each value, uvarint(len(name)) name uvarint(len(value))
// value.
func appendHeaderBlock(b []byte, h http.Header) []byte {
	size := 0
	for name, vs := range h {
		for _, v := range vs {
			size += 2*binary.MaxVarintLen32 + len(name) + len(v)
		}
	}
	if size == 0 {
		return b
	}
	b = append(make([]byte, 0, len(b)+size), b...)
	for name, vs := range h {
		for _, v := range vs {
			b = binary.AppendUvarint(b, uint64(len(name)))
			b = append(b, name...)
			b = binary.AppendUvarint(b, uint64(len(v)))
			b = append(b, v...)
		}
	}
	return b
}

// errHeaderBlock is the error of a malformed header block.
var errHeaderBlock = errors.New("malformed header block")

// parseHeaderBlock rebuilds the headers of a header block, names in
// canonical form as http.Header.Add would make them. Names and values are
// substrings of one copy of the block, and each name's values a slice of
// one array: three allocations for any number of headers.
func parseHeaderBlock(b []byte) (http.Header, error) {
	n := 0
	for rest := b; len(rest) > 0; n++ {
		var err error
		if rest, err = skipHeader(rest); err != nil {
			return nil, err
		}
	}
	s := string(b)
	h := make(http.Header, n)
	values := make([]string, n)
	prev, start := "", 0 // the name of the run of values that ends at i-1, and where it starts
	for i, off := 0, 0; i < n; i++ {
		l, k := binary.Uvarint(b[off:])
		name := textproto.CanonicalMIMEHeaderKey(s[off+k : off+k+int(l)])
		off += k + int(l)
		l, k = binary.Uvarint(b[off:])
		values[i] = s[off+k : off+k+int(l)]
		off += k + int(l)
		switch vs, seen := h[name]; {
		case seen && name == prev:
			h[name] = values[start : i+1 : i+1]
		case seen:
			// The name again after others (the host sends a name's values
			// together, so this is rare): append copies.
			h[name], prev = append(vs, values[i]), ""
		default:
			h[name], prev, start = values[i:i+1:i+1], name, i
		}
	}
	return h, nil
}

// skipHeader checks the header block's first entry and returns what
// follows it.
func skipHeader(b []byte) ([]byte, error) {
	for range 2 { // the name, then the value
		l, k := binary.Uvarint(b)
		if k <= 0 || l > uint64(len(b)-k) {
			return nil, errHeaderBlock
		}
		b = b[k+int(l):]
	}
	return b, nil
}

// deliveriesFromProto is the plugin's side of deliveriesToProto.
func deliveriesFromProto(req *pluginv1.TranslateRequest) ([]Delivery, error) {
	ds := make([]Delivery, len(req.GetDeliveries()))
	for i, d := range req.GetDeliveries() {
		var h http.Header
		if block := d.GetHeaderBlock(); len(block) > 0 {
			var err error
			if h, err = parseHeaderBlock(block); err != nil {
				return nil, fmt.Errorf("delivery %d: %w", i, err)
			}
		} else {
			h = headersFromProto(d.GetHeaders())
		}
		ds[i] = Delivery{Header: h, Body: d.GetBody(), ContentType: d.GetContentType(), Settings: d.GetSettings()}
	}
	return ds, nil
}

// headersFromProto rebuilds headers of the unary form (one message each).
func headersFromProto(hs []*pluginv1.Header) http.Header {
	h := make(http.Header, len(hs))
	for _, kv := range hs {
		h.Add(kv.GetName(), string(kv.GetValue()))
	}
	return h
}

// checksum identifies a body's content, so the plugin's side can tell
// whether a plugin changed a body in place before answering with slices of
// it (see resultToProto). CRC-32C runs on the CPU's own instruction.
func checksum(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// resultToProto turns one delivery's result into its message, every part
// in its bytes field (the unary form).
func resultToProto(r Result) *pluginv1.DeliveryResult {
	return resultToWire(r, nil, false)
}

// resultToWire turns one delivery's result into its message. With lean,
// data and traits that are slices of the event's JSON are sent as their
// offsets in it, and when body is the delivery's body (as the host sent it:
// the caller checked) an event JSON that is a slice of it as its offset;
// without lean every part goes in its bytes.
func resultToWire(r Result, body []byte, lean bool) *pluginv1.DeliveryResult {
	out := &pluginv1.DeliveryResult{}
	if r.Err != nil {
		out.ErrorCode, out.ErrorMessage = deliveryErrorToProto(r.Err)
		return out
	}
	block := make([]pluginv1.Event, len(r.Events))
	out.Events = make([]*pluginv1.Event, len(r.Events))
	for i, e := range r.Events {
		pe := &block[i]
		pe.Index, pe.Type, pe.Name = int32(e.Index), e.Type, e.Name
		pe.UserId, pe.AnonymousId, pe.IdempotencyKeyJson = e.UserID, e.AnonymousID, e.IdempotencyKey
		if !e.Timestamp.IsZero() {
			pe.Timestamp = timestamppb.New(e.Timestamp)
		}
		pe.EventJson, pe.DataJson, pe.TraitsJson = e.Original, e.Data, e.Traits
		if lean {
			if off, ok := sliceOffset(body, e.Original); ok {
				pe.EventJson, pe.EventOffset, pe.EventLength = nil, off, uint32(len(e.Original))
			}
			if off, ok := sliceOffset(e.Original, e.Data); ok {
				pe.DataJson, pe.DataOffset, pe.DataLength = nil, off, uint32(len(e.Data))
			}
			if off, ok := sliceOffset(e.Original, e.Traits); ok {
				pe.TraitsJson, pe.TraitsOffset, pe.TraitsLength = nil, off, uint32(len(e.Traits))
			}
		}
		out.Events[i] = pe
	}
	if len(r.Rejections) > 0 {
		rejs := make([]pluginv1.Rejection, len(r.Rejections))
		out.Rejections = make([]*pluginv1.Rejection, len(r.Rejections))
		for i, rej := range r.Rejections {
			rejs[i].Index, rejs[i].Reason = int32(rej.Index), rej.Reason
			out.Rejections[i] = &rejs[i]
		}
	}
	return out
}

// sliceOffset reports where inner starts inside outer when inner is a
// non-empty slice of outer's memory (not merely equal bytes). Addresses are
// compared as integers: Go's heap does not move, and both slices are live.
func sliceOffset(outer, inner []byte) (uint32, bool) {
	if len(inner) == 0 || len(inner) > len(outer) {
		return 0, false
	}
	o := uintptr(unsafe.Pointer(unsafe.SliceData(outer)))
	i := uintptr(unsafe.Pointer(unsafe.SliceData(inner)))
	if i < o || i-o > uintptr(len(outer)-len(inner)) {
		return 0, false
	}
	return uint32(i - o), true
}

// resultFromProto turns a result message into a Result, for a delivery
// whose body the host does not have at hand (offsets into it are refused).
func resultFromProto(r *pluginv1.DeliveryResult) Result {
	return resultFromWire(r, nil)
}

// resultFromWire turns a result message into a Result. Parts given by
// offset become slices of body (the delivery's body, as the host sent it)
// or of the event's JSON, capped so that appending to one cannot write into
// the other. An offset outside its container is the plugin's bug: the
// delivery fails as a plugin failure, with nothing of it used.
func resultFromWire(r *pluginv1.DeliveryResult, body []byte) Result {
	if err := deliveryErrorFromProto(r.GetErrorCode(), r.GetErrorMessage()); err != nil {
		return Result{Err: err}
	}
	out := Result{Events: make([]Event, len(r.GetEvents()))}
	for i, e := range r.GetEvents() {
		ev := Event{
			Index:          int(e.GetIndex()),
			Type:           e.GetType(),
			Name:           e.GetName(),
			UserID:         e.GetUserId(),
			AnonymousID:    e.GetAnonymousId(),
			IdempotencyKey: e.GetIdempotencyKeyJson(),
			Data:           e.GetDataJson(),
			Traits:         e.GetTraitsJson(),
			Original:       e.GetEventJson(),
		}
		var ok bool
		if n := e.GetEventLength(); n > 0 {
			if ev.Original, ok = part(body, e.GetEventOffset(), n); !ok {
				return badOffset(i, "event", e.GetEventOffset(), n, len(body))
			}
		}
		if n := e.GetDataLength(); n > 0 {
			if ev.Data, ok = part(ev.Original, e.GetDataOffset(), n); !ok {
				return badOffset(i, "data", e.GetDataOffset(), n, len(ev.Original))
			}
		}
		if n := e.GetTraitsLength(); n > 0 {
			if ev.Traits, ok = part(ev.Original, e.GetTraitsOffset(), n); !ok {
				return badOffset(i, "traits", e.GetTraitsOffset(), n, len(ev.Original))
			}
		}
		if ts := e.GetTimestamp(); ts != nil {
			ev.Timestamp = ts.AsTime()
		}
		out.Events[i] = ev
	}
	if rejs := r.GetRejections(); len(rejs) > 0 {
		out.Rejections = make([]Rejection, len(rejs))
		for i, rej := range rejs {
			out.Rejections[i] = Rejection{Index: int(rej.GetIndex()), Reason: rej.GetReason()}
		}
	}
	return out
}

// part is b[off:off+n], capped, when it lies inside b.
func part(b []byte, off, n uint32) ([]byte, bool) {
	end := uint64(off) + uint64(n)
	if end > uint64(len(b)) {
		return nil, false
	}
	return b[off:end:end], true
}

func badOffset(event int, what string, off, n uint32, size int) Result {
	return Result{Err: &DeliveryError{Code: CodeInternal, Message: fmt.Sprintf(
		"the plugin's answer is invalid: event %d gives its %s as %d bytes at offset %d of %d", event, what, n, off, size)}}
}
