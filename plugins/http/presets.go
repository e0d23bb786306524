package httpsource

import (
	"maps"
	"slices"
	"strings"
)

// Presets, the values of the preset setting.
const (
	PresetStripe           = "stripe"
	PresetClerk            = "clerk"
	PresetShopify          = "shopify"
	PresetGitHub           = "github"
	PresetStandardWebhooks = "standard_webhooks"
	PresetHMACSHA256Hex    = "hmac_sha256_hex"
	PresetNone             = "none"
)

// preset is how one kind of sender signs its deliveries and where its
// deliveries say what they are. A path setting of the source environment
// replaces the preset's path; a preset may list several paths for one
// field, tried in order (Standard Webhooks' id comes as webhook-id or, from
// Svix and Clerk, svix-id).
type preset struct {
	scheme         scheme
	eventType      []Path
	idempotencyKey []Path
	timestamp      []Path
	userID         []Path
}

// standardWebhooks is the Standard Webhooks payload the spec recommends
// ({"type", "timestamp", "data"}), which hark's own webhook destinations
// send, and the message id as the idempotency key: it is the same on every
// retry of a message.
var standardWebhooks = preset{
	scheme:         schemeStandardWebhooks,
	eventType:      paths("body.type"),
	idempotencyKey: paths(`headers["webhook-id"]`, `headers["svix-id"]`),
	timestamp:      paths("body.timestamp"),
}

// presets are the presets by name. None sets user_id_path: no provider has
// a field that is always the id of one of your users (Stripe's is a
// customer id of Stripe's, GitHub's sender is a GitHub account), so a user
// id is mapped on purpose, with user_id_path or a trigger's recipients.
var presets = map[string]preset{
	// Stripe: Stripe-Signature; the event's id is the same on every retry
	// of an event, and created is in Unix seconds.
	PresetStripe: {
		scheme:         schemeStripe,
		eventType:      paths("body.type"),
		idempotencyKey: paths("body.id"),
		timestamp:      paths("body.created"),
	},
	// Clerk sends through Svix: Standard Webhooks with svix-* headers, and
	// a body {"type", "timestamp" (Unix milliseconds), "data"}.
	PresetClerk:            standardWebhooks,
	PresetStandardWebhooks: standardWebhooks,
	// Shopify: the topic (orders/create) and the webhook id, which Shopify
	// documents for detecting duplicates, are headers.
	PresetShopify: {
		scheme:         schemeShopify,
		eventType:      paths(`headers["x-shopify-topic"]`),
		idempotencyKey: paths(`headers["x-shopify-webhook-id"]`),
		timestamp:      paths(`headers["x-shopify-triggered-at"]`),
	},
	// GitHub: the event (push, issues) and the delivery's GUID, which a
	// redelivery keeps, are headers; payloads have no common timestamp.
	PresetGitHub: {
		scheme:         schemeGitHub,
		eventType:      paths(`headers["x-github-event"]`),
		idempotencyKey: paths(`headers["x-github-delivery"]`),
	},
	PresetHMACSHA256Hex: {scheme: schemeHMACSHA256Hex},
	PresetNone:          {scheme: schemeNone},
}

// presetNames lists the presets for messages, sorted.
var presetNames = strings.Join(slices.Sorted(maps.Keys(presets)), ", ")

func paths(ss ...string) []Path {
	out := make([]Path, len(ss))
	for i, s := range ss {
		out[i] = mustParsePath(s)
	}
	return out
}
