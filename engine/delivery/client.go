package delivery

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	harkv1 "github.com/harkhq/hark/gen/hark/v1"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

const (
	// DefaultTimeout bounds one attempt, from dialling to the end of the
	// answer (DESIGN §8: 15 s). A receiver that needs longer should answer
	// 2xx first and work after.
	DefaultTimeout = 15 * time.Second
	// MaxResponseKept is how much of an answer an Attempt keeps: enough for
	// an error message, not a document.
	MaxResponseKept = 1024
	// maxResponseDrained is how much more of an answer is read and
	// discarded so the connection can be reused; past it the connection is
	// closed instead, so a receiver cannot make hark read without end.
	maxResponseDrained = 64 << 10
	// maxResponseHeaderBytes bounds an answer's headers.
	maxResponseHeaderBytes = 64 << 10
)

// ErrTimeout is what the error of an attempt the receiver did not answer in
// time matches.
var ErrTimeout = errors.New("timeout")

// StatusError is an attempt the receiver answered with a status other than
// 2xx.
type StatusError struct {
	// Code is the HTTP status.
	Code int
	// Location is a redirect's target, for the message.
	Location string
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("receiver answered %d %s", e.Code, http.StatusText(e.Code))
	switch {
	case e.Code == http.StatusGone:
		msg += ": the destination is disabled"
	case e.Code >= 300 && e.Code < 400:
		msg += ": redirects are not followed"
		if e.Location != "" {
			msg += "; update the destination's URL (Location: " + truncate(e.Location, 200) + ")"
		}
	}
	return msg
}

// Attempt is the outcome of one try at sending a delivery, as it is kept
// with the delivery (see Proto).
type Attempt struct {
	// StartedAt is when the attempt started.
	StartedAt time.Time
	// StatusCode is the receiver's HTTP status; 0 when there was none.
	StatusCode int
	// Duration is how long the attempt took.
	Duration time.Duration
	// Error says why it failed; empty when it succeeded.
	Error string
	// Err is the failure as a Go error, for errors.Is and errors.As
	// (*StatusError, *BlockedAddressError, ErrTimeout, ErrPingUnsupported,
	// or the context's error when ctx was cancelled); nil on success.
	Err error
	// Response is the first MaxResponseKept bytes of the answer, invalid
	// UTF-8 replaced so it fits a proto string.
	Response string
	// Succeeded is true when every request of the attempt was answered 2xx:
	// the delivery is done.
	Succeeded bool
	// Disable is true when the receiver answered 410 Gone: the destination
	// is to be disabled, as the Standard Webhooks spec asks.
	Disable bool
	// RetryAfter is the receiver's Retry-After hint on a 429 or 503; 0 when
	// it gave none. RetryDelay applies it.
	RetryAfter time.Duration
	// Permanent is true when nothing was sent because the request cannot be
	// built (a missing setting, a cancelled run without a cancellation key, a
	// ping a type does not support): retrying the same delivery cannot help
	// until the destination changes.
	Permanent bool
}

// Proto returns the attempt as the API shows it.
func (a Attempt) Proto() *harkv1.DeliveryAttempt {
	return &harkv1.DeliveryAttempt{
		StartedAt:    timestamppb.New(a.StartedAt),
		StatusCode:   int32(a.StatusCode),
		Duration:     durationpb.New(a.Duration),
		Error:        a.Error,
		ResponseBody: a.Response,
	}
}

// Options configure a Client. The zero value is the production setting.
type Options struct {
	// Timeout bounds one attempt; 0 means DefaultTimeout.
	Timeout time.Duration
	// AllowPrivate turns the SSRF guard off, so destinations may reach
	// loopback, private and link-local addresses
	// (`--allow-private-destinations`): for development and for receivers on
	// the same network.
	AllowPrivate bool
	// UserAgent is sent with every request; "" means "hark".
	UserAgent string
}

// Client sends deliveries. It keeps connections to receivers open between
// attempts and is safe for concurrent use; Close releases them.
type Client struct {
	http      *http.Client
	transport *http.Transport
	timeout   time.Duration
	userAgent string
}

// NewClient returns a Client with its own transport: no environment proxy
// (a proxy would dial past the SSRF guard), redirects returned rather than
// followed, and the guard in the dialer unless o.AllowPrivate.
func NewClient(o Options) *Client {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.UserAgent == "" {
		o.UserAgent = "hark"
	}
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	if !o.AllowPrivate {
		dialer.Control = guardControl
	}
	transport := &http.Transport{
		Proxy:                  nil,
		DialContext:            dialer.DialContext,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           100,
		MaxIdleConnsPerHost:    16, // at least the engine's senders per destination: a connection per attempt costs a dial
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    10 * time.Second,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: maxResponseHeaderBytes,
	}
	return &Client{
		http: &http.Client{
			Transport: transport,
			// A 3xx is the receiver's answer, and a failed attempt: following
			// it would send a signed body somewhere the user never saved (and
			// the guard would have to judge a target chosen by the receiver).
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		transport: transport,
		timeout:   o.Timeout,
		userAgent: o.UserAgent,
	}
}

// Timeout returns the time limit of one attempt.
func (c *Client) Timeout() time.Duration { return c.timeout }

// Close closes the idle connections the client keeps. Sends still running
// finish; the client remains usable.
func (c *Client) Close() { c.transport.CloseIdleConnections() }

// outbound is one HTTP request of an attempt. A type's builder makes all of
// them before any is sent, so a delivery that cannot be built sends nothing.
type outbound struct {
	url    string
	header http.Header
	body   []byte
}

// Send makes one attempt at delivering m to t and returns its outcome. It
// never returns an error: every failure is an Attempt that says what went
// wrong, since the caller records it either way. The attempt ends after
// Options.Timeout, or when ctx is done (Err then wraps ctx.Err(); a worker
// that is stopping may leave such an attempt unrecorded and the delivery
// still due).
func (c *Client) Send(ctx context.Context, t Target, m Message) Attempt {
	start := time.Now()
	a := Attempt{StartedAt: start}
	reqs, err := build(t, m, start)
	if err != nil {
		a.Permanent = true
		a.Err = err
		a.Error = err.Error()
		return a
	}
	attemptCtx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	// Every request is made before the first is sent, so one that cannot be
	// made (a URL Go refuses) sends nothing at all.
	httpReqs := make([]*http.Request, len(reqs))
	for i, r := range reqs {
		req, err := http.NewRequestWithContext(attemptCtx, http.MethodPost, r.url, bytes.NewReader(r.body))
		if err != nil {
			a.Permanent = true
			a.Err = fmt.Errorf("build request: %w", err)
			a.Error = a.Err.Error()
			return a
		}
		req.Header = r.header
		req.Header.Set("User-Agent", c.userAgent)
		httpReqs[i] = req
	}
	for _, req := range httpReqs {
		c.do(ctx, req, &a)
		if !a.Succeeded {
			break
		}
	}
	a.Duration = time.Since(start)
	return a
}

// build makes the requests of one attempt for t's type.
func build(t Target, m Message, now time.Time) ([]outbound, error) {
	if m.ID == "" {
		return nil, errors.New("delivery has no id")
	}
	switch m.EventType {
	case EventRunCreated, EventRunCancelled:
		if m.Run == nil {
			return nil, fmt.Errorf("%s delivery carries no run", m.EventType)
		}
	case EventPing:
	default:
		return nil, fmt.Errorf("unknown event type %q", m.EventType)
	}
	switch t.Type {
	case TypeWebhook:
		return buildWebhook(t, m, now)
	case TypeKnock:
		return buildKnock(t, m)
	case TypeSegment:
		return buildSegment(t, m, now)
	default:
		return nil, fmt.Errorf("unknown destination type %q", t.Type)
	}
}

// do sends one request and folds its outcome into a. parent is the caller's
// context, to tell a timeout from a cancellation.
func (c *Client) do(parent context.Context, req *http.Request, a *Attempt) {
	a.Succeeded = false
	resp, err := c.http.Do(req)
	if err != nil {
		a.StatusCode, a.Response, a.RetryAfter = 0, "", 0
		a.Err = c.transportError(parent, err)
		a.Error = a.Err.Error()
		return
	}
	kept, _ := io.ReadAll(io.LimitReader(resp.Body, MaxResponseKept))
	// A read error after the status line changes nothing: the receiver has
	// answered, and its status is what counts.
	_, _ = io.CopyN(io.Discard, resp.Body, maxResponseDrained)
	_ = resp.Body.Close()

	a.StatusCode = resp.StatusCode
	a.Response = strings.ToValidUTF8(string(kept), "\uFFFD")
	a.RetryAfter = 0
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		a.Succeeded = true
		a.Err = nil
		a.Error = ""
		return
	}
	serr := &StatusError{Code: resp.StatusCode}
	switch {
	case resp.StatusCode == http.StatusGone:
		a.Disable = true
	case resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode == http.StatusServiceUnavailable:
		a.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		serr.Location = resp.Header.Get("Location")
	}
	a.Err = serr
	a.Error = serr.Error()
}

// transportError turns a failed round trip into the attempt's error: the
// URL (already shown with the destination) is dropped, and a timeout says
// so plainly.
func (c *Client) transportError(parent context.Context, err error) error {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		err = ue.Err
	}
	if perr := parent.Err(); perr != nil {
		return fmt.Errorf("attempt interrupted: %w", perr)
	}
	var nerr net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &nerr) && nerr.Timeout()) {
		return fmt.Errorf("%w: no answer within %s", ErrTimeout, c.timeout)
	}
	return err
}

// parseRetryAfter reads a Retry-After value, delay-seconds or an HTTP date
// (RFC 9110 §10.2.3), as a wait from now; 0 when absent, malformed or past.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseUint(v, 10, 64); err == nil || errors.Is(err, strconv.ErrRange) {
		// Beyond MaxRetryAfter the value is capped anyway; clamping here
		// keeps huge numbers from overflowing a Duration.
		if err != nil || secs > uint64(MaxRetryAfter/time.Second) {
			return MaxRetryAfter
		}
		return time.Duration(secs) * time.Second
	}
	if at, err := http.ParseTime(v); err == nil {
		if d := at.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

// apiURL joins a destination's base URL (or the type's default) and an API
// path, keeping any path prefix the base has (a proxy in front of Knock).
func apiURL(base, def, path string) string {
	if base == "" {
		base = def
	}
	return strings.TrimRight(base, "/") + path
}
