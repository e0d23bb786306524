package engine

import (
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"

	"github.com/harkhq/hark/engine/rules"
	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// trgCompiled compiles a trigger for the registry tests and benchmarks.
func trgCompiled(tb testing.TB, id, env, source, typ, name, condition string) *compiledTrigger {
	tb.Helper()
	ct, err := compileTrigger(&harkv1.Trigger{
		Id: id, Environment: env, SourceId: source, EventType: typ, Event: name,
		WorkflowKey: "new-comment", Condition: condition,
		Mapping: &harkv1.TriggerMapping{
			Recipients:      "properties.recipients",
			Actor:           "userId",
			Data:            `{"comment": properties.comment.body, "post": data.post.title, "lib": body.context.library.name}`,
			CancellationKey: "properties.comment.id",
		},
		Status: harkv1.TriggerStatus_TRIGGER_STATUS_ACTIVE,
	})
	if err != nil {
		tb.Fatalf("compile trigger %s: %v", id, err)
	}
	return ct
}

// trgIDs returns the ids of a match, in its order.
func trgIDs(list []*compiledTrigger) []string {
	out := make([]string, len(list))
	for i, ct := range list {
		out[i] = ct.t.GetId()
	}
	return out
}

func TestTriggerRegistry(t *testing.T) {
	t.Parallel()
	var r triggerRegistry
	if got := r.match("development", "src_1", "track", "Comment Created"); len(got) != 0 {
		t.Fatalf("empty registry matched %v", trgIDs(got))
	}

	// Put in an order other than creation order: matches come out in
	// creation (id) order.
	const cond = `properties.post.id == 42`
	for _, id := range []string{"trg_02", "trg_01", "trg_03"} {
		r.update(trgCompiled(t, id, "development", "src_1", "track", "Comment Created", cond), "")
	}
	// Triggers that differ in one part of the key do not match.
	r.update(trgCompiled(t, "trg_00", "production", "src_1", "track", "Comment Created", cond), "")
	r.update(trgCompiled(t, "trg_04", "development", "src_2", "track", "Comment Created", cond), "")
	r.update(trgCompiled(t, "trg_05", "development", "src_1", "page", "Comment Created", cond), "")
	r.update(trgCompiled(t, "trg_06", "development", "src_1", "track", "Comment Deleted", cond), "")

	key := func() []string { return trgIDs(r.match("development", "src_1", "track", "Comment Created")) }
	if got, want := key(), []string{"trg_01", "trg_02", "trg_03"}; !slices.Equal(got, want) {
		t.Fatalf("match = %v, want %v (creation order)", got, want)
	}
	for _, c := range []struct {
		env, source, typ, name string
		want                   []string
	}{
		{"production", "src_1", "track", "Comment Created", []string{"trg_00"}},
		{"development", "src_2", "track", "Comment Created", []string{"trg_04"}},
		{"development", "src_1", "page", "Comment Created", []string{"trg_05"}},
		{"development", "src_1", "track", "Comment Deleted", []string{"trg_06"}},
		{"development", "src_1", "track", "comment created", nil},
	} {
		if got := trgIDs(r.match(c.env, c.source, c.typ, c.name)); !slices.Equal(got, c.want) {
			t.Errorf("match(%s, %s, %s, %q) = %v, want %v", c.env, c.source, c.typ, c.name, got, c.want)
		}
	}

	// Copy on write: a match read before an update does not change.
	before := r.match("development", "src_1", "track", "Comment Created")
	moved := trgCompiled(t, "trg_02", "development", "src_1", "track", "Comment Deleted", cond)
	r.update(moved, "")
	if got := trgIDs(before); !slices.Equal(got, []string{"trg_01", "trg_02", "trg_03"}) {
		t.Fatalf("a match read before the update changed to %v", got)
	}
	// Updating a trigger's event moves it to the new key, in creation order.
	if got, want := key(), []string{"trg_01", "trg_03"}; !slices.Equal(got, want) {
		t.Fatalf("after moving trg_02: match = %v, want %v", got, want)
	}
	deleted := r.match("development", "src_1", "track", "Comment Deleted")
	if got, want := trgIDs(deleted), []string{"trg_02", "trg_06"}; !slices.Equal(got, want) {
		t.Fatalf("after moving trg_02: match(Comment Deleted) = %v, want %v", got, want)
	}
	if got, _ := r.get("trg_02"); deleted[0] != moved || got != moved {
		t.Fatalf("the registry does not hold the updated trigger")
	}

	// Replacing a trigger in place keeps its position and swaps the
	// compiled programs.
	inactive := trgCompiled(t, "trg_01", "development", "src_1", "track", "Comment Created", `properties.post.id == 43`)
	inactive.t.Status = harkv1.TriggerStatus_TRIGGER_STATUS_INACTIVE
	r.update(inactive, "")
	got := r.match("development", "src_1", "track", "Comment Created")
	if ids := trgIDs(got); !slices.Equal(ids, []string{"trg_01", "trg_03"}) {
		t.Fatalf("after replacing trg_01: match = %v", ids)
	}
	if got[0] != inactive || got[0].condition.Source() != `properties.post.id == 43` {
		t.Fatalf("after replacing trg_01: match holds %v, want the new compiled trigger", got[0].t)
	}

	// Remove drops by id; an unknown id changes nothing.
	r.update(nil, "trg_03")
	r.update(nil, "trg_nope")
	if got, want := key(), []string{"trg_01"}; !slices.Equal(got, want) {
		t.Fatalf("after removing trg_03: match = %v, want %v", got, want)
	}
	if _, ok := r.get("trg_03"); ok {
		t.Fatalf("trg_03 is still indexed by id")
	}
	// Removing the last trigger of a key removes the key.
	r.update(nil, "trg_01")
	if got := r.match("development", "src_1", "track", "Comment Created"); got != nil {
		t.Fatalf("after removing every trigger of the key: match = %v, want nil", trgIDs(got))
	}
	if _, ok := r.byKey.Load(triggerKey{"development", "src_1", "track", "Comment Created"}); ok {
		t.Fatalf("an empty key stays in the index")
	}
	if got, want := r.size(), 5; got != want {
		t.Fatalf("registry holds %d triggers, want %d", got, want)
	}
}

// TestTriggerRegistryUpdateTouchesOnlyItsKey checks that saving one trigger
// costs the size of its own key's list, not of the registry: the registry
// used to clone its whole index per update, so loading 10,000 triggers one
// by one took 23 s. It measures bytes allocated, which (unlike time) does
// not move with machine load.
func TestTriggerRegistryUpdateTouchesOnlyItsKey(t *testing.T) {
	// Not parallel: MemStats counts every goroutine's allocations, so
	// another test running beside this one would be counted as its own.
	var r triggerRegistry
	ct := trgCompiled(t, "trg_0", "development", "src_1", "track", "Event 0", `properties.post.id == 42`)
	all := make([]*compiledTrigger, 10_000)
	for i := range all {
		c := *ct
		c.t = &harkv1.Trigger{Id: fmt.Sprintf("trg_%06d", i), Environment: "development", SourceId: "src_1", EventType: "track", Event: fmt.Sprintf("Event %d", i)}
		all[i] = &c
	}
	r.replaceAll(all)
	extra := *ct
	extra.t = &harkv1.Trigger{Id: "trg_999999", Environment: "development", SourceId: "src_1", EventType: "track", Event: "Event 7"}
	const updates = 100
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range updates {
		r.update(&extra, "")
	}
	runtime.ReadMemStats(&after)
	perUpdate := (after.TotalAlloc - before.TotalAlloc) / updates
	// Cloning the index of 10,000 triggers allocates about a megabyte.
	if perUpdate > 16<<10 {
		t.Fatalf("one update with 10,000 triggers allocates %d bytes; want it independent of the registry's size", perUpdate)
	}
	if got := trgIDs(r.match("development", "src_1", "track", "Event 7")); !slices.Equal(got, []string{"trg_000007", "trg_999999"}) {
		t.Fatalf("match = %v", got)
	}
}

// TestTriggerRegistryConcurrent reads the registry while it is written, as
// the ingest path does while triggers are saved; run with -race.
func TestTriggerRegistryConcurrent(t *testing.T) {
	t.Parallel()
	var r triggerRegistry
	cts := make([]*compiledTrigger, 50)
	for i := range cts {
		cts[i] = trgCompiled(t, fmt.Sprintf("trg_%03d", i), "development", "src_1", "track", "Comment Created", `properties.post.id == 42`)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	bad := make(chan string, 4)
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				ids := trgIDs(r.match("development", "src_1", "track", "Comment Created"))
				if !slices.IsSorted(ids) || len(slices.Compact(slices.Clone(ids))) != len(ids) {
					bad <- fmt.Sprintf("a reader saw %v: not in creation order, or a trigger twice", ids)
					return
				}
			}
		})
	}
	for _, ct := range cts {
		r.update(ct, "")
	}
	for i, ct := range cts {
		if i%2 == 0 {
			r.update(nil, ct.t.GetId())
		}
	}
	close(stop)
	wg.Wait()
	close(bad)
	for msg := range bad {
		t.Error(msg)
	}
	if got := len(r.match("development", "src_1", "track", "Comment Created")); got != 25 {
		t.Fatalf("after adding 50 and removing 25: %d triggers match, want 25", got)
	}
}

// trgBenchRegistry builds a registry of n compiled triggers in one
// environment, spread over many event names, of which exactly 10 match the
// benchmarked event (development, src_bench, track, "Comment Created").
func trgBenchRegistry(b *testing.B, n int) *triggerRegistry {
	b.Helper()
	const matching = 10
	// The others are loaded at once, as at start; the matching ones go
	// through update, the path a saved trigger takes.
	others := make([]*compiledTrigger, 0, n-matching)
	for i := range n - matching {
		var env, source, name string
		switch i % 10 {
		case 0: // the same event in another environment
			env, source, name = "production", "src_bench", "Comment Created"
		case 1: // the same event of another source
			env, source, name = "development", "src_other", "Comment Created"
		default: // other events of the same source
			env, source, name = "development", "src_bench", fmt.Sprintf("Event %d", i%997)
		}
		others = append(others, trgCompiled(b, fmt.Sprintf("trg_%06d", i), env, source, "track", name, `properties.post.id == 42`))
	}
	r := &triggerRegistry{}
	r.replaceAll(others)
	for i := range matching {
		r.update(trgCompiled(b, fmt.Sprintf("trg_%06d", n+i), "development", "src_bench", "track", "Comment Created", `properties.post.id == 42`), "")
	}
	if got := r.size(); got != n {
		b.Fatalf("registry holds %d triggers, want %d", got, n)
	}
	return r
}

// BenchmarkTriggerMatch measures what an event costs with 10 and with
// 10,000 triggers in its environment: matching its 10 triggers and running
// their conditions. The index makes the two cost the same (DESIGN §6).
func BenchmarkTriggerMatch(b *testing.B) {
	original := map[string]any{
		"type": "track", "event": "Comment Created", "userId": "actor1", "messageId": "m1",
		"properties": map[string]any{
			"post":       map[string]any{"id": 42.0, "title": "Hello"},
			"comment":    map[string]any{"id": 7.0, "body": "Nice post"},
			"recipients": []any{"u2", "u3"},
		},
		"context": map[string]any{"library": map[string]any{"name": "analytics.js"}},
	}
	for _, n := range []int{10, 10_000} {
		r := trgBenchRegistry(b, n)
		b.Run(fmt.Sprintf("triggers=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				// An environment per event, as ingest makes: its work budget
				// is the event's (DESIGN §6), so one shared by every
				// iteration would run out.
				env := rules.NewEnv(original, original["properties"].(map[string]any), "actor1", map[string]string{"Content-Type": "application/json"})
				matched := r.match("development", "src_bench", "track", "Comment Created")
				if len(matched) != 10 {
					b.Fatalf("%d triggers match, want 10", len(matched))
				}
				for _, ct := range matched {
					ok, err := ct.condition.EvalBool(env)
					if err != nil || !ok {
						b.Fatalf("condition of %s = %v, %v; want true", ct.t.GetId(), ok, err)
					}
				}
			}
		})
	}
}
