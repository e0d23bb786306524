package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/harkhq/hark/server"
)

// childCommand runs hark itself inside this binary, in a child process, so
// its memory is its own and measurable.
const childCommand = "serve-child"

type childServer struct {
	cmd   *exec.Cmd
	url   string
	token string
	dir   string
}

func startChild(ctx context.Context) (*childServer, error) {
	dir, err := os.MkdirTemp("", "hark-bench-")
	if err != nil {
		return nil, err
	}
	token := "bench_" + rand.Text()
	cmd := exec.CommandContext(ctx, os.Args[0], childCommand, "--data-dir", dir)
	cmd.Env = append(os.Environ(), "HARK_ADMIN_TOKEN="+token)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &childServer{cmd: cmd, token: token, dir: dir}
	lines := bufio.NewScanner(out)
	deadline := time.AfterFunc(60*time.Second, func() { cmd.Process.Kill() })
	defer deadline.Stop()
	for lines.Scan() {
		if addr, ok := strings.CutPrefix(lines.Text(), "listening "); ok {
			c.url = "http://" + addr
			return c, nil
		}
	}
	c.stop()
	return nil, errors.New("the hark server did not start")
}

func (c *childServer) stop() {
	c.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		c.cmd.Process.Kill()
	}
	os.RemoveAll(c.dir)
}

// peakRSS is the child's and its plugins' high-water resident memory.
func (c *childServer) peakRSS() float64 {
	total := hwm(c.cmd.Process.Pid)
	entries, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, e := range entries {
		b, err := os.ReadFile(e)
		if err != nil {
			continue
		}
		// Field 4 of /proc/pid/stat is the parent pid (after "pid (comm) state").
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) > 1 && f[1] == strconv.Itoa(c.cmd.Process.Pid) {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(e)))
			total += hwm(pid)
		}
	}
	return total
}

// hwm reads VmHWM (peak resident set) of a process, in MiB.
func hwm(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return float64(kb) / 1024
		}
	}
	return 0
}

// runChild is the server side: hark with its plugins re-executed from this
// binary, on a loopback port it prints.
func runChild(args []string) error {
	fs := flag.NewFlagSet(childCommand, flag.ContinueOnError)
	dir := fs.String("data-dir", "", "data dir")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// HARK_BENCH_CPUPROFILE writes a CPU profile of the server side, for
	// `go tool pprof`.
	if path := os.Getenv("HARK_BENCH_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	srv, err := server.New(ctx, server.Config{
		DataDir:    *dir,
		PublicURL:  "http://" + ln.Addr().String(),
		AdminToken: os.Getenv("HARK_ADMIN_TOKEN"),
		BuiltinPlugins: map[string]func() *exec.Cmd{
			"segment": func() *exec.Cmd { return exec.Command(self, "plugin") },
		},
	})
	if err != nil {
		return err
	}
	defer srv.Close()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	fmt.Println("listening " + ln.Addr().String())
	err = srv.Serve(ln)
	// HARK_BENCH_MEMSTATS prints how much of the server's memory is Go's,
	// to tell it from Badger's mmapped files in the peak RSS.
	if os.Getenv("HARK_BENCH_MEMSTATS") != "" {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		fmt.Fprintf(os.Stderr, "hark-bench server: Go runtime holds %d MiB from the OS (heap %d MiB, of which in use now %d MiB)\n",
			m.Sys>>20, m.HeapSys>>20, m.HeapInuse>>20)
	}
	return err
}
