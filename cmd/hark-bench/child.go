package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/harkhq/hark/server"
)

// childCommand runs hark itself inside this binary, in a child process, so
// its memory and CPU time are its own and measurable; baselineCommand runs
// the baseline the same way.
const (
	childCommand    = "serve-child"
	baselineCommand = "baseline-child"
)

type childServer struct {
	cmd   *exec.Cmd
	url   string
	token string
	dir   string
}

// startChild starts hark (childCommand) or, with the baseline command, the
// bare baseline server, in a process of its own.
func startChild(ctx context.Context, command string) (*childServer, error) {
	c, err := startChildWith(ctx, command, "bench_"+rand.Text(), "listening ")
	if err != nil {
		return nil, err
	}
	c.url = "http://" + c.url
	return c, nil
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
	for _, pid := range children(c.cmd.Process.Pid) {
		total += hwm(pid)
	}
	return total
}

// cpu is the CPU time the child and its plugins have used.
func (c *childServer) cpu() cpuUse { return cpuOf(c.cmd.Process.Pid) }

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
	store := fs.String("store", "", "server.Config.Store: empty for Badger, nats://… for cluster mode")
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
		Store:      *store,
		PublicURL:  "http://" + ln.Addr().String(),
		AdminToken: os.Getenv("HARK_ADMIN_TOKEN"),
		// --destination sends to a receiver in the bench process.
		AllowPrivateDestinations: true,
		Logger:                   childLogger(),
		BuiltinPlugins: map[string]func() *exec.Cmd{
			"segment": func() *exec.Cmd { return exec.Command(self, "plugin") },
			"http":    func() *exec.Cmd { return exec.Command(self, "plugin", "http") },
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
	// HARK_BENCH_HEAPPROFILE writes a heap profile of the server side at
	// the end, for `go tool pprof -sample_index=inuse_space`.
	if path := os.Getenv("HARK_BENCH_HEAPPROFILE"); path != "" {
		if f, err := os.Create(path); err == nil {
			_ = pprof.WriteHeapProfile(f)
			f.Close()
		}
	}
	// HARK_BENCH_MEMSTATS prints how much of the server's memory is Go's,
	// to tell it from Badger's mmapped files in the peak RSS.
	if os.Getenv("HARK_BENCH_MEMSTATS") != "" {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		fmt.Fprintf(os.Stderr, "hark-bench server: Go runtime holds %d MiB from the OS (heap %d MiB, of which in use now %d MiB)\n",
			m.Sys>>20, m.HeapSys>>20, m.HeapInuse>>20)
		// Resident now, by kind: anonymous (Go's heap and stacks) and
		// file-backed (Badger's memory-mapped tables and value log, page
		// cache the kernel can drop).
		if status, err := os.ReadFile("/proc/self/status"); err == nil {
			for _, line := range strings.Split(string(status), "\n") {
				if strings.HasPrefix(line, "RssAnon:") || strings.HasPrefix(line, "RssFile:") {
					fmt.Fprintln(os.Stderr, "hark-bench server: "+strings.Join(strings.Fields(line), " "))
				}
			}
		}
	}
	return err
}

// runBaseline serves the baseline — a handler that only reads and decodes
// each body, the least any webhook receiver does — on a loopback port it
// prints, until SIGTERM.
func runBaseline() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		var v any
		if err == nil {
			err = json.Unmarshal(b, &v)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"events":[]}`))
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	fmt.Println("listening " + ln.Addr().String())
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// childLogger is the server's logger: its warnings and errors on stderr
// with HARK_BENCH_LOG=1, else none (they would interleave with the results).
func childLogger() *slog.Logger {
	if os.Getenv("HARK_BENCH_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}
