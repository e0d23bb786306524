package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/harkhq/hark/engine"
	"github.com/harkhq/hark/engine/delivery"
	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// outboxDelivery is a fixture of testOutbox: a delivery, due after `in`
// when in > 0, and its state.
type outboxDelivery struct {
	env, dest, id string
	status        harkv1.DeliveryStatus
	in            time.Duration // next_attempt_at after base; 0 for none
}

const (
	pending   = harkv1.DeliveryStatus_DELIVERY_STATUS_PENDING
	succeeded = harkv1.DeliveryStatus_DELIVERY_STATUS_SUCCEEDED
	failed    = harkv1.DeliveryStatus_DELIVERY_STATUS_FAILED
)

func (o outboxDelivery) message(base time.Time) *harkv1.Delivery {
	d := &harkv1.Delivery{Environment: o.env, Id: o.id, DestinationId: o.dest, WorkflowRunId: "run_" + o.id, Status: o.status}
	if o.in > 0 {
		d.NextAttemptAt = timestamppb.New(base.Add(o.in))
	}
	return d
}

func runOf(env, id string) *harkv1.WorkflowRun {
	return &harkv1.WorkflowRun{Environment: env, Id: "run_" + id, WorkflowKey: "wf", Recipients: []string{"u_" + id}}
}

func dueIDs(due []engine.DueDelivery) []string {
	out := make([]string, len(due))
	for i, d := range due {
		out[i] = d.Environment + "/" + d.DestinationID + "/" + d.ID
	}
	return out
}

// testOutbox: a pending delivery with next_attempt_at is due then, listed
// in due order across environments; one without is held for its
// destination; a done one is in neither; a delivery moves between them as
// it is updated, keeping the run it was written with; DeleteDestination
// removes its held deliveries.
func testOutbox(t *testing.T, open opener) {
	s := open(t)
	base := time.Now().Truncate(time.Second)
	fixtures := []outboxDelivery{
		{"dev", "dst1", "d1", pending, 3 * time.Second},
		{"dev2", "dst1", "d2", pending, 1 * time.Second},
		{"dev", "dst2", "d3", pending, 2 * time.Second},
		{"dev", "dst1", "d4", pending, 10 * time.Minute}, // due after `until`
		{"dev", "dst1", "h2", pending, 0},
		{"dev", "dst1", "h1", pending, 0},
		{"dev", "dst2", "h3", pending, 0},
		{"dev2", "dst1", "h4", pending, 0},
		{"de", "dst1", "h5", pending, 0},
		{"dev", "dst10", "h6", pending, 0}, // dst10 beside dst1
		{"dev", "dst1", "done1", succeeded, 0},
		{"dev", "dst1", "done2", failed, 4 * time.Second}, // done, whatever its next attempt
	}
	update(t, s, func(tx engine.Tx) error {
		for _, env := range []string{"dev", "dev2", "de"} {
			for _, dest := range []string{"dst1", "dst10", "dst2"} {
				if err := tx.PutDestination(&harkv1.Destination{Environment: env, Id: dest, Type: "webhook"}, delivery.Secrets{Current: "whsec"}); err != nil {
					return err
				}
			}
		}
		for _, f := range fixtures {
			if err := tx.PutDelivery(f.message(base), runOf(f.env, f.id), farFuture()); err != nil {
				return fmt.Errorf("put %s: %w", f.id, err)
			}
		}
		return nil
	})

	until := base.Add(5 * time.Second)
	checkDue := func(when string, want ...string) {
		t.Helper()
		view(t, s, func(tx engine.Tx) error {
			due, err := tx.DueDeliveries(until, nil, 100)
			if err != nil {
				return err
			}
			if got := dueIDs(due); !slices.Equal(got, want) {
				t.Errorf("%s: due by %v: %q, want %q", when, until.Sub(base), got, want)
			}
			return nil
		})
	}
	checkHeld := func(when, env, dest string, want ...string) {
		t.Helper()
		view(t, s, func(tx engine.Tx) error {
			got, err := tx.HeldDeliveries(env, dest, "", 100)
			if err != nil {
				return err
			}
			if len(got) == 0 {
				got = nil
			}
			if !slices.Equal(got, want) {
				t.Errorf("%s: held for %s/%s: %q, want %q", when, env, dest, got, want)
			}
			return nil
		})
	}

	// The queue across environments, in due order, with each position's
	// due time; paging one at a time and resuming after any position.
	checkDue("as written", "dev2/dst1/d2", "dev/dst2/d3", "dev/dst1/d1")
	view(t, s, func(tx engine.Tx) error {
		due, err := tx.DueDeliveries(until, nil, 100)
		if err != nil {
			return err
		}
		for _, d := range due {
			f := fixtures[slices.IndexFunc(fixtures, func(f outboxDelivery) bool { return f.id == d.ID })]
			if !d.Due.Equal(base.Add(f.in)) {
				t.Errorf("%s is due at %v, want %v", d.ID, d.Due, base.Add(f.in))
			}
		}
		var paged []engine.DueDelivery
		var after *engine.DueDelivery
		for range len(due) + 1 {
			page, err := tx.DueDeliveries(until, after, 1)
			if err != nil {
				return err
			}
			if len(page) > 1 {
				t.Errorf("DueDeliveries with limit 1 returned %d", len(page))
			}
			if len(page) == 0 {
				break
			}
			paged = append(paged, page...)
			after = &page[len(page)-1]
		}
		if got, want := dueIDs(paged), dueIDs(due); !slices.Equal(got, want) {
			t.Errorf("paging the queue by 1: %q, want %q", got, want)
		}
		rest, err := tx.DueDeliveries(until, &due[0], 100)
		if err != nil {
			return err
		}
		if got, want := dueIDs(rest), dueIDs(due[1:]); !slices.Equal(got, want) {
			t.Errorf("after %s: %q, want %q", due[0].ID, got, want)
		}
		// Everything due ever: d4 too, and never a done delivery.
		later, err := tx.DueDeliveries(base.Add(time.Hour), nil, 100)
		if err != nil {
			return err
		}
		if got := dueIDs(later); !slices.Equal(got, []string{"dev2/dst1/d2", "dev/dst2/d3", "dev/dst1/d1", "dev/dst1/d4"}) {
			t.Errorf("due within the hour: %q, want d2, d3, d1, d4 and no done delivery", got)
		}
		depth, _, err := tx.OutboxDepth()
		if err != nil {
			return err
		}
		if depth != len(later) {
			t.Errorf("OutboxDepth counts %d, want the %d due deliveries", depth, len(later))
		}
		return nil
	})
	checkHeld("as written", "dev", "dst1", "h1", "h2")
	checkHeld("as written", "dev", "dst2", "h3")
	checkHeld("as written", "dev2", "dst1", "h4")
	checkHeld("as written", "dev", "dst10", "h6")
	view(t, s, func(tx engine.Tx) error {
		for _, c := range []struct {
			after string
			limit int
			want  []string
		}{{"", 1, []string{"h1"}}, {"h1", 1, []string{"h2"}}, {"h2", 10, nil}} {
			got, err := tx.HeldDeliveries("dev", "dst1", c.after, c.limit)
			if err != nil {
				return err
			}
			if len(got) == 0 {
				got = nil
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("held for dev/dst1 after %q, limit %d: %q, want %q", c.after, c.limit, got, c.want)
			}
		}
		return nil
	})

	// Updates (no run: the stored one stays) move deliveries: h1 from held
	// to due, d1 done, d3 to a later attempt.
	updated := map[string]*harkv1.Delivery{}
	update(t, s, func(tx engine.Tx) error {
		for _, f := range []outboxDelivery{
			{"dev", "dst1", "h1", pending, 4 * time.Second},
			{"dev", "dst1", "d1", succeeded, 0},
			{"dev", "dst2", "d3", pending, 4500 * time.Millisecond},
		} {
			d := f.message(base)
			d.AttemptCount = 1
			updated[f.id] = d
			if err := tx.PutDelivery(d, nil, farFuture()); err != nil {
				return fmt.Errorf("update %s: %w", f.id, err)
			}
		}
		return nil
	})
	checkDue("after the updates", "dev2/dst1/d2", "dev/dst1/h1", "dev/dst2/d3")
	checkHeld("after the updates", "dev", "dst1", "h2")
	view(t, s, func(tx engine.Tx) error {
		for _, f := range fixtures {
			d, run, err := tx.Delivery(f.env, f.id)
			if err != nil {
				return fmt.Errorf("delivery %s: %w", f.id, err)
			}
			want := f.message(base)
			if u, ok := updated[f.id]; ok {
				want = u
			}
			if !proto.Equal(d, want) {
				t.Errorf("delivery %s reads %v, want %v", f.id, d, want)
			}
			if !proto.Equal(run, runOf(f.env, f.id)) {
				t.Errorf("delivery %s carries run %v, want the one it was written with", f.id, run)
			}
		}
		return nil
	})

	// DeleteDestination takes its held deliveries, and only its.
	update(t, s, func(tx engine.Tx) error { return tx.DeleteDestination("dev", "dst1") })
	checkHeld("after DeleteDestination dev/dst1", "dev", "dst1")
	checkHeld("after DeleteDestination dev/dst1", "dev", "dst2", "h3")
	checkHeld("after DeleteDestination dev/dst1", "dev2", "dst1", "h4")
	checkHeld("after DeleteDestination dev/dst1", "de", "dst1", "h5")
	checkHeld("after DeleteDestination dev/dst1", "dev", "dst10", "h6")
}
