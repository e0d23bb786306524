package badgerstore

import (
	"context"
	"slices"
	"testing"

	"github.com/harkhq/hark/engine/kvstore"
)

// TestScan pins Scan's bounds over Badger's iterators: forward and reverse,
// with and without from, with keys beyond a 0xFF and the prefix's
// successor present (a reverse Seek lands on it and must step past).
func TestScan(t *testing.T) {
	t.Parallel()
	s, err := Open(Options{Dir: t.TempDir(), MinFreeBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	db := kvDB{s}
	stored := []string{"\x09z", "\x10a", "\x10b", "\x10c", "\x10\xff", "\x10\xff\x01", "\x11", "\x11a"}
	err = db.Update(context.Background(), func(txn kvstore.Txn) error {
		for _, k := range stored {
			if err := txn.Set([]byte(k), []byte("v"+k)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name          string
		prefix, from  string
		reverse, keys bool
		limit         int
		want          []string
	}{
		{"forward", "\x10", "", false, false, 0, []string{"\x10a", "\x10b", "\x10c", "\x10\xff", "\x10\xff\x01"}},
		{"forward from", "\x10", "\x10b", false, false, 0, []string{"\x10b", "\x10c", "\x10\xff", "\x10\xff\x01"}},
		{"forward from between", "\x10", "\x10bb", false, true, 0, []string{"\x10c", "\x10\xff", "\x10\xff\x01"}},
		{"forward from below the prefix", "\x10", "\x01", false, false, 0, []string{"\x10a", "\x10b", "\x10c", "\x10\xff", "\x10\xff\x01"}},
		{"forward until fn stops", "\x10", "", false, true, 2, []string{"\x10a", "\x10b"}},
		{"reverse", "\x10", "", true, false, 0, []string{"\x10\xff\x01", "\x10\xff", "\x10c", "\x10b", "\x10a"}},
		{"reverse from", "\x10", "\x10b", true, false, 0, []string{"\x10b", "\x10a"}},
		{"reverse from between", "\x10", "\x10bb", true, true, 0, []string{"\x10b", "\x10a"}},
		{"reverse from 0xFF", "\x10", "\x10\xff", true, false, 0, []string{"\x10\xff", "\x10c", "\x10b", "\x10a"}},
		{"reverse from above the prefix", "\x10", "\x12", true, false, 0, []string{"\x10\xff\x01", "\x10\xff", "\x10c", "\x10b", "\x10a"}},
		{"reverse from below the prefix", "\x10", "\x01", true, false, 0, nil},
		{"reverse without a successor", "", "", true, true, 3, []string{"\x11a", "\x11", "\x10\xff\x01"}},
		{"empty prefix", "\x30", "", true, false, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got []string
			err := db.View(context.Background(), func(txn kvstore.Txn) error {
				var from []byte
				if tt.from != "" {
					from = []byte(tt.from)
				}
				return txn.Scan([]byte(tt.prefix), from, tt.reverse, tt.keys, func(k, v []byte) (bool, error) {
					if tt.keys && v != nil || !tt.keys && string(v) != "v"+string(k) {
						t.Errorf("key %q: value %q", k, v)
					}
					got = append(got, string(k))
					return tt.limit == 0 || len(got) < tt.limit, nil
				})
			})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Scan = %q, want %q", got, tt.want)
			}
		})
	}
}
