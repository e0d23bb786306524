package kvstore_test

import (
	"context"
	"errors"
	"testing"

	"github.com/harkhq/hark/engine"
	"github.com/harkhq/hark/engine/badgerstore"
	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// TestTriggerFired checks the once-per-recipient records: kept per trigger,
// tenant and recipient, and removed with their trigger only.
func TestTriggerFired(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, err := badgerstore.Open(badgerstore.Options{Dir: t.TempDir(), MinFreeBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	err = store.Update(ctx, func(tx engine.Tx) error {
		for _, id := range []string{"trg_1", "trg_2"} {
			if err := tx.PutTrigger(&harkv1.Trigger{Id: id, Environment: "development"}); err != nil {
				return err
			}
		}
		for _, f := range []struct{ trigger, tenant, recipient, run string }{
			{"trg_1", "", "u1", "run_a"}, {"trg_1", "acme", "u1", "run_b"}, {"trg_2", "", "u1", "run_c"},
		} {
			if err := tx.PutTriggerFired("development", f.trigger, f.tenant, f.recipient, f.run); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	fired := func(trigger, tenant, recipient string) string {
		t.Helper()
		var run string
		err := store.View(ctx, func(tx engine.Tx) (err error) {
			run, err = tx.TriggerFired("development", trigger, tenant, recipient)
			return err
		})
		if errors.Is(err, engine.ErrNotFound) {
			return ""
		}
		if err != nil {
			t.Fatal(err)
		}
		return run
	}
	for _, c := range []struct{ trigger, tenant, recipient, want string }{
		{"trg_1", "", "u1", "run_a"}, {"trg_1", "acme", "u1", "run_b"}, {"trg_1", "other", "u1", ""},
		{"trg_1", "", "u2", ""}, {"trg_2", "", "u1", "run_c"},
	} {
		if got := fired(c.trigger, c.tenant, c.recipient); got != c.want {
			t.Errorf("TriggerFired(%s, %q, %s) = %q, want %q", c.trigger, c.tenant, c.recipient, got, c.want)
		}
	}
	if err := store.Update(ctx, func(tx engine.Tx) error { return tx.DeleteTrigger("development", "trg_1") }); err != nil {
		t.Fatal(err)
	}
	if fired("trg_1", "", "u1") != "" || fired("trg_1", "acme", "u1") != "" {
		t.Error("a deleted trigger's records remain")
	}
	if fired("trg_2", "", "u1") != "run_c" {
		t.Error("deleting trg_1 removed trg_2's record")
	}
}
