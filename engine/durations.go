package engine

import (
	"fmt"
	"strconv"
	"time"
)

// HumanDuration writes d in the largest unit that divides it, the way
// people (and the CLI's flags) write durations: "30d", "36h", "90m", "45s",
// "250ms"; time.Duration's own String gives "720h0m0s", which nobody
// types. Days are used from 2d on, as a day-long window is usually said
// "24h".
func HumanDuration(d time.Duration) string {
	const day = 24 * time.Hour
	switch {
	case d == 0:
		return "0s"
	case d < 0:
		return d.String()
	case d%day == 0 && d >= 2*day:
		return strconv.FormatInt(int64(d/day), 10) + "d"
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	case d%time.Second == 0:
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	case d < time.Second && d%time.Millisecond == 0:
		return strconv.FormatInt(int64(d/time.Millisecond), 10) + "ms"
	default:
		return d.String()
	}
}

// durationSeconds writes d as protobuf's JSON form of a Duration ("86400s"),
// which is how API clients write duration fields.
func durationSeconds(d time.Duration) string {
	if d%time.Second == 0 {
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "s"
}
