// Command hark-bench measures hark's webhook path under load, side by side
// with a baseline: a bare net/http server that only reads and JSON-decodes
// each body, hit by the same client in the same run. The ratio of the two is
// the figure that travels between machines.
//
//	go run ./cmd/hark-bench --compare             # 32 connections, single events, 10 s, and the baseline
//	go run ./cmd/hark-bench --batch 100           # Segment HTTP API batches of 100
//	go run ./cmd/hark-bench --triggers 10000      # 10,000 triggers, 10 on the event
//	go run ./cmd/hark-bench --url http://host:8080 --token T   # an existing server
//
// Without --url it starts its own hark (this binary re-executed, with an
// embedded Badger in a temporary data dir, fsync on every commit as in
// production), so hark's peak RSS can be read from /proc.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/durationpb"

	harkv1 "github.com/harkhq/hark/gen/hark/v1"
	"github.com/harkhq/hark/gen/hark/v1/harkv1connect"
	httpsource "github.com/harkhq/hark/plugins/http"
	"github.com/harkhq/hark/plugins/segment"
)

type options struct {
	url         string
	token       string
	connections int
	duration    time.Duration
	batch       int
	triggers    int
	warmup      time.Duration
	json        bool
	compare     bool
	rate        float64
	destination string
	cluster     int
}

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case childCommand:
			if err := runChild(os.Args[2:]); err != nil {
				fmt.Fprintln(os.Stderr, "hark-bench server:", err)
				os.Exit(1)
			}
			return
		case natsCommand:
			if err := runNATSChild(os.Args[2:]); err != nil {
				fmt.Fprintln(os.Stderr, "hark-bench nats:", err)
				os.Exit(1)
			}
			return
		case baselineCommand:
			if err := runBaseline(); err != nil {
				fmt.Fprintln(os.Stderr, "hark-bench baseline:", err)
				os.Exit(1)
			}
			return
		case "plugin":
			if len(os.Args) > 2 && os.Args[2] == "http" {
				httpsource.Serve()
				return
			}
			segment.Serve()
			return
		}
	}
	var o options
	flag.StringVar(&o.url, "url", "", "base URL of a running hark (default: start one with a temporary data dir)")
	flag.StringVar(&o.token, "token", os.Getenv("HARK_TOKEN"), "admin token of --url's server")
	flag.IntVar(&o.connections, "connections", 32, "concurrent connections")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "how long each measurement runs")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "load before each measurement, not counted")
	flag.IntVar(&o.batch, "batch", 1, "events per request: 1 sends single events, more sends HTTP API batches")
	flag.IntVar(&o.triggers, "triggers", 10, "triggers in the environment; 10 of them are on the benchmark event")
	flag.BoolVar(&o.json, "json", false, "print the results as JSON")
	flag.BoolVar(&o.compare, "compare", false, "also measure the baseline (a bare net/http server that reads and decodes each body) with the same load, in its own process, and print both ratios: throughput and CPU per event")
	flag.StringVar(&o.destination, "destination", "", "webhook: also send every run to a webhook destination, a receiver in this process that verifies each signature")
	flag.Float64Var(&o.rate, "rate", 0, "requests per second across all connections (0: as fast as the server answers); latency at a fixed rate is what senders see")
	flag.IntVar(&o.cluster, "cluster", 0, "run this many hark nodes in cluster mode, on a 3-server NATS JetStream cluster in a process of its own, instead of one on Badger; the connections are spread over the nodes")
	flag.Parse()
	if err := run(context.Background(), o); err != nil {
		fmt.Fprintln(os.Stderr, "hark-bench:", err)
		os.Exit(1)
	}
}

// result is one measurement.
type result struct {
	Name        string  `json:"name"`
	Requests    int64   `json:"requests"`
	Events      int64   `json:"events"`
	Errors      int64   `json:"errors"`
	Seconds     float64 `json:"seconds"`
	RequestsSec float64 `json:"requests_per_second"`
	EventsSec   float64 `json:"events_per_second"`
	P50ms       float64 `json:"p50_ms"`
	P99ms       float64 `json:"p99_ms"`
	PeakRSSMiB  float64 `json:"peak_rss_mib,omitempty"`
	// CPU per event (per request for the baseline), in µs of user+system
	// time of the server process and of its plugin processes, from /proc,
	// over the measured interval.
	CPUServerUs float64 `json:"cpu_server_us_per_event,omitempty"`
	CPUPluginUs float64 `json:"cpu_plugin_us_per_event,omitempty"`
	// CPUNATSUs is the NATS servers' CPU per event (--cluster), not in
	// CPUUs.
	CPUNATSUs  float64 `json:"cpu_nats_us_per_event,omitempty"`
	FirstError string  `json:"first_error,omitempty"`
}

// CPUUs is the total CPU per event.
func (r result) CPUUs() float64 { return r.CPUServerUs + r.CPUPluginUs }

// outboxResult is what the receiver of --destination saw.
type outboxResult struct {
	Delivered     int64   `json:"delivered"`
	DeliveredSec  float64 `json:"delivered_per_second"`
	BadSignatures int64   `json:"bad_signatures"`
	PendingStart  float64 `json:"outbox_pending_at_start"`
	PendingEnd    float64 `json:"outbox_pending_at_end"`
}

type report struct {
	Rate        float64       `json:"rate,omitempty"`
	Connections int           `json:"connections"`
	Batch       int           `json:"batch"`
	Triggers    int           `json:"triggers"`
	Duration    string        `json:"duration"`
	CPUs        int           `json:"cpus"`
	Hark        result        `json:"hark"`
	Outbox      *outboxResult `json:"outbox,omitempty"`
	Baseline    *result       `json:"baseline,omitempty"`
	// Cluster mode: nodes, and the NATS messages each ingest commit cost
	// (sent by hark, received by hark), over the measurement.
	Nodes           int      `json:"nodes,omitempty"`
	NATSSentCommit  float64  `json:"nats_sent_per_commit,omitempty"`
	NATSRecvCommit  float64  `json:"nats_received_per_commit,omitempty"`
	EventsPerCommit float64  `json:"events_per_commit,omitempty"`
	Ratio           *float64 `json:"ratio_requests,omitempty"`
	CPURatio        *float64 `json:"ratio_cpu_per_event,omitempty"`
}

func run(ctx context.Context, o options) error {
	if o.batch < 1 || o.connections < 1 || o.triggers < 1 {
		return errors.New("--batch, --connections and --triggers must be at least 1")
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.connections * 2, MaxConnsPerHost: o.connections * 2}}
	var (
		child   *childServer
		cluster *benchCluster
		cpu     func() cpuUse
		peak    func() float64
	)
	switch {
	case o.url != "" && o.cluster > 0:
		return errors.New("--cluster starts its own nodes: drop --url")
	case o.cluster > 0:
		var err error
		if cluster, err = startCluster(ctx, o.cluster); err != nil {
			return err
		}
		defer cluster.stop()
		o.url, o.token = cluster.nodes[0].url, cluster.nodes[0].token
		cpu, peak = cluster.cpu, cluster.peakRSS
	case o.url == "":
		var err error
		if child, err = startChild(ctx, childCommand); err != nil {
			return err
		}
		defer child.stop()
		o.url, o.token = child.url, child.token
		cpu, peak = child.cpu, child.peakRSS
	}
	var recv *receiver
	if o.destination != "" {
		if o.destination != "webhook" {
			return fmt.Errorf("--destination %q: only webhook is measured", o.destination)
		}
		var err error
		if recv, err = startReceiver(); err != nil {
			return err
		}
		defer recv.stop()
	}
	ingest, err := setup(ctx, client, o, recv)
	if err != nil {
		return fmt.Errorf("set up hark: %w", err)
	}
	rep := report{Rate: o.rate, Connections: o.connections, Batch: o.batch, Triggers: o.triggers, Duration: o.duration.String(), CPUs: numCPU(), Nodes: o.cluster}
	targets := []string{ingest}
	if cluster != nil {
		// The same webhook path on every node.
		path := strings.TrimPrefix(ingest, o.url)
		targets = targets[:0]
		for _, n := range cluster.nodes {
			targets = append(targets, n.url+path)
		}
	}

	fmt.Fprintf(os.Stderr, "hark-bench: measuring hark (%s)…\n", o.url)
	var pendingStart float64
	if recv != nil {
		pendingStart = outboxPending(ctx, client, o)
		recv.reset()
	}
	var sent0, recv0, commits0 float64
	if cluster != nil {
		sent0, recv0, commits0 = cluster.natsTraffic(ctx, client, o.token)
	}
	rep.Hark = load(ctx, client, targets, o, "hark", cpu)
	if cluster != nil {
		sent, recv, commits := cluster.natsTraffic(ctx, client, o.token)
		if n := commits - commits0; n > 0 {
			rep.NATSSentCommit, rep.NATSRecvCommit = (sent-sent0)/n, (recv-recv0)/n
			rep.EventsPerCommit = float64(rep.Hark.Events) / n
		}
	}
	if recv != nil {
		rep.Outbox = recv.result(rep.Hark.Seconds)
		rep.Outbox.PendingStart = pendingStart
		rep.Outbox.PendingEnd = outboxPending(ctx, client, o)
	}
	if peak != nil {
		rep.Hark.PeakRSSMiB = peak()
	}
	if o.compare {
		fmt.Fprintln(os.Stderr, "hark-bench: measuring the baseline…")
		base, err := startChild(ctx, baselineCommand)
		if err != nil {
			return err
		}
		b := load(ctx, client, []string{base.url + "/integrations/receive/baseline"}, o, "baseline", base.cpu)
		base.stop()
		rep.Baseline = &b
		if b.RequestsSec > 0 {
			ratio := rep.Hark.RequestsSec / b.RequestsSec
			rep.Ratio = &ratio
		}
		if b.CPUUs() > 0 && rep.Hark.CPUUs() > 0 {
			ratio := rep.Hark.CPUUs() / b.CPUUs()
			rep.CPURatio = &ratio
		}
	}
	if o.json {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	printTable(rep)
	return nil
}

func numCPU() int {
	n := 0
	b, err := os.ReadFile("/proc/cpuinfo")
	if err == nil {
		n = strings.Count(string(b), "\nprocessor") + 1
	}
	return n
}

func printTable(rep report) {
	rate := "as fast as answered"
	if rep.Rate > 0 {
		rate = fmt.Sprintf("%.0f requests/s", rep.Rate)
	}
	fmt.Printf("connections %d, batch %d, triggers %d, %s, %s per measurement, %d CPUs\n\n", rep.Connections, rep.Batch, rep.Triggers, rate, rep.Duration, rep.CPUs)
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "\trequests/s\tevents/s\tp50 ms\tp99 ms\terrors\tpeak RSS MiB\tCPU µs/event (server + plugin)\t")
	row := func(r result) {
		rss := "-"
		if r.PeakRSSMiB > 0 {
			rss = strconv.FormatFloat(r.PeakRSSMiB, 'f', 1, 64)
		}
		cpu := "-"
		if r.CPUUs() > 0 {
			cpu = fmt.Sprintf("%.0f (%.0f + %.0f)", r.CPUUs(), r.CPUServerUs, r.CPUPluginUs)
		}
		fmt.Fprintf(w, "%s\t%.0f\t%.0f\t%.2f\t%.2f\t%d\t%s\t%s\t\n", r.Name, r.RequestsSec, r.EventsSec, r.P50ms, r.P99ms, r.Errors, rss, cpu)
	}
	row(rep.Hark)
	if rep.Baseline != nil {
		row(*rep.Baseline)
	}
	w.Flush()
	if rep.Ratio != nil {
		fmt.Printf("\nratio hark/baseline (requests/s): %.2f\n", *rep.Ratio)
	}
	if rep.CPURatio != nil {
		fmt.Printf("ratio hark/baseline (CPU per event): %.1f\n", *rep.CPURatio)
	}
	if rep.Nodes > 0 {
		fmt.Printf("\ncluster mode: %d hark nodes on 3 NATS servers; NATS CPU %.0f µs/event (not in hark's figure); per ingest commit (%.1f events): %.1f messages to NATS, %.1f from it\n",
			rep.Nodes, rep.Hark.CPUNATSUs, rep.EventsPerCommit, rep.NATSSentCommit, rep.NATSRecvCommit)
	}
	if o := rep.Outbox; o != nil {
		fmt.Printf("\nwebhook destination: %d deliveries verified and answered (%.0f/s), %d bad signatures; outbox pending %.0f at the start, %.0f at the end\n",
			o.Delivered, o.DeliveredSec, o.BadSignatures, o.PendingStart, o.PendingEnd)
	}
	if rep.Hark.FirstError != "" {
		fmt.Printf("first hark error: %s\n", rep.Hark.FirstError)
	}
}

// setup creates a Segment source (identify and idempotency on), a workflow
// and the triggers (and, with recv, a webhook destination sending to it),
// and returns the development webhook URL.
func setup(ctx context.Context, hc *http.Client, o options, recv *receiver) (string, error) {
	auth := connect.WithInterceptors(bearer(o.token))
	sources := harkv1connect.NewSourceServiceClient(hc, o.url, auth)
	workflows := harkv1connect.NewWorkflowServiceClient(hc, o.url, auth)
	triggers := harkv1connect.NewTriggerServiceClient(hc, o.url, auth)

	src, err := sources.CreateSource(ctx, connect.NewRequest(&harkv1.CreateSourceRequest{Name: "bench", Type: "segment"}))
	if err != nil {
		return "", err
	}
	id := src.Msg.GetSource().GetId()
	on := true
	se, err := sources.UpdateSourceEnvironment(ctx, connect.NewRequest(&harkv1.UpdateSourceEnvironmentRequest{
		SourceId: id, Environment: "development", IdentifyEnabled: &on, IdempotencyEnabled: &on,
		IdempotencyWindow: durationpb.New(24 * time.Hour),
	}))
	if err != nil {
		return "", err
	}
	key := "bench-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	if _, err := workflows.CreateWorkflow(ctx, connect.NewRequest(&harkv1.CreateWorkflowRequest{Key: key})); err != nil {
		return "", err
	}
	onEvent := min(10, o.triggers)
	for i := range o.triggers {
		req := &harkv1.CreateTriggerRequest{
			Environment: "development", WorkflowKey: key, SourceId: id, Event: benchEvent,
			Condition: `properties.plan == "never"`,
		}
		switch {
		case i == 0:
			// The one that starts a run, for an inline-identified recipient.
			req.Condition = `properties.plan == "pro"`
			req.Mapping = &harkv1.TriggerMapping{
				Recipients: `{"id": userId, "email": properties.email, "name": properties.name}`,
				Data:       `{"plan": properties.plan, "amount": properties.amount}`,
			}
		case i >= onEvent:
			req.Event = fmt.Sprintf("Other Event %d", i)
		}
		if _, err := triggers.CreateTrigger(ctx, connect.NewRequest(req)); err != nil {
			return "", fmt.Errorf("create trigger %d: %w", i, err)
		}
	}
	if recv != nil {
		dests := harkv1connect.NewDestinationServiceClient(hc, o.url, auth)
		d, err := dests.CreateDestination(ctx, connect.NewRequest(&harkv1.CreateDestinationRequest{
			Environment: "development", Name: "bench receiver", Type: "webhook", Url: recv.url,
		}))
		if err != nil {
			return "", fmt.Errorf("create the destination: %w", err)
		}
		if err := recv.setSecret(d.Msg.GetDestination().GetSigningSecret()); err != nil {
			return "", err
		}
	}
	return se.Msg.GetSourceEnvironment().GetIngestUrl(), nil
}

const benchEvent = "Bench Event"

func bearer(token string) connect.UnaryInterceptorFunc {
	return func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			req.Header().Set("Authorization", "Bearer "+token)
			return next(ctx, req)
		}
	}
}

// body returns one request body of n unique events, as Segment sends them.
func body(buf *bytes.Buffer, n int, worker int, seq *int64) []byte {
	buf.Reset()
	if n > 1 {
		buf.WriteString(`{"batch":[`)
	}
	for i := range n {
		if i > 0 {
			buf.WriteByte(',')
		}
		s := atomic.AddInt64(seq, 1)
		fmt.Fprintf(buf, `{"type":"track","event":%q,"userId":"user-%d","messageId":"bench-%d-%d-%d","anonymousId":"anon-%d","timestamp":"2026-11-27T10:00:00.000Z","context":{"library":{"name":"analytics.js","version":"2.11.1"},"ip":"203.0.113.7","userAgent":"Mozilla/5.0"},"properties":{"plan":"pro","amount":49.5,"email":"user-%d@example.com","name":"User %d","items":[{"sku":"a-1","qty":2},{"sku":"b-2","qty":1}]}}`,
			benchEvent, s%5000, os.Getpid(), worker, s, s, s%5000, s%5000)
	}
	if n > 1 {
		buf.WriteString(`],"context":{"library":{"name":"analytics-go","version":"3.3.0"}}}`)
	}
	return buf.Bytes()
}

// load sends requests to url from o.connections workers for o.duration,
// after o.warmup. cpu, when not nil, reads the server's CPU time, taken
// when counting starts and when it ends.
// load sends o's load to the urls, connection w to urls[w mod len].
func load(ctx context.Context, hc *http.Client, urls []string, o options, name string, cpu func() cpuUse) result {
	var (
		seq      int64
		mu       sync.Mutex
		lat      []time.Duration
		requests int64
		errs     int64
		firstErr atomic.Value
		counting atomic.Bool
	)
	ctx, cancel := context.WithTimeout(ctx, o.warmup+o.duration)
	defer cancel()
	var cpuStart cpuUse
	time.AfterFunc(o.warmup, func() {
		if cpu != nil {
			cpuStart = cpu()
		}
		counting.Store(true)
	})
	var start time.Time
	startOnce := sync.Once{}
	var wg sync.WaitGroup
	for w := range o.connections {
		wg.Add(1)
		go func() {
			defer wg.Done()
			url := urls[w%len(urls)]
			var buf bytes.Buffer
			local := make([]time.Duration, 0, 1<<14)
			var pace *time.Ticker
			if o.rate > 0 {
				// Each connection sends every interval, the connections
				// spread evenly over it: a steady rate, not bursts of C
				// requests at once.
				interval := time.Duration(float64(o.connections) / o.rate * float64(time.Second))
				time.Sleep(interval * time.Duration(w) / time.Duration(o.connections))
				pace = time.NewTicker(interval)
				defer pace.Stop()
			}
			for ctx.Err() == nil {
				if pace != nil {
					select {
					case <-pace.C:
					case <-ctx.Done():
						continue
					}
				}
				b := body(&buf, o.batch, w, &seq)
				t0 := time.Now()
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
				req.Header.Set("Content-Type", "application/json")
				resp, err := hc.Do(req)
				ok := err == nil && resp.StatusCode == http.StatusOK
				if err == nil {
					if !ok {
						msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
						err = fmt.Errorf("HTTP %d: %s", resp.StatusCode, msg)
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				if ctx.Err() != nil || !counting.Load() {
					continue
				}
				startOnce.Do(func() { start = t0 })
				atomic.AddInt64(&requests, 1)
				if !ok {
					atomic.AddInt64(&errs, 1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				local = append(local, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	r := result{Name: name, Requests: requests, Errors: errs, Seconds: elapsed}
	good := requests - errs
	r.Events = good * int64(o.batch)
	if cpu != nil && r.Events > 0 {
		used := cpu().minus(cpuStart)
		r.CPUServerUs = used.server * 1e6 / float64(r.Events)
		r.CPUPluginUs = used.plugins * 1e6 / float64(r.Events)
		r.CPUNATSUs = used.nats * 1e6 / float64(r.Events)
	}
	if elapsed > 0 {
		r.RequestsSec = float64(good) / elapsed
		r.EventsSec = float64(r.Events) / elapsed
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	r.P50ms = percentile(lat, 0.50)
	r.P99ms = percentile(lat, 0.99)
	if v := firstErr.Load(); v != nil {
		r.FirstError = v.(string)
	}
	return r
}

func percentile(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := min(int(float64(len(sorted))*p), len(sorted)-1)
	return float64(sorted[i].Microseconds()) / 1000
}
