package host_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/harkhq/hark/plugins/host"
)

// TestDiscoverRefusesReplaceableBinaries installs the test plugin in a real
// plugin directory in ways that let someone other than hark's user (or
// root) replace what hark runs, and checks the host refuses it, saying why,
// while a safely installed copy beside it is accepted.
func TestDiscoverRefusesReplaceableBinaries(t *testing.T) {
	t.Parallel()
	// otherUID owns files "of someone else"; only root can hand files over.
	const otherUID = 4242
	install := func(t *testing.T, dir, name string, mode fs.FileMode) string {
		t.Helper()
		b, err := os.ReadFile(testPlugin)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, host.BinaryPrefix+name)
		if err := os.WriteFile(path, b, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		return path
	}
	chown := func(t *testing.T, path string) {
		t.Helper()
		if os.Geteuid() != 0 {
			t.Skip("only root can give a file to another user")
		}
		if err := os.Lchown(path, otherUID, otherUID); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		// setup installs the plugin "bad" into dir (mode 0o755 on entry)
		// and returns the words the refusal's log line must hold.
		setup func(t *testing.T, dir string) []string
	}{
		{"group-writable binary", func(t *testing.T, dir string) []string {
			install(t, dir, "bad", 0o775)
			return []string{"refuse plugin", "group-writable", "hark-source-bad"}
		}},
		{"world-writable binary", func(t *testing.T, dir string) []string {
			install(t, dir, "bad", 0o757)
			return []string{"refuse plugin", "world-writable", "hark-source-bad"}
		}},
		{"binary of another user", func(t *testing.T, dir string) []string {
			chown(t, install(t, dir, "bad", 0o755))
			return []string{"refuse plugin", "owned by uid 4242", "hark-source-bad"}
		}},
		{"symlink to a binary in a group-writable directory", func(t *testing.T, dir string) []string {
			elsewhere := t.TempDir()
			target := install(t, elsewhere, "bad", 0o755)
			if err := os.Chmod(elsewhere, 0o775); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, filepath.Join(dir, host.BinaryPrefix+"bad")); err != nil {
				t.Fatal(err)
			}
			return []string{"refuse plugin", "group-writable", elsewhere}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "plugins")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			install(t, dir, "good", 0o755)
			want := tt.setup(t, dir)
			types, logs := discover(t, dir)
			if !slices.Contains(types, "good") {
				t.Errorf("types = %q, want the safely installed plugin good", types)
			}
			if slices.Contains(types, "bad") {
				t.Errorf("types = %q: the host runs a plugin someone else could replace", types)
			}
			for _, w := range want {
				if !strings.Contains(logs, w) {
					t.Errorf("the log does not say %q:\n%s", w, logs)
				}
			}
		})
	}
}

// TestDiscoverRefusesReplaceableDir refuses every plugin of a plugin
// directory others can write to: they could add or swap binaries.
func TestDiscoverRefusesReplaceableDir(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		mode fs.FileMode
		own  bool // give the directory to another user
		want string
	}{
		{"group-writable", 0o775, false, "group-writable"},
		{"world-writable", 0o777, false, "world-writable"},
		{"world-writable with the sticky bit", fs.ModeSticky | 0o777, false, "world-writable"},
		{"of another user", 0o755, true, "owned by uid 4242"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "plugins")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(testPlugin)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, host.BinaryPrefix+"inside"), b, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(dir, tt.mode); err != nil {
				t.Fatal(err)
			}
			if tt.own {
				if os.Geteuid() != 0 {
					t.Skip("only root can give a directory to another user")
				}
				if err := os.Chown(dir, 4242, 4242); err != nil {
					t.Fatal(err)
				}
			}
			types, logs := discover(t, dir)
			if len(types) != 0 {
				t.Errorf("types = %q, want none from a directory others can write", types)
			}
			for _, w := range []string{"refuse", tt.want, dir} {
				if !strings.Contains(logs, w) {
					t.Errorf("the log does not say %q:\n%s", w, logs)
				}
			}
		})
	}
}

// discover starts a host on dir and returns the types it runs and its log.
func discover(t *testing.T, dir string) ([]string, string) {
	t.Helper()
	logs := &syncBuffer{}
	h, err := host.Start(t.Context(), host.Config{PluginDir: dir, Logger: newLogger(logs)})
	if err != nil {
		t.Fatalf("host.Start: %v", err)
	}
	defer h.Close()
	var types []string
	for _, in := range h.Types() {
		types = append(types, in.Type)
	}
	return types, logs.String()
}
