package delivery

import (
	"fmt"
	"slices"
	"strings"
	"time"

	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// Destination types (hark.v1.Destination.type).
const (
	// TypeWebhook POSTs a Standard Webhooks signed JSON message to a URL.
	TypeWebhook = "webhook"
	// TypeKnock triggers and cancels the workflow of the same key in Knock.
	TypeKnock = "knock"
	// TypeSegment sends a `track` per recipient to Segment.
	TypeSegment = "segment"
)

// Default API bases of the types whose url is optional.
const (
	DefaultKnockURL   = "https://api.knock.app"
	DefaultSegmentURL = "https://api.segment.io"
)

// Settings keys.
const (
	// SettingKnockAPIKey is a knock destination's secret API key (`sk_...`),
	// sent as a Bearer token.
	SettingKnockAPIKey = "api_key"
	// SettingSegmentWriteKey is a segment destination's source write key,
	// sent as the Basic auth user.
	SettingSegmentWriteKey = "write_key"
)

// EventType is what a delivery carries (hark.v1.Delivery.event_type).
type EventType string

const (
	// EventRunCreated is a new workflow run.
	EventRunCreated EventType = "workflow_run.created"
	// EventRunCancelled is a run that CancelWorkflow cancelled.
	EventRunCancelled EventType = "workflow_run.cancelled"
	// EventPing is TestDestination's message; it carries no run.
	EventPing EventType = "ping"
)

// Setting describes one setting of a destination type.
type Setting struct {
	// Key is the setting's name in Destination.settings.
	Key string
	// Description says what it is.
	Description string
	// Secret settings are write-only: reads return them masked.
	Secret bool
	// Required settings must be set for the destination to be saved.
	Required bool
}

// typeSpecs lists what each destination type takes.
var typeSpecs = map[string]struct {
	urlRequired bool
	settings    []Setting
}{
	TypeWebhook: {urlRequired: true},
	TypeKnock: {settings: []Setting{{
		Key: SettingKnockAPIKey, Description: "Knock secret API key (sk_...) of the Knock environment to trigger", Secret: true, Required: true,
	}}},
	TypeSegment: {settings: []Setting{{
		Key: SettingSegmentWriteKey, Description: "write key of the Segment source to send tracks to", Secret: true, Required: true,
	}}},
}

// Types returns the destination types, sorted.
func Types() []string {
	out := make([]string, 0, len(typeSpecs))
	for t := range typeSpecs {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}

// TypeSettings returns the settings a destination type takes, and false for
// an unknown type. The slice is the caller's.
func TypeSettings(typ string) ([]Setting, bool) {
	spec, ok := typeSpecs[typ]
	if !ok {
		return nil, false
	}
	return slices.Clone(spec.settings), true
}

// maxSettingLen bounds one setting value: settings are keys, not documents.
const maxSettingLen = 4096

// FieldViolation is one invalid field of a destination, named by its JSON
// path as the client wrote it ("url", "settings.api_key"), ready for a
// google.rpc.BadRequest detail.
type FieldViolation struct {
	Field       string
	Description string
}

// Validate checks a destination's type, url and settings as they will be
// saved (settings with secrets unmasked). It returns every violation, or
// none. allowPrivate is `--allow-private-destinations`.
func Validate(typ, rawURL string, settings map[string]string, allowPrivate bool) []FieldViolation {
	var out []FieldViolation
	add := func(field, format string, args ...any) {
		out = append(out, FieldViolation{Field: field, Description: fmt.Sprintf(format, args...)})
	}
	spec, ok := typeSpecs[typ]
	if !ok {
		if typ == "" {
			add("type", "is required (one of %s)", strings.Join(Types(), ", "))
		} else {
			add("type", "%q is not a destination type (one of %s)", typ, strings.Join(Types(), ", "))
		}
		return out
	}
	switch {
	case rawURL == "" && spec.urlRequired:
		add("url", "is required for %s destinations", typ)
	case rawURL != "":
		if err := ValidateURL(rawURL, allowPrivate); err != nil {
			add("url", "%s", err.(*URLError).Reason)
		}
	}
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	slices.Sort(keys) // violations in a stable order
	for _, k := range keys {
		if !slices.ContainsFunc(spec.settings, func(s Setting) bool { return s.Key == k }) {
			if len(spec.settings) == 0 {
				add("settings."+k, "is not a setting: %s destinations take none", typ)
			} else {
				add("settings."+k, "is not a setting of %s destinations (they take %s)", typ, settingKeys(spec.settings))
			}
		} else if len(settings[k]) > maxSettingLen {
			add("settings."+k, "must be at most %d bytes", maxSettingLen)
		}
	}
	for _, s := range spec.settings {
		if s.Required && strings.TrimSpace(settings[s.Key]) == "" {
			add("settings."+s.Key, "is required for %s destinations", typ)
		}
	}
	return out
}

func settingKeys(settings []Setting) string {
	keys := make([]string, len(settings))
	for i, s := range settings {
		keys[i] = s.Key
	}
	return strings.Join(keys, ", ")
}

// Target is what sending needs of a destination. It is the store's record
// seen from here, with secrets in the clear; hark.v1.Destination masks them
// and so cannot serve.
type Target struct {
	// ID of the destination (`dst_...`).
	ID string
	// Environment of the destination.
	Environment string
	// Type is TypeWebhook, TypeKnock or TypeSegment.
	Type string
	// URL as saved; empty means the type's default base (knock, segment).
	URL string
	// Settings with secret values in the clear.
	Settings map[string]string
	// Secrets sign a webhook destination's messages.
	Secrets Secrets
}

// Message is the run change a delivery carries.
type Message struct {
	// ID is the delivery's id: webhook-id, and the seed of Segment's
	// messageIds. The same on every attempt.
	ID string
	// EventType is what happened.
	EventType EventType
	// Run is the run as of the change: the outbox should keep a snapshot, so
	// a created delivery retried after a cancellation still shows the run
	// as it was created. Nil for EventPing.
	Run *harkv1.WorkflowRun
	// Timestamp is when the change happened (the run's created_at, or its
	// updated_at for a cancellation): the webhook body's timestamp and
	// Segment's track time. It is the same on every attempt; the
	// webhook-timestamp header is the attempt's own time.
	Timestamp time.Time
}

// CancelledRecipients are the recipients a `workflow_run.cancelled` change
// cancelled the run for: its cancelled_recipients, or, for a run stored
// before hark kept them (cancelled whole), all its recipients. Destinations
// act on these alone: a partial cancellation stops the workflow for them
// and leaves the run going on for the others.
func CancelledRecipients(run *harkv1.WorkflowRun) []string {
	if len(run.GetCancelledRecipients()) > 0 {
		return run.GetCancelledRecipients()
	}
	return run.GetRecipients()
}
