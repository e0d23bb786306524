package delivery

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Schedule decides when the next attempt of a delivery is due. It is a
// strategy so that a destination, a test or a later backoff policy can bring
// its own; Fixed is the one hark ships.
type Schedule interface {
	// NextDuration returns how long to wait before the next attempt of a
	// delivery that has had `attempts` attempts (0 before the first), and
	// false when no attempt is left: the delivery is then FAILED.
	NextDuration(attempts int) (time.Duration, bool)
}

// Fixed is a Schedule that lists the wait before each attempt: Fixed[0]
// before the first, Fixed[1] after the first failure, and so on. Its length
// is the number of attempts.
type Fixed []time.Duration

var _ Schedule = Fixed(nil)

// NextDuration returns f[attempts], or false once every attempt was made.
func (f Fixed) NextDuration(attempts int) (time.Duration, bool) {
	if attempts < 0 || attempts >= len(f) {
		return 0, false
	}
	return f[attempts], true
}

// String writes f the way ParseSchedule reads it ("0s,5s,5m,30m,2h").
func (f Fixed) String() string {
	parts := make([]string, len(f))
	for i, d := range f {
		parts[i] = formatWait(d)
	}
	return strings.Join(parts, ",")
}

// DefaultScheduleText is the Standard Webhooks retry schedule: immediately,
// then 5 seconds, 5 minutes, 30 minutes, 2, 5, 10 and 10 hours — eight
// attempts over about 27 hours, long enough to outlast a receiver's bad
// night. It is the default of `--delivery-retry-schedule`.
const DefaultScheduleText = "0s,5s,5m,30m,2h,5h,10h,10h"

// DefaultSchedule returns the Standard Webhooks schedule (see
// DefaultScheduleText). Each call returns a new slice, so callers may keep
// and change it.
func DefaultSchedule() Fixed {
	return Fixed{0, 5 * time.Second, 5 * time.Minute, 30 * time.Minute,
		2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour}
}

const (
	// MaxScheduleAttempts bounds a parsed schedule: every attempt is kept
	// with the delivery, so a schedule is a list of retries, not a loop.
	MaxScheduleAttempts = 50
	// MaxScheduleWait bounds one wait of a parsed schedule: runs are kept
	// 30 days by default, and a delivery waiting longer would outlive its run.
	MaxScheduleWait = 30 * 24 * time.Hour
	// MaxRetryAfter caps how long a receiver's Retry-After hint can push an
	// attempt out. A hint shorter than the schedule's own wait is ignored
	// (hark never retries sooner than its schedule); a longer one is honoured
	// up to 6 hours, which stays within the default schedule's longest gap
	// (10 hours), so a receiver answering "Retry-After: 31536000" cannot park
	// a delivery for a year.
	MaxRetryAfter = 6 * time.Hour
)

// ScheduleError is a `--delivery-retry-schedule` text that does not parse.
type ScheduleError struct {
	// Entry is the 1-based position of the bad entry; 0 for the whole text.
	Entry int
	// Text is the bad entry as written.
	Text string
	// Reason says what is wrong.
	Reason string
}

func (e *ScheduleError) Error() string {
	if e.Entry == 0 {
		return "retry schedule: " + e.Reason
	}
	return fmt.Sprintf("retry schedule: entry %d %q: %s", e.Entry, e.Text, e.Reason)
}

// ParseSchedule reads a comma-separated list of waits, each a Go duration
// ("5s", "1h30m") or a whole number of days optionally followed by one
// ("2d", "1d12h"), as `--delivery-retry-schedule` takes them. It refuses an
// empty list, negative waits, waits over MaxScheduleWait and lists longer
// than MaxScheduleAttempts, with a *ScheduleError.
func ParseSchedule(text string) (Fixed, error) {
	text = strings.TrimSpace(text)
	if text == "" {
		return nil, &ScheduleError{Reason: "is empty; give at least one wait, e.g. " + DefaultScheduleText}
	}
	entries := strings.Split(text, ",")
	if len(entries) > MaxScheduleAttempts {
		return nil, &ScheduleError{Reason: fmt.Sprintf("has %d entries; at most %d attempts are allowed", len(entries), MaxScheduleAttempts)}
	}
	out := make(Fixed, 0, len(entries))
	for i, raw := range entries {
		entry := strings.TrimSpace(raw)
		d, reason := parseWait(entry)
		if reason != "" {
			return nil, &ScheduleError{Entry: i + 1, Text: entry, Reason: reason}
		}
		out = append(out, d)
	}
	return out, nil
}

// parseWait reads one schedule entry, returning why it is bad instead of an
// error so ParseSchedule can say which entry it was.
func parseWait(s string) (time.Duration, string) {
	const day = 24 * time.Hour
	if s == "" {
		return 0, "is empty"
	}
	if s[0] == '-' {
		return 0, "must not be negative"
	}
	var d time.Duration
	rest := s
	if i := strings.IndexByte(s, 'd'); i >= 0 {
		// time.ParseDuration has no day unit, and no Go unit contains a
		// 'd', so a 'd' can only be days: a whole number before it.
		days, err := strconv.ParseUint(s[:i], 10, 16)
		if err != nil {
			return 0, "is not a duration: days must be a whole number before 'd' (e.g. 2d or 1d12h)"
		}
		if time.Duration(days) > MaxScheduleWait/day {
			return 0, fmt.Sprintf("is longer than %s", formatWait(MaxScheduleWait))
		}
		d = time.Duration(days) * day
		rest = s[i+1:]
	}
	if rest != "" {
		if rest[0] == '-' || rest[0] == '+' {
			return 0, "is not a duration: a sign may only lead the whole entry"
		}
		part, err := time.ParseDuration(rest)
		if err != nil {
			return 0, "is not a duration (e.g. 0s, 5s, 5m, 2h, 1d)"
		}
		d += part
	}
	if d > MaxScheduleWait {
		return 0, fmt.Sprintf("is longer than %s", formatWait(MaxScheduleWait))
	}
	return d, ""
}

// formatWait writes d in the largest unit that divides it ("5m", "2h",
// "30d"), which ParseSchedule reads back.
func formatWait(d time.Duration) string {
	const day = 24 * time.Hour
	switch {
	case d == 0:
		return "0s"
	case d%day == 0:
		return strconv.FormatInt(int64(d/day), 10) + "d"
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	case d%time.Second == 0:
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	default:
		return d.String()
	}
}

// RetryDelay says how long after the attempt `last` the next attempt of a
// delivery is due, given that `attempts` attempts were made (last among
// them), and false when the schedule has none left. A Retry-After hint in
// last (on a 429 or 503) pushes the attempt out, never sooner than the
// schedule and never past MaxRetryAfter. A successful, permanent or
// disabling attempt ends the delivery's schedule, so callers check those
// first; RetryDelay only answers for a retryable failure.
func RetryDelay(s Schedule, attempts int, last Attempt) (time.Duration, bool) {
	d, ok := s.NextDuration(attempts)
	if !ok {
		return 0, false
	}
	if hint := min(last.RetryAfter, MaxRetryAfter); hint > d {
		d = hint
	}
	return d, true
}
