package sdk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	pluginv1 "github.com/harkhq/hark/gen/hark/plugin/v1"
)

func TestDeliveryErrorRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		in       *DeliveryError
		wantCode pluginv1.DeliveryErrorCode
		want     *DeliveryError
	}{
		{
			name:     "nil is no error",
			in:       nil,
			wantCode: pluginv1.DeliveryErrorCode_DELIVERY_ERROR_CODE_UNSPECIFIED,
			want:     nil,
		},
		{
			name:     "bad request",
			in:       BadRequest("the body is empty: %d bytes", 0),
			wantCode: pluginv1.DeliveryErrorCode_DELIVERY_ERROR_CODE_BAD_REQUEST,
			want:     &DeliveryError{Code: CodeBadRequest, Message: "the body is empty: 0 bytes"},
		},
		{
			name:     "bad signature",
			in:       BadSignature("X-Signature is missing"),
			wantCode: pluginv1.DeliveryErrorCode_DELIVERY_ERROR_CODE_BAD_SIGNATURE,
			want:     &DeliveryError{Code: CodeBadSignature, Message: "X-Signature is missing"},
		},
		{
			name:     "internal",
			in:       &DeliveryError{Code: CodeInternal, Message: "decoder exploded"},
			wantCode: pluginv1.DeliveryErrorCode_DELIVERY_ERROR_CODE_INTERNAL,
			want:     &DeliveryError{Code: CodeInternal, Message: "decoder exploded"},
		},
		{
			name:     "internal with empty message",
			in:       &DeliveryError{Code: CodeInternal},
			wantCode: pluginv1.DeliveryErrorCode_DELIVERY_ERROR_CODE_INTERNAL,
			want:     &DeliveryError{Code: CodeInternal},
		},
		{
			// A zero or unknown code must not become "no error": the
			// delivery was refused, so it is reported as a plugin failure.
			name:     "zero code is internal",
			in:       &DeliveryError{Message: "forgot the code"},
			wantCode: pluginv1.DeliveryErrorCode_DELIVERY_ERROR_CODE_INTERNAL,
			want:     &DeliveryError{Code: CodeInternal, Message: "forgot the code"},
		},
		{
			name:     "unknown code is internal",
			in:       &DeliveryError{Code: ErrorCode(42), Message: "from the future"},
			wantCode: pluginv1.DeliveryErrorCode_DELIVERY_ERROR_CODE_INTERNAL,
			want:     &DeliveryError{Code: CodeInternal, Message: "from the future"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, msg := deliveryErrorToProto(tt.in)
			if code != tt.wantCode {
				t.Fatalf("deliveryErrorToProto code = %v, want %v", code, tt.wantCode)
			}
			got := deliveryErrorFromProto(code, msg)
			if !sameDeliveryError(got, tt.want) {
				t.Fatalf("round trip = %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestDeliveryErrorFromNewerProtocol(t *testing.T) {
	t.Parallel()
	// A code a newer protocol minor added is read as a plugin failure, with
	// its message kept.
	got := deliveryErrorFromProto(pluginv1.DeliveryErrorCode(99), "new kind of refusal")
	want := &DeliveryError{Code: CodeInternal, Message: "new kind of refusal"}
	if !sameDeliveryError(got, want) {
		t.Fatalf("deliveryErrorFromProto(99) = %#v, want %#v", got, want)
	}
}

func TestDeliveryErrorMessage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  *DeliveryError
		want string
	}{
		{"bad request", BadRequest("`batch` holds %d events", 0), "bad request: `batch` holds 0 events"},
		{"bad signature", BadSignature("wrong"), "bad signature: wrong"},
		{"internal", &DeliveryError{Code: CodeInternal, Message: "oops"}, "internal: oops"},
		{"unknown", &DeliveryError{Code: 7, Message: "x"}, "ErrorCode(7): x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.err.Error(); got != tt.want {
				t.Fatalf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestCallErrorRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		in       error
		wantCode codes.Code
		wantIs   error // nil: no sentinel expected
	}{
		{"unavailable", ErrUnavailable, codes.Unavailable, ErrUnavailable},
		{"wrapped unavailable", fmt.Errorf("dial: %w", ErrUnavailable), codes.Unavailable, ErrUnavailable},
		{"deadline exceeded", context.DeadlineExceeded, codes.DeadlineExceeded, context.DeadlineExceeded},
		{"wrapped deadline exceeded", fmt.Errorf("translate: %w", context.DeadlineExceeded), codes.DeadlineExceeded, context.DeadlineExceeded},
		{"canceled", context.Canceled, codes.Canceled, context.Canceled},
		{"wrapped canceled", fmt.Errorf("translate: %w", context.Canceled), codes.Canceled, context.Canceled},
		{"ordinary", errors.New("the schema registry is down"), codes.Internal, nil},
	}
	sentinels := []error{ErrUnavailable, context.DeadlineExceeded, context.Canceled}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			wire := callErrorToStatus(tt.in)
			if got := status.Code(wire); got != tt.wantCode {
				t.Fatalf("callErrorToStatus code = %v, want %v", got, tt.wantCode)
			}
			// What the host sees is rebuilt from the status proto, as over gRPC.
			back := callErrorFromStatus(status.FromProto(status.Convert(wire).Proto()).Err())
			if back == nil {
				t.Fatal("callErrorFromStatus returned nil for an error")
			}
			for _, s := range sentinels {
				if got, want := errors.Is(back, s), s == tt.wantIs; got != want {
					t.Errorf("errors.Is(%v, %v) = %v, want %v", back, s, got, want)
				}
			}
			if !strings.Contains(back.Error(), tt.in.Error()) {
				t.Errorf("round trip lost the message: got %q, want it to contain %q", back, tt.in)
			}
		})
	}
}

func TestCallErrorNil(t *testing.T) {
	t.Parallel()
	if err := callErrorToStatus(nil); err != nil {
		t.Fatalf("callErrorToStatus(nil) = %v", err)
	}
	if err := callErrorFromStatus(nil); err != nil {
		t.Fatalf("callErrorFromStatus(nil) = %v", err)
	}
}

func TestCallErrorFromNonStatus(t *testing.T) {
	t.Parallel()
	// An error that is no gRPC status means the connection itself failed:
	// the plugin is unavailable.
	err := callErrorFromStatus(errors.New("connection reset by peer"))
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("callErrorFromStatus(non-status) = %v, want it to wrap ErrUnavailable", err)
	}
	if !strings.Contains(err.Error(), "connection reset by peer") {
		t.Fatalf("callErrorFromStatus(non-status) = %q, lost the cause", err)
	}
}

func TestCallErrorFromOtherCodes(t *testing.T) {
	t.Parallel()
	for _, c := range []codes.Code{codes.Internal, codes.Unknown, codes.ResourceExhausted, codes.Unimplemented} {
		t.Run(c.String(), func(t *testing.T) {
			t.Parallel()
			err := callErrorFromStatus(status.Error(c, "plugin said no"))
			for _, s := range []error{ErrUnavailable, context.DeadlineExceeded, context.Canceled} {
				if errors.Is(err, s) {
					t.Errorf("callErrorFromStatus(%v) = %v, must not be %v", c, err, s)
				}
			}
			if !strings.Contains(err.Error(), "plugin said no") {
				t.Errorf("callErrorFromStatus(%v) = %q, lost the message", c, err)
			}
		})
	}
}

func TestResultRoundTrip(t *testing.T) {
	t.Parallel()
	ts := time.Date(2024, 3, 9, 17, 4, 5, 123456789, time.FixedZone("CET", 3600))
	tests := []struct {
		name string
		in   Result
		want Result
	}{
		{
			name: "events and rejections",
			in: Result{
				Events: []Event{
					{
						Index:          0,
						Type:           "track",
						Name:           "Order Completed",
						UserID:         "u-1",
						AnonymousID:    "anon-1",
						IdempotencyKey: []byte(`"msg-1"`),
						Timestamp:      ts,
						Data:           []byte(`{"total":12.5,"items":[1,2]}`),
						Traits:         []byte(`{"plan":"pro"}`),
						Original:       []byte(`{"type":"track","event":"Order Completed","messageId":"msg-1"}`),
					},
					{
						// Zero timestamp and nil JSON fields stay zero and nil.
						Index: 2,
						Type:  "identify",
						// A numeric key is passed on raw; hark decides it is no key.
						IdempotencyKey: []byte(`42`),
						Original:       []byte(`{"type":"identify"}`),
					},
				},
				Rejections: []Rejection{
					{Index: 1, Reason: "the event must be a JSON object"},
					{Index: 3, Reason: "a track event needs an `event` name"},
				},
			},
		},
		{
			name: "only rejections",
			in:   Result{Rejections: []Rejection{{Index: 0, Reason: "too big"}}},
		},
		{
			name: "delivery error",
			in:   Result{Err: BadSignature("X-Signature does not match")},
		},
		{
			// Err refuses the whole delivery: events beside it are dropped.
			name: "delivery error drops events",
			in: Result{
				Events:     []Event{{Index: 0, Type: "track", Name: "x", Original: []byte(`{}`)}},
				Rejections: []Rejection{{Index: 1, Reason: "no"}},
				Err:        BadRequest("the delivery holds 4001 events"),
			},
			want: Result{Err: BadRequest("the delivery holds 4001 events")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			want := tt.want
			if want.Events == nil && want.Rejections == nil && want.Err == nil {
				want = tt.in
			}
			pr := resultToProto(tt.in)
			// Marshal as the wire does, so nothing survives only by sharing memory.
			b, err := proto.Marshal(pr)
			if err != nil {
				t.Fatalf("marshal result: %v", err)
			}
			var wire pluginv1.DeliveryResult
			if err := proto.Unmarshal(b, &wire); err != nil {
				t.Fatalf("unmarshal result: %v", err)
			}
			got := resultFromProto(&wire)
			if err := diffResult(got, want); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func sameDeliveryError(a, b *DeliveryError) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// diffResult compares results the way a plugin author means them: times by
// instant, nil and empty JSON alike.
func diffResult(got, want Result) error {
	if !sameDeliveryError(got.Err, want.Err) {
		return fmt.Errorf("Err = %#v, want %#v", got.Err, want.Err)
	}
	if len(got.Events) != len(want.Events) {
		return fmt.Errorf("%d events, want %d: %+v", len(got.Events), len(want.Events), got.Events)
	}
	for i, g := range got.Events {
		w := want.Events[i]
		switch {
		case g.Index != w.Index, g.Type != w.Type, g.Name != w.Name, g.UserID != w.UserID, g.AnonymousID != w.AnonymousID:
			return fmt.Errorf("event %d = %+v, want %+v", i, g, w)
		case !g.Timestamp.Equal(w.Timestamp):
			return fmt.Errorf("event %d timestamp = %v, want %v", i, g.Timestamp, w.Timestamp)
		case !bytes.Equal(g.IdempotencyKey, w.IdempotencyKey):
			return fmt.Errorf("event %d idempotency key = %s, want %s", i, g.IdempotencyKey, w.IdempotencyKey)
		case !bytes.Equal(g.Data, w.Data):
			return fmt.Errorf("event %d data = %s, want %s", i, g.Data, w.Data)
		case !bytes.Equal(g.Traits, w.Traits):
			return fmt.Errorf("event %d traits = %s, want %s", i, g.Traits, w.Traits)
		case !bytes.Equal(g.Original, w.Original):
			return fmt.Errorf("event %d original = %s, want %s", i, g.Original, w.Original)
		}
	}
	if len(got.Rejections) != len(want.Rejections) {
		return fmt.Errorf("rejections = %+v, want %+v", got.Rejections, want.Rejections)
	}
	for i := range got.Rejections {
		if got.Rejections[i] != want.Rejections[i] {
			return fmt.Errorf("rejection %d = %+v, want %+v", i, got.Rejections[i], want.Rejections[i])
		}
	}
	return nil
}
