package badgerstore_test

import (
	"testing"

	"github.com/harkhq/hark/engine"
	"github.com/harkhq/hark/engine/badgerstore"
	"github.com/harkhq/hark/engine/storetest"
)

// TestConformance runs the engine.Store conformance suite on a Badger store
// in a temporary directory per subtest.
func TestConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, open)
	// One process: both handles are the same store.
	storetest.RunShared(t, func(t *testing.T) (engine.Store, engine.Store) {
		s := open(t)
		return s, s
	})
}

func open(t *testing.T) engine.Store {
	// MinFreeBytes -1: the suite tests the store, not the disk it runs on.
	s, err := badgerstore.Open(badgerstore.Options{Dir: t.TempDir(), MinFreeBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}
