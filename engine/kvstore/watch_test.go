package kvstore

import (
	"slices"
	"testing"

	"github.com/harkhq/hark/engine"
)

// TestChangesOf pins the change each watched table's key is, and that one
// commit reports each change once.
func TestChangesOf(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		keys [][]byte
		want []engine.Change
	}{
		{"environment", [][]byte{key(tableEnvironment, "development")},
			[]engine.Change{{Kind: engine.ChangeLayout, Environment: "development"}}},
		{"source", [][]byte{key(tableSource, "src_1")},
			[]engine.Change{{Kind: engine.ChangeLayout, ID: "src_1"}}},
		{"source environment", [][]byte{key(tableSourceEnv, "src_1", "development")},
			[]engine.Change{{Kind: engine.ChangeCatalog, Environment: "development", ID: "src_1"}}},
		{"token and its index", [][]byte{key(tableToken, "src_1", "development"), tokenIndexKey("secret")},
			[]engine.Change{{Kind: engine.ChangeCatalog, Environment: "development", ID: "src_1"}, {Kind: engine.ChangeCatalog}}},
		{"workflow", [][]byte{key(tableWorkflow, "welcome")},
			[]engine.Change{{Kind: engine.ChangeCatalog, ID: "welcome"}}},
		{"destination", [][]byte{key(tableDestination, "development", "dst_1")},
			[]engine.Change{{Kind: engine.ChangeCatalog, Environment: "development", ID: "dst_1"}}},
		{"trigger", [][]byte{key(tableTrigger, "development", "trg_1")},
			[]engine.Change{{Kind: engine.ChangeTrigger, Environment: "development", ID: "trg_1"}}},
		{"run feed, once per commit", [][]byte{runFeedKey("development", 1), runFeedKey("development", 2), runFeedKey("production", 0x0100)},
			[]engine.Change{{Kind: engine.ChangeRuns, Environment: "development"}, {Kind: engine.ChangeRuns, Environment: "production"}}},
		{"unwatched tables", [][]byte{key(tableEvent, "development", "evt_1"), key(tableRunCursor, "development"), key(tableTriggerFired, "development", "trg_1", "", "u1"), {}},
			nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := changesOf(tt.keys); !slices.Equal(got, tt.want) {
				t.Errorf("changesOf = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestChangesOfManyOnce checks the deduplication past the first few
// changes, where it switches from a search to a set.
func TestChangesOfManyOnce(t *testing.T) {
	t.Parallel()
	var keys [][]byte
	for range 3 {
		for _, id := range []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"} {
			keys = append(keys, key(tableTrigger, "development", "trg_"+id))
		}
	}
	got := changesOf(keys)
	if len(got) != 12 {
		t.Fatalf("changesOf of 12 triggers written 3 times = %d changes, want 12: %v", len(got), got)
	}
	for i, c := range got {
		if want := (engine.Change{Kind: engine.ChangeTrigger, Environment: "development", ID: string(keys[i][len("\x14development\x00"):])}); c != want {
			t.Errorf("change %d = %v, want %v", i, c, want)
		}
	}
}
