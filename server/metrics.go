package server

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/harkhq/hark/engine"
	"github.com/harkhq/hark/engine/badgerstore"
	harkv1 "github.com/harkhq/hark/gen/hark/v1"
	"github.com/harkhq/hark/plugins/host"
)

// metrics is hark's Prometheus registry and families. Each server has its
// own registry (tests run several in one process). Labels are bounded: event
// types outside the six Segment spec types count as "other", since senders
// choose them.
type metrics struct {
	reg *prometheus.Registry

	events         *prometheus.CounterVec
	rejected       *prometheus.CounterVec
	requests       *prometheus.HistogramVec
	commitEvents   prometheus.Histogram
	commitSeconds  prometheus.Histogram
	commitFailures prometheus.Counter
	triggers       *prometheus.CounterVec
	runs           *prometheus.CounterVec
	pluginCalls    *prometheus.CounterVec
	pluginSeconds  *prometheus.HistogramVec
	attempts       *prometheus.CounterVec
	attemptSeconds *prometheus.HistogramVec

	eventCounters    sync.Map // eventLabels → prometheus.Counter
	requestObservers sync.Map // requestLabels → prometheus.Observer
}

var _ engine.Metrics = (*metrics)(nil)

func newMetrics() *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	f := func(c prometheus.Collector) { m.reg.MustRegister(c) }
	m.events = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hark_events_received_total", Help: "Events logged, by source type, event type and status.",
	}, []string{"source_type", "type", "status"})
	m.rejected = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hark_deliveries_refused_total", Help: "Deliveries refused as a whole, by reason.",
	}, []string{"reason"})
	m.requests = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "hark_http_request_duration_seconds", Help: "HTTP request latency, by route kind and status code.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10},
	}, []string{"route", "code"})
	m.commitEvents = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "hark_ingest_commit_events", Help: "Events per ingest commit (one fsync).",
		Buckets: prometheus.ExponentialBuckets(1, 4, 8),
	})
	m.commitSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "hark_ingest_commit_duration_seconds", Help: "Duration of ingest commits, fsync included.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
	})
	m.commitFailures = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "hark_ingest_commit_failures_total", Help: "Ingest commits that failed (their deliveries got 503).",
	})
	m.triggers = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hark_triggers_evaluated_total", Help: "Trigger evaluations, by outcome.",
	}, []string{"status"})
	m.runs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hark_workflow_runs_started_total", Help: "Workflow runs started, by origin (trigger or api).",
	}, []string{"origin"})
	m.pluginCalls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hark_plugin_calls_total", Help: "Source plugin calls, by type and result (ok or error).",
	}, []string{"source_type", "result"})
	m.pluginSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "hark_plugin_call_duration_seconds", Help: "Duration of source plugin calls (one call carries a batch).",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .05, .25, 1},
	}, []string{"source_type"})
	m.attempts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hark_delivery_attempts_total", Help: "Delivery attempts, by destination type and result (succeeded, failed, gave_up, disabled).",
	}, []string{"destination_type", "result"})
	m.attemptSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "hark_delivery_attempt_duration_seconds", Help: "Duration of delivery attempts, by destination type.",
		Buckets: []float64{.001, .005, .01, .05, .1, .25, .5, 1, 2.5, 5, 15},
	}, []string{"destination_type"})
	for _, c := range []prometheus.Collector{m.events, m.rejected, m.requests, m.commitEvents, m.commitSeconds,
		m.commitFailures, m.triggers, m.runs, m.pluginCalls, m.pluginSeconds, m.attempts, m.attemptSeconds,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		f(c)
	}
	return m
}

// watchPlugins exports the host's restart counts and health.
func (m *metrics) watchPlugins(h *host.Host) {
	m.reg.MustRegister(&pluginCollector{h: h})
}

func (m *metrics) DeliveryAttempted(typ, result string, took time.Duration) {
	m.attempts.WithLabelValues(typ, result).Inc()
	m.attemptSeconds.WithLabelValues(typ).Observe(took.Seconds())
}

// watchOutbox exports the outbox's depth and age and the destinations hark
// disabled, read from the store at each scrape.
func (m *metrics) watchOutbox(e *engine.Engine) {
	m.reg.MustRegister(&outboxCollector{e: e})
}

var (
	outboxDepthDesc = prometheus.NewDesc("hark_outbox_pending", "Deliveries due or waiting for a retry.", nil, nil)
	outboxAgeDesc   = prometheus.NewDesc("hark_outbox_oldest_pending_seconds", "Age of the oldest pending delivery.", nil, nil)
	disabledDesc    = prometheus.NewDesc("hark_destinations_disabled", "Destinations disabled because their receiver answered 410 Gone.", nil, nil)
)

// outboxCollector reads the outbox once per scrape for both of its gauges.
type outboxCollector struct{ e *engine.Engine }

func (c *outboxCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- outboxDepthDesc
	ch <- outboxAgeDesc
	ch <- disabledDesc
}

func (c *outboxCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if n, age, err := c.e.OutboxDepth(ctx); err == nil {
		ch <- prometheus.MustNewConstMetric(outboxDepthDesc, prometheus.GaugeValue, float64(n))
		ch <- prometheus.MustNewConstMetric(outboxAgeDesc, prometheus.GaugeValue, age.Seconds())
	}
	if n, err := c.e.DisabledDestinations(ctx); err == nil {
		ch <- prometheus.MustNewConstMetric(disabledDesc, prometheus.GaugeValue, float64(n))
	}
}

// watchDisk exports the data disk's free space and whether the store
// refuses writes for want of it.
func (m *metrics) watchDisk(disk func() badgerstore.DiskState) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "hark_disk_free_bytes", Help: "Free space on the data dir's file system.",
	}, func() float64 { return float64(disk().Free) }))
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "hark_disk_low", Help: "1 while free space is below --min-free-disk and writes are refused (503).",
	}, func() float64 { return b2f(disk().Low) }))
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "hark_store_read_only", Help: "1 while the store is open read-only (hark started with the disk short of space).",
	}, func() float64 { return b2f(disk().ReadOnly) }))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// watchNATS exports the messages a cluster-mode node exchanged with NATS.
func (m *metrics) watchNATS(stats func() (sent, received uint64)) {
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "hark_nats_sent_messages_total", Help: "Messages this node sent to NATS (requests and publishes).",
	}, func() float64 { sent, _ := stats(); return float64(sent) }))
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "hark_nats_received_messages_total", Help: "Messages this node received from NATS (answers and the watch).",
	}, func() float64 { _, received := stats(); return float64(received) }))
}

// watchStore exports Badger's LSM and value-log sizes.
func (m *metrics) watchStore(size func() (lsm, vlog int64)) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "hark_badger_lsm_size_bytes", Help: "Size of Badger's LSM tree on disk.",
	}, func() float64 { lsm, _ := size(); return float64(lsm) }))
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "hark_badger_vlog_size_bytes", Help: "Size of Badger's value log on disk.",
	}, func() float64 { _, vlog := size(); return float64(vlog) }))
}

var specTypes = map[string]bool{"track": true, "identify": true, "page": true, "screen": true, "group": true, "alias": true}

func (m *metrics) EventLogged(sourceType, eventType string, status harkv1.SourceEventStatus) {
	if !specTypes[eventType] {
		eventType = "other"
	}
	k := eventLabels{sourceType, eventType, status}
	c, ok := m.eventCounters.Load(k)
	if !ok {
		c, _ = m.eventCounters.LoadOrStore(k, m.events.WithLabelValues(sourceType, eventType, enumLabel(status.String(), "SOURCE_EVENT_STATUS_")))
	}
	c.(prometheus.Counter).Inc()
}

// eventLabels are hark_events_received_total's labels; the counter of each
// set is looked up once (labels are bounded: see metrics) and kept, as the
// ingest path counts every event.
type eventLabels struct {
	sourceType, eventType string
	status                harkv1.SourceEventStatus
}

func (m *metrics) DeliveryRejected(reason string) { m.rejected.WithLabelValues(reason).Inc() }

func (m *metrics) Committed(events int, took time.Duration, err error) {
	if err != nil {
		m.commitFailures.Inc()
		return
	}
	m.commitEvents.Observe(float64(events))
	m.commitSeconds.Observe(took.Seconds())
}

func (m *metrics) TriggerEvaluated(status harkv1.ActionStatus) {
	m.triggers.WithLabelValues(enumLabel(status.String(), "ACTION_STATUS_")).Inc()
}

func (m *metrics) RunStarted(fromTrigger bool) {
	origin := "api"
	if fromTrigger {
		origin = "trigger"
	}
	m.runs.WithLabelValues(origin).Inc()
}

func (m *metrics) pluginCall(typ string, took time.Duration, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.pluginCalls.WithLabelValues(typ, result).Inc()
	m.pluginSeconds.WithLabelValues(typ).Observe(took.Seconds())
}

func enumLabel(name, prefix string) string { return strings.ToLower(strings.TrimPrefix(name, prefix)) }

// pluginCollector reads restarts and health from the host at scrape time.
type pluginCollector struct{ h *host.Host }

var (
	pluginRestartsDesc = prometheus.NewDesc("hark_plugin_restarts_total", "Source plugin restarts after a crash.", []string{"source_type"}, nil)
	pluginUpDesc       = prometheus.NewDesc("hark_plugin_up", "1 while the source plugin is serving.", []string{"source_type"}, nil)
)

func (c *pluginCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- pluginRestartsDesc
	ch <- pluginUpDesc
}

func (c *pluginCollector) Collect(ch chan<- prometheus.Metric) {
	for _, info := range c.h.Types() {
		ch <- prometheus.MustNewConstMetric(pluginRestartsDesc, prometheus.CounterValue, float64(info.Restarts), info.Type)
		up := 0.0
		if info.Healthy {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(pluginUpDesc, prometheus.GaugeValue, up, info.Type)
	}
}

// instrument records each request's latency by route kind.
func (m *metrics) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		began := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(sw, r)
		k := requestLabels{routeKind(r.URL.Path), sw.code}
		o, ok := m.requestObservers.Load(k)
		if !ok {
			o, _ = m.requestObservers.LoadOrStore(k, m.requests.WithLabelValues(k.route, strconv.Itoa(k.code)))
		}
		o.(prometheus.Observer).Observe(time.Since(began).Seconds())
	})
}

// requestLabels are hark_http_request_duration_seconds's labels, kept as
// eventLabels are.
type requestLabels struct {
	route string
	code  int
}

// routeKind keeps the route label bounded.
func routeKind(path string) string {
	switch {
	case strings.HasPrefix(path, engine.IngestPath), strings.HasPrefix(path, "/hark.v1.IngestService/"):
		return "ingest"
	case strings.HasPrefix(path, "/hark.v1."), strings.HasPrefix(path, "/v1/"):
		return "api"
	case strings.HasPrefix(path, "/grpc."):
		return "grpc_meta"
	case path == "/metrics":
		return "metrics"
	default:
		return "other"
	}
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the real writer (flushing
// streams, deadlines).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush passes flushes through for streaming responses.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// handler serves /metrics to holders of the admin token.
func (m *metrics) handler(auth authInterceptor) http.Handler {
	h := promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := auth.check(r.Header.Get("Authorization")); err != nil {
			w.Header().Set("WWW-Authenticate", "Bearer")
			http.Error(w, "missing or wrong admin token: send 'Authorization: Bearer <token>'", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}
