package sdk

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pluginv1 "github.com/harkhq/hark/gen/hark/plugin/v1"
)

// This file is the one place where errors cross the plugin boundary, both
// ways: Go error types do not survive gRPC, so each side turns them into
// protocol values and back here, and errors_test.go round-trips them.

// ErrorCode classifies a refused delivery.
type ErrorCode int

const (
	// CodeBadRequest: the delivery is malformed; hark answers 400 and
	// senders do not retry.
	CodeBadRequest ErrorCode = iota + 1
	// CodeBadSignature: the signature is missing or wrong; hark answers 401.
	CodeBadSignature
	// CodeInternal: the plugin failed on this delivery; hark answers 500.
	CodeInternal
)

func (c ErrorCode) String() string {
	switch c {
	case CodeBadRequest:
		return "bad request"
	case CodeBadSignature:
		return "bad signature"
	case CodeInternal:
		return "internal"
	default:
		return fmt.Sprintf("ErrorCode(%d)", int(c))
	}
}

// DeliveryError refuses a whole delivery.
type DeliveryError struct {
	Code    ErrorCode
	Message string
}

func (e *DeliveryError) Error() string { return e.Code.String() + ": " + e.Message }

// BadRequest refuses a malformed delivery.
func BadRequest(format string, args ...any) *DeliveryError {
	return &DeliveryError{Code: CodeBadRequest, Message: fmt.Sprintf(format, args...)}
}

// BadSignature refuses a delivery whose signature is missing or wrong.
func BadSignature(format string, args ...any) *DeliveryError {
	return &DeliveryError{Code: CodeBadSignature, Message: fmt.Sprintf(format, args...)}
}

// ErrUnavailable is what a call fails with when the plugin process cannot
// answer (crashed, exiting, unreachable); hosts retry later.
var ErrUnavailable = errors.New("source plugin unavailable")

func deliveryErrorToProto(e *DeliveryError) (pluginv1.DeliveryErrorCode, string) {
	if e == nil {
		return pluginv1.DeliveryErrorCode_DELIVERY_ERROR_CODE_UNSPECIFIED, ""
	}
	switch e.Code {
	case CodeBadRequest:
		return pluginv1.DeliveryErrorCode_DELIVERY_ERROR_CODE_BAD_REQUEST, e.Message
	case CodeBadSignature:
		return pluginv1.DeliveryErrorCode_DELIVERY_ERROR_CODE_BAD_SIGNATURE, e.Message
	default:
		return pluginv1.DeliveryErrorCode_DELIVERY_ERROR_CODE_INTERNAL, e.Message
	}
}

func deliveryErrorFromProto(code pluginv1.DeliveryErrorCode, msg string) *DeliveryError {
	switch code {
	case pluginv1.DeliveryErrorCode_DELIVERY_ERROR_CODE_UNSPECIFIED:
		return nil
	case pluginv1.DeliveryErrorCode_DELIVERY_ERROR_CODE_BAD_REQUEST:
		return &DeliveryError{Code: CodeBadRequest, Message: msg}
	case pluginv1.DeliveryErrorCode_DELIVERY_ERROR_CODE_BAD_SIGNATURE:
		return &DeliveryError{Code: CodeBadSignature, Message: msg}
	default:
		// Codes from a newer protocol minor are treated as plugin failures.
		return &DeliveryError{Code: CodeInternal, Message: msg}
	}
}

// callErrorToStatus turns an error a Source method returned into a gRPC
// status for the wire. Context errors keep their meaning; anything else is
// reported as Internal with its message.
func callErrorToStatus(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, ErrUnavailable):
		return status.Error(codes.Unavailable, err.Error())
	default:
		return status.Error(codes.Internal, err.Error())
	}
}

// callErrorFromStatus turns a gRPC error from the plugin back into a Go
// error: Unavailable (the process is gone or going) wraps ErrUnavailable,
// context codes wrap the context errors, the rest keep their message.
func callErrorFromStatus(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	switch st.Code() {
	case codes.Unavailable:
		return fmt.Errorf("%w: %s", ErrUnavailable, st.Message())
	case codes.DeadlineExceeded:
		return fmt.Errorf("%w: %s", context.DeadlineExceeded, st.Message())
	case codes.Canceled:
		return fmt.Errorf("%w: %s", context.Canceled, st.Message())
	default:
		return fmt.Errorf("source plugin: %s", st.Message())
	}
}
