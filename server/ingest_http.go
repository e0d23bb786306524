package server

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/harkhq/hark/engine"
	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// ingestREST serves POST /integrations/receive/{token} directly, beside the
// transcoder: the webhook is hark's hot path, and the profile showed the
// REST→Connect hop (re-encoding the raw body into an HttpBody message and
// back) costing more CPU than the engine's own work for a single event. The
// answer is the same as vanguard's: the ReceiveResponse as protojson, or a
// google.rpc.Status with the status code of the Connect code. Connect, gRPC
// and gRPC-Web clients still reach IngestService.Receive as before.
func ingestREST(e *engine.Engine, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resp, err := e.Receive(r.Context(), r.PathValue("token"), engine.Delivery{
			Header:      r.Header,
			Body:        bodyOf(r),
			ContentType: r.Header.Get("Content-Type"),
		})
		w.Header().Set("Content-Type", "application/json")
		if err != nil {
			writeStatus(w, refused(r.Context(), e, log, "POST "+engine.IngestPath+"{token}", r.PathValue("token"), int(r.ContentLength), err))
			return
		}
		_, _ = w.Write(appendReceiveResponse(make([]byte, 0, 16+96*len(resp.GetEvents())), resp))
	})
}

// appendReceiveResponse writes the webhook's answer as protojson would
// (every field present, enum names, lowerCamelCase), by hand: it is small,
// written for every delivery, and protojson's reflection was a noticeable
// part of the ingest profile. TestReceiveResponseJSON holds the two equal.
func appendReceiveResponse(b []byte, resp *harkv1.ReceiveResponse) []byte {
	b = append(b, `{"events":[`...)
	for i, ev := range resp.GetEvents() {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"index":`...)
		b = strconv.AppendInt(b, int64(ev.GetIndex()), 10)
		b = append(b, `,"id":`...)
		b = appendJSONString(b, ev.GetId())
		b = append(b, `,"status":`...)
		b = appendJSONString(b, ev.GetStatus().String())
		b = append(b, `,"reason":`...)
		b = appendJSONString(b, ev.GetReason())
		b = append(b, '}')
	}
	return append(b, "]}"...)
}

// appendJSONString appends s as a JSON string. Invalid UTF-8 becomes
// U+FFFD, as protojson would refuse it.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		switch {
		case r == '"' || r == '\\':
			b = append(b, '\\', byte(r))
		case r == '\n':
			b = append(b, '\\', 'n')
		case r == '\r':
			b = append(b, '\\', 'r')
		case r == '\t':
			b = append(b, '\\', 't')
		case r < 0x20 || r == 0x7f || r == 0x2028 || r == 0x2029:
			b = append(b, '\\', 'u', hex[r>>12&0xf], hex[r>>8&0xf], hex[r>>4&0xf], hex[r&0xf])
		default:
			b = utf8.AppendRune(b, r)
		}
	}
	return append(b, '"')
}

// writeStatus writes a Connect error as vanguard does for REST routes: the
// HTTP status of its code and a google.rpc.Status body with its details.
func writeStatus(w http.ResponseWriter, err error) {
	writeStatusCode(w, 0, err)
}

// writeStatusCode is writeStatus with an HTTP status of the caller's
// (0: the one of the error's code), for the few answers REST senders need
// to see as something else (408 for a body that took too long).
func writeStatusCode(w http.ResponseWriter, httpCode int, err error) {
	var cerr *connect.Error
	if !errors.As(err, &cerr) {
		cerr = connect.NewError(connect.CodeInternal, errors.New("internal error"))
	}
	if httpCode == 0 {
		httpCode = httpStatus(cerr.Code())
	}
	st := &status.Status{Code: int32(cerr.Code()), Message: cerr.Message()}
	for _, d := range cerr.Details() {
		st.Details = append(st.Details, &anypb.Any{TypeUrl: "type.googleapis.com/" + d.Type(), Value: d.Bytes()})
	}
	b, merr := protojson.Marshal(st)
	if merr != nil {
		b = []byte(`{"code":13,"message":"internal error"}`)
	}
	w.WriteHeader(httpCode)
	_, _ = w.Write(b)
}

// httpStatus is the HTTP status of a Connect/gRPC code, as REST gateways map
// them (google.rpc.Code's documented HTTP equivalents).
func httpStatus(c connect.Code) int {
	switch c {
	case connect.CodeCanceled:
		return 499
	case connect.CodeInvalidArgument, connect.CodeFailedPrecondition, connect.CodeOutOfRange:
		return http.StatusBadRequest
	case connect.CodeDeadlineExceeded:
		return http.StatusGatewayTimeout
	case connect.CodeNotFound:
		return http.StatusNotFound
	case connect.CodeAlreadyExists, connect.CodeAborted:
		return http.StatusConflict
	case connect.CodePermissionDenied:
		return http.StatusForbidden
	case connect.CodeResourceExhausted:
		return http.StatusTooManyRequests
	case connect.CodeUnimplemented:
		return http.StatusNotImplemented
	case connect.CodeUnavailable:
		return http.StatusServiceUnavailable
	case connect.CodeUnauthenticated:
		return http.StatusUnauthorized
	default:
		return http.StatusInternalServerError
	}
}
