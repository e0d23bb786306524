package host_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/harkhq/hark/plugins/host"
)

func TestTrimMessage(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", host.MaxMessageBytes) // 2 KiB of two-byte runes
	tests := []struct {
		name, in   string
		wantPrefix string
		wantLen    int // 0: the input's length
	}{
		{"short", "bad signature", "bad signature", 0},
		{"exactly the limit", strings.Repeat("a", host.MaxMessageBytes), "aaa", 0},
		{"one byte over", strings.Repeat("a", host.MaxMessageBytes+1), "aaa", host.MaxMessageBytes},
		{"cut at a rune boundary", "x" + long, "xé", host.MaxMessageBytes},
		{"cut inside a rune", long, "éé", host.MaxMessageBytes - 1},
		{"megabytes", strings.Repeat("z", 5<<20), "zzz", host.MaxMessageBytes},
		{"invalid UTF-8", "ok \xff\xfe end", "ok \uFFFD end", len("ok \uFFFD end")},
		{"megabytes of invalid UTF-8", strings.Repeat("\xff", 5<<20), "\uFFFD", len("\uFFFD…")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := host.TrimMessage(tt.in)
			want := tt.wantLen
			if want == 0 {
				want = len(tt.in)
			}
			if len(got) != want || !utf8.ValidString(got) || !strings.HasPrefix(got, tt.wantPrefix) {
				t.Fatalf("TrimMessage = %d bytes %q, want %d bytes of valid UTF-8 starting %q", len(got), got, want, tt.wantPrefix)
			}
			if len(got) < len(tt.in) && tt.name != "invalid UTF-8" && !strings.HasSuffix(got, "…") {
				t.Errorf("a cut message does not end with …")
			}
		})
	}
}
