package server_test

import (
	"bytes"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/api/httpbody"

	harkv1 "github.com/harkhq/hark/gen/hark/v1"
	"github.com/harkhq/hark/gen/hark/v1/harkv1connect"
)

// listRefusals reads a source environment's refused-delivery log over REST.
func (h *harness) listRefusals(t *testing.T, env, sourceID string, q url.Values) []*harkv1.Refusal {
	t.Helper()
	r := h.rest(t, http.MethodGet, "/v1/environments/"+env+"/sources/"+sourceID+"/refusals?"+q.Encode(), "")
	wantStatus(t, r, http.StatusOK)
	return decode(t, r, &harkv1.ListRefusalsResponse{}).GetRefusals()
}

// TestRefusedDeliveryLog: every delivery a webhook refuses — a tampered
// Stripe event (401), a body over the limit refused before it is read
// (400), a bad signature over Connect (401), a source environment not set
// up yet (503) — is in its source environment's refused-delivery log,
// newest first, with status, reason and size and without the body; the
// log of another source environment stays empty; accepted deliveries are
// not in it; an unknown source is 404.
func TestRefusedDeliveryLog(t *testing.T) {
	t.Parallel()
	h := startServer(t)
	src, ingest := hsSource(t, h, "Stripe", `"preset":"stripe","signing_secret":"`+hsStripeSecret+`"`)
	other, _ := hsSource(t, h, "Other", `"preset":"none"`)
	if got := h.listRefusals(t, "development", src.GetId(), nil); len(got) != 0 {
		t.Fatalf("a new source's refusal log = %v, want it empty", got)
	}

	// Accepted: not a refusal.
	r, _ := h.deliver(t, ingest, []byte(hsStripeEvent), "Stripe-Signature", hsStripeSignature(hsStripeSecret, hsStripeEvent))
	wantStatus(t, r, http.StatusOK)

	tampered := strings.Replace(hsStripeEvent, "jennyrosen", "mallory", 1)
	r, _ = h.deliver(t, ingest, []byte(tampered), "Stripe-Signature", hsStripeSignature(hsStripeSecret, hsStripeEvent))
	wantStatus(t, r, http.StatusUnauthorized)

	big := bytes.Repeat([]byte("x"), 5<<20)
	r, _ = h.deliver(t, ingest, big)
	wantStatus(t, r, http.StatusBadRequest)

	c := harkv1connect.NewIngestServiceClient(h.http, h.base)
	req := connect.NewRequest(&harkv1.ReceiveRequest{Token: ingestToken(t, ingest), Body: &httpbody.HttpBody{ContentType: "application/json", Data: []byte(tampered)}})
	req.Header().Set("Stripe-Signature", "t=1,v1=00")
	if _, err := c.Receive(ctxFor(t), req); connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Fatalf("Connect delivery with a bad signature: %v, want unauthenticated", err)
	}

	// A source environment whose required preset is unset answers 503.
	unset := h.createSourceOfType(t, "Unset", "http")
	r, _ = h.deliver(t, devURL(t, unset), []byte(`{}`))
	wantStatus(t, r, http.StatusServiceUnavailable)

	got := h.listRefusals(t, "development", src.GetId(), nil)
	type row struct {
		status int32
		size   int64
		reason string
	}
	want := []row{
		{http.StatusUnauthorized, int64(len(tampered)), "Stripe-Signature"},
		{http.StatusBadRequest, int64(len(big)), "larger than"},
		{http.StatusUnauthorized, int64(len(tampered)), "Stripe-Signature"},
	}
	if len(got) != len(want) {
		t.Fatalf("refusal log = %v, want %d refusals", got, len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.GetStatusCode() != w.status || g.GetSizeBytes() != w.size || !strings.Contains(g.GetReason(), w.reason) || g.GetTime() == nil {
			t.Errorf("refusal %d = %v, want status %d, size %d and a reason with %q", i, g, w.status, w.size, w.reason)
		}
		if strings.Contains(g.GetReason(), "mallory") {
			t.Errorf("refusal %d shows the body: %v", i, g)
		}
	}
	if i := slices.IndexFunc(got, func(r *harkv1.Refusal) bool { return got[0].GetTime().AsTime().Before(r.GetTime().AsTime()) }); i >= 0 {
		t.Errorf("refusal log is not newest first: %v", got)
	}
	if got := h.listRefusals(t, "development", unset.GetId(), nil); len(got) != 1 || got[0].GetStatusCode() != http.StatusServiceUnavailable || !strings.Contains(got[0].GetReason(), "preset") {
		t.Errorf("the unset source's refusal log = %v, want its 503 naming preset", got)
	}
	if got := h.listRefusals(t, "development", other.GetId(), nil); len(got) != 0 {
		t.Errorf("another source's refusal log = %v, want it empty", got)
	}
	if got := h.listRefusals(t, "development", src.GetId(), url.Values{"pageSize": {"1"}}); len(got) != 1 || got[0].GetStatusCode() != http.StatusUnauthorized {
		t.Errorf("pageSize 1 = %v, want the newest refusal", got)
	}
	wantStatus(t, h.rest(t, http.MethodGet, "/v1/environments/development/sources/src_nosuchsource/refusals", ""), http.StatusNotFound)
	wantStatus(t, h.rest(t, http.MethodGet, "/v1/environments/development/sources/"+src.GetId()+"/refusals?pageSize=-1", ""), http.StatusBadRequest)

	// Refusals come and go with the source: a deleted source's log is gone.
	wantStatus(t, h.rest(t, http.MethodDelete, "/v1/sources/"+src.GetId(), ""), http.StatusOK)
	wantStatus(t, h.rest(t, http.MethodGet, "/v1/environments/development/sources/"+src.GetId()+"/refusals", ""), http.StatusNotFound)
}

// TestRefusedDeliveryLogIsBounded: a flood of refused deliveries keeps the
// newest 1,000, so it costs a fixed amount of memory.
func TestRefusedDeliveryLogIsBounded(t *testing.T) {
	t.Parallel()
	h := startServer(t)
	unset := h.createSourceOfType(t, "Unset", "http")
	ingest := devURL(t, unset)
	const sent, kept = 1010, 1000
	for i := range sent {
		r, _ := h.deliver(t, ingest, bytes.Repeat([]byte(" "), i+1))
		wantStatus(t, r, http.StatusServiceUnavailable)
	}
	got := h.listRefusals(t, "development", unset.GetId(), url.Values{"pageSize": {"1000"}})
	if len(got) != kept {
		t.Fatalf("the log holds %d refusals after %d, want %d", len(got), sent, kept)
	}
	// Newest first: the last delivery (sent bytes) down to the 11th.
	if first, last := got[0].GetSizeBytes(), got[kept-1].GetSizeBytes(); first != sent || last != sent-kept+1 {
		t.Fatalf("the log runs from a %d-byte to a %d-byte delivery, want %d to %d", first, last, sent, sent-kept+1)
	}
}
