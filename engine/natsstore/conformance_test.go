package natsstore_test

import (
	"testing"

	"github.com/harkhq/hark/engine"
	"github.com/harkhq/hark/engine/kvstore"
	"github.com/harkhq/hark/engine/storetest"
)

// TestConformance runs the store conformance suite on the 3-server
// cluster, each subtest on a stream of its own. A View reads each record as
// last committed (JetStream has no snapshot reads): ReadCommitted.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) engine.Store {
		return kvstore.New(openDBs(t, 0)[0])
	}, storetest.ReadCommitted)
	// Two nodes, each connected to a server of its own.
	storetest.RunShared(t, func(t *testing.T) (engine.Store, engine.Store) {
		dbs := openDBs(t, 1, 2)
		return kvstore.New(dbs[0]), kvstore.New(dbs[1])
	})
}
