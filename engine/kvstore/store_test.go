package kvstore_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/harkhq/hark/engine"
	"github.com/harkhq/hark/engine/badgerstore"
	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// TestWatchFollowsKeys writes through the Tx methods that touch watched
// tables and checks the changes the watch derives from their keys, one
// commit at a time, before Update returns.
func TestWatchFollowsKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, err := badgerstore.Open(badgerstore.Options{Dir: t.TempDir(), MinFreeBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	var (
		mu  sync.Mutex
		got [][]engine.Change
	)
	stop := store.Watch(func(cs []engine.Change) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, cs)
	})
	defer stop()
	const env = "development"
	tests := []struct {
		name  string
		write func(engine.Tx) error
		want  []engine.Change
	}{
		{"environment", func(tx engine.Tx) error { return tx.PutEnvironment(&harkv1.Environment{Slug: env}) },
			[]engine.Change{{Kind: engine.ChangeLayout, Environment: env}}},
		{"source", func(tx engine.Tx) error { return tx.PutSource(&harkv1.Source{Id: "src_1"}) },
			[]engine.Change{{Kind: engine.ChangeLayout, ID: "src_1"}}},
		{"ingest token", func(tx engine.Tx) error { return tx.SetIngestToken("src_1", env, "tok") },
			[]engine.Change{{Kind: engine.ChangeCatalog, Environment: env, ID: "src_1"}, {Kind: engine.ChangeCatalog}}},
		{"trigger", func(tx engine.Tx) error { return tx.PutTrigger(&harkv1.Trigger{Environment: env, Id: "trg_1"}) },
			[]engine.Change{{Kind: engine.ChangeTrigger, Environment: env, ID: "trg_1"}}},
		{"trigger deleted", func(tx engine.Tx) error { return tx.DeleteTrigger(env, "trg_1") },
			[]engine.Change{{Kind: engine.ChangeTrigger, Environment: env, ID: "trg_1"}}},
		{"run feed, twice in one commit", func(tx engine.Tx) error {
			for _, run := range []string{"run_1", "run_2"} {
				if _, err := tx.AppendRunFeed(env, run, time.Now().Add(time.Hour)); err != nil {
					return err
				}
			}
			return nil
		}, []engine.Change{{Kind: engine.ChangeRuns, Environment: env}}},
		{"unwatched", func(tx engine.Tx) error { return tx.PutUser(&harkv1.User{Environment: env, Id: "u1"}) }, nil},
	}
	for _, tt := range tests {
		mu.Lock()
		got = nil
		mu.Unlock()
		if err := store.Update(ctx, tt.write); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		mu.Lock()
		var want [][]engine.Change
		if tt.want != nil {
			want = [][]engine.Change{tt.want}
		}
		if !slices.EqualFunc(got, want, slices.Equal) {
			t.Errorf("%s: changes %v, want %v", tt.name, got, want)
		}
		mu.Unlock()
	}
}
