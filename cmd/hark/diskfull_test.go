package main

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// mountTmpfs mounts a tmpfs of the given size (e.g. "512m") on a new
// directory and unmounts it when the test ends, or skips the test where
// mounting is not allowed (it needs root, or CAP_SYS_ADMIN).
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size+",mode=0700"); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v): the disk-full test needs root or CAP_SYS_ADMIN", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// fillTo fills the file system of dir until only leave bytes are free, with
// one file it returns the path of.
func fillTo(t *testing.T, dir string, leave int64) string {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	free := int64(st.Bavail) * int64(st.Bsize)
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if free > leave {
		if err := syscall.Fallocate(int(f.Fd()), 0, 0, free-leave); err != nil {
			t.Fatalf("fill the disk: %v", err)
		}
	}
	return path
}

// diskPost delivers a 30 KB event and returns the status (0: no answer).
func diskPost(ingestURL string, i int) int {
	body := `{"type":"track","event":"Full","userId":"u1","messageId":"disk-` + time.Now().Format("150405.000000") + `-` + string(rune('a'+i%26)) +
		`","properties":{"pad":"` + strings.Repeat("x", 30<<10) + `"}}`
	res, err := relAPI.Post(ingestURL, "application/json", strings.NewReader(body))
	if err != nil {
		return 0
	}
	res.Body.Close()
	return res.StatusCode
}

// health asks the gRPC health service (Connect, no token) for the node.
func health(t *testing.T, base string) string {
	t.Helper()
	res, err := relAPI.Post(base+"/grpc.health.v1.Health/Check", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatalf("health check: %v", err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return string(b)
}

// metric returns the /metrics line of a family, e.g. "hark_disk_low 1".
func (s *relServer) metric(t *testing.T, family string) string {
	t.Helper()
	_, body := s.apiStatus(t, http.MethodGet, "/metrics", nil)
	for line := range bytes.SplitSeq(body, []byte("\n")) {
		if bytes.HasPrefix(line, []byte(family+" ")) {
			return string(line)
		}
	}
	t.Fatalf("/metrics has no %s", family)
	return ""
}

// TestDiskFull runs hark on a small tmpfs and fills it. Badger writes
// through memory maps of sparse files, so it used to die with SIGBUS when
// the disk filled, and crash-loop when restarted on the full disk. Now
// writes are refused with 503 (Segment retries) below the free-space
// threshold, reads go on, health and metrics say so, and writes come back
// once there is room; a start on a short disk opens the store read-only
// and reopens it for writes when space returns.
func TestDiskFull(t *testing.T) {
	t.Parallel()
	mnt := mountTmpfs(t, "512m")
	data := filepath.Join(mnt, "data")
	start := func() *relServer {
		p := launch(t, data, "HARK_ADMIN_TOKEN="+relToken, "HARK_MIN_FREE_DISK=192MiB")
		base, _ := p.waitListening(t)
		return &relServer{p: p, base: base}
	}
	s := start()
	src := setupSource(t, s)
	ingest := s.ingestURL(t, src)
	if got := diskPost(ingest, 0); got != http.StatusOK {
		t.Fatalf("delivery with room on the disk: HTTP %d", got)
	}

	// Below the threshold, with 2 MiB left: 100 deliveries of 30 KB would
	// need more than that.
	filler := fillTo(t, mnt, 2<<20)
	// hark asks the kernel for the free space at most every 100 ms, so a
	// delivery right after the fill may still see the room there was.
	time.Sleep(150 * time.Millisecond)
	for i := range 100 {
		if got := diskPost(ingest, i); got != http.StatusServiceUnavailable {
			t.Fatalf("delivery %d with the disk short: HTTP %d, want 503; stderr:\n%s", i, got, s.p.stderr)
		}
	}
	if got, _ := s.apiStatus(t, http.MethodGet, "/v1/environments/development/events?pageSize=1", nil); got != http.StatusOK {
		t.Fatalf("reading the event log with the disk short: HTTP %d, want 200", got)
	}
	if h := health(t, s.base); !strings.Contains(h, "NOT_SERVING") {
		t.Fatalf("health with the disk short: %s, want NOT_SERVING", h)
	}
	if m := s.metric(t, "hark_disk_low"); m != "hark_disk_low 1" {
		t.Fatalf("metric: %q, want hark_disk_low 1", m)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if !waitFor(10*time.Second, func() bool { return diskPost(ingest, 0) == http.StatusOK }) {
		t.Fatal("deliveries are still refused after the disk got room")
	}

	// A restart on a short disk starts read-only instead of crashing.
	if err := s.p.stop(t); err != nil {
		t.Fatalf("stop: %v; stderr:\n%s", err, s.p.stderr)
	}
	filler = fillTo(t, mnt, 2<<20)
	s = start()
	if got, _ := s.apiStatus(t, http.MethodGet, "/v1/sources/"+src, nil); got != http.StatusOK {
		t.Fatalf("reading a source after a start on a short disk: HTTP %d, want 200", got)
	}
	ingest = s.ingestURL(t, src)
	if got := diskPost(ingest, 1); got != http.StatusServiceUnavailable {
		t.Fatalf("delivery after a start on a short disk: HTTP %d, want 503", got)
	}
	if m := s.metric(t, "hark_store_read_only"); m != "hark_store_read_only 1" {
		t.Fatalf("metric: %q, want hark_store_read_only 1", m)
	}
	if h := health(t, s.base); !strings.Contains(h, "NOT_SERVING") {
		t.Fatalf("health after a start on a short disk: %s, want NOT_SERVING", h)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if !waitFor(15*time.Second, func() bool { return diskPost(ingest, 2) == http.StatusOK }) {
		t.Fatalf("deliveries are still refused after the disk got room; stderr:\n%s", s.p.stderr)
	}
	if h := health(t, s.base); !strings.Contains(h, `"SERVING_STATUS_SERVING"`) {
		t.Fatalf("health once the store took writes again: %s, want SERVING", h)
	}
}
