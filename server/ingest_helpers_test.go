package server_test

// Helpers shared by the ingest, conformance, idempotency and users tests:
// a harness variant that can prepare the data dir (third-party plugins) and
// mark its plugin processes, and small REST/Connect shorthands for the event
// log. server_test.go holds the harness itself.

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"

	harkv1 "github.com/harkhq/hark/gen/hark/v1"
	"github.com/harkhq/hark/gen/hark/v1/harkv1connect"
	"github.com/harkhq/hark/server"
)

// Status shorthands.
const (
	statusProcessed  = harkv1.SourceEventStatus_SOURCE_EVENT_STATUS_PROCESSED
	statusIdempotent = harkv1.SourceEventStatus_SOURCE_EVENT_STATUS_IDEMPOTENT
	statusSkipped    = harkv1.SourceEventStatus_SOURCE_EVENT_STATUS_SKIPPED
	statusRejected   = harkv1.SourceEventStatus_SOURCE_EVENT_STATUS_REJECTED
)

// harnessOptions change how startServerWith starts a server.
type harnessOptions struct {
	// before runs once the data dir exists and before the server starts,
	// e.g. to install a plugin into <dir>/plugins.
	before func(t *testing.T, h *harness)
	// pluginMarker, when not empty, is put into the environment of the
	// built-in plugin processes as pluginMarkerEnv, so a test can tell its
	// own plugin processes from those of tests running in parallel.
	pluginMarker string
	// clock, when set, is the server's clock (server.Config.Now).
	clock *fakeClock
	// config, when set, changes the server's configuration (limits).
	config func(*server.Config)
}

// fakeClock is a clock a test moves by hand. It starts at the real time, so
// what the store expires by the wall clock is never expired early.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Now()} }

// Now returns the clock's time.
func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// pluginMarkerEnv names the environment variable carrying a harness's
// plugin marker.
const pluginMarkerEnv = "HARK_TEST_HARNESS"

// startServerWith is startServer with options. Its server must not be
// restarted with h.restart, which would start it with the default
// configuration.
func startServerWith(t *testing.T, o harnessOptions) *harness {
	t.Helper()
	h := &harness{
		dir:   t.TempDir(),
		token: "test_" + rand.Text(),
		http:  &http.Client{Timeout: testTimeout},
		logs:  &syncBuffer{},
	}
	t.Cleanup(func() {
		if t.Failed() && h.logs.String() != "" {
			t.Logf("server log:\n%s", h.logs)
		}
	})
	if o.before != nil {
		o.before(t, h)
	}
	ln := listen(t)
	h.publicURL = "http://" + ln.Addr().String()
	cfg := h.config()
	if o.pluginMarker != "" {
		cfg.BuiltinPlugins = markedPlugins(o.pluginMarker)
	}
	if o.clock != nil {
		cfg.Now = o.clock.Now
	}
	if o.config != nil {
		o.config(&cfg)
	}
	h.serveConfig(t, ln, cfg)
	t.Cleanup(func() { h.stop(t) })
	return h
}

// serveConfig is h.serve with a configuration of the caller's.
func (h *harness) serveConfig(t *testing.T, ln net.Listener, cfg server.Config) {
	t.Helper()
	srv, err := server.New(ctxFor(t), cfg)
	if err != nil {
		ln.Close()
		t.Fatalf("server.New: %v", err)
	}
	h.srv = srv
	h.addr = ln.Addr().String()
	h.base = "http://" + h.addr
	h.done = make(chan error, 1)
	go func(done chan<- error) { done <- srv.Serve(ln) }(h.done)
}

// markedPlugins is builtinPlugins with marker in each plugin's environment.
func markedPlugins(marker string) map[string]func() *exec.Cmd {
	out := map[string]func() *exec.Cmd{}
	for typ, mk := range builtinPlugins() {
		out[typ] = func() *exec.Cmd {
			cmd := mk()
			cmd.Env = append(cmd.Env, pluginMarkerEnv+"="+marker)
			return cmd
		}
	}
	return out
}

// pluginPIDs returns the pids of this process's children whose environment
// holds pluginEnv=typ and pluginMarkerEnv=marker.
func pluginPIDs(t *testing.T, typ, marker string) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Skipf("cannot list processes (/proc: %v); the plugin crash test needs Linux /proc", err)
	}
	self := os.Getpid()
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, state, ok := procStat(pid); !ok || ppid != self || state == "Z" {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil {
			continue // exited meanwhile
		}
		vars := strings.Split(string(env), "\x00")
		if containsString(vars, pluginEnv+"="+typ) && containsString(vars, pluginMarkerEnv+"="+marker) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// procStat returns a process's parent pid and state from /proc/<pid>/stat.
func procStat(pid int) (ppid int, state string, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, "", false
	}
	// pid (comm) state ppid …; comm may hold spaces and parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, "", false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 2 {
		return 0, "", false
	}
	ppid, err = strconv.Atoi(f[1])
	return ppid, f[0], err == nil
}

// processGone reports whether pid has exited (reaped or a zombie).
func processGone(pid int) bool {
	_, state, ok := procStat(pid)
	return !ok || state == "Z" || state == "X"
}

// killProcess sends SIGKILL to pid and waits (bounded) until it is gone.
func killProcess(t *testing.T, pid int) {
	t.Helper()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("kill -9 %d: %v", pid, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !processGone(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("plugin process %d still runs 10s after SIGKILL", pid)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// buildRudderStack builds the RudderStack plugin into dir as
// hark-source-rudderstack, as a third party would install it.
func buildRudderStack(t *testing.T, dir string) {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root %s has no go.mod: %v", root, err)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
		if _, serr := os.Stat(goBin); serr != nil {
			t.Fatalf("the go command is needed to build the RudderStack plugin: %v", err)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "hark-source-rudderstack")
	// A cold build cache may take a while; still bounded.
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", out, "./plugins/rudderstack")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go build ./plugins/rudderstack: %v\n%s", err, stderr.String())
	}
	// The host refuses world-writable plugins; do not depend on the umask.
	if err := os.Chmod(out, 0o755); err != nil {
		t.Fatal(err)
	}
}

// ---------------------------------------------------------------------------
// Event log and ingest shorthands.
// ---------------------------------------------------------------------------

func (h *harness) events(extra ...connect.ClientOption) harkv1connect.EventServiceClient {
	return harkv1connect.NewEventServiceClient(h.http, h.base, h.opts(extra...)...)
}

func (h *harness) users(extra ...connect.ClientOption) harkv1connect.UserServiceClient {
	return harkv1connect.NewUserServiceClient(h.http, h.base, h.opts(extra...)...)
}

func (h *harness) tenants(extra ...connect.ClientOption) harkv1connect.TenantServiceClient {
	return harkv1connect.NewTenantServiceClient(h.http, h.base, h.opts(extra...)...)
}

func (h *harness) objects(extra ...connect.ClientOption) harkv1connect.ObjectServiceClient {
	return harkv1connect.NewObjectServiceClient(h.http, h.base, h.opts(extra...)...)
}

func (h *harness) audiences(extra ...connect.ClientOption) harkv1connect.AudienceServiceClient {
	return harkv1connect.NewAudienceServiceClient(h.http, h.base, h.opts(extra...)...)
}

// createSourceOfType creates a source of a plugin type over REST.
func (h *harness) createSourceOfType(t *testing.T, name, typ string) *harkv1.Source {
	t.Helper()
	r := h.rest(t, http.MethodPost, "/v1/sources", `{"name":"`+name+`","type":"`+typ+`"}`)
	wantStatus(t, r, http.StatusOK)
	return decode(t, r, &harkv1.Source{})
}

// patchSourceEnv PATCHes a source environment over REST and returns it.
func (h *harness) patchSourceEnv(t *testing.T, sourceID, env, body string) *harkv1.SourceEnvironment {
	t.Helper()
	r := h.rest(t, http.MethodPatch, "/v1/sources/"+sourceID+"/environments/"+env, body)
	wantStatus(t, r, http.StatusOK)
	return decode(t, r, &harkv1.SourceEnvironment{})
}

// deliver posts body to an ingest URL with optional extra headers (name,
// value, …) and decodes a 200's ReceiveResponse (nil otherwise).
func (h *harness) deliver(t *testing.T, ingestURL string, body []byte, header ...string) (httpResult, *harkv1.ReceiveResponse) {
	t.Helper()
	r := h.send(t, "", http.MethodPost, h.ingestPath(t, ingestURL), "application/json", bytes.NewReader(body), header...)
	if r.status != http.StatusOK {
		return r, nil
	}
	return r, decode(t, r, &harkv1.ReceiveResponse{})
}

// mustDeliver posts body and requires a 200 with one entry per event.
func (h *harness) mustDeliver(t *testing.T, ingestURL string, body []byte, wantEvents int, header ...string) *harkv1.ReceiveResponse {
	t.Helper()
	r, res := h.deliver(t, ingestURL, body, header...)
	wantStatus(t, r, http.StatusOK)
	if got := len(res.GetEvents()); got != wantEvents {
		t.Fatalf("ReceiveResponse has %d events, want %d: %s", got, wantEvents, r.body)
	}
	for i, ev := range res.GetEvents() {
		if int(ev.GetIndex()) != i {
			t.Fatalf("ReceiveResponse event %d has index %d: %s", i, ev.GetIndex(), r.body)
		}
	}
	return res
}

// deliverOne posts one event and returns its response entry, which must be
// stored (not rejected).
func (h *harness) deliverOne(t *testing.T, ingestURL string, body []byte, header ...string) *harkv1.ReceivedEvent {
	t.Helper()
	ev := h.mustDeliver(t, ingestURL, body, 1, header...).GetEvents()[0]
	if ev.GetId() == "" || ev.GetStatus() == statusRejected {
		t.Fatalf("event was not stored: %v", ev)
	}
	return ev
}

// listEvents returns every event of env matching query (REST query
// parameters), newest first, following next page tokens (bounded).
func (h *harness) listEvents(t *testing.T, env string, query url.Values) []*harkv1.SourceEvent {
	t.Helper()
	q := url.Values{}
	for k, v := range query {
		q[k] = v
	}
	q.Set("pageSize", "1000")
	var all []*harkv1.SourceEvent
	for range 100 {
		r := h.rest(t, http.MethodGet, "/v1/environments/"+env+"/events?"+q.Encode(), "")
		wantStatus(t, r, http.StatusOK)
		res := decode(t, r, &harkv1.ListSourceEventsResponse{})
		all = append(all, res.GetSourceEvents()...)
		if res.GetNextPageToken() == "" {
			return all
		}
		q.Set("pageToken", res.GetNextPageToken())
	}
	t.Fatalf("event list of %s did not end after 100 pages", env)
	return nil
}

// sourceEvents lists a source's events in env, newest first.
func (h *harness) sourceEvents(t *testing.T, env, sourceID string) []*harkv1.SourceEvent {
	t.Helper()
	return h.listEvents(t, env, url.Values{"sourceId": {sourceID}})
}

// getEvent reads one logged event over Connect.
func (h *harness) getEvent(t *testing.T, env, id string) *harkv1.SourceEvent {
	t.Helper()
	return mustCall(t, h.events().GetSourceEvent, &harkv1.GetSourceEventRequest{Environment: env, Id: id}).GetSourceEvent()
}

// devURL is a source's development ingest URL.
func devURL(t *testing.T, src *harkv1.Source) string {
	t.Helper()
	return envByName(t, src, "development").GetIngestUrl()
}

// field reads a nested value of a Struct by path; nil when any part is
// missing.
func field(s *structpb.Struct, path ...string) *structpb.Value {
	var v *structpb.Value
	for i, p := range path {
		if s == nil {
			return nil
		}
		v = s.GetFields()[p]
		if v == nil {
			return nil
		}
		if i < len(path)-1 {
			s = v.GetStructValue()
		}
	}
	return v
}

// eventIDs returns the ids of evs.
func eventIDs(evs []*harkv1.SourceEvent) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.GetId()
	}
	return out
}

// postIngest posts body to an ingest path of h (see h.ingestPath) and
// returns the status and the decoded ReceiveResponse of a 200. It reports
// failures as errors instead of failing the test, so goroutines may call it.
func (h *harness) postIngest(ctx context.Context, path string, body []byte, header ...string) (int, *harkv1.ReceiveResponse, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.base+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := h.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return res.StatusCode, nil, err
	}
	if res.StatusCode != http.StatusOK {
		return res.StatusCode, nil, nil
	}
	rr := &harkv1.ReceiveResponse{}
	if err := protojson.Unmarshal(b, rr); err != nil {
		return res.StatusCode, nil, fmt.Errorf("decode ReceiveResponse %s: %w", b, err)
	}
	return res.StatusCode, rr, nil
}

// ---------------------------------------------------------------------------
// Plugin hardening: servers with chosen plugins, the misbehaving test
// plugin, metrics and source-type shorthands.
// ---------------------------------------------------------------------------

// gatedPlugins is markedPlugins whose processes cannot start while the file
// gate exists: a test holds a plugin down that way, and lets it come back by
// removing the file.
func gatedPlugins(marker, gate string) map[string]func() *exec.Cmd {
	out := map[string]func() *exec.Cmd{}
	for typ, mk := range markedPlugins(marker) {
		out[typ] = func() *exec.Cmd {
			if _, err := os.Stat(gate); err == nil {
				return exec.Command(filepath.Join(filepath.Dir(gate), "no-such-plugin-binary"))
			}
			return mk()
		}
	}
	return out
}

// buildTestPlugin builds the host's misbehaving test plugin
// (plugins/host/testdata/testplugin) into dir once for each of types, as
// hark-source-<type>: it takes its type from its name and reads its control
// files from dir.
func buildTestPlugin(t *testing.T, dir string, types ...string) {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "testplugin")
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./plugins/host/testdata/testplugin")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build the test plugin: %v\n%s", err, out)
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range types {
		path := filepath.Join(dir, "hark-source-"+typ)
		if err := os.WriteFile(path, b, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, 0o755); err != nil { // whatever the umask
			t.Fatal(err)
		}
	}
}

// metricsText reads /metrics with the admin token.
func (h *harness) metricsText(t *testing.T) string {
	t.Helper()
	r := h.send(t, h.admin(), http.MethodGet, "/metrics", "", nil)
	wantStatus(t, r, http.StatusOK)
	return string(r.body)
}

// sourceTypeHealth returns each source type's health from /v1/source-types.
func (h *harness) sourceTypeHealth(t *testing.T) map[string]harkv1.SourceTypeHealth {
	t.Helper()
	r := h.rest(t, http.MethodGet, "/v1/source-types", "")
	wantStatus(t, r, http.StatusOK)
	out := map[string]harkv1.SourceTypeHealth{}
	for _, st := range decode(t, r, &harkv1.ListSourceTypesResponse{}).GetSourceTypes() {
		out[st.GetType()] = st.GetHealth()
	}
	return out
}

// eventually polls cond every 20 ms until it holds, failing the test after
// testTimeout (a bound against hanging, not a speed goal).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", testTimeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
