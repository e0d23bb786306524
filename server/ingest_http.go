package server

import (
	"errors"
	"log/slog"
	"net/http"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/harkhq/hark/engine"
)

// ingestREST serves POST /integrations/receive/{token} directly, beside the
// transcoder: the webhook is hark's hot path, and the profile showed the
// REST→Connect hop (re-encoding the raw body into an HttpBody message and
// back) costing more CPU than the engine's own work for a single event. The
// answer is the same as vanguard's: the ReceiveResponse as protojson, or a
// google.rpc.Status with the status code of the Connect code. Connect, gRPC
// and gRPC-Web clients still reach IngestService.Receive as before.
func ingestREST(e *engine.Engine, log *slog.Logger) http.Handler {
	marshal := protojson.MarshalOptions{EmitUnpopulated: true}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resp, err := e.Receive(r.Context(), r.PathValue("token"), engine.Delivery{
			Header:      r.Header,
			Body:        bodyOf(r),
			ContentType: r.Header.Get("Content-Type"),
		})
		w.Header().Set("Content-Type", "application/json")
		if err != nil {
			writeStatus(w, toConnectError(r.Context(), log, "POST "+engine.IngestPath+"{token}", err))
			return
		}
		b, err := marshal.Marshal(resp)
		if err != nil {
			writeStatus(w, toConnectError(r.Context(), log, "POST "+engine.IngestPath+"{token}", err))
			return
		}
		_, _ = w.Write(b)
	})
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
