package host_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/harkhq/hark/plugins/host"
	"github.com/harkhq/hark/plugins/sdk"
)

// serveSegmentEnv makes this test binary, re-executed, serve the real
// Segment plugin (segment.Serve, what `hark plugin segment` runs), so the
// benchmark measures the hop between two processes as hark pays it.
const serveSegmentEnv = "HARK_HOST_TEST_SERVE_SEGMENT"

// benchEvent is a Segment track as analytics.js sends it (the event of
// plugins/segment's benchmarks and of cmd/hark-bench).
const benchEvent = `{"type":"track","event":"Order Completed","userId":"user-42","anonymousId":"anon-7","messageId":"ajs-next-1732700000000-3f1e","timestamp":"2026-11-27T10:00:00.000Z","context":{"library":{"name":"analytics.js","version":"2.11.1"},"ip":"203.0.113.7","userAgent":"Mozilla/5.0","page":{"path":"/checkout","url":"https://example.com/checkout"}},"properties":{"orderId":"o-1","total":49.5,"currency":"EUR","products":[{"sku":"a-1","qty":2},{"sku":"b-2","qty":1}]}}`

// benchDeliveries returns n single-event deliveries with distinct message
// ids and the headers a webhook request carries.
func benchDeliveries(n int) []sdk.Delivery {
	ds := make([]sdk.Delivery, n)
	for i := range ds {
		body := strings.Replace(benchEvent, "3f1e", "3f1e-"+strconv.Itoa(i), 1)
		ds[i] = sdk.Delivery{
			Header: http.Header{
				"Accept-Encoding": {"gzip"},
				"Content-Length":  {strconv.Itoa(len(body))},
				"Content-Type":    {"application/json"},
				"User-Agent":      {"Segment.io/1.0"},
				"X-Forwarded-For": {"203.0.113.7"},
			},
			Body:        []byte(body),
			ContentType: "application/json",
			Settings:    map[string]string{},
		}
	}
	return ds
}

// BenchmarkPluginHop measures one Translate call through the host to the
// real Segment plugin running as its own process, with 1, 32 and 100
// single-event deliveries per call: the plugin hop of the ingest path, over
// the plugin's TranslateStream (stream) and with a call per batch as
// protocol 1.0 plugins get (unary). Beside ns/op it reports the CPU time
// per delivery of both processes, from utime+stime in /proc (this process:
// the host and the caller; the plugin's process), which moves less than
// wall time on a shared machine.
func BenchmarkPluginHop(b *testing.B) {
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	for _, mode := range []string{"stream", "unary"} {
		b.Run(mode, func(b *testing.B) {
			h, err := host.Start(context.Background(), host.Config{
				Builtins: map[string]func() *exec.Cmd{"segment": func() *exec.Cmd {
					cmd := exec.Command(self)
					cmd.Env = append(os.Environ(), serveSegmentEnv+"=1")
					return cmd
				}},
				StartWait: time.Minute,
				UnaryOnly: mode == "unary",
			})
			if err != nil {
				b.Fatal(err)
			}
			defer h.Close()
			in, _ := h.Type("segment")
			if !in.Healthy || in.PID == 0 || in.Stream != (mode == "stream") {
				b.Fatalf("the Segment plugin is %+v, want it up, streaming: %v", in, mode == "stream")
			}
			for _, n := range []int{1, 32, 100} {
				b.Run(fmt.Sprintf("deliveries=%d", n), func(b *testing.B) { benchmarkHop(b, h, in.PID, n) })
			}
		})
	}
}

func benchmarkHop(b *testing.B, h *host.Host, pid, n int) {
	ds := benchDeliveries(n)
	ctx := context.Background()
	translate := func() {
		res, err := h.Translate(ctx, "segment", ds)
		if err != nil || len(res) != n || len(res[0].Events) != 1 {
			b.Fatalf("translate: %v %+v", err, res)
		}
	}
	translate() // warm the connection
	b.ReportAllocs()
	hostCPU, pluginCPU := cpuTime(b, os.Getpid()), cpuTime(b, pid)
	for b.Loop() {
		translate()
	}
	hostCPU, pluginCPU = cpuTime(b, os.Getpid())-hostCPU, cpuTime(b, pid)-pluginCPU
	deliveries := float64(b.N * n)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/deliveries, "ns/delivery")
	b.ReportMetric(float64((hostCPU+pluginCPU).Microseconds())/deliveries, "cpu-µs/delivery")
	b.ReportMetric(float64(hostCPU.Microseconds())/deliveries, "host-cpu-µs/delivery")
	b.ReportMetric(float64(pluginCPU.Microseconds())/deliveries, "plugin-cpu-µs/delivery")
}

// userHZ is the unit of utime and stime in /proc/<pid>/stat: USER_HZ, 100
// on Linux whatever the kernel's tick rate.
const userHZ = 100

// cpuTime is the user+system CPU time process pid has used, from
// /proc/<pid>/stat (fields 14 and 15).
func cpuTime(b *testing.B, pid int) time.Duration {
	b.Helper()
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		b.Skipf("read the CPU time of process %d: %v (this benchmark needs Linux /proc)", pid, err)
	}
	s := string(raw)
	// After "pid (comm)" come state (field 3) … utime (14) and stime (15).
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		b.Fatalf("/proc/%d/stat has %d fields after the command", pid, len(f))
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		b.Fatalf("/proc/%d/stat: utime %q, stime %q", pid, f[11], f[12])
	}
	return time.Duration(utime+stime) * time.Second / userHZ
}
