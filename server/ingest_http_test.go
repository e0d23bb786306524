package server

import (
	"encoding/json"
	"reflect"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"

	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// TestReceiveResponseJSON holds the hand-written webhook answer to
// protojson's: the same JSON, whatever the reasons hold.
func TestReceiveResponseJSON(t *testing.T) {
	t.Parallel()
	for _, resp := range []*harkv1.ReceiveResponse{
		{},
		{Events: []*harkv1.ReceivedEvent{{Index: 0, Id: "evt_1", Status: harkv1.SourceEventStatus_SOURCE_EVENT_STATUS_PROCESSED}}},
		{Events: []*harkv1.ReceivedEvent{
			{Index: 3, Status: harkv1.SourceEventStatus_SOURCE_EVENT_STATUS_REJECTED, Reason: "a \"quoted\" \\ reason\nwith\ttabs \x01 \u2028 ünïcødé 😀 <html>"},
			{Index: 2147483647, Id: "evt_2", Status: harkv1.SourceEventStatus_SOURCE_EVENT_STATUS_IDEMPOTENT, Reason: "duplicate of evt_1"},
		}},
	} {
		want, err := protojson.MarshalOptions{EmitUnpopulated: true}.Marshal(resp)
		if err != nil {
			t.Fatal(err)
		}
		got := appendReceiveResponse(nil, resp)
		var g, w any
		if err := json.Unmarshal(got, &g); err != nil {
			t.Fatalf("%s: not JSON: %v", got, err)
		}
		if err := json.Unmarshal(want, &w); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(g, w) {
			t.Fatalf("got %s\nwant %s", got, want)
		}
	}
}
