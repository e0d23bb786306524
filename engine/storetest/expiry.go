package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/harkhq/hark/engine"
	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// Expiry bounds. A store may keep a record past its expiry until its own
// clock passes it (Badger's has whole seconds), but not forever: expiryWait
// is how long the suite gives it.
const (
	shortTTL   = 1500 * time.Millisecond
	expiryWait = 10 * time.Second
	expiryPoll = 100 * time.Millisecond
)

// expiring is one kind of record that expires: how to write and find it.
type expiring struct {
	name string
	put  func(tx engine.Tx, id string, expiresAt time.Time) error
	// there reports whether the record id can be read (and, for kinds
	// with a listing, is listed).
	there func(tx engine.Tx, id string) (bool, error)
}

func expiringKinds() []expiring {
	const env = "dev"
	found := func(err error) (bool, error) {
		if err != nil && !notFound(err) {
			return false, err
		}
		return err == nil, nil
	}
	return []expiring{
		{name: "source event",
			put: func(tx engine.Tx, id string, exp time.Time) error {
				meta, err := proto.Marshal(&harkv1.SourceEvent{Id: id, Environment: env, Type: "track"})
				if err != nil {
					return err
				}
				return tx.PutSourceEvent(env, id, meta, engine.EventJSON{Event: []byte(`{}`)}, exp)
			},
			there: func(tx engine.Tx, id string) (bool, error) {
				_, err := tx.SourceEvent(env, id)
				got, err := found(err)
				if err != nil {
					return false, err
				}
				evs, _, err := sourceEvents(tx, env, "", 100, 100)
				if err != nil {
					return false, err
				}
				listed := slices.ContainsFunc(evs, func(e *harkv1.SourceEvent) bool { return e.GetId() == id })
				return got || listed, nil
			}},
		{name: "idempotency record",
			put: func(tx engine.Tx, id string, exp time.Time) error {
				return tx.PutIdempotencyRecord(env, "src", "track", id, "evt_"+id, exp)
			},
			there: func(tx engine.Tx, id string) (bool, error) {
				_, _, err := tx.IdempotencyRecord(env, "src", "track", id)
				return found(err)
			}},
		{name: "workflow run",
			put: func(tx engine.Tx, id string, exp time.Time) error {
				return tx.PutWorkflowRun(&harkv1.WorkflowRun{Environment: env, Id: id, WorkflowKey: "wf"}, exp)
			},
			there: func(tx engine.Tx, id string) (bool, error) {
				_, err := tx.WorkflowRun(env, id)
				got, err := found(err)
				if err != nil {
					return false, err
				}
				runs, _, err := workflowRuns(tx, env, "", 100, 100)
				if err != nil {
					return false, err
				}
				listed := slices.ContainsFunc(runs, func(r *harkv1.WorkflowRun) bool { return r.GetId() == id })
				return got || listed, nil
			}},
		{name: "run feed entry",
			put: func(tx engine.Tx, id string, exp time.Time) error {
				_, err := appendRunFeed(tx, env, "feed_"+id, exp)
				return err
			},
			there: func(tx engine.Tx, id string) (bool, error) {
				ids, err := feedRunIDs(tx, env)
				return ids["feed_"+id], err
			}},
		{name: "trigger request",
			put: func(tx engine.Tx, id string, exp time.Time) error {
				return tx.PutTriggerRequest(env, id, []byte{1}, "run_"+id, exp)
			},
			there: func(tx engine.Tx, id string) (bool, error) {
				_, _, _, err := tx.TriggerRequest(env, id)
				return found(err)
			}},
	}
}

// testExpiry: records given an expiry go away some time after it; those
// with an expiry ahead stay.
func testExpiry(t *testing.T, open opener) {
	s := open(t)
	kinds := expiringKinds()
	now := time.Now()
	update(t, s, func(tx engine.Tx) error {
		for _, k := range kinds {
			if err := k.put(tx, "short", now.Add(shortTTL)); err != nil {
				return fmt.Errorf("put %s: %w", k.name, err)
			}
			if err := k.put(tx, "long", now.Add(time.Hour)); err != nil {
				return fmt.Errorf("put %s: %w", k.name, err)
			}
		}
		return nil
	})
	// Present before their expiry: otherwise "gone" below proves nothing.
	view(t, s, func(tx engine.Tx) error {
		for _, k := range kinds {
			if ok, err := k.there(tx, "short"); err != nil || !ok {
				t.Errorf("%s expiring in %v is not there at once (err %v)", k.name, shortTTL, err)
			}
		}
		return nil
	})

	remaining := kinds
	for deadline := now.Add(shortTTL + expiryWait); len(remaining) > 0 && time.Now().Before(deadline); {
		time.Sleep(expiryPoll)
		var still []expiring
		view(t, s, func(tx engine.Tx) error {
			for _, k := range remaining {
				ok, err := k.there(tx, "short")
				if err != nil {
					return fmt.Errorf("read %s: %w", k.name, err)
				}
				if ok {
					still = append(still, k)
				}
			}
			return nil
		})
		remaining = still
	}
	for _, k := range remaining {
		t.Errorf("%s is still there %v after its expiry", k.name, expiryWait)
	}
	t.Logf("short-lived records gone %v after they were written", time.Since(now).Round(100*time.Millisecond))

	view(t, s, func(tx engine.Tx) error {
		for _, k := range kinds {
			if ok, err := k.there(tx, "long"); err != nil || !ok {
				t.Errorf("%s expiring in an hour is gone (err %v)", k.name, err)
			}
		}
		return nil
	})
}
