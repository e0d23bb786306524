package natsstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The oldest nats-server hark accepts: 2.12 brought atomic batch publish (ADR-50) and made
// per-message TTL (ADR-43, 2.11) usable inside such batches.
const (
	minMajor = 2
	minMinor = 12
)

// DefaultReplicas is the replica count of the streams hark creates. Three replicas keep a stream
// writable, and every acknowledged write safe, while one server is down.
const DefaultReplicas = 3

// DefaultTimeout bounds a request whose context has no deadline. JetStream answers in
// milliseconds; a stream leader election takes a few seconds, and a commit that waits longer is
// better reported as uncertain than left hanging.
const DefaultTimeout = 5 * time.Second

// Reconnect backoff: the first retry after reconnectMin, doubling to reconnectMax, with jitter so
// that many hark nodes do not reconnect in lockstep after a server restart.
const (
	reconnectMin = 100 * time.Millisecond
	reconnectMax = 5 * time.Second
)

// Options says how to reach the NATS cluster.
type Options struct {
	// URLs are the servers to connect to (nats://host:port); more are discovered from the cluster.
	URLs []string
	// CredsFile is a NATS credentials file (JWT and nkey seed); empty means none.
	CredsFile string
	// TLSCAFile is a PEM file of CAs to verify the servers with; empty means the system roots
	// (and TLS only if a URL is tls://).
	TLSCAFile string
	// Replicas is the replica count for the streams EnsureStream creates, and the minimum it
	// accepts on existing ones. Zero means DefaultReplicas.
	Replicas int
	// Timeout bounds requests whose context has no deadline; zero means DefaultTimeout.
	Timeout time.Duration
	// Logger receives connection events (disconnects, reconnects). Nil means slog.Default().
	Logger *slog.Logger
}

// Conn is a connection to a JetStream cluster. It reconnects by itself, forever, with backoff:
// a hark node outlives a NATS server restart without being restarted. It is safe for concurrent
// use; one Conn per process is the intended use.
type Conn struct {
	nc       *nats.Conn
	js       jetstream.JetStream
	replicas int
	timeout  time.Duration
	log      *slog.Logger
}

// ParseURL splits a --store value into server URLs. It accepts the scheme on every server
// ("nats://h1:4222,nats://h2:4222") or once ("nats://h1:4222,h2:4222", "nats://a,b,c"); a host
// without a port gets 4222. Schemes nats and tls are accepted.
func ParseURL(s string) ([]string, error) {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok || (scheme != "nats" && scheme != "tls") {
		return nil, fmt.Errorf("parse nats url %q: want nats://host:port[,host:port…]", s)
	}
	var urls []string
	for part := range strings.SplitSeq(rest, ",") {
		part = strings.TrimSpace(part)
		if sch, r, ok := strings.Cut(part, "://"); ok {
			if sch != "nats" && sch != "tls" {
				return nil, fmt.Errorf("parse nats url %q: scheme %q", s, sch)
			}
			part = r
		}
		if part == "" {
			return nil, fmt.Errorf("parse nats url %q: empty server", s)
		}
		u, err := url.Parse(scheme + "://" + part)
		if err != nil || u.Host == "" || (u.Path != "" && u.Path != "/") {
			return nil, fmt.Errorf("parse nats url %q: bad server %q", s, part)
		}
		if u.Port() == "" {
			u.Host += ":4222"
		} else if p, err := strconv.Atoi(u.Port()); err != nil || p < 1 || p > 65535 {
			return nil, fmt.Errorf("parse nats url %q: bad port in %q", s, part)
		}
		u.Path = ""
		urls = append(urls, u.String())
	}
	return urls, nil
}

// Connect connects to the cluster and checks that hark can work with it: the server is
// nats-server 2.12 or newer (else *ServerTooOldError) and JetStream is enabled for the account
// (else an error that wraps ErrNoJetStream). The initial connection must succeed; after that the
// Conn reconnects forever. ctx bounds the checks.
func Connect(ctx context.Context, o Options) (*Conn, error) {
	if len(o.URLs) == 0 {
		return nil, errors.New("connect to nats: no server URLs")
	}
	c := &Conn{
		replicas: cmp.Or(o.Replicas, DefaultReplicas),
		timeout:  cmp.Or(o.Timeout, DefaultTimeout),
		log:      cmp.Or(o.Logger, slog.Default()),
	}
	opts := []nats.Option{
		nats.Name("hark"),
		nats.MaxReconnects(-1),
		nats.CustomReconnectDelay(reconnectDelay),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			if err != nil { // nil: our own Close
				c.log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			// A reconnect may land on another server, possibly an older one during a rolling
			// downgrade: say so loudly, since batches will then fail.
			if err := checkVersion(nc.ConnectedServerVersion(), nc.ConnectedUrlRedacted()); err != nil {
				c.log.Error("nats reconnected to an unsupported server", "err", err)
				return
			}
			c.log.Info("nats reconnected", "url", nc.ConnectedUrlRedacted())
		}),
	}
	if o.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(o.CredsFile))
	}
	if o.TLSCAFile != "" {
		opts = append(opts, nats.RootCAs(o.TLSCAFile))
	}
	nc, err := nats.Connect(strings.Join(o.URLs, ","), opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to nats %s: %w", redact(o.URLs), err)
	}
	at := nc.ConnectedUrlRedacted()
	if err := checkVersion(nc.ConnectedServerVersion(), at); err != nil {
		nc.Close()
		return nil, err
	}
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(c.timeout))
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("connect to nats: %w", err)
	}
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	if _, err := js.AccountInfo(ctx); err != nil {
		nc.Close()
		if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) {
			return nil, fmt.Errorf("%w on %s: start nats-server with -js (or enable JetStream for the account)", ErrNoJetStream, at)
		}
		return nil, fmt.Errorf("connect to nats: read JetStream account info: %w", err)
	}
	c.nc, c.js = nc, js
	return c, nil
}

// redact joins urls for an error message, with any user and password replaced: error messages
// reach logs.
func redact(urls []string) string {
	out := make([]string, len(urls))
	for i, s := range urls {
		if u, err := url.Parse(s); err == nil && u.User != nil {
			u.User = url.User("redacted")
			s = u.String()
		}
		out[i] = s
	}
	return strings.Join(out, ",")
}

// reconnectDelay is the backoff between reconnect attempts: exponential from reconnectMin to
// reconnectMax, each with up to 50% jitter.
func reconnectDelay(attempts int) time.Duration {
	d := reconnectMin << min(max(attempts-1, 0), 16)
	d = min(d, reconnectMax)
	return d/2 + rand.N(d/2+1)
}

// checkVersion returns a *ServerTooOldError unless version (major.minor.patch, optionally with a
// "-suffix") is at least minMajor.minMinor. A version that does not parse is refused too: it is
// not a nats-server hark knows.
func checkVersion(version, at string) error {
	major, minor, ok := parseVersion(version)
	if !ok || major < minMajor || (major == minMajor && minor < minMinor) {
		return &ServerTooOldError{Version: cmp.Or(version, "(unknown version)"), URL: at}
	}
	return nil
}

// parseVersion reads major and minor from "2.12.1", "v2.12.1" or "2.13.0-RC.1". A pre-release
// counts as its release: 2.12.0-RC.1 is accepted as 2.12.
func parseVersion(v string) (major, minor int, ok bool) {
	v = strings.TrimPrefix(v, "v")
	v, _, _ = strings.Cut(v, "-")
	parts := strings.Split(v, ".")
	if len(parts) < 2 {
		return 0, 0, false
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil || major < 0 || minor < 0 {
		return 0, 0, false
	}
	return major, minor, true
}

// ErrNotConnected is a request not sent: the connection to the cluster is
// lost and did not come back within reconnectWait.
var ErrNotConnected = errors.New("not connected to the NATS cluster")

// reconnectWait is how long a request waits for a lost connection: a
// client whose server went away moves to another in milliseconds.
const reconnectWait = time.Second

// connected returns nil once the connection is up, waiting up to
// reconnectWait while it is reconnecting, else ErrNotConnected.
func (c *Conn) connected(ctx context.Context) error {
	deadline := time.Now().Add(reconnectWait)
	for !c.nc.IsConnected() {
		if c.nc.IsClosed() || time.Now().After(deadline) {
			return ErrNotConnected
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}

// withTimeout gives ctx the Conn's default timeout unless it already has a deadline.
func (c *Conn) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, c.timeout)
}

// JetStream returns the JetStream context, for the layers above that use KV buckets and
// consumers directly.
func (c *Conn) JetStream() jetstream.JetStream { return c.js }

// NATS returns the underlying connection.
func (c *Conn) NATS() *nats.Conn { return c.nc }

// Close closes the connection. Commits in flight fail (with an UncertainError if their commit
// message was sent).
func (c *Conn) Close() { c.nc.Close() }
