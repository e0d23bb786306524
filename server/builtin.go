package server

import harkv1 "github.com/harkhq/hark/gen/hark/v1"

// builtinSourceTypes tells the engine which source types exist until the
// plugin host can ask the plugins themselves (Describe). Only the settings
// matter here: which keys a source environment may set and which are secret.
type builtinSourceTypes struct{}

var segmentType = &harkv1.SourceType{
	Type:        "segment",
	DisplayName: "Segment",
	Origin:      harkv1.SourceTypeOrigin_SOURCE_TYPE_ORIGIN_BUILT_IN,
	Settings: []*harkv1.SourceTypeSetting{{
		Key:         "shared_secret",
		Description: "Segment's shared secret: when set, deliveries must carry a matching X-Signature (HMAC-SHA1 of the body).",
		Secret:      true,
	}},
	IdempotencyKey: "messageId",
}

func (builtinSourceTypes) SourceType(name string) (*harkv1.SourceType, bool) {
	if name == segmentType.GetType() {
		return segmentType, true
	}
	return nil, false
}
