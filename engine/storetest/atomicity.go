package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/harkhq/hark/engine"
	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// atomEnv is the environment the atomicity test writes in; each commit i
// also creates the environment atomSlug(i).
const atomEnv = "atom"

func atomSlug(i int) string { return fmt.Sprintf("atom-%03d", i) }
func atomID(i int) string   { return fmt.Sprintf("%03d", i) }

// atomKinds names the records writeAtom writes, in the order atomPresent
// reports them.
var atomKinds = []string{"environment", "user", "run", "feed entry", "idempotency record", "subscription"}

// writeAtom writes commit i's records, one of each kind in atomKinds.
func writeAtom(tx engine.Tx, i int) error {
	id := atomID(i)
	if err := tx.PutEnvironment(&harkv1.Environment{Slug: atomSlug(i), Name: "Atom " + id}); err != nil {
		return err
	}
	if err := tx.PutUser(&harkv1.User{Environment: atomEnv, Id: "u" + id, Name: "User " + id}); err != nil {
		return err
	}
	run := &harkv1.WorkflowRun{Environment: atomEnv, Id: "run" + id, WorkflowKey: "wf", Status: harkv1.WorkflowRunStatus_WORKFLOW_RUN_STATUS_ACTIVE}
	if err := tx.PutWorkflowRun(run, farFuture()); err != nil {
		return err
	}
	if _, err := appendRunFeed(tx, atomEnv, "run"+id, farFuture()); err != nil {
		return err
	}
	if err := tx.PutIdempotencyRecord(atomEnv, "src", "track", "key"+id, "evt"+id, farFuture()); err != nil {
		return err
	}
	return tx.PutSubscription(&harkv1.Subscription{Environment: atomEnv, Collection: "docs", ObjectId: "doc", Recipient: "u" + id})
}

// atomPresent reports which of commit i's records tx sees; fed is the set
// of run ids in the feed.
func atomPresent(tx engine.Tx, i int, fed map[string]bool) ([]bool, error) {
	id := atomID(i)
	got := make([]bool, 0, len(atomKinds))
	add := func(err error) error {
		if err != nil && !notFound(err) {
			return err
		}
		got = append(got, err == nil)
		return nil
	}
	_, err := tx.Environment(atomSlug(i))
	if err := add(err); err != nil {
		return nil, err
	}
	_, err = tx.User(atomEnv, "u"+id)
	if err := add(err); err != nil {
		return nil, err
	}
	_, err = tx.WorkflowRun(atomEnv, "run"+id)
	if err := add(err); err != nil {
		return nil, err
	}
	got = append(got, fed["run"+id])
	_, _, err = tx.IdempotencyRecord(atomEnv, "src", "track", "key"+id)
	if err := add(err); err != nil {
		return nil, err
	}
	_, err = tx.Subscription(atomEnv, "docs", "doc", "u"+id)
	if err := add(err); err != nil {
		return nil, err
	}
	return got, nil
}

func feedRunIDs(tx engine.Tx, env string) (map[string]bool, error) {
	entries, err := tx.RunFeed(env, 0, 10_000)
	if err != nil {
		return nil, err
	}
	ids := make(map[string]bool, len(entries))
	for _, e := range entries {
		ids[e.RunID] = true
	}
	return ids, nil
}

// testAtomicity: an Update commits all of its writes at once or none.
// readCommitted (Option ReadCommitted) changes what a concurrent reader may
// see: each record as of when it is read, so the check is that once one
// record of a commit is seen, every record read after it is seen too.
func testAtomicity(t *testing.T, open opener, readCommitted bool) {
	t.Run("FailedUpdateLeavesNothing", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		errBoom := errors.New("boom")
		err := s.Update(t.Context(), func(tx engine.Tx) error {
			if err := writeAtom(tx, 7); err != nil {
				return err
			}
			return errBoom
		})
		if !errors.Is(err, errBoom) {
			t.Fatalf("Update returned %v, want fn's error", err)
		}
		view(t, s, func(tx engine.Tx) error {
			fed, err := feedRunIDs(tx, atomEnv)
			if err != nil {
				return err
			}
			if len(fed) != 0 {
				t.Errorf("run feed holds %v after a failed Update", fed)
			}
			got, err := atomPresent(tx, 7, fed)
			if err != nil {
				return err
			}
			for k, present := range got {
				if present {
					t.Errorf("the %s written by a failed Update is stored", atomKinds[k])
				}
			}
			return nil
		})
	})

	t.Run("CommitVisibleAtOnce", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		const commits = 200
		done := make(chan struct{})
		var (
			wg    sync.WaitGroup
			views atomic.Int64
		)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for last := false; !last; {
				select {
				case <-done:
					last = true // one more look at the final state
				default:
				}
				view := snapshotView
				if readCommitted {
					view = readCommittedView
				}
				err := s.View(t.Context(), func(tx engine.Tx) error { return view(tx, commits, last) })
				views.Add(1)
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
		for i := range commits {
			if err := s.Update(t.Context(), func(tx engine.Tx) error { return writeAtom(tx, i) }); err != nil {
				t.Errorf("commit %d: %v", i, err)
				break
			}
		}
		close(done)
		wg.Wait()
		t.Logf("%d views during %d commits", views.Load(), commits)
	})
}

// snapshotView checks what one View of a snapshot store sees while the
// commits land: each commit wholly or not at all, in commit order; last
// says the commits are done, so all of them must be seen.
func snapshotView(tx engine.Tx, commits int, last bool) error {
	fed, err := feedRunIDs(tx, atomEnv)
	if err != nil {
		return err
	}
	committed := 0
	for i := range commits {
		got, err := atomPresent(tx, i, fed)
		if err != nil {
			return err
		}
		for k := range got {
			if got[k] != got[0] {
				return fmt.Errorf("commit %d is half visible: %s %v, %s %v", i, atomKinds[0], got[0], atomKinds[k], got[k])
			}
		}
		if got[0] {
			if committed != i {
				return fmt.Errorf("commit %d is visible before commit %d", i, committed)
			}
			committed++
		}
	}
	if last && committed != commits {
		return fmt.Errorf("after the last commit a View sees %d of %d commits", committed, commits)
	}
	return nil
}

// readCommittedView checks one View of a ReadCommitted store: it reads each
// commit's records in one order, and the feed last; once a record of a
// commit is seen, every record read after it must be seen too.
func readCommittedView(tx engine.Tx, commits int, last bool) error {
	seen := make([]bool, commits)
	for i := range commits {
		got, err := atomPresent(tx, i, map[string]bool{"run" + atomID(i): true})
		if err != nil {
			return err
		}
		got = slices.Delete(got, 3, 4) // the feed entry: read below
		for k := 1; k < len(got); k++ {
			if got[k-1] && !got[k] {
				return fmt.Errorf("commit %d is half visible: %v", i, got)
			}
		}
		seen[i] = got[len(got)-1]
		if last && !seen[i] {
			return fmt.Errorf("after the last commit a View does not see commit %d", i)
		}
	}
	fed, err := feedRunIDs(tx, atomEnv)
	if err != nil {
		return err
	}
	for i, s := range seen {
		if s && !fed["run"+atomID(i)] {
			return fmt.Errorf("commit %d is half visible: its records, read before its feed entry, are there, the entry is not", i)
		}
	}
	return nil
}
