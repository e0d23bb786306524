package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// harkBin is the hark binary built once for these tests.
var harkBin string

// procTimeout bounds waiting for a hark process to start or to exit.
const procTimeout = 60 * time.Second

// exitGrace is how long a plugin process may take to exit after hark is
// gone. It bounds a wait for correctness, not a speed goal: a plugin that
// notices nothing never exits at all.
const exitGrace = 10 * time.Second

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "hark-serve-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "temp dir:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	harkBin = filepath.Join(dir, "hark")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", harkBin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build hark: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

var (
	listeningLine  = regexp.MustCompile(`^hark is listening on (http://\S+) \(`)
	generatedToken = regexp.MustCompile(`^\s+(hark_[A-Za-z0-9_-]+)\s*$`)
)

// harkProc is one `hark serve` subprocess.
type harkProc struct {
	cmd    *exec.Cmd
	lines  chan string // stdout, line by line; closed at EOF
	stdout []string    // lines read so far
	stderr *syncBuffer
	exited chan struct{} // closed when the process has exited
	err    error         // Wait's result, valid once exited is closed
}

// syncBuffer is a bytes.Buffer safe for the writer goroutine exec starts.
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

// serveEnv is the environment of the subprocess: this one without HARK_*
// variables, so the tests do not depend on the caller's settings, plus env.
//
// The servers keep only 16 MiB of the disk free (HARK_MIN_FREE_DISK) rather
// than the default 192 MiB, so the tests do not depend on how full the
// machine's disk is; TestDiskFull tests the guard itself.
func serveEnv(env ...string) []string {
	out := []string{"HARK_MIN_FREE_DISK=16MiB"}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HARK_") {
			out = append(out, kv)
		}
	}
	return append(out, env...)
}

// launch starts `hark serve --listen 127.0.0.1:0 --data-dir dataDir` with
// the extra environment variables env. The process is killed when the test
// ends if it is still running.
func launch(t *testing.T, dataDir string, env ...string) *harkProc {
	t.Helper()
	return launchWith(t, dataDir, nil, env...)
}

// launchWith is launch with extra `hark serve` flags.
func launchWith(t *testing.T, dataDir string, flags []string, env ...string) *harkProc {
	t.Helper()
	cmd := exec.Command(harkBin, append([]string{"serve", "--listen", "127.0.0.1:0", "--data-dir", dataDir}, flags...)...)
	cmd.Env = serveEnv(env...)
	p := &harkProc{cmd: cmd, lines: make(chan string, 256), stderr: &syncBuffer{}, exited: make(chan struct{})}
	cmd.Stderr = p.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start hark: %v", err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
		_, _ = io.Copy(io.Discard, stdout)
		p.err = cmd.Wait() // after all reads from the pipe, as exec requires
		close(p.exited)
	}()
	// A test that fails half-way still stops hark the gentle way first:
	// SIGKILL would leave its plugin processes behind.
	t.Cleanup(func() {
		for _, sig := range []os.Signal{syscall.SIGTERM, os.Kill} {
			select {
			case <-p.exited:
				return
			default:
			}
			_ = cmd.Process.Signal(sig)
			select {
			case <-p.exited:
				return
			case <-time.After(procTimeout / 2):
			}
		}
		t.Errorf("hark (pid %d) did not exit after SIGTERM and SIGKILL", cmd.Process.Pid)
	})
	return p
}

// waitListening reads stdout up to the "hark is listening on" line and
// returns the base URL it names and the generated admin token printed
// before it, if any.
func (p *harkProc) waitListening(t *testing.T) (base, token string) {
	t.Helper()
	deadline := time.After(procTimeout)
	for {
		select {
		case line, ok := <-p.lines:
			if !ok {
				<-p.exited
				t.Fatalf("hark exited (%v) before listening; stdout:\n%s\nstderr:\n%s", p.err, strings.Join(p.stdout, "\n"), p.stderr)
			}
			p.stdout = append(p.stdout, line)
			if m := generatedToken.FindStringSubmatch(line); m != nil && token == "" {
				token = m[1]
			}
			if m := listeningLine.FindStringSubmatch(line); m != nil {
				return m[1], token
			}
		case <-deadline:
			t.Fatalf("hark did not print its listening line within %v; stdout:\n%s\nstderr:\n%s", procTimeout, strings.Join(p.stdout, "\n"), p.stderr)
		}
	}
}

// wait waits for the process to exit and returns Wait's result; it also
// collects the rest of stdout.
func (p *harkProc) wait(t *testing.T) error {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(procTimeout):
		t.Fatalf("hark did not exit within %v; stderr:\n%s", procTimeout, p.stderr)
	}
	for line := range p.lines {
		p.stdout = append(p.stdout, line)
	}
	return p.err
}

// stop sends SIGTERM and waits for the process to exit.
func (p *harkProc) stop(t *testing.T) error {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	return p.wait(t)
}

// getEnvironments calls GET /v1/environments with the bearer token (none
// when empty) and returns the status and body.
func getEnvironments(t *testing.T, base, token string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/environments", nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET /v1/environments: %v", err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, string(body)
}

// wantAuth checks that base accepts token and refuses a missing or wrong one.
func wantAuth(t *testing.T, base, token string) {
	t.Helper()
	tests := []struct {
		name  string
		token string
		want  int
	}{
		{"right token", token, http.StatusOK},
		{"no token", "", http.StatusUnauthorized},
		{"wrong token", token + "-wrong", http.StatusUnauthorized},
	}
	for _, tt := range tests {
		status, body := getEnvironments(t, base, tt.token)
		if status != tt.want {
			t.Fatalf("%s: GET /v1/environments = %d, want %d; body %s", tt.name, status, tt.want, body)
		}
		if tt.want == http.StatusOK && !strings.Contains(body, `"development"`) {
			t.Fatalf("%s: GET /v1/environments body %s lacks the development environment", tt.name, body)
		}
	}
}

func wantMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("stat %s: %v", path, err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Fatalf("%s mode = %o, want %o", path, got, want)
	}
}

// childPIDs lists the live child processes of pid, from /proc; the test is
// skipped where there is no /proc.
func childPIDs(t *testing.T, pid int) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Skipf("no /proc to find child processes: %v", err)
	}
	var kids []int
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, state, ok := procStat(child); ok && ppid == pid && state != "Z" {
			kids = append(kids, child)
		}
	}
	return kids
}

// procStat returns the parent pid and state of pid; ok is false when the
// process is gone.
func procStat(pid int) (ppid int, state string, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, "", false
	}
	// pid (comm) state ppid ...; comm may hold spaces and parentheses.
	i := strings.LastIndex(string(b), ") ")
	if i < 0 {
		return 0, "", false
	}
	fields := strings.Fields(string(b)[i+2:])
	if len(fields) < 2 {
		return 0, "", false
	}
	ppid, err = strconv.Atoi(fields[1])
	return ppid, fields[0], err == nil
}

// alive returns those of pids that still run (zombies count as gone),
// waiting up to exitGrace for them to exit.
func alive(pids []int) []int {
	deadline := time.Now().Add(exitGrace)
	for {
		var left []int
		for _, pid := range pids {
			if _, state, ok := procStat(pid); ok && state != "Z" {
				left = append(left, pid)
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestServeGeneratesToken(t *testing.T) {
	t.Parallel()
	dataDir := filepath.Join(t.TempDir(), "data") // hark creates it

	p := launch(t, dataDir)
	base, token := p.waitListening(t)
	if token == "" {
		t.Fatalf("first start printed no generated token; stdout:\n%s", strings.Join(p.stdout, "\n"))
	}
	wantMode(t, dataDir, 0o700)
	tokenFile := filepath.Join(dataDir, "admin-token")
	wantMode(t, tokenFile, 0o600)
	if b, err := os.ReadFile(tokenFile); err != nil || strings.TrimSpace(string(b)) != token {
		t.Fatalf("%s = %q, %v; want the printed token %q", tokenFile, b, err, token)
	}
	wantAuth(t, base, token)
	plugins := childPIDs(t, p.cmd.Process.Pid)
	if len(plugins) == 0 {
		t.Fatalf("hark (pid %d) runs no plugin process", p.cmd.Process.Pid)
	}
	if err := p.stop(t); err != nil {
		t.Fatalf("hark after SIGTERM: %v, want exit status 0; stderr:\n%s", err, p.stderr)
	}
	if left := alive(plugins); len(left) > 0 {
		t.Fatalf("plugin processes %v outlived hark's graceful shutdown", left)
	}

	// A second start reads the saved token and does not print it again.
	p = launch(t, dataDir)
	base, again := p.waitListening(t)
	if again != "" || strings.Contains(strings.Join(p.stdout, "\n"), token) {
		t.Fatalf("second start printed the token again; stdout:\n%s", strings.Join(p.stdout, "\n"))
	}
	wantAuth(t, base, token)
	if err := p.stop(t); err != nil {
		t.Fatalf("hark after SIGTERM: %v, want exit status 0; stderr:\n%s", err, p.stderr)
	}
}

func TestServeTokenFromEnv(t *testing.T) {
	t.Parallel()
	dataDir := filepath.Join(t.TempDir(), "data")

	p := launch(t, dataDir, "HARK_ADMIN_TOKEN=mytoken")
	base, token := p.waitListening(t)
	out := strings.Join(p.stdout, "\n")
	if token != "" || strings.Contains(out, "Generated") || strings.Contains(out, "mytoken") {
		t.Fatalf("with HARK_ADMIN_TOKEN set hark printed a token; stdout:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "admin-token")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("with HARK_ADMIN_TOKEN set, admin-token: %v; want no such file", err)
	}
	wantAuth(t, base, "mytoken")
	if err := p.stop(t); err != nil {
		t.Fatalf("hark after SIGTERM: %v, want exit status 0; stderr:\n%s", err, p.stderr)
	}
}

// TestServeKilledLeavesNoPlugins checks that the plugin processes hark
// starts do not outlive it when it dies without shutting down (SIGKILL, the
// OOM killer, a crash).
func TestServeKilledLeavesNoPlugins(t *testing.T) {
	t.Parallel()
	p := launch(t, filepath.Join(t.TempDir(), "data"), "HARK_ADMIN_TOKEN=mytoken")
	p.waitListening(t)
	plugins := childPIDs(t, p.cmd.Process.Pid)
	if len(plugins) == 0 {
		t.Fatalf("hark (pid %d) runs no plugin process", p.cmd.Process.Pid)
	}
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = p.wait(t)
	if left := alive(plugins); len(left) > 0 {
		for _, pid := range left { // do not leave them behind ourselves
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		t.Fatalf("plugin processes %v outlived a killed hark by %v (killed them now)", left, exitGrace)
	}
}

func TestServeDataDirInUse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  []string // of the second hark serve
	}{
		{"same admin token", []string{"HARK_ADMIN_TOKEN=mytoken"}},
		{"no admin token", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dataDir := filepath.Join(t.TempDir(), "data")
			first := launch(t, dataDir, "HARK_ADMIN_TOKEN=mytoken")
			base, _ := first.waitListening(t)

			second := launch(t, dataDir, tt.env...)
			err := second.wait(t)
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() == 0 {
				t.Fatalf("second hark serve on the same data dir: %v, want a non-zero exit; stdout:\n%s", err, strings.Join(second.stdout, "\n"))
			}
			if !strings.Contains(second.stderr.String(), "in use") {
				t.Fatalf("second hark serve stderr does not say the data dir is in use:\n%s", second.stderr)
			}
			// A start that fails must not leave behind an admin token that
			// nobody was shown: the next start would use it silently.
			if b, err := os.ReadFile(filepath.Join(dataDir, "admin-token")); err == nil {
				saved := strings.TrimSpace(string(b))
				if !strings.Contains(strings.Join(second.stdout, "\n"), saved) {
					t.Fatalf("the failed hark serve saved admin token %q in the data dir without printing it", saved)
				}
			}

			wantAuth(t, base, "mytoken") // the first one is unharmed
			if err := first.stop(t); err != nil {
				t.Fatalf("first hark after SIGTERM: %v, want exit status 0; stderr:\n%s", err, first.stderr)
			}
		})
	}
}

// TestServeConsole: `hark serve` serves the web console at / and says
// where; --no-console (or HARK_NO_CONSOLE) turns it off, leaving / to the
// API (which wants the token).
func TestServeConsole(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		flags []string
		env   []string
		want  bool
	}{
		{"default", nil, nil, true},
		{"flag", []string{"--no-console"}, nil, false},
		{"env", nil, []string{"HARK_NO_CONSOLE=true"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := launchWith(t, filepath.Join(t.TempDir(), "data"), tc.flags, append(tc.env, "HARK_ADMIN_TOKEN=tok")...)
			base, _ := p.waitListening(t)
			res, err := http.Get(base + "/")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			served := res.StatusCode == http.StatusOK && strings.Contains(string(body), `<div id="app">`)
			if served != tc.want {
				t.Errorf("GET / = %d (console served: %v), want console %v", res.StatusCode, served, tc.want)
			}
			if !tc.want && res.StatusCode != http.StatusUnauthorized {
				t.Errorf("GET / without the console = %d, want the API's 401", res.StatusCode)
			}
			said := strings.Contains(strings.Join(p.stdout, "\n"), "The console is at "+base+"/")
			if said != tc.want {
				t.Errorf("stdout mentions the console: %v, want %v; stdout:\n%s", said, tc.want, strings.Join(p.stdout, "\n"))
			}
			wantAuth(t, base, "tok")
			if err := p.stop(t); err != nil {
				t.Fatalf("hark after SIGTERM: %v; stderr:\n%s", err, p.stderr)
			}
		})
	}
}
