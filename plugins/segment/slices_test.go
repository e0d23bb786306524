package segment_test

import (
	"context"
	"testing"
	"unsafe"

	"github.com/harkhq/hark/plugins/sdk"
	"github.com/harkhq/hark/plugins/segment"
)

// within reports whether inner's bytes lie inside outer's memory.
func within(outer, inner []byte) bool {
	if len(inner) == 0 || len(outer) == 0 {
		return false
	}
	o, i := uintptr(unsafe.Pointer(unsafe.SliceData(outer))), uintptr(unsafe.Pointer(unsafe.SliceData(inner)))
	return i >= o && i+uintptr(len(inner)) <= o+uintptr(len(outer))
}

// TestPartsAreSlicesOfTheEvent checks that an event's data and traits are
// slices of its Original, and Original a slice of the body when nothing was
// merged into it: the SDK then sends them as offsets, not as their bytes
// again (see the Event message of the plugin protocol).
func TestPartsAreSlicesOfTheEvent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		src  *segment.Source
		body string
		// merged: Original is re-encoded, so not a slice of the body.
		merged bool
	}{
		{name: "track", body: ` {"type":"track","event":"A","properties":{"plan":"pro"}} `},
		{name: "page", body: `{"type":"page","properties":{"name":"Docs"}}`},
		{name: "identify, top-level traits", body: `{"type":"identify","userId":"u1","traits":{"plan":"pro"}}`},
		{name: "identify, context traits", body: `{"type":"identify","userId":"u1","context":{"ip":"1.2.3.4","traits":{"plan":"pro"}}}`},
		{name: "rudderstack identify, context traits", src: rudder, body: `{"type":"identify","userId":"u1","context":{"traits":{"plan":"pro"}}}`},
		{name: "group", body: `{"type":"group","groupId":"g","traits":{"name":"Acme"}}`},
		{name: "bare array", body: `[{"type":"track","event":"A","properties":{"a":1}},{"type":"identify","traits":{"b":2}}]`},
		{name: "batch without context", body: `{"batch":[{"type":"track","event":"A","properties":{"a":1}}]}`},
		{name: "batch with context, track", merged: true, body: `{"batch":[{"type":"track","event":"A","properties":{"a": 1}}],"context":{"ip":"1.2.3.4"}}`},
		{name: "batch with context, identify", merged: true, body: `{"batch":[{"type":"identify","userId":"u","traits":{"b":2}}],"context":{"ip":"1.2.3.4"}}`},
		{name: "batch with context traits, identify", merged: true, body: `{"batch":[{"type":"identify","userId":"u"}],"context":{"traits":{"b":2}}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			src := tt.src
			if src == nil {
				src = segment.Segment()
			}
			d := body(tt.body)
			res, err := src.Translate(context.Background(), []sdk.Delivery{d})
			if err != nil || res[0].Err != nil || len(res[0].Rejections) != 0 || len(res[0].Events) == 0 {
				t.Fatalf("Translate = %+v, %v; want events", res, err)
			}
			for i, ev := range res[0].Events {
				if !tt.merged && !within(d.Body, ev.Original) {
					t.Errorf("event %d: Original is a copy, want a slice of the body", i)
				}
				if ev.Data != nil && !within(ev.Original, ev.Data) {
					t.Errorf("event %d: Data %s is a copy, want a slice of Original", i, ev.Data)
				}
				if ev.Traits != nil && !within(ev.Original, ev.Traits) {
					t.Errorf("event %d: Traits %s is a copy, want a slice of Original", i, ev.Traits)
				}
				if ev.Data == nil && ev.Traits == nil {
					t.Errorf("event %d has neither data nor traits: %+v", i, ev)
				}
			}
		})
	}
}
