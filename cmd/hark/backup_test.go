package main

import (
	"bytes"
	"errors"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/harkhq/hark/engine/badgerstore"
)

// TestCLIBackupFailureLeavesNoFile checks hark backup's file handling: an
// online backup that does not arrive whole — cut short by a proxy that ends
// the response cleanly, or by a dropped connection — fails and leaves no
// file behind, so the next try is not blocked by a partial file; a good
// backup replaces an older file at the same path.
func TestCLIBackupFailureLeavesNoFile(t *testing.T) {
	t.Parallel()
	s := startCLIServer(t)
	env := append(s.env, "HARK_DATA_DIR="+s.dataDir) // the data dir is held: backups go online
	var src jsonSource
	harkJSON(t, env, &src, "sources", "create", "--type", "segment", "--name", "Backed up")

	dir := t.TempDir()
	out := filepath.Join(dir, "hark.backup")
	mustHark(t, env, "backup", "-f", out)
	good, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(out); err != nil {
		t.Fatal(err)
	}

	cut := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Write(good[:len(good)/2]) // and a clean end of the response
	}))
	t.Cleanup(cut.Close)
	dropped := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(good)))
		w.Write(good[:len(good)/2])
		panic(http.ErrAbortHandler) // the connection closes mid-body
	}))
	t.Cleanup(dropped.Close)
	for name, base := range map[string]string{"cut short": cut.URL, "dropped": dropped.URL} {
		res := runHark(t, append(env, "HARK_SERVER="+base), "backup", "-f", out)
		if res.code == 0 {
			t.Fatalf("%s: want a failure; %s", name, res)
		}
		wantContains(t, name+": stderr", res.stderr, "hark: ")
		if entries, _ := os.ReadDir(dir); len(entries) > 0 {
			t.Fatalf("%s: a failed backup left %v in %s", name, entries, dir)
		}
	}
	wantContains(t, "stderr", runHark(t, append(env, "HARK_SERVER="+cut.URL), "backup", "-f", out).stderr, "truncated")

	// The next try succeeds; the one after that replaces the file.
	mustHark(t, env, "backup", "-f", out)
	mustHark(t, env, "backup", "-f", out)
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("after two backups, %s holds %v, want only the backup", dir, entries)
	}
	restored := filepath.Join(t.TempDir(), "restored")
	wantContains(t, "restore", runHark(t, nil, "restore", "--data-dir", restored, out).stderr, "restored into")
	p := launch(t, restored, "HARK_ADMIN_TOKEN=test-admin-token")
	base, _ := p.waitListening(t)
	wantContains(t, "sources list of the restored server",
		mustHark(t, []string{"HARK_SERVER=" + base, "HARK_TOKEN=test-admin-token"}, "sources", "list"), src.ID, "Backed up")
}

// TestCLIRestoreRefusesDamagedBackup checks hark restore of a backup that is
// not whole, and of an unframed one from older hark: a non-zero exit, a
// message that says what is wrong, and no data dir left behind. It also
// checks the offline backup, and that a backup of a data dir without a
// database is refused instead of being an empty backup.
func TestCLIRestoreRefusesDamagedBackup(t *testing.T) {
	t.Parallel()
	s := startCLIServer(t)
	var src jsonSource
	harkJSON(t, s.env, &src, "sources", "create", "--type", "segment", "--name", "Offline")
	stopCLIServer(t, s)

	dir := t.TempDir()
	good := filepath.Join(dir, "good.backup")
	mustHark(t, []string{"HARK_DATA_DIR=" + s.dataDir}, "backup", "-f", good) // offline: no server holds it
	b, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	truncated := writeFile(t, "truncated.backup", string(b[:len(b)-100]))
	changed := bytes.Clone(b)
	changed[len(b)/2] ^= 1
	cases := map[string]struct {
		file string
		want []string
	}{
		"truncated":   {truncated, []string{"truncated"}},
		"changed":     {writeFile(t, "changed.backup", string(changed)), []string{"checksum"}},
		"empty":       {writeFile(t, "empty.backup", ""), []string{"empty"}},
		"older hark":  {writeFile(t, "old.backup", string(rawBackup(t, s.dataDir))), []string{"older hark", "hark backup"}},
		"not at all":  {writeFile(t, "notes.txt", "some notes\n"), []string{"not a hark backup"}},
		"no such one": {filepath.Join(dir, "missing.backup"), []string{"missing.backup"}},
	}
	for name, c := range cases {
		target := filepath.Join(t.TempDir(), "restored")
		stderr := wantFail(t, nil, "restore", "--data-dir", target, c.file)
		wantContains(t, name+": stderr", stderr, c.want...)
		if _, err := os.Stat(target); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("%s: a refused restore left %s (%v)", name, target, err)
		}
	}

	restored := filepath.Join(t.TempDir(), "restored")
	mustHark(t, nil, "restore", "--data-dir", restored, good)
	wantContains(t, "restore over it", wantFail(t, nil, "restore", "--data-dir", restored, good), "not empty")
	p := launch(t, restored, "HARK_ADMIN_TOKEN=test-admin-token")
	base, _ := p.waitListening(t)
	wantContains(t, "sources list of the restored server",
		mustHark(t, []string{"HARK_SERVER=" + base, "HARK_TOKEN=test-admin-token"}, "sources", "list"), src.ID, "Offline")

	nowhere := filepath.Join(t.TempDir(), "nowhere")
	stderr := wantFail(t, []string{"HARK_DATA_DIR=" + nowhere}, "backup", "-f", filepath.Join(dir, "nothing.backup"))
	wantContains(t, "backup of a data dir without a database", stderr, "no hark database", nowhere)
	if _, err := os.Stat(nowhere); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a backup of %s created it (%v)", nowhere, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "nothing.backup")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a refused backup left its file (%v)", err)
	}
}

// stopCLIServer stops a server of startCLIServer with SIGTERM.
func stopCLIServer(t *testing.T, s *cliServer) {
	t.Helper()
	if err := s.proc.stop(t); err != nil {
		t.Fatalf("hark after SIGTERM: %v; stderr:\n%s", err, s.proc.stderr)
	}
}

// rawBackup is Badger's bare backup stream of a stopped server's data dir:
// the unframed format older hark wrote.
func rawBackup(t *testing.T, dataDir string) []byte {
	t.Helper()
	store, err := badgerstore.Open(badgerstore.Options{Dir: filepath.Join(dataDir, "db")})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var buf bytes.Buffer
	if err := store.Backup(&buf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "Offline") {
		t.Fatal("the raw backup lacks the source")
	}
	return buf.Bytes()
}

// TestCLIBackupRefusesATerminal checks that hark backup without -f does not
// pour the binary backup onto a terminal, and that hark restore without a
// file does not sit waiting for one on it. /dev/null stands in for the
// terminal: both are character devices, which is what the check looks at.
func TestCLIBackupRefusesATerminal(t *testing.T) {
	t.Parallel()
	devNull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { devNull.Close() })
	run := func(args ...string) (string, int) {
		cmd := exec.Command(harkBin, args...)
		cmd.Env = serveEnv()
		cmd.Dir = t.TempDir()
		var stderr strings.Builder
		cmd.Stdin, cmd.Stdout, cmd.Stderr = devNull, devNull, &stderr
		err := cmd.Run()
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatal(err)
		}
		return stderr.String(), cmd.ProcessState.ExitCode()
	}
	dataDir := filepath.Join(t.TempDir(), "data")
	stderr, code := run("backup", "--data-dir", dataDir)
	if code == 0 || !strings.Contains(stderr, "terminal") || !strings.Contains(stderr, "-f FILE") {
		t.Fatalf("hark backup to a terminal: exit %d, stderr:\n%s", code, stderr)
	}
	stderr, code = run("restore", "--data-dir", dataDir)
	if code == 0 || !strings.Contains(stderr, "terminal") || !strings.Contains(stderr, "FILE") {
		t.Fatalf("hark restore from a terminal: exit %d, stderr:\n%s", code, stderr)
	}
	if _, err := os.Stat(dataDir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a refused backup or restore created %s (%v)", dataDir, err)
	}
}
