package server_test

import (
	"net/http"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

// TestLargeNumbersKeepTheirDigits posts numbers a float64 cannot hold
// exactly: the event log (original event, data, traits), the user and the
// run's data keep their digits, as text; numbers a float64 holds stay
// numbers. They used to come back rounded (12345678901234567891 →
// 12345678901234567000).
func TestLargeNumbersKeepTheirDigits(t *testing.T) {
	t.Parallel()
	f := trgStart(t)
	f.createTrigger(t, "development", map[string]any{"event": "Order Completed", "mapping": map[string]any{"recipients": `"u2"`}})
	const big = "12345678901234567891"
	r := f.h.ingest(t, f.ingestURL(t, "development"),
		[]byte(`{"type":"track","event":"Order Completed","userId":"u2","properties":{"amount":`+big+`,"total":19.99,"nested":{"id":`+big+`}}}`))
	wantStatus(t, r, http.StatusOK)
	r2 := f.h.ingest(t, f.ingestURL(t, "development"),
		[]byte(`{"type":"identify","userId":"u2","traits":{"account":`+big+`}}`))
	wantStatus(t, r2, http.StatusOK)

	events := f.h.sourceEvents(t, "development", f.src.GetId())
	var order, identify = events[1], events[0] // newest first
	wantDigits := structpb.NewStringValue(big)
	for name, got := range map[string]*structpb.Value{
		"data.amount":             order.GetData().GetFields()["amount"],
		"data.nested.id":          field(order.GetData(), "nested", "id"),
		"event.properties.amount": field(order.GetEvent(), "properties", "amount"),
		"traits.account":          identify.GetTraits().GetFields()["account"],
		"event.traits.account":    field(identify.GetEvent(), "traits", "account"),
		"user.properties.account": f.user(t, "development", "u2").GetProperties().GetFields()["account"],
		"run.data.amount":         f.run(t, "development", trgActions(order)[0].GetWorkflowRunId()).GetData().GetFields()["amount"],
		"run.data.nested.id":      field(f.run(t, "development", trgActions(order)[0].GetWorkflowRunId()).GetData(), "nested", "id"),
	} {
		if !proto.Equal(got, wantDigits) {
			t.Errorf("%s = %v, want the digits %s", name, got, big)
		}
	}
	if got := order.GetData().GetFields()["total"]; !proto.Equal(got, structpb.NewNumberValue(19.99)) {
		t.Errorf("data.total = %v, want the number 19.99", got)
	}
}
