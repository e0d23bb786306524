package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"

	"connectrpc.com/connect"

	"github.com/harkhq/hark/engine"
)

// TestToConnectError pins how domain errors reach clients: the code, and
// whether the message is the error's own or a generic one (messages reach
// clients, so only errors meant for them show theirs).
func TestToConnectError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		err     error
		code    connect.Code
		message string
	}{
		{"too large for one commit", fmt.Errorf("commit: %w: txn too big", engine.ErrTooLarge), connect.CodeInvalidArgument,
			"the request is too large to store in one commit; send less at once"},
		{"not ready, with its reason", &engine.NotReadyError{Message: `setting "api_key" is required`}, connect.CodeUnavailable,
			`setting "api_key" is required`},
		{"unavailable, generic", fmt.Errorf("%w: badger: disk", engine.ErrUnavailable), connect.CodeUnavailable,
			"temporarily unavailable, retry later"},
		{"mapping error", &engine.ValidationError{Violations: []engine.FieldViolation{{Field: "tenant", Description: "x"}}}, connect.CodeInvalidArgument,
			"invalid request: tenant: x"},
		{"unknown", errors.New("secret internals"), connect.CodeInternal, "internal error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var cerr *connect.Error
			if !errors.As(toConnectError(context.Background(), slog.New(slog.DiscardHandler), "test", tt.err), &cerr) {
				t.Fatal("not a connect error")
			}
			if cerr.Code() != tt.code || cerr.Message() != tt.message {
				t.Fatalf("got %v %q, want %v %q", cerr.Code(), cerr.Message(), tt.code, tt.message)
			}
		})
	}
}
