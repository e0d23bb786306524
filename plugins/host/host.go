// Package host runs hark's source plugins: it finds them, starts each as a
// process (hashicorp/go-plugin over gRPC), asks it to Describe itself, calls
// it with deadlines, watches that it stays alive, and restarts it with
// backoff when it dies or stops answering.
//
// Built-in plugins are re-executions of the hark binary (`hark plugin
// segment`), as Packer runs its bundled plugins; third-party plugins are
// executables named hark-source-<type> in the plugin directory. Either way a
// plugin that crashes, hangs or freezes costs its own deliveries a 503
// (senders retry), never hark itself and never another plugin.
//
// What the host promises, and why:
//   - No call waits on another plugin, and none waits on a plugin's
//     process: each plugin has its own supervisor goroutine and lock, no lock
//     is held across a call, and a plugin that fails is killed and restarted
//     by its supervisor, not by the caller that saw it fail.
//   - A plugin's life is a series of generations, one per start of its
//     process. A failure seen by a call made on generation N takes down
//     generation N only: a late error from a dead process never marks its
//     replacement down.
//   - A plugin that stops answering is found without traffic, by a liveness
//     ping (gRPC health, with a short deadline) every PingInterval. Calls in
//     flight on it end at once with ErrUnavailable.
//   - Stopping a process never waits on it: go-plugin's Kill asks the plugin
//     to exit over RPC and waits with no deadline (forever, for a stopped
//     process), so the host SIGKILLs any process still there after a short
//     grace. Close returns within a few seconds whatever the plugins do.
//   - Start does not wait for slow handshakes: plugins start in the
//     background, and Start waits at most StartWait for them. A call to a
//     plugin still on its first start waits up to StartingWait for it; a
//     call to a plugin that was up and went down fails at once.
//   - Batches to a plugin of protocol 1.1 go over one long-lived
//     TranslateStream per generation, opened after Describe (a call per
//     batch costs several times what a message on an open stream does);
//     plugins of protocol 1.0 get a call per batch. Either way a call has
//     the same deadlines and failures: a batch whose stream breaks fails
//     with ErrUnavailable and takes its generation down, as a failed call
//     does, and the next generation opens its own stream.
//
// The host holds plugins only through the sdk.Source interface.
package host

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/harkhq/hark/plugins/sdk"
)

// Origin says where a plugin comes from.
type Origin int

const (
	// BuiltIn plugins are the hark binary re-executed.
	BuiltIn Origin = iota + 1
	// PluginDir plugins are hark-source-<type> executables.
	PluginDir
)

// BinaryPrefix names third-party plugin executables: hark-source-<type>.
const BinaryPrefix = "hark-source-"

// Defaults for Config.
const (
	// DefaultCallTimeout bounds one Translate call. Translating even a full
	// 4 MiB delivery takes milliseconds; a plugin that takes seconds is stuck,
	// and its senders are better served by a 503 and a retry.
	DefaultCallTimeout = 10 * time.Second
	// DefaultStartTimeout bounds starting a plugin and its Describe.
	DefaultStartTimeout = 30 * time.Second
	// DefaultStartWait bounds how long Start waits for the plugins' first
	// starts. A plugin starts in well under a second; waiting that long lets
	// a server answer its first deliveries at once, and the bound keeps a
	// plugin stuck in its handshake from holding up hark's start (and every
	// other source) for StartTimeout.
	DefaultStartWait = 3 * time.Second
	// DefaultStartingWait bounds how long a call to a plugin still on its
	// first start waits for that start, so that deliveries arriving just as
	// hark starts are not refused for a plugin about to be up.
	DefaultStartingWait = 2 * time.Second
	// DefaultPingInterval is how often the supervisor checks that a running
	// plugin answers, so a frozen plugin is found without traffic.
	DefaultPingInterval = 500 * time.Millisecond
	// DefaultPingTimeout bounds one liveness ping. The ping is a gRPC health
	// check the plugin's go-plugin server answers on its own, whatever its
	// Translate is doing; a local process that cannot answer it within a
	// second is stuck.
	DefaultPingTimeout = time.Second
)

// ErrUnavailable is returned for calls to a plugin that is not running.
var ErrUnavailable = sdk.ErrUnavailable

// ErrUnknownType is returned for calls naming a type no plugin serves.
var ErrUnknownType = errors.New("no source plugin of that type")

// Config configures a Host.
type Config struct {
	// Builtins maps built-in type names to the command that runs them. It is
	// called for every start of the plugin (and once by Start, for the path).
	Builtins map[string]func() *exec.Cmd
	// PluginDir is searched for hark-source-<type> executables; "" skips it.
	PluginDir string
	// Logger receives the host's logs and, under the plugin's name, the
	// plugins' own logs. Nil discards them.
	Logger *slog.Logger
	// CallTimeout bounds each Translate call; 0 means DefaultCallTimeout. A
	// call that hits it takes the plugin down (it is restarted).
	CallTimeout time.Duration
	// StartTimeout bounds each start; 0 means DefaultStartTimeout.
	StartTimeout time.Duration
	// StartWait bounds how long Start waits for first starts; 0 means
	// DefaultStartWait.
	StartWait time.Duration
	// StartingWait bounds how long a call waits for a plugin's first start;
	// 0 means DefaultStartingWait.
	StartingWait time.Duration
	// PingInterval is the liveness ping's period; 0 means
	// DefaultPingInterval and a negative value turns the ping off.
	PingInterval time.Duration
	// PingTimeout bounds each ping; 0 means DefaultPingTimeout.
	PingTimeout time.Duration
	// UnaryOnly makes every Translate a call of its own, as with plugins of
	// protocol 1.0, even to plugins that serve TranslateStream: for
	// measuring the stream against calls, and for ruling it out.
	UnaryOnly bool
}

// State is where a plugin is in its life.
type State int

const (
	// Starting: the plugin's first start has not finished yet.
	Starting State = iota + 1
	// Up: the plugin's process runs and answers.
	Up
	// Down: the plugin failed to start, died or stopped answering, and is
	// being restarted with backoff. Calls to it fail at once.
	Down
	// Closed: the host is closed.
	Closed
)

func (s State) String() string {
	switch s {
	case Starting:
		return "starting"
	case Up:
		return "up"
	case Down:
		return "down"
	case Closed:
		return "closed"
	default:
		return fmt.Sprintf("State(%d)", int(s))
	}
}

// Info describes a plugin as the host sees it now.
type Info struct {
	// Type is the source type name.
	Type string
	// Origin says where the plugin comes from.
	Origin Origin
	// Path is the executable (for built-ins, the hark binary).
	Path string
	// Description is what the plugin said at its last start; zero until it
	// first starts.
	Description sdk.Description
	// State is where the plugin is in its life.
	State State
	// Healthy is true while the plugin is Up: its process runs and answers.
	Healthy bool
	// PID is the process id of the running plugin; 0 when none is up.
	PID int
	// Stream is true while batches go over the plugin's TranslateStream
	// (protocol 1.1), false while they are calls of their own (protocol
	// 1.0, Config.UnaryOnly) or no process is up.
	Stream bool
	// Restarts counts successful starts after the first: a restart that
	// fails is not counted (its error is in LastError).
	Restarts int
	// LastError is the latest start or call failure, if any; a successful
	// start clears it.
	LastError string
}

// Host runs plugins. Its methods are safe for concurrent use.
type Host struct {
	cfg     Config
	log     *slog.Logger
	plugins map[string]*managed // fixed by Start, so read without a lock

	// ctx is the host's lifetime: Close cancels it, which stops the
	// supervisors and kills processes still in their handshake.
	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup // the supervisors
	reapers   sync.WaitGroup // go-plugin Kill calls, see stopProcess
	closeOnce sync.Once
}

// Start finds the plugins and starts supervising them until Close: each is
// started in the background, and Start waits at most StartWait (or until ctx
// ends) for the first starts. A plugin that fails to start is kept, down,
// and retried with backoff; Start fails only when the plugin directory
// cannot be read.
func Start(ctx context.Context, cfg Config) (*Host, error) {
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = DefaultCallTimeout
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = DefaultStartTimeout
	}
	if cfg.StartWait <= 0 {
		cfg.StartWait = DefaultStartWait
	}
	if cfg.StartingWait <= 0 {
		cfg.StartingWait = DefaultStartingWait
	}
	if cfg.PingInterval == 0 {
		cfg.PingInterval = DefaultPingInterval
	}
	if cfg.PingTimeout <= 0 {
		cfg.PingTimeout = DefaultPingTimeout
	}
	h := &Host{cfg: cfg, log: cfg.Logger, plugins: map[string]*managed{}}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	for name, cmd := range cfg.Builtins {
		path := ""
		if c := cmd(); c != nil {
			path = c.Path
		}
		h.plugins[name] = newManaged(h, name, BuiltIn, path, cmd)
	}
	found, err := discover(cfg.PluginDir, h.log)
	if err != nil {
		return nil, err
	}
	for name, path := range found {
		if _, dup := h.plugins[name]; dup {
			h.log.Warn("plugin dir executable shadows a built-in source; ignoring it", "type", name, "path", path)
			continue
		}
		h.plugins[name] = newManaged(h, name, PluginDir, path, func() *exec.Cmd { return exec.Command(path) })
	}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	for _, m := range h.plugins {
		h.wg.Add(1)
		go m.supervise()
	}
	wait := time.NewTimer(cfg.StartWait)
	defer wait.Stop()
	for _, m := range h.plugins {
		select {
		case <-m.firstDone:
		case <-wait.C:
			h.log.Warn("source plugins still starting; serving the others meanwhile", "types", h.starting())
			return h, nil
		case <-ctx.Done():
			return h, nil
		}
	}
	return h, nil
}

// starting lists the plugins whose first start has not finished.
func (h *Host) starting() []string {
	var out []string
	for _, in := range h.Types() {
		if in.State == Starting {
			out = append(out, in.Type)
		}
	}
	return out
}

// Types returns every plugin, ordered by type.
func (h *Host) Types() []Info {
	out := make([]Info, 0, len(h.plugins))
	for _, m := range h.plugins {
		out = append(out, m.info())
	}
	slices.SortFunc(out, func(a, b Info) int { return strings.Compare(a.Type, b.Type) })
	return out
}

// Type returns one plugin's info.
func (h *Host) Type(name string) (Info, bool) {
	m, ok := h.plugins[name]
	if !ok {
		return Info{}, false
	}
	return m.info(), true
}

// Translate calls a plugin's Translate with the call deadline. It fails with
// an error wrapping ErrUnavailable when the plugin is down, still starting
// after StartingWait, stuck past CallTimeout, or dies during the call; the
// plugin's supervisor then restarts it. Messages from the plugin in the
// error are cut to MaxMessageBytes.
func (h *Host) Translate(ctx context.Context, typ string, ds []sdk.Delivery) ([]sdk.Result, error) {
	m, ok := h.plugins[typ]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownType, typ)
	}
	return m.translate(ctx, ds)
}

// Close stops supervising and stops every plugin process: gracefully when
// it exits at once, by SIGKILL otherwise, so Close never waits on a plugin
// for more than a few seconds. Calls after Close fail with ErrUnavailable.
// It may be called more than once.
func (h *Host) Close() error {
	h.closeOnce.Do(func() {
		h.cancel()
		h.wg.Wait()
		if !waitTimeout(&h.reapers, reapTimeout) {
			h.log.Error("source plugin processes were SIGKILLed but their output pipes are still open; leaving them")
		}
	})
	return nil
}

// waitTimeout waits for wg up to d and reports whether it finished.
func waitTimeout(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}
