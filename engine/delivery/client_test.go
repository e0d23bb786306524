package delivery_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/harkhq/hark/engine/delivery"
	"google.golang.org/protobuf/proto"
)

func secretTarget(url string) delivery.Target {
	return webhookTarget(url, delivery.Secrets{Current: delivery.NewSecret()})
}

func TestRedirectIsNotFollowed(t *testing.T) {
	t.Parallel()
	elsewhere := newReceiver(t, nil)
	moved := newReceiver(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		http.Redirect(w, r, elsewhere.srv.URL+"/new", http.StatusTemporaryRedirect)
	})
	c := newClient(t, delivery.Options{})
	a := send(t, c, secretTarget(moved.srv.URL), createdMessage(t))
	if a.Succeeded || a.StatusCode != http.StatusTemporaryRedirect || a.Permanent {
		t.Fatalf("attempt = %+v, want a failed 307", a)
	}
	var serr *delivery.StatusError
	if !errors.As(a.Err, &serr) || !strings.Contains(a.Error, "redirects are not followed") || !strings.Contains(a.Error, elsewhere.srv.URL+"/new") {
		t.Fatalf("error = %q, want it to say the redirect was not followed and where it pointed", a.Error)
	}
	if n := len(elsewhere.requests()); n != 0 {
		t.Fatalf("the redirect target got %d requests, want none", n)
	}
}

func TestAnswerOutcomes(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		status     int
		retryAfter string
		succeeded  bool
		disable    bool
		wantRetry  time.Duration
		errText    string
	}{
		"200":                         {status: 200, succeeded: true},
		"202":                         {status: 202, succeeded: true},
		"204":                         {status: 204, succeeded: true},
		"400":                         {status: 400, errText: "receiver answered 400 Bad Request"},
		"500":                         {status: 500, errText: "receiver answered 500 Internal Server Error"},
		"410 disables":                {status: 410, disable: true, errText: "410 Gone: the destination is disabled"},
		"429 with seconds":            {status: 429, retryAfter: "120", wantRetry: 2 * time.Minute, errText: "429 Too Many Requests"},
		"503 with seconds":            {status: 503, retryAfter: "7", wantRetry: 7 * time.Second},
		"429 without Retry-After":     {status: 429},
		"429 with garbage":            {status: 429, retryAfter: "soon"},
		"429 with a huge value":       {status: 429, retryAfter: "99999999999999999999", wantRetry: delivery.MaxRetryAfter},
		"500 ignores Retry-After":     {status: 500, retryAfter: "60"},
		"503 with a date in the past": {status: 503, retryAfter: "Wed, 21 Oct 2015 07:28:00 GMT"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			rc := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, _ []byte) {
				if tc.retryAfter != "" {
					w.Header().Set("Retry-After", tc.retryAfter)
				}
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte("answer " + name))
			})
			a := send(t, newClient(t, delivery.Options{}), secretTarget(rc.srv.URL), createdMessage(t))
			if a.StatusCode != tc.status || a.Succeeded != tc.succeeded || a.Disable != tc.disable || a.RetryAfter != tc.wantRetry || a.Permanent {
				t.Fatalf("attempt = %+v, want status %d succeeded %v disable %v retry-after %v", a, tc.status, tc.succeeded, tc.disable, tc.wantRetry)
			}
			wantBody := "answer " + name
			if tc.status == http.StatusNoContent {
				wantBody = "" // a 204 has no body
			}
			if a.Response != wantBody {
				t.Fatalf("response = %q, want the receiver's body", a.Response)
			}
			if tc.succeeded != (a.Error == "" && a.Err == nil) {
				t.Fatalf("error = %q (%v) for succeeded=%v", a.Error, a.Err, tc.succeeded)
			}
			if !strings.Contains(a.Error, tc.errText) {
				t.Fatalf("error = %q, want %q in it", a.Error, tc.errText)
			}
			if a.StartedAt.IsZero() || a.Duration <= 0 {
				t.Fatalf("started %v, took %v: want both set", a.StartedAt, a.Duration)
			}
		})
	}
}

func TestRetryAfterHTTPDate(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		w.Header().Set("Retry-After", time.Now().Add(90*time.Second).UTC().Format(http.TimeFormat))
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	a := send(t, newClient(t, delivery.Options{}), secretTarget(rc.srv.URL), createdMessage(t))
	// The date has whole seconds, so the wait is 89 to 90 seconds.
	if a.RetryAfter < 88*time.Second || a.RetryAfter > 90*time.Second {
		t.Fatalf("RetryAfter = %v, want about 90s from the HTTP date", a.RetryAfter)
	}
}

func TestResponseBodyKeepsFirstKiB(t *testing.T) {
	t.Parallel()
	// 1,023 ASCII bytes, then a 3-byte rune cut by the 1 KiB limit, then
	// 100 KiB more than the client will drain.
	answer := strings.Repeat("a", 1023) + "€" + strings.Repeat("b", 100<<10)
	rc := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(answer))
	})
	binary := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		_, _ = w.Write([]byte{0xff, 0xfe, 'o', 'k'})
	})
	c := newClient(t, delivery.Options{})
	a := send(t, c, secretTarget(rc.srv.URL), createdMessage(t))
	if !utf8.ValidString(a.Response) || !strings.HasPrefix(a.Response, strings.Repeat("a", 1023)) || strings.Contains(a.Response, "b") {
		t.Fatalf("response kept %d bytes (%q...), want the first 1 KiB as valid UTF-8", len(a.Response), a.Response[:min(20, len(a.Response))])
	}
	if _, err := proto.Marshal(a.Proto()); err != nil {
		t.Fatalf("the kept answer does not fit the proto: %v", err)
	}
	b := send(t, c, secretTarget(binary.srv.URL), createdMessage(t))
	if !b.Succeeded || !utf8.ValidString(b.Response) || !strings.HasSuffix(b.Response, "ok") {
		t.Fatalf("binary answer kept as %q, want valid UTF-8", b.Response)
	}
}

func TestSlowReceiverTimesOut(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	t.Cleanup(func() { close(release) }) // runs before the server's Close
	c := newClient(t, delivery.Options{Timeout: 200 * time.Millisecond})
	a := send(t, c, secretTarget(rc.srv.URL), createdMessage(t))
	if a.Succeeded || a.StatusCode != 0 || a.Permanent || !errors.Is(a.Err, delivery.ErrTimeout) {
		t.Fatalf("attempt = %+v, want a timeout", a)
	}
	if a.Error != "timeout: no answer within 200ms" {
		t.Fatalf("error = %q", a.Error)
	}
}

func TestSlowAnswerBodyIsCutAtTheTimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("started"))
		w.(http.Flusher).Flush()
		select { // the rest of the answer never comes
		case <-r.Context().Done():
		case <-release:
		}
	})
	t.Cleanup(func() { close(release) })
	c := newClient(t, delivery.Options{Timeout: 200 * time.Millisecond})
	a := send(t, c, secretTarget(rc.srv.URL), createdMessage(t))
	// The status line came: the receiver answered 200, so the delivery is
	// done even though its body was cut.
	if !a.Succeeded || a.StatusCode != http.StatusOK || a.Response != "started" {
		t.Fatalf("attempt = %+v, want the 200 with the part of the body that came", a)
	}
}

func TestConnectionResetIsAFailedAttempt(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	done := make(chan struct{})
	go func() { // owned by this test: ends when the listener closes
		defer close(done)
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, 512)
			_, _ = conn.Read(buf) // the request has started
			_ = conn.(*net.TCPConn).SetLinger(0)
			_ = conn.Close() // with linger 0: an RST, not a FIN
		}
	}()
	t.Cleanup(func() { _ = ln.Close(); <-done })
	c := newClient(t, delivery.Options{})
	a := send(t, c, secretTarget("http://"+ln.Addr().String()+"/"), createdMessage(t))
	if a.Succeeded || a.StatusCode != 0 || a.Permanent || a.Err == nil {
		t.Fatalf("attempt = %+v, want a failed attempt without status", a)
	}
	if !strings.Contains(a.Error, "connection reset") && !strings.Contains(a.Error, "EOF") && !strings.Contains(a.Error, "broken pipe") {
		t.Fatalf("error = %q, want the reset", a.Error)
	}
	if strings.Contains(a.Error, "Post ") {
		t.Fatalf("error = %q, want it without the URL wrapper", a.Error)
	}
}

func TestCancelledContextInterruptsTheAttempt(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		arrived <- struct{}{}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	t.Cleanup(func() { close(release) })
	c := newClient(t, delivery.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	go func() { // owned by this test: ends once the request arrived
		<-arrived
		cancel()
	}()
	a := c.Send(ctx, secretTarget(rc.srv.URL), createdMessage(t))
	if a.Succeeded || !errors.Is(a.Err, context.Canceled) || errors.Is(a.Err, delivery.ErrTimeout) {
		t.Fatalf("attempt = %+v, want it interrupted by the cancellation", a)
	}
}

func TestGuardRefusesLoopbackWithoutAllowPrivate(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, nil)
	_, port, err := net.SplitHostPort(rc.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	guarded := delivery.NewClient(delivery.Options{})
	t.Cleanup(guarded.Close)
	for _, url := range []string{
		rc.srv.URL,                          // 127.0.0.1
		"http://localhost:" + port,          // a name that resolves to loopback
		"http://[::ffff:127.0.0.1]:" + port, // its IPv4-mapped form
	} {
		a := send(t, guarded, secretTarget(url), createdMessage(t))
		var blocked *delivery.BlockedAddressError
		if a.Succeeded || !errors.As(a.Err, &blocked) || blocked.Kind != "loopback" {
			t.Fatalf("%s: attempt = %+v (%T), want a *BlockedAddressError for loopback", url, a, a.Err)
		}
		if !strings.Contains(a.Error, "--allow-private-destinations") {
			t.Fatalf("%s: error = %q, want it to name the flag", url, a.Error)
		}
	}
	if n := len(rc.requests()); n != 0 {
		t.Fatalf("the receiver got %d requests through the guard", n)
	}
	// The same receiver is reachable with AllowPrivate.
	if a := send(t, newClient(t, delivery.Options{}), secretTarget(rc.srv.URL), createdMessage(t)); !a.Succeeded {
		t.Fatalf("with AllowPrivate: %+v", a)
	}
}

func TestClientDefaults(t *testing.T) {
	t.Parallel()
	c := delivery.NewClient(delivery.Options{})
	defer c.Close()
	if c.Timeout() != 15*time.Second || delivery.DefaultTimeout != 15*time.Second {
		t.Fatalf("default timeout = %v, want 15s (DESIGN §8)", c.Timeout())
	}
	var ua string
	rc := newReceiver(t, func(_ http.ResponseWriter, r *http.Request, _ []byte) { ua = r.UserAgent() })
	if a := send(t, newClient(t, delivery.Options{}), secretTarget(rc.srv.URL), createdMessage(t)); !a.Succeeded || ua != "hark" {
		t.Fatalf("User-Agent = %q (%+v), want hark", ua, a)
	}
}

func TestAttemptProto(t *testing.T) {
	t.Parallel()
	started := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	p := delivery.Attempt{StartedAt: started, StatusCode: 503, Duration: 1500 * time.Millisecond, Error: "receiver answered 503", Response: "busy"}.Proto()
	if !p.GetStartedAt().AsTime().Equal(started) || p.GetStatusCode() != 503 || p.GetDuration().AsDuration() != 1500*time.Millisecond ||
		p.GetError() != "receiver answered 503" || p.GetResponseBody() != "busy" {
		t.Fatalf("Proto = %v", p)
	}
}

func TestSendRefusesMalformedMessages(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, nil)
	c := newClient(t, delivery.Options{})
	good := createdMessage(t)
	for name, tc := range map[string]struct {
		target delivery.Target
		msg    delivery.Message
	}{
		"no id":              {secretTarget(rc.srv.URL), delivery.Message{EventType: delivery.EventRunCreated, Run: good.Run}},
		"no run":             {secretTarget(rc.srv.URL), delivery.Message{ID: "dlv", EventType: delivery.EventRunCreated}},
		"unknown event type": {secretTarget(rc.srv.URL), delivery.Message{ID: "dlv", EventType: "workflow_run.updated", Run: good.Run}},
		"unknown type":       {delivery.Target{Type: "email", URL: rc.srv.URL}, good},
		"zero target":        {delivery.Target{}, good},
	} {
		a := send(t, c, tc.target, tc.msg)
		if a.Succeeded || !a.Permanent || a.Error == "" || a.StartedAt.IsZero() {
			t.Errorf("%s: attempt = %+v, want a permanent failure", name, a)
		}
	}
	if n := len(rc.requests()); n != 0 {
		t.Fatalf("receiver got %d requests, want none", n)
	}
}

// TestClientReusesConnections checks the drain bound: an answer within it
// leaves the connection open for the next attempt.
func TestClientReusesConnections(t *testing.T) {
	t.Parallel()
	conns := make(chan string, 10)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		conns <- r.RemoteAddr
		_, _ = w.Write([]byte(strings.Repeat("z", 8<<10)))
	}))
	srv.Start()
	t.Cleanup(srv.Close)
	c := newClient(t, delivery.Options{})
	for range 3 {
		if a := send(t, c, secretTarget(srv.URL), createdMessage(t)); !a.Succeeded {
			t.Fatalf("attempt = %+v", a)
		}
	}
	first := <-conns
	if second, third := <-conns, <-conns; second != first || third != first {
		t.Fatalf("connections %s, %s, %s: want one reused", first, second, third)
	}
}
