package host

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/harkhq/hark/plugins/sdk"
)

const (
	// minBackoff and maxBackoff bound the wait between start attempts; it
	// doubles after each failed start and after each generation that died
	// within stableAfter of its start.
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
	// stableAfter is how long a generation must have been up for its death
	// to count as a fresh failure (backoff back to minBackoff) rather than
	// one more of a crash loop.
	stableAfter = maxBackoff
	// pollInterval is how often a running plugin's process is checked for
	// exit (a cheap local check; the ping asks the process itself).
	pollInterval = 100 * time.Millisecond
	// stopGrace is how long a process being stopped may take to exit after
	// go-plugin's shutdown request before it is SIGKILLed. A healthy plugin
	// exits within milliseconds; one still there after a second is stuck or
	// frozen.
	stopGrace = time.Second
	// reapTimeout bounds the wait for go-plugin's cleanup after a SIGKILL
	// (the process is gone; only its pipes and goroutines are left).
	reapTimeout = 5 * time.Second
)

// errCallTimeout is the cause of a call's context when CallTimeout fired,
// as opposed to the caller's own deadline.
var errCallTimeout = errors.New("call timeout")

// managed is one plugin: its supervisor and the generation now up.
type managed struct {
	host   *Host
	typ    string
	origin Origin
	path   string
	newCmd func() *exec.Cmd

	// firstDone is closed once the first start attempt has ended, either
	// way (or the host closed before it did).
	firstDone chan struct{}
	firstOnce sync.Once

	mu       sync.Mutex
	state    State
	cur      *generation // the generation up; nil unless state is Up
	gens     int         // generations started so far
	desc     sdk.Description
	restarts int
	lastErr  string
}

// generation is one start of a plugin's process. Every failure is tied to
// the generation it happened on, so that a late failure of an old process
// never touches its replacement.
type generation struct {
	n      int
	desc   sdk.Description
	client *plugin.Client
	src    sdk.Source
	conn   *grpc.ClientConn // for the liveness ping
	pid    int
	// stream is src's stream control when batches go over its
	// TranslateStream; nil when they are calls of their own.
	stream sdk.StreamSource
	// ctx ends when the generation is down, with the reason as its cause;
	// calls made on the generation end with it.
	ctx  context.Context
	down context.CancelCauseFunc
	// kill SIGKILLs the process: it cancels the context of the process's
	// command.
	kill context.CancelFunc
}

func newManaged(h *Host, typ string, origin Origin, path string, newCmd func() *exec.Cmd) *managed {
	return &managed{host: h, typ: typ, origin: origin, path: path, newCmd: newCmd,
		firstDone: make(chan struct{}), state: Starting}
}

func (m *managed) info() Info {
	m.mu.Lock()
	defer m.mu.Unlock()
	in := Info{
		Type: m.typ, Origin: m.origin, Path: m.path, Description: m.desc,
		State: m.state, Healthy: m.state == Up, Restarts: m.restarts, LastError: m.lastErr,
	}
	if m.cur != nil {
		in.PID, in.Stream = m.cur.pid, m.cur.stream != nil
	}
	return in
}

func (m *managed) endFirst() { m.firstOnce.Do(func() { close(m.firstDone) }) }

// supervise starts the plugin, watches it while it is up, and when it goes
// down stops what is left of its process and starts a new one after a
// backoff, until the host closes. It is the only goroutine that starts or
// stops the plugin's processes, so callers never wait on either.
func (m *managed) supervise() {
	defer m.host.wg.Done()
	defer m.endFirst()
	log := m.host.log.With("type", m.typ)
	backoff := minBackoff
	for {
		g, err := m.start()
		switch {
		case m.host.ctx.Err() != nil:
			if g != nil {
				m.host.stopProcess(g, nil)
			}
			m.setClosed()
			return
		case err != nil:
			m.startFailed(err)
			log.Error("start source plugin", "err", err, "next_try_in", backoff)
		default:
			up := time.Now()
			m.up(g)
			log.Info("source plugin started", "version", g.desc.Version, "pid", g.pid, "generation", g.n)
			m.markDown(g, m.watch(g))
			// A process that failed gets its grace only while the host
			// runs: on Close, waiting for a stuck process is pointless.
			var abort <-chan struct{}
			if m.host.ctx.Err() == nil {
				abort = m.host.ctx.Done()
			}
			m.host.stopProcess(g, abort)
			if m.host.ctx.Err() != nil {
				m.setClosed()
				return
			}
			if time.Since(up) >= stableAfter {
				backoff = minBackoff
			}
		}
		t := time.NewTimer(backoff)
		select {
		case <-m.host.ctx.Done():
			t.Stop()
			m.setClosed()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// start launches a process, dispenses the Source and asks it to Describe.
// It is bounded by StartTimeout, and by Close: go-plugin's handshake wait
// has no context (and holds the client's lock, so even Kill waits for it),
// so Close kills the process through its command's context instead.
func (m *managed) start() (*generation, error) {
	h := m.host
	tmpl := m.newCmd()
	if tmpl == nil {
		return nil, errors.New("no command to run the plugin")
	}
	procCtx, kill := context.WithCancel(context.Background())
	cmd := withContext(procCtx, tmpl)
	dieWithHost(cmd)
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  sdk.Handshake,
		VersionedPlugins: sdk.PluginSets(nil),
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		GRPCDialOptions:  sdk.GRPCDialOptions(),
		Logger:           newHCLogger(h.log, m.typ),
		StartTimeout:     h.cfg.StartTimeout,
	})
	stopKilling := context.AfterFunc(h.ctx, kill)
	defer stopKilling()
	ctx, cancel := context.WithTimeout(h.ctx, h.cfg.StartTimeout)
	defer cancel()
	fail := func(err error) (*generation, error) {
		kill()
		h.reap(client)
		return nil, err
	}
	rpc, err := client.Client()
	if err != nil {
		return fail(fmt.Errorf("start: %w", err))
	}
	grpcClient, ok := rpc.(*plugin.GRPCClient)
	if !ok {
		return fail(fmt.Errorf("plugin speaks %T, not gRPC", rpc))
	}
	raw, err := rpc.Dispense(sdk.PluginName)
	if err != nil {
		return fail(fmt.Errorf("dispense: %w", err))
	}
	src, ok := raw.(sdk.Source)
	if !ok {
		return fail(fmt.Errorf("plugin dispensed %T, not a source", raw))
	}
	desc, err := src.Describe(ctx)
	if err != nil {
		return fail(fmt.Errorf("describe: %w", err))
	}
	if desc.Type != m.typ {
		return fail(fmt.Errorf("plugin says its type is %q, but it was installed as %q", desc.Type, m.typ))
	}
	g := &generation{desc: desc, client: client, src: src, conn: grpcClient.Conn, kill: kill}
	if ss, ok := src.(sdk.StreamSource); ok && desc.ProtocolMinor >= 1 && !h.cfg.UnaryOnly {
		switch err := ss.OpenStream(ctx); {
		case err == nil:
			g.stream = ss
		case errors.Is(err, sdk.ErrStreamUnsupported):
			// It says 1.1 but serves no stream: calls still work.
			h.log.Warn("source plugin says it speaks protocol 1.1 but serves no TranslateStream; calling Translate per batch", "type", m.typ, "err", err)
		default:
			return fail(fmt.Errorf("open the translate stream: %w", err))
		}
	}
	if rc := client.ReattachConfig(); rc != nil {
		g.pid = rc.Pid
	}
	g.ctx, g.down = context.WithCancelCause(context.Background())
	return g, nil
}

// withContext copies cmd into a command bound to ctx: cancelling ctx
// SIGKILLs the process (os/exec's default Cancel), whatever go-plugin is
// doing with it.
func withContext(ctx context.Context, cmd *exec.Cmd) *exec.Cmd {
	out := exec.CommandContext(ctx, cmd.Path)
	out.Path, out.Args, out.Err = cmd.Path, cmd.Args, cmd.Err
	out.Env, out.Dir = cmd.Env, cmd.Dir
	out.SysProcAttr, out.ExtraFiles = cmd.SysProcAttr, cmd.ExtraFiles
	return out
}

// up makes g the current generation. A restart is counted here, when a
// start has succeeded, not when it is attempted.
func (m *managed) up(g *generation) {
	m.mu.Lock()
	m.gens++
	g.n = m.gens
	if g.n > 1 {
		m.restarts++
	}
	m.cur, m.state, m.lastErr, m.desc = g, Up, "", g.desc
	m.mu.Unlock()
	m.endFirst()
}

func (m *managed) startFailed(err error) {
	m.mu.Lock()
	m.state, m.lastErr = Down, TrimMessage(err.Error())
	m.mu.Unlock()
	m.endFirst()
}

func (m *managed) setClosed() {
	m.mu.Lock()
	m.state, m.cur = Closed, nil
	m.mu.Unlock()
}

// watch returns, with the reason, once g is down: its process exited, a
// liveness ping failed, a call marked it down, or the host is closing.
func (m *managed) watch(g *generation) string {
	poll := time.NewTicker(pollInterval)
	defer poll.Stop()
	var ping <-chan time.Time
	missed := 0
	if m.host.cfg.PingInterval > 0 {
		t := time.NewTicker(m.host.cfg.PingInterval)
		defer t.Stop()
		ping = t.C
	}
	for {
		select {
		case <-m.host.ctx.Done():
			return "the plugin host is closing"
		case <-g.ctx.Done():
			return context.Cause(g.ctx).Error()
		case <-poll.C:
			if g.client.Exited() {
				return "the plugin process exited"
			}
		case <-ping:
			err := m.ping(g)
			if err == nil {
				missed = 0
				continue
			}
			if g.ctx.Err() != nil {
				return context.Cause(g.ctx).Error()
			}
			missed++
			// A stopped process (SIGSTOP) is frozen for certain: down at
			// once. A running one that misses pings may only be starved of
			// CPU on a loaded machine: it is down after missedPings in a row.
			if stopped(g.pid) || missed >= missedPings {
				return fmt.Sprintf("no answer to %d liveness ping(s) within %v each: %v", missed, m.host.cfg.PingTimeout, err)
			}
		}
	}
}

// missedPings is how many liveness pings in a row a running plugin may miss
// before it is taken down: at load 10 on two cores a healthy plugin can
// miss one, and killing it then turns a slow machine into an outage.
const missedPings = 3

// stopped reports whether a process is stopped (state T in /proc), as
// kill -STOP leaves it; false when that cannot be read.
func stopped(pid int) bool {
	if pid <= 0 {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && (s[i+2] == 'T' || s[i+2] == 't')
}

// ping asks g's go-plugin server whether it serves, with PingTimeout. It
// goes around go-plugin's own Ping, which has no deadline.
func (m *managed) ping(g *generation) error {
	ctx, cancel := context.WithTimeout(g.ctx, m.host.cfg.PingTimeout)
	defer cancel()
	res, err := healthpb.NewHealthClient(g.conn).Check(ctx, &healthpb.HealthCheckRequest{Service: plugin.GRPCServiceName})
	if err != nil {
		return err
	}
	if res.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("the plugin reports %s", res.GetStatus())
	}
	return nil
}

// markDown records that generation g cannot answer any more and ends the
// calls in flight on it. It never blocks: stopping the process is the
// supervisor's job. Only g is affected: when g is no longer the current
// generation (a failure seen late, after its replacement started), the
// plugin's state is left alone.
func (m *managed) markDown(g *generation, reason string) {
	g.down(errors.New(reason))
	m.mu.Lock()
	if m.cur != g {
		m.mu.Unlock()
		return
	}
	m.cur = nil
	closing := m.host.ctx.Err() != nil
	if closing {
		m.state = Closed
	} else {
		m.state, m.lastErr = Down, reason
	}
	m.mu.Unlock()
	if !closing {
		m.host.log.Warn("source plugin down", "type", m.typ, "pid", g.pid, "generation", g.n, "reason", reason)
	}
}

// current returns the generation to call. A plugin still on its first start
// is waited for, up to StartingWait or ctx; any other plugin not up fails at
// once.
func (m *managed) current(ctx context.Context) (*generation, error) {
	m.mu.Lock()
	state, g, lastErr := m.state, m.cur, m.lastErr
	m.mu.Unlock()
	if state == Starting {
		t := time.NewTimer(m.host.cfg.StartingWait)
		defer t.Stop()
		select {
		case <-m.firstDone:
		case <-t.C:
			return nil, fmt.Errorf("%w: %s is still starting", ErrUnavailable, m.typ)
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %s is still starting: %w", ErrUnavailable, m.typ, ctx.Err())
		}
		m.mu.Lock()
		state, g, lastErr = m.state, m.cur, m.lastErr
		m.mu.Unlock()
	}
	switch state {
	case Up:
		return g, nil
	case Closed:
		return nil, fmt.Errorf("%w: the plugin host is closed", ErrUnavailable)
	default:
		return nil, fmt.Errorf("%w: %s is down and restarting: %s", ErrUnavailable, m.typ, lastErr)
	}
}

func (m *managed) translate(ctx context.Context, ds []sdk.Delivery) ([]sdk.Result, error) {
	g, err := m.current(ctx)
	if err != nil {
		return nil, err
	}
	callCtx, cancel := context.WithTimeoutCause(ctx, m.host.cfg.CallTimeout, errCallTimeout)
	defer cancel()
	stop := context.AfterFunc(g.ctx, cancel)
	defer stop()
	res, err := g.src.Translate(callCtx, ds)
	if err == nil {
		return res, nil
	}
	// A deadline that ran out may come back from the plugin (gRPC sends it
	// along) a moment before it fires here: whose deadline it was is told
	// by which one was in force, the caller's or CallTimeout.
	deadline, _ := callCtx.Deadline()
	callerDeadline, ok := ctx.Deadline()
	callerBound := ok && !callerDeadline.After(deadline)
	timedOut := errors.Is(err, context.DeadlineExceeded)
	switch {
	case g.ctx.Err() != nil:
		return nil, fmt.Errorf("%w: %s went down during the call: %v", ErrUnavailable, m.typ, context.Cause(g.ctx))
	case ctx.Err() != nil || callerBound && timedOut:
		// The caller gave up; that says nothing about the plugin.
		why := ctx.Err()
		if why == nil {
			why = context.DeadlineExceeded
		}
		return nil, fmt.Errorf("%w: %s: the call ended: %w", ErrUnavailable, m.typ, why)
	case timedOut || errors.Is(context.Cause(callCtx), errCallTimeout):
		reason := fmt.Sprintf("a call got no answer within %v", m.host.cfg.CallTimeout)
		m.markDown(g, reason)
		return nil, fmt.Errorf("%w: %s: %s", ErrUnavailable, m.typ, reason)
	case errors.Is(err, ErrUnavailable):
		// The process is gone or its connection broke.
		reason := TrimMessage(err.Error())
		m.markDown(g, reason)
		return nil, fmt.Errorf("%w: %s: %s", ErrUnavailable, m.typ, reason)
	default:
		// The plugin answered with an error: it runs, this batch failed.
		return nil, fmt.Errorf("source plugin %s: %s", m.typ, TrimMessage(err.Error()))
	}
}

// stopProcess ends g's stream and process and releases them without
// waiting on the plugin. go-plugin's Kill first asks the plugin to exit over RPC and waits
// for that with no deadline (forever, for a stopped process); it runs in a
// goroutine, and a process that has not exited after stopGrace, or when
// abort is closed, is SIGKILLed, which also ends Kill's wait.
func (h *Host) stopProcess(g *generation, abort <-chan struct{}) {
	if g.stream != nil {
		// Its goroutines end with their context, at once; Close waits
		// for them (bounded) with the other reapers.
		h.reapers.Go(g.stream.CloseStream)
	}
	done := h.reap(g.client)
	t := time.NewTimer(stopGrace)
	defer t.Stop()
	select {
	case <-done:
		g.kill()
		return
	case <-t.C:
		h.log.Warn("source plugin did not exit when asked; killing it", "pid", g.pid, "generation", g.n)
	case <-abort:
	}
	g.kill()
	t.Reset(reapTimeout)
	select {
	case <-done:
	case <-t.C:
		h.log.Error("source plugin process SIGKILLed but not reaped; leaving it", "pid", g.pid)
	}
}

// reap runs client.Kill in a goroutine the host waits for (bounded) in
// Close, and returns a channel closed when it returns.
func (h *Host) reap(client *plugin.Client) <-chan struct{} {
	done := make(chan struct{})
	h.reapers.Add(1)
	go func() {
		defer h.reapers.Done()
		defer close(done)
		client.Kill()
	}()
	return done
}
