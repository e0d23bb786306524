package host_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/harkhq/hark/plugins/host"
	"github.com/harkhq/hark/plugins/sdk"
	"github.com/harkhq/hark/plugins/segment"
)

// These tests run the host against real plugin processes: testdata/testplugin,
// built once by TestMain, misbehaves on request (see its doc).

// testPlugin is the built test plugin binary; oldPlugin the one of
// protocol 1.0 (testdata/oldplugin).
var testPlugin, oldPlugin string

// bound limits every wait of these tests, so that a host that hangs fails
// its test instead of the whole run. It is not a speed goal: everything it
// bounds takes milliseconds to a few seconds when the host works.
const bound = 30 * time.Second

func TestMain(m *testing.M) {
	if os.Getenv(serveSegmentEnv) != "" {
		segment.Serve() // this binary re-executed as the Segment plugin, see BenchmarkPluginHop
		return
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "hark-host-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "temp dir:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	testPlugin, oldPlugin = filepath.Join(dir, "testplugin"), filepath.Join(dir, "oldplugin")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for _, bin := range []string{testPlugin, oldPlugin} {
		if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "./testdata/"+filepath.Base(bin)).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n%s", filepath.Base(bin), err, out)
			return 1
		}
	}
	return m.Run()
}

// markerEnv marks the plugin processes of one fixture, so a test finds its
// own among those of tests running in parallel.
const markerEnv = "HARK_TEST_HOST_MARKER"

// fixture is one host with test plugins, their control directory and logs.
type fixture struct {
	h       *host.Host
	control string
	marker  string
	logs    *syncBuffer
	// bin is the plugin binary, testPlugin unless set; env is added to
	// its environment.
	bin string
	env []string
}

// newFixture prepares a control directory; start starts the host.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{control: t.TempDir(), marker: rand.Text(), logs: &syncBuffer{}}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("host log:\n%s", f.logs)
		}
	})
	return f
}

// touch creates a control file.
func (f *fixture) touch(t *testing.T, name string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(f.control, name), nil, 0o600); err != nil {
		t.Fatal(err)
	}
}

// remove deletes a control file.
func (f *fixture) remove(t *testing.T, name string) {
	t.Helper()
	if err := os.Remove(filepath.Join(f.control, name)); err != nil {
		t.Fatal(err)
	}
}

// starts counts how often a plugin process of typ has started.
func (f *fixture) starts(typ string) int {
	b, _ := os.ReadFile(filepath.Join(f.control, typ+".starts"))
	return bytes.Count(b, []byte("\n"))
}

// builtins runs the test plugin as each of types.
func (f *fixture) builtins(types ...string) map[string]func() *exec.Cmd {
	out := map[string]func() *exec.Cmd{}
	for _, typ := range types {
		out[typ] = func() *exec.Cmd {
			bin := f.bin
			if bin == "" {
				bin = testPlugin
			}
			cmd := exec.Command(bin)
			cmd.Env = append(os.Environ(), "HARK_TESTPLUGIN_TYPE="+typ, "HARK_TESTPLUGIN_CONTROL="+f.control, markerEnv+"="+f.marker)
			cmd.Env = append(cmd.Env, f.env...)
			return cmd
		}
	}
	return out
}

// start starts a host running the test plugin as each of types, and closes
// it when the test ends. Before that, it SIGKILLs whatever plugin processes
// of the fixture are left, so that a test that fails with a frozen plugin
// cannot hang in Close.
func (f *fixture) start(t *testing.T, cfg host.Config, types ...string) *host.Host {
	t.Helper()
	cfg.Builtins = f.builtins(types...)
	cfg.Logger = newLogger(f.logs)
	h, err := host.Start(t.Context(), cfg)
	if err != nil {
		t.Fatalf("host.Start: %v", err)
	}
	f.h = h
	t.Cleanup(func() { f.closeHost(t) })
	t.Cleanup(func() { f.killAll(t) })
	return h
}

// closeHost closes the host, bounded.
func (f *fixture) closeHost(t *testing.T) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f.h.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(bound):
		t.Errorf("Close did not return within %v", bound)
	}
}

// killAll SIGKILLs (and SIGCONTs) every live plugin process of the fixture.
func (f *fixture) killAll(t *testing.T) {
	t.Helper()
	for _, pid := range f.allPIDs(t) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		_ = syscall.Kill(pid, syscall.SIGCONT)
	}
}

// pids returns the live plugin processes of typ, children of this process.
func (f *fixture) pids(t *testing.T, typ string) []int {
	t.Helper()
	return f.matching(t, "HARK_TESTPLUGIN_TYPE="+typ)
}

func (f *fixture) allPIDs(t *testing.T) []int {
	t.Helper()
	return f.matching(t, "")
}

func (f *fixture) matching(t *testing.T, env string) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Skipf("cannot list processes (/proc: %v); these tests need Linux /proc", err)
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, state, ok := procStat(pid); !ok || ppid != os.Getpid() || state == "Z" || state == "X" {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil {
			continue
		}
		vars := strings.Split(string(b), "\x00")
		if contains(vars, markerEnv+"="+f.marker) && (env == "" || contains(vars, env)) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// onePID waits for exactly one live plugin process of typ other than those
// in not, and returns it.
func (f *fixture) onePID(t *testing.T, typ string, not ...int) int {
	t.Helper()
	var found []int
	waitUntil(t, "one plugin process of "+typ, func() bool {
		found = found[:0]
		for _, pid := range f.pids(t, typ) {
			if !contains(not, pid) {
				found = append(found, pid)
			}
		}
		return len(found) == 1
	})
	return found[0]
}

func contains[T comparable](list []T, v T) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// procStat returns a process's parent pid and state from /proc/<pid>/stat.
func procStat(pid int) (ppid int, state string, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, "", false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, "", false
	}
	fields := strings.Fields(s[i+1:])
	if len(fields) < 2 {
		return 0, "", false
	}
	ppid, err = strconv.Atoi(fields[1])
	return ppid, fields[0], err == nil
}

// gone reports whether pid has exited.
func gone(pid int) bool {
	_, state, ok := procStat(pid)
	return !ok || state == "Z" || state == "X"
}

// freeze SIGSTOPs pid, as `kill -STOP` does: the process keeps its sockets
// open and answers nothing.
func freeze(t *testing.T, pid int) {
	t.Helper()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatalf("SIGSTOP %d: %v", pid, err)
	}
	waitUntil(t, fmt.Sprintf("process %d to stop", pid), func() bool {
		_, state, _ := procStat(pid)
		return state == "T"
	})
}

// waitUntil polls cond until it holds, failing the test after bound.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", bound, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// delivery is a test plugin delivery: a track event, or a command.
func delivery(test string) sdk.Delivery {
	if test == "" {
		return sdk.Delivery{Body: []byte(`{"type":"track","event":"Tested","userId":"u1"}`)}
	}
	return sdk.Delivery{Body: []byte(`{"test":"` + test + `"}`)}
}

// mustTranslate translates one ordinary delivery with typ and fails the test
// unless it comes back as one event.
func mustTranslate(t *testing.T, h *host.Host, typ string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), bound)
	defer cancel()
	res, err := h.Translate(ctx, typ, []sdk.Delivery{delivery("")})
	if err != nil {
		t.Fatalf("Translate(%s): %v", typ, err)
	}
	if len(res) != 1 || len(res[0].Events) != 1 || res[0].Events[0].Name != "Tested" {
		t.Fatalf("Translate(%s) = %+v, want one event named Tested", typ, res)
	}
}

// goTranslate calls Translate in a goroutine; the channel gets its error.
func goTranslate(h *host.Host, typ, test string) <-chan error {
	out := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*bound)
		defer cancel()
		_, err := h.Translate(ctx, typ, []sdk.Delivery{delivery(test)})
		out <- err
	}()
	return out
}

// wantUnavailable waits (bounded) for a Translate's error, which must wrap
// ErrUnavailable.
func wantUnavailable(t *testing.T, what string, errc <-chan error) {
	t.Helper()
	select {
	case err := <-errc:
		if !errors.Is(err, host.ErrUnavailable) {
			t.Fatalf("%s: Translate returned %v, want an error wrapping ErrUnavailable", what, err)
		}
	case <-time.After(bound):
		t.Fatalf("%s: Translate did not return within %v", what, bound)
	}
}

func info(t *testing.T, h *host.Host, typ string) host.Info {
	t.Helper()
	in, ok := h.Type(typ)
	if !ok {
		t.Fatalf("the host has no plugin %q", typ)
	}
	return in
}

// ---------------------------------------------------------------------------
// 11.3: a stale failure must not kill the replacement.
// ---------------------------------------------------------------------------

// TestStaleFailureSparesReplacement freezes a plugin with two calls in
// flight, started a while apart. The host finds the freeze (by the ping, or
// by the first call's timeout) and replaces the process; the second call was
// made on the old, frozen process, and its failure, however late it comes,
// must not take the replacement down. (TestMarkDownOfOldGeneration reports
// such a late failure directly.)
func TestStaleFailureSparesReplacement(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	h := f.start(t, host.Config{CallTimeout: 2 * time.Second}, "stale")
	mustTranslate(t, h, "stale")
	old := f.onePID(t, "stale")
	freeze(t, old)

	first := goTranslate(h, "stale", "")
	time.Sleep(1500 * time.Millisecond) // the second call starts well after the first
	second := goTranslate(h, "stale", "")
	wantUnavailable(t, "the second call to the frozen plugin", second)

	waitUntil(t, "the replacement to serve", func() bool { return info(t, h, "stale").Healthy })
	mustTranslate(t, h, "stale")
	if in := info(t, h, "stale"); in.Restarts != 1 {
		t.Fatalf("after one freeze the plugin was restarted %d times, want 1 (a stale failure took the replacement down); last error %q", in.Restarts, in.LastError)
	}
	replacement := f.onePID(t, "stale", old)
	mustTranslate(t, h, "stale")
	if now := f.onePID(t, "stale", old); now != replacement {
		t.Fatalf("the replacement process %d was replaced by %d", replacement, now)
	}
	wantUnavailable(t, "the first call to the frozen plugin", first)
}

// TestRestartsCountOnlySuccessfulStarts kills a plugin whose next starts
// fail: failed attempts are not restarts; the one start that works is.
func TestRestartsCountOnlySuccessfulStarts(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	h := f.start(t, host.Config{}, "flaky")
	mustTranslate(t, h, "flaky")
	pid := f.onePID(t, "flaky")
	f.touch(t, "flaky.nostart")
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "three failed start attempts", func() bool { return f.starts("flaky") >= 4 })
	if in := info(t, h, "flaky"); in.Healthy || in.Restarts != 0 || in.LastError == "" {
		t.Fatalf("after failed restarts: %+v, want unhealthy, 0 restarts and the start error", in)
	}
	f.remove(t, "flaky.nostart")
	waitUntil(t, "the plugin to start again", func() bool { return info(t, h, "flaky").Healthy })
	mustTranslate(t, h, "flaky")
	if in := info(t, h, "flaky"); in.Restarts != 1 || in.LastError != "" {
		t.Fatalf("after the restart: %+v, want 1 restart and no error", in)
	}
}

// ---------------------------------------------------------------------------
// 12.1: a frozen plugin.
// ---------------------------------------------------------------------------

// TestFrozenPluginAnswersUnavailable freezes a plugin: a call to it fails
// with ErrUnavailable instead of hanging, another plugin still answers, and
// the host replaces the frozen process by itself.
func TestFrozenPluginAnswersUnavailable(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	h := f.start(t, host.Config{}, "frozen", "other")
	mustTranslate(t, h, "frozen")
	old := f.onePID(t, "frozen")
	freeze(t, old)

	call := goTranslate(h, "frozen", "")
	mustTranslate(t, h, "other")
	wantUnavailable(t, "a call to the frozen plugin", call)
	if in := info(t, h, "frozen"); in.Healthy {
		t.Errorf("after a failed call the frozen plugin is %+v, want unhealthy", in)
	}
	waitUntil(t, "the frozen process to be killed", func() bool { return gone(old) })
	waitUntil(t, "a new process to serve", func() bool { return info(t, h, "frozen").Healthy })
	mustTranslate(t, h, "frozen")
	mustTranslate(t, h, "other")
}

// TestFrozenPluginDetectedWithoutTraffic freezes a plugin nobody calls: the
// host notices by itself, marks it down and replaces it.
func TestFrozenPluginDetectedWithoutTraffic(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	h := f.start(t, host.Config{}, "idle")
	old := f.onePID(t, "idle")
	freeze(t, old)
	waitUntil(t, "the frozen plugin to be reported unhealthy", func() bool { return !info(t, h, "idle").Healthy })
	waitUntil(t, "the frozen process to be killed", func() bool { return gone(old) })
	waitUntil(t, "a new process to serve", func() bool { return info(t, h, "idle").Healthy })
	mustTranslate(t, h, "idle")
}

// TestCloseWithFrozenPlugin closes a host whose plugin is frozen: Close
// returns, and the frozen process is gone.
func TestCloseWithFrozenPlugin(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	h := f.start(t, host.Config{}, "frozen")
	old := f.onePID(t, "frozen")
	freeze(t, old)
	done := make(chan error, 1)
	go func() { done <- h.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(bound):
		t.Fatalf("Close did not return within %v with a frozen plugin", bound)
	}
	if !gone(old) {
		t.Fatalf("the frozen plugin process %d outlived Close", old)
	}
}

// ---------------------------------------------------------------------------
// 12.7: one plugin never stalls another.
// ---------------------------------------------------------------------------

// TestStartDoesNotWaitForHungHandshake starts a host with a plugin that
// hangs before its handshake (with a start timeout of an hour): Start
// returns, the other plugin serves, and calls to the hung one fail with
// ErrUnavailable until it finally starts.
func TestStartDoesNotWaitForHungHandshake(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.touch(t, "slow.hangstart")
	started := make(chan *host.Host, 1)
	go func() {
		cfg := host.Config{StartTimeout: time.Hour, Builtins: f.builtins("slow", "good"), Logger: newLogger(f.logs)}
		h, err := host.Start(context.Background(), cfg)
		if err != nil {
			t.Errorf("host.Start: %v", err)
		}
		started <- h
	}()
	var h *host.Host
	select {
	case h = <-started:
	case <-time.After(bound):
		f.remove(t, "slow.hangstart") // let the old host finish starting, to close it
		f.h = <-started
		t.Cleanup(func() { f.closeHost(t) })
		t.Fatalf("host.Start did not return within %v while a plugin hangs in its handshake", bound)
	}
	if h == nil {
		t.FailNow()
	}
	f.h = h
	t.Cleanup(func() { f.closeHost(t) })
	t.Cleanup(func() { f.killAll(t) })

	mustTranslate(t, h, "good")
	wantUnavailable(t, "a call to the plugin in its handshake", goTranslate(h, "slow", ""))
	if in := info(t, h, "slow"); in.Healthy {
		t.Fatalf("the plugin in its handshake is %+v, want unhealthy", in)
	}
	mustTranslate(t, h, "good")

	f.remove(t, "slow.hangstart")
	waitUntil(t, "the slow plugin to serve", func() bool { return info(t, h, "slow").Healthy })
	mustTranslate(t, h, "slow")
}

// TestHungCallDoesNotBlockOthers keeps a call to one plugin hanging and
// calls another plugin concurrently: those answer, and so do Types and Type.
func TestHungCallDoesNotBlockOthers(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	h := f.start(t, host.Config{CallTimeout: time.Minute}, "hung", "good")
	mustTranslate(t, h, "hung")
	hung := goTranslate(h, "hung", "hang")
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(t.Context(), bound)
			defer cancel()
			if _, err := h.Translate(ctx, "good", []sdk.Delivery{delivery("")}); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("a call to the good plugin while another hangs: %v", err)
	}
	if n := len(h.Types()); n != 2 {
		t.Errorf("Types lists %d plugins, want 2", n)
	}
	select {
	case err := <-hung:
		t.Fatalf("the hung call returned %v already; the test needs it in flight", err)
	default:
	}
}

// syncBuffer collects the host's logs from its goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newLogger(w *syncBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// TestStartingCallWaitsForFirstStart calls a plugin whose first start is
// not done when Start returns: the call waits for it and succeeds.
func TestStartingCallWaitsForFirstStart(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.touch(t, "late.hangstart")
	h := f.start(t, host.Config{StartWait: time.Millisecond, StartingWait: bound}, "late")
	if in := info(t, h, "late"); in.State != host.Starting || in.Healthy {
		t.Fatalf("before its handshake the plugin is %+v, want starting", in)
	}
	call := goTranslate(h, "late", "")
	time.Sleep(200 * time.Millisecond) // the call is waiting
	f.remove(t, "late.hangstart")
	select {
	case err := <-call:
		if err != nil {
			t.Fatalf("a call made while the plugin started: %v, want it to wait and succeed", err)
		}
	case <-time.After(bound):
		t.Fatalf("the call did not return within %v", bound)
	}
	if in := info(t, h, "late"); in.State != host.Up || in.Restarts != 0 || in.PID == 0 {
		t.Fatalf("after its first start the plugin is %+v, want up with a pid and no restart", in)
	}
}

// TestDownPluginFailsAtOnce calls a plugin that was up and is down (its
// restarts fail): the call fails at once, even though calls to a starting
// plugin would wait an hour.
func TestDownPluginFailsAtOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	h := f.start(t, host.Config{StartingWait: time.Hour, CallTimeout: time.Hour}, "down")
	pid := f.onePID(t, "down")
	f.touch(t, "down.nostart")
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the plugin to be down", func() bool { return info(t, h, "down").State == host.Down })
	wantUnavailable(t, "a call to a down plugin", goTranslate(h, "down", ""))
}

// TestCallTimeoutRestartsPlugin lets a call hang past CallTimeout: it fails
// with ErrUnavailable and the stuck process is replaced.
func TestCallTimeoutRestartsPlugin(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	h := f.start(t, host.Config{CallTimeout: time.Second}, "stuck")
	old := f.onePID(t, "stuck")
	wantUnavailable(t, "a call past the call timeout", goTranslate(h, "stuck", "hang"))
	waitUntil(t, "the stuck process to be gone", func() bool { return gone(old) })
	waitUntil(t, "the replacement to serve", func() bool { return info(t, h, "stuck").Healthy })
	mustTranslate(t, h, "stuck")
	if in := info(t, h, "stuck"); in.Restarts != 1 {
		t.Fatalf("after a stuck call: %+v, want 1 restart", in)
	}
}

// TestCrashDuringCall crashes the plugin in the middle of a call.
func TestCrashDuringCall(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	h := f.start(t, host.Config{}, "crashy")
	wantUnavailable(t, "a call that crashes the plugin", goTranslate(h, "crashy", "crash"))
	waitUntil(t, "the replacement to serve", func() bool { return info(t, h, "crashy").Healthy })
	mustTranslate(t, h, "crashy")
	if in := info(t, h, "crashy"); in.Restarts != 1 || in.LastError != "" {
		t.Fatalf("after a crash and a restart: %+v, want 1 restart and no error", in)
	}
}

// TestCallerDeadlineSparesPlugin gives up on a call before CallTimeout: the
// call fails, but the plugin is not to blame and keeps running.
func TestCallerDeadlineSparesPlugin(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	h := f.start(t, host.Config{CallTimeout: time.Minute}, "patient")
	pid := f.onePID(t, "patient")
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	_, err := h.Translate(ctx, "patient", []sdk.Delivery{delivery("hang")})
	if !errors.Is(err, host.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a call whose caller gave up: %v, want ErrUnavailable and DeadlineExceeded", err)
	}
	mustTranslate(t, h, "patient")
	if in := info(t, h, "patient"); !in.Healthy || in.Restarts != 0 || in.PID != pid {
		t.Fatalf("after the caller gave up: %+v, want the same process (%d) up, no restart", in, pid)
	}
}

// TestCallsAfterClose fail with ErrUnavailable, and Close may be repeated.
func TestCallsAfterClose(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	h := f.start(t, host.Config{}, "closed")
	pid := f.onePID(t, "closed")
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if !gone(pid) {
		t.Errorf("the plugin process %d outlived Close", pid)
	}
	wantUnavailable(t, "a call after Close", goTranslate(h, "closed", ""))
	if in := info(t, h, "closed"); in.State != host.Closed || in.Healthy {
		t.Errorf("after Close the plugin is %+v, want closed", in)
	}
}

// TestSlowPingsAreNotAFreeze has every liveness ping of a running plugin
// miss its deadline, as on a machine starved of CPU: the plugin is taken
// down only after missing three in a row, not at the first. A single late
// ping used to kill a healthy plugin, turning a loaded machine's slow
// moment into 503s for every Segment delivery.
func TestSlowPingsAreNotAFreeze(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	h := f.start(t, host.Config{PingInterval: 20 * time.Millisecond, PingTimeout: time.Nanosecond}, "starved")
	waitUntil(t, "the starved plugin to be taken down", func() bool { return info(t, h, "starved").LastError != "" })
	if got := info(t, h, "starved").LastError; !strings.Contains(got, "no answer to 3 liveness ping(s)") {
		t.Fatalf("the plugin was taken down with %q, want it to have missed 3 pings in a row", got)
	}
}
