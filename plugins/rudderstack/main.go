// Command hark-source-rudderstack is a hark source plugin for RudderStack,
// built separately from hark to show (and test) the third-party plugin path:
// put the binary, named hark-source-rudderstack, into hark's plugin directory.
//
//	go build -o <data-dir>/plugins/hark-source-rudderstack ./plugins/rudderstack
//
// RudderStack sends Segment-shaped events, so it reuses the Segment parser,
// but reads identify traits from context.traits (where RudderStack's SDKs put
// them) and has no signature to check.
package main

import (
	"github.com/harkhq/hark/plugins/segment"
)

func main() {
	segment.ServeSource(segment.New(segment.Options{
		Type:        "rudderstack",
		DisplayName: "RudderStack",
		Version:     "0.1.0",
		Traits:      segment.TraitsContext,
	}))
}
