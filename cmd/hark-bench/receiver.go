package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// receiver is the webhook destination of --destination webhook: a server in
// this process that verifies every delivery's Standard Webhooks signature
// with the official library, as a receiver should, and answers 204.
type receiver struct {
	url  string
	srv  *http.Server
	wh   atomic.Pointer[standardwebhooks.Webhook]
	ok   atomic.Int64
	bad  atomic.Int64
	once sync.Once
}

func startReceiver() (*receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &receiver{url: "http://" + ln.Addr().String() + "/hark"}
	r.srv = &http.Server{Handler: http.HandlerFunc(r.serve), ReadHeaderTimeout: 10 * time.Second}
	go r.srv.Serve(ln)
	return r, nil
}

func (r *receiver) setSecret(secret string) error {
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		return err
	}
	r.wh.Store(wh)
	return nil
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	wh := r.wh.Load()
	if err != nil || wh == nil || wh.Verify(body, req.Header) != nil {
		r.bad.Add(1)
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	r.ok.Add(1)
	w.WriteHeader(http.StatusNoContent)
}

// reset starts counting anew, at the start of a measurement.
func (r *receiver) reset() { r.ok.Store(0); r.bad.Store(0) }

func (r *receiver) result(seconds float64) *outboxResult {
	out := &outboxResult{Delivered: r.ok.Load(), BadSignatures: r.bad.Load()}
	if seconds > 0 {
		out.DeliveredSec = float64(out.Delivered) / seconds
	}
	return out
}

func (r *receiver) stop() { r.once.Do(func() { r.srv.Close() }) }

// outboxPending reads hark_outbox_pending from the server's /metrics; -1
// when it cannot.
func outboxPending(ctx context.Context, hc *http.Client, o options) float64 {
	return scrape(ctx, hc, o.url, o.token, "hark_outbox_pending")[0]
}
