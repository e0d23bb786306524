package main

import (
	"encoding/json"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

// TestCLIVersion checks hark version and hark --version: the same text,
// with the version, the commit and the Go version that built the binary.
func TestCLIVersion(t *testing.T) {
	t.Parallel()
	out := mustHark(t, nil, "version")
	if !strings.HasPrefix(out, "hark ") {
		t.Fatalf("hark version printed %q, want it to start with \"hark \"", out)
	}
	wantContains(t, "hark version", out, "commit", runtime.Version())
	if flag := mustHark(t, nil, "--version"); flag != out {
		t.Fatalf("hark --version printed %q, hark version %q; want the same", flag, out)
	}
	var v struct {
		Version, Commit, Go string
	}
	if err := json.Unmarshal([]byte(mustHark(t, nil, "version", "-o", "json")), &v); err != nil || v.Version == "" || v.Go != runtime.Version() {
		t.Fatalf("hark version -o json: %+v, %v", v, err)
	}
}

// TestVersionInfo checks what versionInfo makes of build info, including
// the cases where the toolchain stamped no version or no commit.
func TestVersionInfo(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		info *debug.BuildInfo
		want string
	}{
		{"no build info", nil, "hark (devel)\ncommit: unknown\ngo: unknown\n"},
		{"go build of a checkout", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
			{Key: "vcs.time", Value: "2026-01-02T03:04:05Z"},
			{Key: "vcs.modified", Value: "true"},
		}}, "hark (devel)\ncommit: 0123456789ab (2026-01-02T03:04:05Z, modified)\ngo: go1.26.8\n"},
		{"go install of a tag", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.3"}}, "hark v1.2.3\ncommit: unknown\ngo: go1.26.8\n"},
		{"no main version", &debug.BuildInfo{GoVersion: "go1.26.8"}, "hark (devel)\ncommit: unknown\ngo: go1.26.8\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if got := versionInfoOf(c.info, "").text(); got != c.want {
				t.Fatalf("got\n%s\nwant\n%s", got, c.want)
			}
		})
	}
	if got := versionInfoOf(nil, "v9.9.9").Version; got != "v9.9.9" {
		t.Fatalf("a version set at link time: %q, want v9.9.9", got)
	}
}

// TestCLIUsageErrors checks the command-line conventions: an unknown
// subcommand of any command fails with "unknown command" and a suggestion,
// and a wrong argument count or a missing required flag shows the usage
// line.
func TestCLIUsageErrors(t *testing.T) {
	t.Parallel()
	env := []string{"HARK_SERVER=http://127.0.0.1:1", "HARK_TOKEN=x"} // never reached
	wantContains(t, "hark triggers lsit", wantFail(t, env, "triggers", "lsit"),
		`unknown command "lsit" for "hark triggers"`, "Did you mean this?", "list", "hint: see 'hark triggers --help'")
	wantContains(t, "hark lsit", wantFail(t, env, "lsit"), `unknown command "lsit" for "hark"`)
	wantContains(t, "hark sources settings-x", wantFail(t, env, "sources", "setings"), `unknown command "setings"`, "settings")
	// A command group without a subcommand shows its help, as gh does.
	wantContains(t, "hark triggers", mustHark(t, env, "triggers"), "Available Commands:", "update")

	wantContains(t, "hark triggers get", wantFail(t, env, "triggers", "get"),
		"accepts 1 arg(s), received 0", "usage: hark triggers get ID --env ENV")
	wantContains(t, "hark env create a b", wantFail(t, env, "env", "create", "a", "b"), "usage: hark env create SLUG")
	wantContains(t, "hark sources list x", wantFail(t, env, "sources", "list", "x"), "usage: hark sources list")
	wantContains(t, "hark sources create --name X", wantFail(t, env, "sources", "create", "--name", "X"),
		`required flag(s) "type" not set`, "usage: hark sources create --type TYPE --name NAME")
}

// TestDurations checks that the CLI prints durations the way people write
// them, and that what it prints reads back as the same duration.
func TestDurations(t *testing.T) {
	t.Parallel()
	cases := []struct {
		d    time.Duration
		want string
	}{
		{0, ""},
		{90 * time.Second, "90s"},
		{time.Minute, "1m"},
		{30 * time.Minute, "30m"},
		{90 * time.Minute, "90m"},
		{24 * time.Hour, "24h"},
		{36 * time.Hour, "36h"},
		{48 * time.Hour, "2d"},
		{720 * time.Hour, "30d"},
		{1500 * time.Millisecond, "1.5s"},
		{time.Hour + time.Second, "3601s"},
		{250 * time.Millisecond, "250ms"},
	}
	for _, c := range cases {
		got := fmtDuration(c.d)
		if got != c.want {
			t.Errorf("fmtDuration(%v) = %q, want %q", c.d, got, c.want)
		}
		if c.d == 0 {
			continue
		}
		if back, err := parseDuration(got); err != nil || back != c.d {
			t.Errorf("parseDuration(%q) = %v, %v; want %v", got, back, err, c.d)
		}
	}
	if d, err := parseDuration("1d12h"); err != nil || d != 36*time.Hour {
		t.Errorf("parseDuration(1d12h) = %v, %v; want 36h", d, err)
	}
	for _, bad := range []string{"", "d", "-1d", "-5m", "1x", "30dd", "infd", "1d-1h"} {
		if d, err := parseDuration(bad); err == nil {
			t.Errorf("parseDuration(%q) = %v, want an error", bad, d)
		}
	}
}
