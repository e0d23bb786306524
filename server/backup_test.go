package server_test

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/harkhq/hark/server"
)

// TestBackupRestore takes an online backup of a running server, restores it
// into a new data dir and checks that the new server has the same sources
// (and webhook URLs), triggers, users, idempotency ledger and runs.
func TestBackupRestore(t *testing.T) {
	t.Parallel()
	h := startServer(t)
	src := h.createSource(t, "backup")
	url := devURL(t, src)
	h.patchSourceEnv(t, src.GetId(), "development", `{"idempotencyEnabled":true,"identifyEnabled":true}`)
	wantStatus(t, h.rest(t, http.MethodPost, "/v1/workflows", `{"key":"wf-backup"}`), http.StatusOK)
	trg := decodeMap(t, h.rest(t, http.MethodPost, "/v1/environments/development/triggers",
		fmt.Sprintf(`{"workflowKey":"wf-backup","sourceId":%q,"event":"Backed Up"}`, src.GetId())))
	body := []byte(`{"batch":[{"type":"identify","userId":"u1","messageId":"m-id","traits":{"name":"Ann"}},{"type":"track","event":"Backed Up","userId":"u1","messageId":"m-track"}]}`)
	first := h.mustDeliver(t, url, body, 2)

	// Online: the server holds the data dir, so the backup streams from it.
	res := h.send(t, h.admin(), http.MethodGet, server.BackupPath, "", nil)
	wantStatus(t, res, http.StatusOK)
	if len(res.body) == 0 {
		t.Fatal("empty backup")
	}
	wantStatus(t, h.send(t, "", http.MethodGet, server.BackupPath, "", nil), http.StatusUnauthorized)
	// Offline backup of a held data dir is refused, not taken behind the
	// server's back.
	if err := server.Backup(h.dir, &bytes.Buffer{}, nil); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("offline Backup of a held data dir: %v, want an in-use error", err)
	}

	restored := startServerWith(t, harnessOptions{before: func(t *testing.T, r *harness) {
		if err := server.Restore(r.dir, bytes.NewReader(res.body), nil); err != nil {
			t.Fatalf("Restore: %v", err)
		}
	}})
	// Restoring over an existing store is refused: it would mix ledgers.
	if err := server.Restore(h.dir+"-copy", bytes.NewReader(res.body), nil); err != nil {
		t.Fatalf("Restore into a fresh dir: %v", err)
	}
	if err := server.Restore(h.dir+"-copy", bytes.NewReader(res.body), nil); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("Restore over a restored dir: %v, want a not-empty error", err)
	}

	got := decodeMap(t, restored.rest(t, http.MethodGet, "/v1/sources/"+src.GetId(), ""))
	if got["name"] != "backup" {
		t.Fatalf("restored source = %v", got)
	}
	if u := restored.getUser(t, "development", "u1"); u.GetName() != "Ann" {
		t.Fatalf("restored user = %v, want name Ann", u)
	}
	wantStatus(t, restored.rest(t, http.MethodGet, "/v1/environments/development/triggers/"+trg["id"].(string), ""), http.StatusOK)
	runs := decodeMap(t, restored.rest(t, http.MethodGet, "/v1/environments/development/workflow-runs", ""))["workflowRuns"].([]any)
	if len(runs) != 1 {
		t.Fatalf("restored runs = %d, want 1", len(runs))
	}
	// The ledger came along: the same delivery to the restored server, at
	// the same webhook path, is a duplicate of the original events.
	again := restored.mustDeliver(t, restored.publicURL+h.ingestPath(t, url), body, 2)
	for i, ev := range again.GetEvents() {
		if ev.GetStatus() != statusIdempotent {
			t.Errorf("event %d after restore = %v, want IDEMPOTENT of %s", i, ev.GetStatus(), first.GetEvents()[i].GetId())
		}
	}
}

// TestMetrics checks that /metrics needs the admin token and exposes the
// families the README documents, with values from real traffic.
func TestMetrics(t *testing.T) {
	t.Parallel()
	h := startServer(t)
	src := h.createSource(t, "metrics")
	wantStatus(t, h.rest(t, http.MethodPut, "/v1/environments/development/users/u1", `{}`), http.StatusOK)
	wantStatus(t, h.rest(t, http.MethodPost, "/v1/workflows", `{"key":"wf-metrics"}`), http.StatusOK)
	wantStatus(t, h.rest(t, http.MethodPost, "/v1/environments/development/triggers",
		fmt.Sprintf(`{"workflowKey":"wf-metrics","sourceId":%q,"event":"Measured"}`, src.GetId())), http.StatusOK)
	h.mustDeliver(t, devURL(t, src), []byte(`{"type":"track","event":"Measured","userId":"u1"}`), 1)
	wantStatus(t, h.send(t, "", http.MethodGet, "/metrics", "", nil), http.StatusUnauthorized)
	res := h.send(t, h.admin(), http.MethodGet, "/metrics", "", nil)
	wantStatus(t, res, http.StatusOK)
	text := string(res.body)
	for _, want := range []string{
		`hark_events_received_total{source_type="segment",status="processed",type="track"} 1`,
		"hark_http_request_duration_seconds_bucket{code=\"200\",route=\"ingest\"",
		`hark_plugin_calls_total{result="ok",source_type="segment"}`,
		"hark_plugin_call_duration_seconds",
		"hark_plugin_restarts_total{source_type=\"segment\"} 0",
		`hark_plugin_up{source_type="segment"} 1`,
		"hark_ingest_commit_events_count 1",
		"hark_ingest_commit_duration_seconds",
		"hark_badger_lsm_size_bytes",
		"hark_badger_vlog_size_bytes",
		`hark_triggers_evaluated_total{status="success"} 1`,
		`hark_workflow_runs_started_total{origin="trigger"} 1`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
