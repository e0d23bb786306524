package server_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	harkv1 "github.com/harkhq/hark/gen/hark/v1"
	"github.com/harkhq/hark/gen/hark/v1/harkv1connect"
	"github.com/harkhq/hark/server"
)

// The plugin host's failure modes, seen from the API: a frozen plugin, a
// plugin stuck in its handshake, and plugins whose answers lie.

const (
	serving    = grpchealth.StatusServing
	notServing = grpchealth.StatusNotServing
)

// healthOf asks the gRPC health service (over Connect, without a token) for
// service's status.
func (h *harness) healthOf(t *testing.T, service string) (grpchealth.Status, error) {
	t.Helper()
	res, err := grpchealth.NewClient(h.http, h.base).Check(ctxFor(t), &grpchealth.CheckRequest{Service: service})
	if err != nil {
		return grpchealth.StatusUnknown, err
	}
	return res.Status, nil
}

// wantHealth fails the test unless each service of want reports its status.
func (h *harness) wantHealth(t *testing.T, want map[string]grpchealth.Status) {
	t.Helper()
	for service, status := range want {
		got, err := h.healthOf(t, service)
		if err != nil || got != status {
			t.Errorf("health of %q = %v, %v; want %v", service, got, err, status)
		}
	}
}

// TestPluginFrozen stops the Segment plugin with SIGSTOP (it keeps its
// sockets and answers nothing) while a RudderStack plugin runs beside it.
// Segment deliveries are answered 503 (not left hanging), RudderStack's
// still 200; the API, gRPC health and metrics say Segment is down; the host
// kills the frozen process; once a new one may start, everything is back.
func TestPluginFrozen(t *testing.T) {
	t.Parallel()
	marker := rand.Text()
	var gate string
	h := startServerWith(t, harnessOptions{
		before: func(t *testing.T, h *harness) {
			buildRudderStack(t, filepath.Join(h.dir, "plugins"))
			gate = filepath.Join(h.dir, "segment.gate")
		},
		config: func(cfg *server.Config) { cfg.BuiltinPlugins = gatedPlugins(marker, gate) },
	})
	seg := devURL(t, h.createSource(t, "Frozen"))
	rud := devURL(t, h.createSourceOfType(t, "Beside", "rudderstack"))
	track := []byte(`{"type":"track","event":"Frozen","userId":"u1"}`)
	h.deliverOne(t, seg, track)
	h.deliverOne(t, rud, track)

	pids := pluginPIDs(t, "segment", marker)
	if len(pids) != 1 {
		t.Fatalf("segment plugin processes: %v, want one", pids)
	}
	frozen := pids[0]
	t.Cleanup(func() { _ = syscall.Kill(frozen, syscall.SIGKILL) })
	// Hold the plugin down once the host replaces the frozen process, so
	// that what the API says about it can be checked at leisure.
	if err := os.WriteFile(gate, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(frozen, syscall.SIGSTOP); err != nil {
		t.Fatalf("SIGSTOP %d: %v", frozen, err)
	}
	eventually(t, "the plugin to stop", func() bool { _, state, _ := procStat(frozen); return state == "T" })
	began := time.Now()
	r := h.ingest(t, seg, track)
	t.Logf("kill -STOP to the first answer of a delivery: %v (HTTP %d)", time.Since(began), r.status)
	wantStatus(t, r, http.StatusServiceUnavailable)
	if code := decodeMap(t, r)["code"]; code != "unavailable" && code != float64(14) {
		t.Errorf("503 body code = %v, want unavailable; body %s", code, r.body)
	}
	h.deliverOne(t, rud, track)
	wantStatus(t, h.ingest(t, seg, track), http.StatusServiceUnavailable)

	eventually(t, "the frozen process to be killed", func() bool { return processGone(frozen) })
	if got := h.sourceTypeHealth(t); got["segment"] != harkv1.SourceTypeHealth_SOURCE_TYPE_HEALTH_UNAVAILABLE ||
		got["rudderstack"] != harkv1.SourceTypeHealth_SOURCE_TYPE_HEALTH_SERVING {
		t.Errorf("source type health = %v, want segment unavailable and rudderstack serving", got)
	}
	h.wantHealth(t, map[string]grpchealth.Status{
		"":                              notServing,
		"hark.source.segment":           notServing,
		"hark.source.rudderstack":       serving,
		harkv1connect.IngestServiceName: serving,
	})
	metrics := h.metricsText(t)
	for _, want := range []string{`hark_plugin_up{source_type="segment"} 0`, `hark_plugin_up{source_type="rudderstack"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if n := len(h.sourceEvents(t, "development", sourceIDOf(t, h, seg))); n != 1 {
		t.Errorf("the Segment source logged %d events, want the 1 accepted before the freeze", n)
	}

	if err := os.Remove(gate); err != nil {
		t.Fatal(err)
	}
	eventually(t, "Segment deliveries to be accepted again", func() bool {
		r := h.ingest(t, seg, track)
		if r.status != http.StatusOK && r.status != http.StatusServiceUnavailable {
			t.Fatalf("delivery while Segment restarts: HTTP %d; body %s", r.status, r.body)
		}
		return r.status == http.StatusOK
	})
	h.wantHealth(t, map[string]grpchealth.Status{"": serving, "hark.source.segment": serving})
	metrics = h.metricsText(t)
	for _, want := range []string{`hark_plugin_up{source_type="segment"} 1`, `hark_plugin_restarts_total{source_type="segment"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// sourceIDOf finds the source whose development ingest URL is ingestURL.
func sourceIDOf(t *testing.T, h *harness, ingestURL string) string {
	t.Helper()
	res := mustCall(t, h.sources().ListSources, &harkv1.ListSourcesRequest{})
	for _, src := range res.GetSources() {
		for _, e := range src.GetEnvironments() {
			if e.GetIngestUrl() == ingestURL {
				return src.GetId()
			}
		}
	}
	t.Fatalf("no source has the ingest URL %s", ingestURL)
	return ""
}

// TestPluginStartingInBackground installs a plugin that hangs before its
// handshake: the server starts anyway, Segment serves, the hung plugin is
// reported down (and the node with it) until it finishes starting, and a
// health Watch sees the change.
func TestPluginStartingInBackground(t *testing.T) {
	t.Parallel()
	var hang string
	h := startServerWith(t, harnessOptions{before: func(t *testing.T, h *harness) {
		dir := filepath.Join(h.dir, "plugins")
		buildTestPlugin(t, dir, "slow")
		hang = filepath.Join(dir, "slow.hangstart")
		if err := os.WriteFile(hang, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}})
	seg := devURL(t, h.createSource(t, "Beside a slow plugin"))
	h.deliverOne(t, seg, []byte(`{"type":"track","event":"Early","userId":"u1"}`))
	if got := h.sourceTypeHealth(t); got["slow"] != harkv1.SourceTypeHealth_SOURCE_TYPE_HEALTH_UNAVAILABLE {
		t.Errorf("source type health = %v, want slow unavailable while it starts", got)
	}
	h.wantHealth(t, map[string]grpchealth.Status{
		"":                              notServing,
		"hark.source.slow":              notServing,
		"hark.source.segment":           serving,
		harkv1connect.SourceServiceName: serving,
	})
	if _, err := h.healthOf(t, "hark.source.nonesuch"); connect.CodeOf(err) != connect.CodeNotFound {
		t.Errorf("health of an unknown service: %v, want NotFound", err)
	}

	watch, err := healthpb.NewHealthClient(h.grpcConn(t)).Watch(ctxFor(t), &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatalf("health Watch: %v", err)
	}
	first, err := watch.Recv()
	if err != nil || first.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("health Watch first answer %v, %v; want NOT_SERVING", first, err)
	}
	if err := os.Remove(hang); err != nil {
		t.Fatal(err)
	}
	next, err := watch.Recv()
	if err != nil || next.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health Watch after the plugin started: %v, %v; want SERVING", next, err)
	}
	h.wantHealth(t, map[string]grpchealth.Status{"": serving, "hark.source.slow": serving})
	slow := devURL(t, h.createSourceOfType(t, "Slow", "slow"))
	h.deliverOne(t, slow, []byte(`{"type":"track","event":"Late","userId":"u1"}`))
}

// TestPluginAnswersValidated delivers to a plugin that lies about its
// events' indexes and sends oversized messages: a lie makes that delivery a
// plugin failure (500, nothing stored, nothing of the answer echoed), long
// messages are cut to valid UTF-8, and the plugin keeps serving.
func TestPluginAnswersValidated(t *testing.T) {
	t.Parallel()
	h := startServerWith(t, harnessOptions{before: func(t *testing.T, h *harness) {
		buildTestPlugin(t, filepath.Join(h.dir, "plugins"), "liar")
	}})
	src := h.createSourceOfType(t, "Liar", "liar")
	ingest := devURL(t, src)

	for _, cmd := range []string{"bad-index", "negative-index", "dup-index", "dup-rejection"} {
		t.Run(cmd, func(t *testing.T) {
			r := h.ingest(t, ingest, []byte(`{"test":"`+cmd+`","type":"track","event":"Lie","userId":"u1"}`))
			wantStatus(t, r, http.StatusInternalServerError)
			msg, _ := decodeMap(t, r)["message"].(string)
			if !strings.Contains(msg, "invalid answer") {
				t.Errorf("message = %q, want it to say the plugin's answer is invalid", msg)
			}
		})
	}
	t.Run("huge error message", func(t *testing.T) {
		r := h.ingest(t, ingest, []byte(`{"test":"huge-error"}`))
		wantStatus(t, r, http.StatusBadRequest)
		if len(r.body) > 4<<10 {
			t.Fatalf("the answer is %d bytes: the plugin's 5 MB message was echoed", len(r.body))
		}
		msg, _ := decodeMap(t, r)["message"].(string)
		if !utf8.ValidString(msg) || !strings.HasPrefix(strings.TrimPrefix(msg, "source plugin failed: "), "xé") {
			t.Errorf("message = %q, want the start of the plugin's message, valid UTF-8", msg)
		}
	})
	t.Run("huge rejection reason", func(t *testing.T) {
		r := h.ingest(t, ingest, []byte(`{"test":"huge-reason","type":"track","event":"Half","userId":"u1"}`))
		wantStatus(t, r, http.StatusOK)
		if len(r.body) > 4<<10 {
			t.Fatalf("the answer is %d bytes: the plugin's 5 MB reason was echoed", len(r.body))
		}
		evs := decode(t, r, &harkv1.ReceiveResponse{}).GetEvents()
		if len(evs) != 2 || evs[0].GetId() == "" || evs[1].GetStatus() != statusRejected {
			t.Fatalf("events = %v, want one stored and one rejected", evs)
		}
		if reason := evs[1].GetReason(); len(reason) > 1<<10 || !utf8.ValidString(reason) || !strings.HasPrefix(reason, "xé") {
			t.Errorf("reason (%d bytes) is not the start of the plugin's, cut to 1 KiB of valid UTF-8: %q", len(reason), reason)
		}
	})
	if n := len(h.sourceEvents(t, "development", src.GetId())); n != 1 {
		t.Errorf("the log holds %d events, want only the one of the huge-reason delivery", n)
	}
	h.deliverOne(t, ingest, []byte(`{"type":"track","event":"Honest","userId":"u1"}`))
	if got := h.sourceTypeHealth(t); got["liar"] != harkv1.SourceTypeHealth_SOURCE_TYPE_HEALTH_SERVING {
		t.Errorf("source type health = %v, want liar still serving: a bad answer is not a dead plugin", got)
	}
}

// TestHungPluginDoesNotStallOtherSources sends a delivery that its plugin
// never answers, then Segment deliveries: they are answered while the hung
// one still waits, because each source type has its own ingest lane. They
// used to wait 6.6–9.5 s, batched behind the hung plugin's call.
func TestHungPluginDoesNotStallOtherSources(t *testing.T) {
	t.Parallel()
	h := startServerWith(t, harnessOptions{
		before: func(t *testing.T, h *harness) { buildTestPlugin(t, filepath.Join(h.dir, "plugins"), "stuck") },
		config: func(c *server.Config) { c.PluginCallTimeout = 5 * time.Second },
	})
	stuck := devURL(t, h.createSourceOfType(t, "Stuck", "stuck"))
	seg := devURL(t, h.createSource(t, "Segment beside it"))
	h.deliverOne(t, seg, segmentTrack) // both lanes started

	hung := make(chan int, 1)
	go func() {
		code, _, err := h.postIngest(context.Background(), strings.TrimPrefix(stuck, h.publicURL), []byte(`{"test":"hang"}`))
		if err != nil {
			code = -1
		}
		hung <- code
	}()
	time.Sleep(200 * time.Millisecond) // the hung call is under way
	for i := range 5 {
		h.deliverOne(t, seg, fmt.Appendf(nil, `{"type":"track","event":"Beside %d","userId":"u1"}`, i))
		select {
		case code := <-hung:
			t.Fatalf("the hung delivery was answered (%d) before the Segment deliveries were: they waited behind it", code)
		default:
		}
	}
}
