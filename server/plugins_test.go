package server

import (
	"encoding/json"
	"testing"

	"github.com/harkhq/hark/plugins/sdk"
)

// TestTranslationAllocatesPerDeliveryNotPerEvent converts a plugin's answer
// of 100 events and 20 rejections into the engine's form: a block for the
// events and one for the rejections, nothing per event or per rejection and
// nothing to check the indexes. Not parallel: allocations are counted for
// the whole process.
func TestTranslationAllocatesPerDeliveryNotPerEvent(t *testing.T) {
	var r sdk.Result
	for i := range 120 {
		if i%6 == 5 {
			r.Rejections = append(r.Rejections, sdk.Rejection{Index: i, Reason: "no"})
			continue
		}
		r.Events = append(r.Events, sdk.Event{Index: i, Type: "track", Name: "E", Original: json.RawMessage(`{}`)})
	}
	p := pluginSources{}
	got := p.translation("segment", r)
	if got.Err != nil || len(got.Events) != 100 || len(got.Rejections) != 20 {
		t.Fatalf("translation = %d events, %d rejections, err %v; want 100, 20, none", len(got.Events), len(got.Rejections), got.Err)
	}
	if allocs := testing.AllocsPerRun(100, func() { p.translation("segment", r) }); allocs > 2 {
		t.Fatalf("translating 100 events and 20 rejections allocates %.0f times, want 2 (the events, the rejections)", allocs)
	}
}
