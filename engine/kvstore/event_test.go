package kvstore

import (
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// TestDecodeEventOlderForm reads an event log record as hark wrote it before
// it kept the JSON as received (a plain SourceEvent encoding, with Structs).
func TestDecodeEventOlderForm(t *testing.T) {
	t.Parallel()
	data, _ := structpb.NewStruct(map[string]any{"plan": "pro"})
	old := &harkv1.SourceEvent{Id: "evt_1", Type: "track", Event: data, Data: data}
	v, err := proto.Marshal(old)
	if err != nil {
		t.Fatal(err)
	}
	ev, raw, err := decodeEvent(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := withJSON(ev, raw); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(ev, old) {
		t.Fatalf("decoded %v, want %v", ev, old)
	}
}
