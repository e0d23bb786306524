package badgerstore_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/harkhq/hark/engine"
	"github.com/harkhq/hark/engine/badgerstore"
	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// oneType is the one installed source type the start-up benchmark needs.
type oneType struct{}

func (oneType) SourceType(name string) (*harkv1.SourceType, bool) {
	return &harkv1.SourceType{Type: name}, name == "segment"
}
func (oneType) SourceTypes() []*harkv1.SourceType { return []*harkv1.SourceType{{Type: "segment"}} }

// BenchmarkStartup measures engine.New over a real Badger holding n
// triggers, each with its own condition and the same mapping (the common
// shape: one mapping, many conditions). Start-up compiles every trigger into
// the registry; it used to clone the registry per trigger (10,000 triggers
// took 23 s).
func BenchmarkStartup(b *testing.B) {
	for _, n := range []int{10, 1_000, 10_000} {
		b.Run(fmt.Sprintf("triggers=%d", n), func(b *testing.B) {
			ctx := context.Background()
			store, err := badgerstore.Open(badgerstore.Options{Dir: b.TempDir()})
			if err != nil {
				b.Fatal(err)
			}
			defer store.Close()
			cfg := engine.Config{Store: store, SourceTypes: oneType{}}
			e, err := engine.New(ctx, cfg)
			if err != nil {
				b.Fatal(err)
			}
			src, err := e.CreateSource(ctx, &harkv1.CreateSourceRequest{Name: "bench", Type: "segment"})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := e.CreateWorkflow(ctx, &harkv1.CreateWorkflowRequest{Key: "welcome", Name: "Welcome"}); err != nil {
				b.Fatal(err)
			}
			if err := e.Close(); err != nil {
				b.Fatal(err)
			}
			// Written straight into the store, 1,000 per commit: saving them
			// through the API would fsync each one.
			for start := 0; start < n; start += 1000 {
				err := store.Update(ctx, func(tx engine.Tx) error {
					for i := start; i < min(start+1000, n); i++ {
						t := &harkv1.Trigger{
							Id: fmt.Sprintf("trg_%026d", i), Environment: "development", WorkflowKey: "welcome",
							SourceId: src.GetId(), EventType: "track", Event: fmt.Sprintf("Event %d", i%500),
							Condition: fmt.Sprintf(`properties.plan == "pro" && properties.seats > %d`, i),
							Mapping: &harkv1.TriggerMapping{
								Recipients: `[userId, {"id": properties.inviter.id, "email": properties.inviter.email}]`,
								Data:       `{"plan": properties.plan, "lib": body.context.library.name}`,
							},
							Status: harkv1.TriggerStatus_TRIGGER_STATUS_ACTIVE,
						}
						if err := tx.PutTrigger(t); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for b.Loop() {
				e, err := engine.New(ctx, cfg)
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if err := e.Close(); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}
