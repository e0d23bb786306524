package server_test

import (
	"net/http"
	"strings"
	"testing"

	"connectrpc.com/connect"

	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// TestWatchSourceEventsRefusals: a live tail with include_refusals gets a
// tampered (401) delivery as a refused_delivery message when it is
// refused, then the next accepted event, in order; a tail without it, over
// Connect and over gRPC, gets the event only; asking for the refusals of an
// unknown source is a 404.
func TestWatchSourceEventsRefusals(t *testing.T) {
	t.Parallel()
	h := startServer(t)
	src, ingest := hsSource(t, h, "Stripe", `"preset":"stripe","signing_secret":"`+hsStripeSecret+`"`)
	ctx := ctxFor(t)
	open := func(include bool) *connect.ServerStreamForClient[harkv1.WatchSourceEventsResponse] {
		t.Helper()
		stream, err := h.events().WatchSourceEvents(ctx, connect.NewRequest(&harkv1.WatchSourceEventsRequest{
			Environment: "development", SourceId: src.GetId(), IncludeRefusals: include,
		}))
		if err != nil {
			t.Fatalf("WatchSourceEvents: %v", err)
		}
		t.Cleanup(func() { stream.Close() })
		_ = stream.ResponseHeader() // subscribed once the headers are in
		return stream
	}
	withRefusals, without := open(true), open(false)
	grpcStream, err := harkv1.NewEventServiceClient(h.grpcConn(t)).WatchSourceEvents(grpcCtx(t, h.admin()),
		&harkv1.WatchSourceEventsRequest{Environment: "development", IncludeRefusals: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := grpcStream.Header(); err != nil {
		t.Fatal(err)
	}

	tampered := strings.Replace(hsStripeEvent, "jennyrosen", "mallory", 1)
	r, _ := h.deliver(t, ingest, []byte(tampered), "Stripe-Signature", hsStripeSignature(hsStripeSecret, hsStripeEvent))
	wantStatus(t, r, http.StatusUnauthorized)
	r, _ = h.deliver(t, ingest, []byte(hsStripeEvent), "Stripe-Signature", hsStripeSignature(hsStripeSecret, hsStripeEvent))
	wantStatus(t, r, http.StatusOK)

	next := func(name string, stream *connect.ServerStreamForClient[harkv1.WatchSourceEventsResponse]) *harkv1.WatchSourceEventsResponse {
		t.Helper()
		if !stream.Receive() {
			t.Fatalf("%s: the tail ended: %v", name, stream.Err())
		}
		return stream.Msg()
	}
	wantRefusal := func(name string, msg *harkv1.WatchSourceEventsResponse) {
		t.Helper()
		rd := msg.GetRefusedDelivery()
		if rd == nil || msg.GetSourceEvent() != nil {
			t.Fatalf("%s: first message = %v, want the refused delivery", name, msg)
		}
		ref := rd.GetRefusal()
		if rd.GetSourceId() != src.GetId() || rd.GetEnvironment() != "development" || ref.GetStatusCode() != http.StatusUnauthorized ||
			ref.GetReason() == "" || ref.GetSizeBytes() != int64(len(tampered)) || ref.GetTime() == nil {
			t.Fatalf("%s: refused delivery = %v, want the 401 with its reason and size", name, rd)
		}
	}
	wantRefusal("include_refusals", next("include_refusals", withRefusals))
	if ev := next("include_refusals", withRefusals).GetSourceEvent(); ev == nil || ev.GetSourceId() != src.GetId() {
		t.Fatalf("include_refusals: second message is not the accepted event: %v", ev)
	}
	if msg := next("without", without); msg.GetSourceEvent() == nil {
		t.Fatalf("a tail without include_refusals got %v first, want the accepted event", msg)
	}
	gmsg, err := grpcStream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	wantRefusal("gRPC", gmsg)

	// The refusal is in the log too, the same.
	if got := h.listRefusals(t, "development", src.GetId(), nil); len(got) != 1 || got[0].GetStatusCode() != http.StatusUnauthorized {
		t.Fatalf("refusal log = %v, want the one 401", got)
	}

	stream, err := h.events().WatchSourceEvents(ctx, connect.NewRequest(&harkv1.WatchSourceEventsRequest{
		Environment: "development", SourceId: "src_unknown", IncludeRefusals: true,
	}))
	if err == nil {
		defer stream.Close()
		if stream.Receive() {
			t.Fatalf("a tail of an unknown source's refusals sent %v", stream.Msg())
		}
		err = stream.Err()
	}
	wantCode(t, err, connect.CodeNotFound)
}
