package delivery_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/harkhq/hark/engine/delivery"
)

func TestDefaultScheduleIsStandardWebhooks(t *testing.T) {
	t.Parallel()
	s := delivery.DefaultSchedule()
	want := []time.Duration{0, 5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour}
	for attempts, w := range want {
		if d, ok := s.NextDuration(attempts); !ok || d != w {
			t.Fatalf("NextDuration(%d) = %v, %v; want %v", attempts, d, ok, w)
		}
	}
	if d, ok := s.NextDuration(len(want)); ok {
		t.Fatalf("NextDuration(%d) = %v, want no attempt left after the eighth", len(want), d)
	}
	if s.String() != delivery.DefaultScheduleText {
		t.Fatalf("String = %q, want %q", s.String(), delivery.DefaultScheduleText)
	}
	parsed, err := delivery.ParseSchedule(delivery.DefaultScheduleText)
	if err != nil || !slices.Equal(parsed, s) {
		t.Fatalf("ParseSchedule(default text) = %v, %v; want %v", parsed, err, s)
	}
	// DefaultSchedule hands out copies.
	s[0] = time.Hour
	if d, _ := delivery.DefaultSchedule().NextDuration(0); d != 0 {
		t.Fatal("changing one DefaultSchedule changed the next")
	}
}

func TestParseSchedule(t *testing.T) {
	t.Parallel()
	for text, want := range map[string]delivery.Fixed{
		"0s":                  {0},
		" 1s , 2m ,3h ":       {time.Second, 2 * time.Minute, 3 * time.Hour},
		"1d,1d12h,30d":        {24 * time.Hour, 36 * time.Hour, 30 * 24 * time.Hour},
		"0d,1h30m,250ms":      {0, 90 * time.Minute, 250 * time.Millisecond},
		"10s,10s,10s,10s,10s": {10 * time.Second, 10 * time.Second, 10 * time.Second, 10 * time.Second, 10 * time.Second},
	} {
		got, err := delivery.ParseSchedule(text)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("ParseSchedule(%q) = %v, %v; want %v", text, got, err, want)
		}
		if again, err := delivery.ParseSchedule(got.String()); err != nil || !slices.Equal(again, got) {
			t.Errorf("String of %q = %q does not parse back: %v, %v", text, got.String(), again, err)
		}
	}
	for text, wantErr := range map[string]string{
		"":                               "retry schedule: is empty; give at least one wait, e.g. 0s,5s,5m,30m,2h,5h,10h,10h",
		"   ":                            "retry schedule: is empty; give at least one wait, e.g. 0s,5s,5m,30m,2h,5h,10h,10h",
		"5s,,5m":                         `retry schedule: entry 2 "": is empty`,
		"5s,-1s":                         `retry schedule: entry 2 "-1s": must not be negative`,
		"5x":                             `retry schedule: entry 1 "5x": is not a duration (e.g. 0s, 5s, 5m, 2h, 1d)`,
		"1.5d":                           `retry schedule: entry 1 "1.5d": is not a duration: days must be a whole number before 'd' (e.g. 2d or 1d12h)`,
		"1h2d":                           `retry schedule: entry 1 "1h2d": is not a duration: days must be a whole number before 'd' (e.g. 2d or 1d12h)`,
		"d":                              `retry schedule: entry 1 "d": is not a duration: days must be a whole number before 'd' (e.g. 2d or 1d12h)`,
		"1d-1h":                          `retry schedule: entry 1 "1d-1h": is not a duration: a sign may only lead the whole entry`,
		"31d":                            `retry schedule: entry 1 "31d": is longer than 30d`,
		"29d48h":                         `retry schedule: entry 1 "29d48h": is longer than 30d`,
		"99999999999h":                   `retry schedule: entry 1 "99999999999h": is not a duration (e.g. 0s, 5s, 5m, 2h, 1d)`,
		strings.Repeat("1s,", 50) + "1s": "retry schedule: has 51 entries; at most 50 attempts are allowed",
	} {
		got, err := delivery.ParseSchedule(text)
		var serr *delivery.ScheduleError
		if !errors.As(err, &serr) || err.Error() != wantErr {
			t.Errorf("ParseSchedule(%q) = %v, %v; want %q", text, got, err, wantErr)
		}
	}
}

func TestRetryDelayHonoursRetryAfter(t *testing.T) {
	t.Parallel()
	s := delivery.DefaultSchedule()
	for name, tc := range map[string]struct {
		attempts   int
		retryAfter time.Duration
		want       time.Duration
		ok         bool
	}{
		"no hint":                       {attempts: 1, want: 5 * time.Second, ok: true},
		"hint longer than the schedule": {attempts: 1, retryAfter: time.Minute, want: time.Minute, ok: true},
		"hint shorter is not sooner":    {attempts: 3, retryAfter: time.Minute, want: 30 * time.Minute, ok: true},
		"hint capped":                   {attempts: 1, retryAfter: 48 * time.Hour, want: delivery.MaxRetryAfter, ok: true},
		"cap never shortens a wait":     {attempts: 6, retryAfter: 48 * time.Hour, want: 10 * time.Hour, ok: true},
		"schedule used up":              {attempts: 8, retryAfter: time.Minute, ok: false},
	} {
		got, ok := delivery.RetryDelay(s, tc.attempts, delivery.Attempt{RetryAfter: tc.retryAfter})
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: RetryDelay = %v, %v; want %v, %v", name, got, ok, tc.want, tc.ok)
		}
	}
}
