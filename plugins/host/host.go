// Package host runs hark's source plugins: it finds them, starts each as a
// process (hashicorp/go-plugin over gRPC), asks it to Describe itself, calls
// it with deadlines, and restarts it with backoff when it dies.
//
// Built-in plugins are re-executions of the hark binary (`hark plugin
// segment`), as Packer runs its bundled plugins; third-party plugins are
// executables named hark-source-<type> in the plugin directory. Either way a
// plugin that crashes or hangs costs its own deliveries a 503 (senders
// retry), never hark itself.
//
// The host holds plugins only through the sdk.Source interface.
package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

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
	maxBackoff          = 5 * time.Second
	minBackoff          = 100 * time.Millisecond
	// pollInterval is how often a plugin process is checked for exit.
	pollInterval = 100 * time.Millisecond
)

// ErrUnavailable is returned for calls to a plugin that is not running.
var ErrUnavailable = sdk.ErrUnavailable

// ErrUnknownType is returned for calls naming a type no plugin serves.
var ErrUnknownType = errors.New("no source plugin of that type")

// Config configures a Host.
type Config struct {
	// Builtins maps built-in type names to the command that runs them.
	Builtins map[string]func() *exec.Cmd
	// PluginDir is searched for hark-source-<type> executables; "" skips it.
	PluginDir string
	// Logger receives the host's logs and, under the plugin's name, the
	// plugins' own logs. Nil discards them.
	Logger *slog.Logger
	// CallTimeout bounds each Translate call; 0 means DefaultCallTimeout.
	CallTimeout time.Duration
	// StartTimeout bounds each start; 0 means DefaultStartTimeout.
	StartTimeout time.Duration
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
	// Healthy is true while the plugin process runs and answers.
	Healthy bool
	// Restarts counts restarts after crashes.
	Restarts int
	// LastError is the latest start or call failure, if any.
	LastError string
}

// Host runs plugins. Its methods are safe for concurrent use.
type Host struct {
	cfg     Config
	log     *slog.Logger
	plugins map[string]*managed
	stop    chan struct{}
	wg      sync.WaitGroup
}

// Start finds the plugins, starts them (waiting up to StartTimeout for each
// first start) and supervises them until Close. A plugin that fails to start
// is kept, unhealthy, and retried with backoff; Start fails only when the
// plugin directory cannot be read.
func Start(ctx context.Context, cfg Config) (*Host, error) {
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = DefaultCallTimeout
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = DefaultStartTimeout
	}
	h := &Host{cfg: cfg, log: cfg.Logger, plugins: map[string]*managed{}, stop: make(chan struct{})}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	for name, cmd := range cfg.Builtins {
		path := ""
		if c := cmd(); c != nil {
			path = c.Path
		}
		h.plugins[name] = &managed{host: h, typ: name, origin: BuiltIn, path: path, newCmd: cmd}
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
		h.plugins[name] = &managed{host: h, typ: name, origin: PluginDir, path: path, newCmd: func() *exec.Cmd { return exec.Command(path) }}
	}
	var starting sync.WaitGroup
	for _, m := range h.plugins {
		starting.Add(1)
		go func() {
			defer starting.Done()
			if err := m.start(ctx); err != nil {
				h.log.Error("start source plugin", "type", m.typ, "err", err)
			}
		}()
	}
	starting.Wait()
	for _, m := range h.plugins {
		h.wg.Add(1)
		go m.supervise()
	}
	return h, nil
}

// discover lists hark-source-<type> executables in dir. Files that others
// could have written are refused: hark would run whatever they hold.
func discover(dir string, log *slog.Logger) (map[string]string, error) {
	found := map[string]string{}
	if dir == "" {
		return found, nil
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return found, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read plugin dir: %w", err)
	}
	if fi, err := os.Stat(dir); err == nil && fi.Mode().Perm()&0o002 != 0 && fi.Mode()&os.ModeSticky == 0 {
		log.Error("refuse every plugin in the plugin dir: it is world-writable, so anyone could replace what hark runs", "path", dir)
		return found, nil
	}
	for _, e := range entries {
		name, ok := strings.CutPrefix(e.Name(), BinaryPrefix)
		if !ok || name == "" {
			continue
		}
		path := filepath.Join(dir, e.Name())
		fi, err := os.Stat(path)
		switch {
		case err != nil:
			log.Warn("skip plugin", "path", path, "err", err)
		case !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0:
			log.Warn("skip plugin: not an executable file", "path", path)
		case fi.Mode().Perm()&0o002 != 0:
			log.Error("refuse plugin: it is world-writable, so anyone could replace what hark runs", "path", path)
		default:
			found[name] = path
		}
	}
	return found, nil
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
// ErrUnavailable when the plugin is down or dies during the call; the
// supervisor then restarts it.
func (h *Host) Translate(ctx context.Context, typ string, ds []sdk.Delivery) ([]sdk.Result, error) {
	m, ok := h.plugins[typ]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownType, typ)
	}
	return m.translate(ctx, ds)
}

// Close stops supervising and kills every plugin process.
func (h *Host) Close() error {
	close(h.stop)
	h.wg.Wait()
	for _, m := range h.plugins {
		m.kill()
	}
	return nil
}

// managed is one plugin and its process.
type managed struct {
	host   *Host
	typ    string
	origin Origin
	path   string
	newCmd func() *exec.Cmd

	mu       sync.RWMutex
	client   *plugin.Client
	src      sdk.Source
	desc     sdk.Description
	healthy  bool
	restarts int
	lastErr  string
}

func (m *managed) info() Info {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return Info{
		Type: m.typ, Origin: m.origin, Path: m.path, Description: m.desc,
		Healthy: m.healthy, Restarts: m.restarts, LastError: m.lastErr,
	}
}

// start launches the process, dispenses the Source and asks it to Describe.
func (m *managed) start(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, m.host.cfg.StartTimeout)
	defer cancel()
	cmd := m.newCmd()
	dieWithHost(cmd)
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  sdk.Handshake,
		VersionedPlugins: sdk.PluginSets(nil),
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		GRPCDialOptions:  sdk.GRPCDialOptions(),
		Logger:           newHCLogger(m.host.log, m.typ),
		StartTimeout:     m.host.cfg.StartTimeout,
	})
	fail := func(err error) error {
		client.Kill()
		m.mu.Lock()
		m.lastErr = err.Error()
		m.mu.Unlock()
		return err
	}
	rpc, err := client.Client()
	if err != nil {
		return fail(fmt.Errorf("start: %w", err))
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
	m.mu.Lock()
	m.client, m.src, m.desc, m.healthy, m.lastErr = client, src, desc, true, ""
	m.mu.Unlock()
	m.host.log.Info("source plugin started", "type", m.typ, "version", desc.Version, "pid", pid(client))
	return nil
}

func pid(c *plugin.Client) int {
	if rc := c.ReattachConfig(); rc != nil {
		return rc.Pid
	}
	return 0
}

// supervise restarts the plugin whenever its process is gone, with
// exponential backoff, until the host closes.
func (m *managed) supervise() {
	defer m.host.wg.Done()
	backoff := minBackoff
	ticker := time.NewTicker(pollInterval)
	defer ticker.Stop()
	for {
		select {
		case <-m.host.stop:
			return
		case <-ticker.C:
		}
		m.mu.RLock()
		client, healthy := m.client, m.healthy
		m.mu.RUnlock()
		if healthy && client != nil && !client.Exited() {
			backoff = minBackoff
			continue
		}
		m.markDown("plugin process exited")
		select {
		case <-m.host.stop:
			return
		case <-time.After(backoff):
		}
		m.mu.Lock()
		m.restarts++
		m.mu.Unlock()
		if err := m.start(context.Background()); err != nil {
			m.host.log.Error("restart source plugin", "type", m.typ, "err", err, "next_try_in", 2*backoff)
			backoff = min(2*backoff, maxBackoff)
		}
	}
}

// markDown records that the plugin cannot answer and kills what is left of
// its process, so the supervisor starts a fresh one.
func (m *managed) markDown(reason string) {
	m.mu.Lock()
	client, wasHealthy := m.client, m.healthy
	m.client, m.src, m.healthy = nil, nil, false
	if wasHealthy {
		m.lastErr = reason
	}
	m.mu.Unlock()
	if wasHealthy {
		m.host.log.Warn("source plugin down", "type", m.typ, "reason", reason)
	}
	if client != nil {
		client.Kill()
	}
}

func (m *managed) translate(ctx context.Context, ds []sdk.Delivery) ([]sdk.Result, error) {
	m.mu.RLock()
	src, healthy := m.src, m.healthy
	m.mu.RUnlock()
	if !healthy || src == nil {
		return nil, fmt.Errorf("%w: %s is restarting", ErrUnavailable, m.typ)
	}
	ctx, cancel := context.WithTimeout(ctx, m.host.cfg.CallTimeout)
	defer cancel()
	res, err := src.Translate(ctx, ds)
	if err == nil {
		return res, nil
	}
	if errors.Is(err, ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
		// The process is gone or stuck: restart it.
		m.markDown(err.Error())
		return nil, fmt.Errorf("%w: %s: %v", ErrUnavailable, m.typ, err)
	}
	return nil, err
}

func (m *managed) kill() {
	m.mu.Lock()
	client := m.client
	m.client, m.src, m.healthy = nil, nil, false
	m.mu.Unlock()
	if client != nil {
		client.Kill()
	}
}

// newHCLogger returns the hclog.Logger go-plugin wants, forwarding to slog
// with the plugin's type. go-plugin parses the plugin's JSON log lines from
// its stderr and re-logs them here.
func newHCLogger(log *slog.Logger, typ string) hclog.Logger {
	l := hclog.NewInterceptLogger(&hclog.LoggerOptions{Name: "plugin", Level: hclog.Trace, Output: io.Discard})
	l.RegisterSink(slogSink{log: log.With("source_type", typ)})
	return l
}

// slogSink forwards hclog records to slog.
type slogSink struct{ log *slog.Logger }

func (s slogSink) Accept(name string, level hclog.Level, msg string, args ...any) {
	var lv slog.Level
	switch level {
	case hclog.Trace, hclog.Debug:
		lv = slog.LevelDebug
	case hclog.Info, hclog.NoLevel, hclog.DefaultLevel:
		lv = slog.LevelInfo
	case hclog.Warn:
		lv = slog.LevelWarn
	default:
		lv = slog.LevelError
	}
	s.log.Log(context.Background(), lv, msg, append(args, "logger", name)...)
}
