package delivery_test

import (
	"fmt"
	"time"

	"github.com/harkhq/hark/engine/delivery"
)

// Sign with the Standard Webhooks spec's own example: the result is the
// spec's published signature.
func ExampleSign() {
	sig, err := delivery.Sign("msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0),
		[]byte(`{"test": 2432232314}`), "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	fmt.Println(sig, err)
	// Output: v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= <nil>
}

// A failed attempt's next one is due after the schedule's wait, or later
// when the receiver asks with Retry-After.
func ExampleRetryDelay() {
	schedule, err := delivery.ParseSchedule("0s,30s,10m,1d")
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, c := range []struct {
		attempts   int
		retryAfter time.Duration
	}{{1, 0}, {1, 2 * time.Minute}, {2, time.Minute}, {4, 0}} {
		d, ok := delivery.RetryDelay(schedule, c.attempts, delivery.Attempt{RetryAfter: c.retryAfter})
		fmt.Printf("after %d attempts, Retry-After %v: wait %v, %v\n", c.attempts, c.retryAfter, d, ok)
	}
	// Output:
	// after 1 attempts, Retry-After 0s: wait 30s, true
	// after 1 attempts, Retry-After 2m0s: wait 2m0s, true
	// after 2 attempts, Retry-After 1m0s: wait 10m0s, true
	// after 4 attempts, Retry-After 0s: wait 0s, false
}
