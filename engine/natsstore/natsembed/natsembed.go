// Package natsembed runs a NATS JetStream cluster inside the current process.
//
// It is the one home of the embedded cluster: `hark dev cluster` uses it to give a developer a
// three-node cluster without installing nats-server, and the natsstore tests use it to run
// against real servers instead of fakes. Every server listens on 127.0.0.1 only; nothing here is
// meant for production, where nats-server runs as its own process.
//
// Each server writes its JetStream data to its own directory under Config.Dir and runs with
// sync_interval: always (server option SyncAlways). hark acknowledges an ingest batch to its
// caller once JetStream has acknowledged the write, and an acknowledged write must survive a
// crash of the machine: with the default interval (2 minutes) a quorum of nodes can lose
// acknowledged messages on power loss, as Jepsen's analysis of NATS 2.12 showed. The same
// setting is required of an external cluster (see package natsstore).
package natsembed

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// DefaultServers is the number of servers Start runs when Config.Servers is zero: three is the
// smallest cluster that keeps an R3 stream writable while one server is down.
const DefaultServers = 3

// readyTimeout bounds how long Start and Restart wait for a server to accept connections and for
// JetStream to elect a meta leader. Elections take a few seconds on a loaded 2-core machine; a
// cluster that is not ready after this long will not become ready.
const readyTimeout = 30 * time.Second

// Config says how to run the embedded cluster.
type Config struct {
	// Dir is the parent of every server's store directory (server i uses Dir/n<i>). It must be
	// set: tests pass t.TempDir(), the dev command a directory under its data dir.
	Dir string
	// Servers is the number of servers; zero means DefaultServers.
	Servers int
	// BasePort, when set, fixes the ports: client ports are BasePort..BasePort+Servers-1 and
	// route (cluster) ports follow them, BasePort+Servers..BasePort+2*Servers-1. Zero picks free
	// loopback ports, which is what tests want so that they can run in parallel.
	BasePort int
	// ClusterName names the NATS cluster; empty means "hark-dev".
	ClusterName string
	// Logger, when set, receives the servers' logs (server.Logger is nats-server's own
	// interface). Nil keeps them quiet.
	Logger server.Logger
}

// Cluster is a running embedded cluster. Its methods are safe for concurrent use.
type Cluster struct {
	cfg         Config
	clientPorts []int
	routePorts  []int

	mu      sync.Mutex
	servers []*server.Server // nil while killed
}

// Start runs cfg.Servers nats-server instances clustered by routes and returns once every one of
// them accepts connections and JetStream has a meta leader that every server knows. The
// context bounds the wait.
func Start(ctx context.Context, cfg Config) (*Cluster, error) {
	if cfg.Dir == "" {
		return nil, errors.New("start nats cluster: Config.Dir is required")
	}
	if cfg.Servers == 0 {
		cfg.Servers = DefaultServers
	}
	if cfg.Servers < 1 {
		return nil, fmt.Errorf("start nats cluster: %d servers", cfg.Servers)
	}
	if cfg.ClusterName == "" {
		cfg.ClusterName = "hark-dev"
	}
	c := &Cluster{cfg: cfg, servers: make([]*server.Server, cfg.Servers)}
	if cfg.BasePort != 0 {
		for i := range cfg.Servers {
			c.clientPorts = append(c.clientPorts, cfg.BasePort+i)
			c.routePorts = append(c.routePorts, cfg.BasePort+cfg.Servers+i)
		}
	} else {
		ports, err := freePorts(2 * cfg.Servers)
		if err != nil {
			return nil, fmt.Errorf("start nats cluster: %w", err)
		}
		c.clientPorts, c.routePorts = ports[:cfg.Servers], ports[cfg.Servers:]
	}
	for i := range cfg.Servers {
		if err := c.start(i); err != nil {
			c.Close()
			return nil, fmt.Errorf("start nats cluster: %w", err)
		}
	}
	if err := c.waitReady(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("start nats cluster: %w", err)
	}
	return c, nil
}

// freePorts asks the kernel for n distinct free loopback ports. The listeners are closed before
// the servers bind, so another process could take a port in between; on loopback in a test run
// that window has not been a problem, and the server's own bind error would say so if it were.
func freePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// options builds server i's options. They are rebuilt for every (re)start because a
// server.Options must not be shared between two server instances.
func (c *Cluster) options(i int) *server.Options {
	var routes []*url.URL
	for j, p := range c.routePorts {
		if j != i {
			routes = append(routes, &url.URL{Scheme: "nats", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(p))})
		}
	}
	return &server.Options{
		ServerName: "n" + strconv.Itoa(i),
		Host:       "127.0.0.1",
		Port:       c.clientPorts[i],
		JetStream:  true,
		StoreDir:   filepath.Join(c.cfg.Dir, "n"+strconv.Itoa(i)),
		// SyncAlways is sync_interval: always: fsync every write before it is acknowledged
		// (see the package doc for why hark requires it).
		SyncAlways: true,
		Cluster: server.ClusterOpts{
			Name: c.cfg.ClusterName,
			Host: "127.0.0.1",
			Port: c.routePorts[i],
		},
		Routes:                 routes,
		NoLog:                  c.cfg.Logger == nil,
		NoSigs:                 true,
		DisableJetStreamBanner: true,
	}
}

// start creates and starts server i, and waits until it accepts client connections.
func (c *Cluster) start(i int) error {
	s, err := server.NewServer(c.options(i))
	if err != nil {
		return fmt.Errorf("server %d: %w", i, err)
	}
	if c.cfg.Logger != nil {
		s.SetLoggerV2(c.cfg.Logger, false, false, false)
	}
	s.Start()
	if !s.ReadyForConnections(readyTimeout) {
		s.Shutdown()
		return fmt.Errorf("server %d is not accepting connections on port %d after %s", i, c.clientPorts[i], readyTimeout)
	}
	c.mu.Lock()
	c.servers[i] = s
	c.mu.Unlock()
	return nil
}

// waitReady polls until a running server is the JetStream meta leader and every running server
// is current with the meta group (so it knows the leader and can serve API requests).
func (c *Cluster) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		c.mu.Lock()
		leader, current := false, true
		for _, s := range c.servers {
			if s == nil {
				continue
			}
			leader = leader || s.JetStreamIsLeader()
			current = current && s.JetStreamIsCurrent()
		}
		c.mu.Unlock()
		if leader && current {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("JetStream has no meta leader known to every server: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

// URLs returns every server's client URL (nats://127.0.0.1:port), killed ones included: their
// ports stay reserved for Restart.
func (c *Cluster) URLs() []string {
	urls := make([]string, len(c.clientPorts))
	for i := range c.clientPorts {
		urls[i] = c.ServerURL(i)
	}
	return urls
}

// ServerURL returns server i's client URL.
func (c *Cluster) ServerURL(i int) string {
	return "nats://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(c.clientPorts[i]))
}

// URL returns every server as one comma-joined string, the form `--store nats://a,b,c` takes.
func (c *Cluster) URL() string {
	return strings.Join(c.URLs(), ",")
}

// Servers returns the number of servers, killed ones included.
func (c *Cluster) Servers() int { return len(c.clientPorts) }

// Server returns server i, or nil while it is killed. Tests use it to ask the server directly
// (for example which server leads a stream).
func (c *Cluster) Server(i int) *server.Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.servers[i]
}

// Kill stops server i as abruptly as an in-process server allows: Shutdown without lame-duck
// mode, so clients are disconnected at once and no leadership is handed over first. Data the
// server had acknowledged is on disk (SyncAlways). Killing a killed server does nothing.
func (c *Cluster) Kill(i int) {
	c.mu.Lock()
	s := c.servers[i]
	c.servers[i] = nil
	c.mu.Unlock()
	if s != nil {
		s.Shutdown()
		s.WaitForShutdown()
	}
}

// Restart starts killed server i again with the same store directory and ports, and returns
// once it accepts connections and has caught up with the meta group. Restarting a running
// server is an error.
func (c *Cluster) Restart(ctx context.Context, i int) error {
	if c.Server(i) != nil {
		return fmt.Errorf("restart nats server %d: it is running", i)
	}
	if err := c.start(i); err != nil {
		return fmt.Errorf("restart nats server %d: %w", i, err)
	}
	if err := c.waitReady(ctx); err != nil {
		return fmt.Errorf("restart nats server %d: %w", i, err)
	}
	return nil
}

// Close shuts every running server down. It is safe to call more than once.
func (c *Cluster) Close() {
	for i := range c.servers {
		c.Kill(i)
	}
}
