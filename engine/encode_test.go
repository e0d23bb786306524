package engine

import (
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// TestEncodeFixedThenOutcome checks that the two-part encoding of the ingest
// path decodes to exactly the event, outcome included.
func TestEncodeFixedThenOutcome(t *testing.T) {
	t.Parallel()
	data, _ := structpb.NewStruct(map[string]any{"plan": "pro", "n": 2.5})
	ev := &harkv1.SourceEvent{
		Id: "evt_1", Environment: "development", SourceId: "src_1", Type: "track", Name: "A",
		UserId: "u1", IdempotencyKey: "m1", Data: data, Event: data,
		Status: harkv1.SourceEventStatus_SOURCE_EVENT_STATUS_PROCESSED,
	}
	fixed, err := encodeFixed(ev)
	if err != nil {
		t.Fatal(err)
	}
	if ev.GetStatus() != harkv1.SourceEventStatus_SOURCE_EVENT_STATUS_PROCESSED {
		t.Fatal("encodeFixed changed the event's status")
	}
	for _, outcome := range []func(){
		func() {},
		func() {
			ev.Status, ev.Reason, ev.OriginalEventId = harkv1.SourceEventStatus_SOURCE_EVENT_STATUS_IDEMPOTENT, "duplicate of evt_0", "evt_0"
		},
		func() {
			ev.Status, ev.Reason, ev.OriginalEventId = harkv1.SourceEventStatus_SOURCE_EVENT_STATUS_PROCESSED, "", ""
			ev.Actions = []*harkv1.Action{{Type: harkv1.ActionType_ACTION_TYPE_TRIGGER_WORKFLOW, Status: harkv1.ActionStatus_ACTION_STATUS_SUCCESS, WorkflowRunId: "run_1"}}
		},
	} {
		outcome()
		encoded, err := appendOutcome(fixed, ev)
		if err != nil {
			t.Fatal(err)
		}
		got := &harkv1.SourceEvent{}
		if err := proto.Unmarshal(encoded, got); err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(got, ev) {
			t.Fatalf("decoded %v, want %v", got, ev)
		}
	}
}
