package badgerstore

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"google.golang.org/protobuf/proto"

	"github.com/harkhq/hark/engine"
	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// TestMigrateIndexesCancellations opens a store as schema 1 left it (runs,
// no cancellation index, no schema record) and finds its active runs with
// a cancellation key through the index.
func TestMigrateIndexesCancellations(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	runs := []*harkv1.WorkflowRun{
		{Id: "run_1", Environment: "development", WorkflowKey: "wf", CancellationKey: "k", Status: harkv1.WorkflowRunStatus_WORKFLOW_RUN_STATUS_ACTIVE},
		{Id: "run_2", Environment: "development", WorkflowKey: "wf", CancellationKey: "k", Status: harkv1.WorkflowRunStatus_WORKFLOW_RUN_STATUS_CANCELLED},
		{Id: "run_3", Environment: "development", WorkflowKey: "wf", Status: harkv1.WorkflowRunStatus_WORKFLOW_RUN_STATUS_ACTIVE},
		{Id: "run_4", Environment: "development", WorkflowKey: "wf", CancellationKey: "k\x00run_9", Status: harkv1.WorkflowRunStatus_WORKFLOW_RUN_STATUS_ACTIVE},
	}
	// Schema 1: the runs alone.
	err = s.db.Update(func(txn *badger.Txn) error {
		for _, r := range runs {
			v, err := proto.Marshal(r)
			if err != nil {
				return err
			}
			if err := txn.SetEntry(expiring(key(tableRun, r.GetEnvironment(), r.GetId()), v, time.Now().Add(time.Hour))); err != nil {
				return err
			}
		}
		return txn.Delete([]byte{tableSchema})
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	err = s.View(context.Background(), func(tx engine.Tx) error {
		got, err := tx.CancellableRuns("development", "wf", "k", "", 100)
		if err != nil {
			return err
		}
		if !slices.Equal(got, []string{"run_1"}) {
			t.Errorf("CancellableRuns(k) = %v, want [run_1]", got)
		}
		got, err = tx.CancellableRuns("development", "wf", "k\x00run_9", "", 100)
		if err != nil {
			return err
		}
		if !slices.Equal(got, []string{"run_4"}) {
			t.Errorf("CancellableRuns(k NUL run_9) = %v, want [run_4]", got)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
