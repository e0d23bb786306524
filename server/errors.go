package server

import (
	"context"
	"errors"
	"log/slog"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"

	"github.com/harkhq/hark/engine"
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
	)
	switch {
	case errors.As(err, &cerr):
		return cerr
	case errors.As(err, &validation):
		out := connect.NewError(connect.CodeInvalidArgument, err)
		br := &errdetails.BadRequest{}
		for _, v := range validation.Violations {
			br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{
				Field: v.Field, Description: v.Description,
			})
		}
		if detail, derr := connect.NewErrorDetail(br); derr == nil {
			out.AddDetail(detail)
		}
		return out
	case errors.As(err, &notFound):
		return connect.NewError(connect.CodeNotFound, notFound)
	case errors.As(err, &exists):
		return connect.NewError(connect.CodeAlreadyExists, exists)
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
