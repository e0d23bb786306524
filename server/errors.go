package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"

	"github.com/harkhq/hark/engine"
	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// toConnectError is the one place where domain errors become status codes.
// Handlers return the engine's errors as they are; the error interceptor
// passes them through here. Anything not recognized is an internal error
// with a generic message, because error messages reach clients; the cause
// is logged instead.
func toConnectError(ctx context.Context, log *slog.Logger, procedure string, err error) error {
	if err == nil {
		return nil
	}
	var (
		cerr       *connect.Error
		validation *engine.ValidationError
		notFound   *engine.NotFoundError
		exists     *engine.AlreadyExistsError
		delivery   *engine.DeliveryError
		expression *engine.ExpressionError
		pre        *engine.PreconditionError
		notReady   *engine.NotReadyError
	)
	switch {
	case errors.As(err, &cerr):
		return cerr
	case errors.As(err, &validation):
		return invalidArgument(err, validation.Violations)
	case errors.As(err, &expression):
		return expressionError(expression)
	case errors.As(err, &pre):
		return connect.NewError(connect.CodeFailedPrecondition, pre)
	case errors.As(err, &delivery):
		return deliveryError(delivery)
	case errors.As(err, &notFound):
		return connect.NewError(connect.CodeNotFound, notFound)
	case errors.As(err, &exists):
		return connect.NewError(connect.CodeAlreadyExists, exists)
	case errors.As(err, &notReady):
		return connect.NewError(connect.CodeUnavailable, notReady)
	case errors.Is(err, engine.ErrTooLarge):
		// Retrying the same request can never fit; the caller must send
		// less at once.
		return connect.NewError(connect.CodeInvalidArgument, errors.New("the request is too large to store in one commit; send less at once"))
	case errors.Is(err, engine.ErrUnavailable):
		log.WarnContext(ctx, "unavailable", "procedure", procedure, "err", err)
		return connect.NewError(connect.CodeUnavailable, errors.New("temporarily unavailable, retry later"))
	case errors.Is(err, context.Canceled):
		return connect.NewError(connect.CodeCanceled, err)
	case errors.Is(err, context.DeadlineExceeded):
		return connect.NewError(connect.CodeDeadlineExceeded, err)
	default:
		log.ErrorContext(ctx, "internal error", "procedure", procedure, "err", err)
		return connect.NewError(connect.CodeInternal, errors.New("internal error"))
	}
}

// deliveryError maps a refused delivery: malformed → 400 with each rejected
// event as a field violation ("events[3]"), bad signature → 401, a plugin
// failure → 500. Segment drops 4xx and retries 5xx, which is what each needs.
func deliveryError(d *engine.DeliveryError) error {
	switch d.Kind {
	case engine.BadRequest:
		violations := make([]engine.FieldViolation, len(d.Rejected))
		for i, r := range d.Rejected {
			violations[i] = engine.FieldViolation{Field: fmt.Sprintf("events[%d]", r.GetIndex()), Description: r.GetReason()}
		}
		return invalidArgument(d, violations)
	case engine.BadSignature:
		return connect.NewError(connect.CodeUnauthenticated, d)
	default:
		return connect.NewError(connect.CodeInternal, fmt.Errorf("source plugin failed: %s", d.Message))
	}
}

// expressionError is InvalidArgument with two details: the typed
// hark.v1.ExpressionError (line, column, snippet) for clients that point at
// the expression, and a BadRequest field violation for generic ones.
func expressionError(x *engine.ExpressionError) error {
	out := invalidArgument(x, []engine.FieldViolation{{Field: x.Field, Description: x.CompileError.Error()}})
	detail, err := connect.NewErrorDetail(&harkv1.ExpressionError{
		Field: x.Field, Expression: x.Source, Line: int32(x.Line), Column: int32(x.Column),
		Message: x.Message, Snippet: x.Snippet,
	})
	if err == nil {
		out.AddDetail(detail)
	}
	return out
}

// invalidArgument is InvalidArgument with the violations as a
// google.rpc.BadRequest detail, so clients read fields, not prose.
func invalidArgument(err error, violations []engine.FieldViolation) *connect.Error {
	out := connect.NewError(connect.CodeInvalidArgument, err)
	if len(violations) == 0 {
		return out
	}
	br := &errdetails.BadRequest{}
	for _, v := range violations {
		br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{
			Field: v.Field, Description: v.Description,
		})
	}
	if detail, err := connect.NewErrorDetail(br); err == nil {
		out.AddDetail(detail)
	}
	return out
}

// errorInterceptor applies toConnectError to every handler's result.
type errorInterceptor struct{ log *slog.Logger }

func (i errorInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		res, err := next(ctx, req)
		if err != nil {
			return nil, toConnectError(ctx, i.log, req.Spec().Procedure, err)
		}
		return res, nil
	}
}

func (i errorInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (i errorInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		return toConnectError(ctx, i.log, conn.Spec().Procedure, next(ctx, conn))
	}
}
