package natsstore

import (
	"errors"
	"testing"
)

func TestCheckVersion(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		version string
		ok      bool
	}{
		{"2.12.0", true},
		{"2.12.1", true},
		{"2.15.2", true},
		{"v2.13.0", true},
		{"2.12.0-RC.1", true},
		{"3.0.0", true},
		{"2.11.9", false},
		{"2.10.7", false},
		{"1.99.0", false},
		{"", false},
		{"2", false},
		{"x.y.z", false},
	} {
		t.Run(tc.version, func(t *testing.T) {
			err := checkVersion(tc.version, "nats://127.0.0.1:4222")
			var old *ServerTooOldError
			if tc.ok != (err == nil) || (err != nil && !errors.As(err, &old)) {
				t.Errorf("checkVersion(%q) = %v, want ok=%v", tc.version, err, tc.ok)
			}
		})
	}
}

func TestReconnectDelay(t *testing.T) {
	t.Parallel()
	for attempts := range 40 {
		d := reconnectDelay(attempts)
		if d < reconnectMin/2 || d > reconnectMax {
			t.Errorf("reconnectDelay(%d) = %s, want within [%s, %s]", attempts, d, reconnectMin/2, reconnectMax)
		}
	}
	if d := reconnectDelay(30); d < reconnectMax/2 {
		t.Errorf("reconnectDelay(30) = %s, want at least %s once backed off", d, reconnectMax/2)
	}
}

func TestRedact(t *testing.T) {
	t.Parallel()
	got := redact([]string{"nats://alice:secret@a:4222", "nats://b:4222"})
	if want := "nats://redacted@a:4222,nats://b:4222"; got != want {
		t.Errorf("redact = %q, want %q", got, want)
	}
}
