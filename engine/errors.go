package engine

import (
	"errors"
	"fmt"
	"strings"

	"github.com/harkhq/hark/engine/rules"
	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// ErrNotFound is the sentinel every NotFoundError matches, so callers can test
// with errors.Is(err, ErrNotFound) without knowing the resource.
var ErrNotFound = errors.New("not found")

// NotFoundError says which resource is missing. It is an outcome the client
// can act on, so its message names the resource and id.
type NotFoundError struct {
	Resource string // e.g. "source"
	ID       string
	// Message, when set, replaces the generated "<resource> "<id>" not found".
	Message string
}

func (e *NotFoundError) Error() string {
	if e.Message != "" {
		return e.Message
	}
	return fmt.Sprintf("%s %q not found", e.Resource, e.ID)
}

// Is makes errors.Is(err, ErrNotFound) true.
func (e *NotFoundError) Is(target error) bool { return target == ErrNotFound }

// AlreadyExistsError says a resource with that id exists.
type AlreadyExistsError struct {
	Resource string
	ID       string
}

func (e *AlreadyExistsError) Error() string {
	return fmt.Sprintf("%s %q already exists", e.Resource, e.ID)
}

// FieldViolation is one invalid field of a request, named by its JSON path
// as the client wrote it (lowerCamelCase, e.g. "idempotencyWindow",
// "mapping.cancellationKey", "pluginSettings.shared_secret").
type FieldViolation struct {
	Field       string
	Description string
}

// ValidationError lists what is wrong with a request. The server turns it into
// InvalidArgument with a google.rpc.BadRequest detail, so clients get the
// fields without parsing the message.
type ValidationError struct {
	Violations []FieldViolation
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Violations))
	for i, v := range e.Violations {
		parts[i] = v.Field + ": " + v.Description
	}
	return "invalid request: " + strings.Join(parts, "; ")
}

// validation collects field violations; err returns nil when there are none.
type validation struct{ violations []FieldViolation }

func (v *validation) add(field, format string, args ...any) {
	v.violations = append(v.violations, FieldViolation{Field: field, Description: fmt.Sprintf(format, args...)})
}

func (v *validation) err() error {
	if len(v.violations) == 0 {
		return nil
	}
	return &ValidationError{Violations: v.violations}
}

// NotReadyError is a request hark cannot serve yet for a reason the caller
// may be told (a required plugin setting is not set): Unavailable (503,
// which senders retry) with this message, where other ErrUnavailable
// failures get a generic one.
type NotReadyError struct{ Message string }

func (e *NotReadyError) Error() string { return e.Message }

// Is makes errors.Is(err, ErrUnavailable) true.
func (e *NotReadyError) Is(target error) bool { return target == ErrUnavailable }

// ErrUnavailable marks failures worth retrying: the store or a plugin is
// down. Senders such as Segment retry 503s, so the server maps it there.
var ErrUnavailable = errors.New("unavailable")

// isNotFound reports whether err is, or wraps, a not-found error.
func isNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// ErrUnknownIngestToken answers a webhook URL whose token belongs to no
// source environment (never issued, rotated away, or its source deleted). It
// does not repeat the token: URLs end up in logs.
var ErrUnknownIngestToken = &NotFoundError{Resource: "webhook", Message: "no source environment has this webhook token"}

// ErrTooLarge is a write the store cannot commit in one transaction. The
// ingest committer splits its batch on it; a single delivery that is still
// too large is refused (400), since retrying it can never succeed.
var ErrTooLarge = errors.New("too large for one commit")

// ExpressionError is a trigger expression that does not compile, with the
// field it is in. The server returns it as InvalidArgument with a typed
// hark.v1.ExpressionError detail.
type ExpressionError struct {
	Field string
	*rules.CompileError
}

func (e *ExpressionError) Error() string {
	return fmt.Sprintf("%s: %d:%d: %s", e.Field, e.Line, e.Column, e.Message)
}

// MappingError is a mapped value of the wrong shape (DESIGN §4): a
// recipient that is neither a user id nor a user object, data that is not
// an object. Field is the mapping field in lowerCamelCase ("recipients",
// "cancellationKey"). A trigger's action becomes ERROR with its message;
// an API trigger answers InvalidArgument with Field as the violation.
//
// In is the trigger field holding the mapping: "mapping" (the default) for
// the workflow actions' TriggerMapping, "actionMapping" for the others.
type MappingError struct {
	In      string
	Field   string
	Message string
}

func (e *MappingError) Error() string {
	in := e.In
	if in == "" {
		in = "mapping"
	}
	return in + "." + e.Field + ": " + e.Message
}

// UserLimitError is an upsert that would take a user's properties past
// the limits (Config.MaxUserProperties, MaxUserBytes): the user is left as
// it was. From a source it makes the action ERROR with the message; from
// the API it is InvalidArgument.
type UserLimitError struct {
	UserID  string
	Message string
}

func (e *UserLimitError) Error() string { return fmt.Sprintf("user %q: %s", e.UserID, e.Message) }

// PreconditionError is a request that is well-formed but cannot be done in
// the current state (an inactive workflow): FailedPrecondition.
type PreconditionError struct{ Message string }

func (e *PreconditionError) Error() string { return e.Message }

// DeliveryErrorKind classifies a refused delivery.
type DeliveryErrorKind int

const (
	// BadRequest deliveries are malformed: 400, senders do not retry.
	BadRequest DeliveryErrorKind = iota + 1
	// BadSignature deliveries are unsigned or wrongly signed: 401.
	BadSignature
	// PluginFailed means the plugin failed on the delivery: 500.
	PluginFailed
)

// DeliveryError refuses a whole delivery. The server maps its kind to a
// status code; the message is shown to the sender.
type DeliveryError struct {
	Kind    DeliveryErrorKind
	Message string
	// Rejected lists the refused events when every event was refused.
	Rejected []*harkv1.ReceivedEvent
}

func (e *DeliveryError) Error() string { return e.Message }
