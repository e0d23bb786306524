package server_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/harkhq/hark/engine/badgerstore"
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

// TestRestoreRefusesDamagedBackups checks that a backup that is not whole —
// empty, cut short, with a changed byte or bytes after its end, or written
// in the unframed format of older hark — is refused with an error that says
// what is wrong, and that the refused restore leaves the new data dir as it
// found it: absent, or empty. It reads the backup from a file (seekable) and
// from a pipe (spooled), the two ways hark restore gets one.
func TestRestoreRefusesDamagedBackups(t *testing.T) {
	t.Parallel()
	h := startServer(t)
	src := h.createSource(t, "damaged")
	h.mustDeliver(t, devURL(t, src), []byte(`{"type":"track","event":"Kept","userId":"u1"}`), 1)
	res := h.send(t, h.admin(), http.MethodGet, server.BackupPath, "", nil)
	wantStatus(t, res, http.StatusOK)
	good := res.body
	h.stop(t)
	raw := rawBadgerBackup(t, h.dir)

	mid := len(good) / 2
	corrupt := slices.Clone(good)
	corrupt[mid] ^= 0x01
	cases := []struct {
		name   string
		backup []byte
		want   string
	}{
		{"empty", nil, "the backup is empty"},
		{"cut in the header", good[:5], "truncated"},
		{"cut in the middle", good[:mid], "truncated"},
		{"one byte short", good[:len(good)-1], "truncated"},
		{"a changed byte", corrupt, "checksum"},
		{"bytes after its end", append(slices.Clone(good), "garbage\n"...), "bytes after its end"},
		{"unframed, from an older hark", raw, "older hark"},
		{"not a backup", []byte("hello, world\n"), "not a hark backup"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			for _, existing := range []bool{false, true} {
				for _, pipe := range []bool{false, true} {
					dir := filepath.Join(t.TempDir(), "restored")
					if existing {
						if err := os.Mkdir(dir, 0o700); err != nil {
							t.Fatal(err)
						}
					}
					var r io.Reader = bytes.NewReader(c.backup)
					if pipe {
						r = io.MultiReader(r) // not an io.Seeker
					}
					err := server.Restore(dir, r, nil)
					if err == nil || !strings.Contains(err.Error(), c.want) {
						t.Fatalf("Restore (existing dir %v, pipe %v) = %v, want an error containing %q", existing, pipe, err, c.want)
					}
					entries, statErr := os.ReadDir(dir)
					switch {
					case !existing && !errors.Is(statErr, fs.ErrNotExist):
						t.Fatalf("after a refused restore, %s exists (%v, entries %v); want it removed", dir, statErr, entries)
					case existing && (statErr != nil || len(entries) > 0):
						t.Fatalf("after a refused restore, %s holds %v (%v); want it left empty", dir, entries, statErr)
					}
					if siblings, _ := os.ReadDir(filepath.Dir(dir)); len(siblings) > 1 || (len(siblings) == 1 && !existing) {
						t.Fatalf("a refused restore left %v beside the data dir", siblings)
					}
				}
			}
		})
	}

	// The whole backup restores, from a file and from a pipe; so does an
	// offline backup of the same data dir.
	var offline bytes.Buffer
	if err := server.Backup(h.dir, &offline, nil); err != nil {
		t.Fatalf("offline Backup: %v", err)
	}
	for name, r := range map[string]io.Reader{
		"online":         bytes.NewReader(good),
		"online, piped":  io.MultiReader(bytes.NewReader(good)),
		"offline":        bytes.NewReader(offline.Bytes()),
		"offline, piped": io.MultiReader(bytes.NewReader(offline.Bytes())),
	} {
		restored := startServerWith(t, harnessOptions{before: func(t *testing.T, rh *harness) {
			if err := server.Restore(rh.dir, r, nil); err != nil {
				t.Fatalf("Restore of the %s backup: %v", name, err)
			}
		}})
		if got := decodeMap(t, restored.rest(t, http.MethodGet, "/v1/sources/"+src.GetId(), "")); got["name"] != "damaged" {
			t.Fatalf("the %s backup restored source %v", name, got)
		}
		restored.stop(t)
	}
}

// rawBadgerBackup is Badger's own backup stream of a stopped server's data
// dir, without hark's framing: what hark backup wrote before the framing.
func rawBadgerBackup(t *testing.T, dataDir string) []byte {
	t.Helper()
	store, err := badgerstore.Open(badgerstore.Options{Dir: filepath.Join(dataDir, "db")})
	if err != nil {
		t.Fatalf("open the store: %v", err)
	}
	defer store.Close()
	var buf bytes.Buffer
	if err := store.Backup(&buf); err != nil {
		t.Fatalf("raw backup: %v", err)
	}
	if buf.Len() == 0 {
		t.Fatal("the raw backup is empty")
	}
	return buf.Bytes()
}
