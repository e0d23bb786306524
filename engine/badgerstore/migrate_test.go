package badgerstore

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/harkhq/hark/engine"
	"github.com/harkhq/hark/engine/kvstore"
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
	// Schema 1: the runs alone. They are written as this schema writes
	// them, then their index entries and the schema record are removed.
	err = s.Update(context.Background(), func(tx engine.Tx) error {
		for _, r := range runs {
			if err := tx.PutWorkflowRun(r, time.Now().Add(time.Hour)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.db.Update(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: kvstore.RunPrefix(), PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			k, err := kvstore.CancellationIndexKey(v)
			if err != nil {
				return err
			}
			if k == nil {
				continue
			}
			if err := txn.Delete(k); err != nil {
				return err
			}
		}
		return txn.Delete(kvstore.SchemaKey())
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.View(context.Background(), func(tx engine.Tx) error {
		if got, err := tx.CancellableRuns("development", "wf", "k", "", 100); err != nil || len(got) != 0 {
			t.Errorf("before the migration: CancellableRuns(k) = %v, %v; want none", got, err)
		}
		return nil
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
