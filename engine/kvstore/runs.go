package kvstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/harkhq/hark/engine"
	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// Triggers and what they start: once-per-recipient records, workflow runs
// with their cancellation index and feed, and API trigger requests
// (0x14–0x19, 0x1E).

func (t tx) Trigger(env, id string) (*harkv1.Trigger, error) {
	return get(t, key(tableTrigger, env, id), &harkv1.Trigger{}, "trigger", id)
}

func (t tx) Triggers(env, after string, limit int) ([]*harkv1.Trigger, error) {
	return list(t, under(tableTrigger, env), after, limit, func() *harkv1.Trigger { return &harkv1.Trigger{} })
}

func (t tx) PutTrigger(tr *harkv1.Trigger) error {
	return put(t, key(tableTrigger, tr.GetEnvironment(), tr.GetId()), tr)
}

func (t tx) DeleteTrigger(env, id string) error {
	if err := deletePrefix(t, under(tableTriggerFired, env, id)); err != nil {
		return err
	}
	return t.txn.Delete(key(tableTrigger, env, id))
}

func (t tx) TriggerFired(env, triggerID, tenant, recipient string) (string, error) {
	v, err := t.txn.Get(key(tableTriggerFired, env, triggerID, tenant, recipient))
	if errors.Is(err, ErrNotFound) {
		return "", &engine.NotFoundError{Resource: "trigger firing", ID: recipient}
	}
	if err != nil {
		return "", err
	}
	return string(v), nil
}

func (t tx) PutTriggerFired(env, triggerID, tenant, recipient, runID string) error {
	return t.txn.Set(key(tableTriggerFired, env, triggerID, tenant, recipient), []byte(runID))
}

func (t tx) WorkflowRun(env, id string) (*harkv1.WorkflowRun, error) {
	return get(t, key(tableRun, env, id), &harkv1.WorkflowRun{}, "workflow run", id)
}

func (t tx) PutWorkflowRun(run *harkv1.WorkflowRun, expiresAt time.Time) error {
	v, err := proto.Marshal(run)
	if err != nil {
		return fmt.Errorf("encode run: %w", err)
	}
	if err := t.txn.SetExpiring(key(tableRun, run.GetEnvironment(), run.GetId()), v, expiresAt); err != nil {
		return err
	}
	k := runCancelIndexKey(run)
	if k == nil {
		return nil
	}
	if run.GetStatus() == harkv1.WorkflowRunStatus_WORKFLOW_RUN_STATUS_ACTIVE {
		return t.txn.SetExpiring(k, nil, expiresAt)
	}
	return t.txn.Delete(k)
}

// runCancelIndexKey is run's place in the cancellation index, nil for a
// run without a cancellation key.
func runCancelIndexKey(run *harkv1.WorkflowRun) []byte {
	if run.GetCancellationKey() == "" {
		return nil
	}
	return cancelIndexKey(run.GetEnvironment(), run.GetWorkflowKey(), run.GetCancellationKey(), run.GetId())
}

// CancellationIndexKey returns the cancellation index entry that the
// stored workflow run record (a value under RunPrefix) needs, or nil when
// it needs none: the run is not ACTIVE or has no cancellation key. A
// backend's migration to schema 2 writes one for each run, expiring with
// the run.
func CancellationIndexKey(record []byte) ([]byte, error) {
	run := &harkv1.WorkflowRun{}
	if err := proto.Unmarshal(record, run); err != nil {
		return nil, fmt.Errorf("decode run: %w", err)
	}
	if run.GetStatus() != harkv1.WorkflowRunStatus_WORKFLOW_RUN_STATUS_ACTIVE {
		return nil, nil
	}
	return runCancelIndexKey(run), nil
}

func (t tx) CancellableRuns(env, workflow, cancellationKey, after string, limit int) ([]string, error) {
	prefix := under(tableCancelIndex, env, workflow, cancellationKey)
	var out []string
	if limit <= 0 {
		return out, nil
	}
	err := scanAfter(t, prefix, after, true, func(k, _ []byte) (bool, error) {
		id := k[len(prefix):]
		if bytes.IndexByte(id, sep) >= 0 {
			// A longer cancellation key that extends this one with a NUL.
			return true, nil
		}
		out = append(out, string(id))
		return len(out) < limit, nil
	})
	return out, err
}

func (t tx) WorkflowRuns(env, before string, limit, scanLimit int, filter engine.RunFilter) ([]*harkv1.WorkflowRun, string, error) {
	return scanNewest(t, under(tableRun, env), before, limit, scanLimit, func(v []byte) (*harkv1.WorkflowRun, error) {
		r := &harkv1.WorkflowRun{}
		if err := proto.Unmarshal(v, r); err != nil || !filter.Match(r) {
			return nil, err
		}
		return r, nil
	})
}

func (t tx) AppendRunFeed(env, runID string, expiresAt time.Time) (uint64, error) {
	k := key(tableRunCursor, env)
	if ci, ok := t.txn.(CursorIssuer); ok {
		n, err := ci.IssueCursor(k)
		if err != nil {
			return 0, err
		}
		return n, t.txn.SetExpiring(runFeedKey(env, n), []byte(runID), expiresAt)
	}
	// The counter is read and rewritten, so concurrent appenders conflict
	// and commit in cursor order (the engine queues its own on runMu).
	var n uint64
	v, err := t.txn.Get(k)
	switch {
	case err == nil:
		if len(v) != 8 {
			return 0, fmt.Errorf("run cursor of %s is malformed", env)
		}
		n = binary.BigEndian.Uint64(v)
	case !errors.Is(err, ErrNotFound):
		return 0, err
	}
	n++
	if err := t.txn.Set(k, binary.BigEndian.AppendUint64(nil, n)); err != nil {
		return 0, err
	}
	return n, t.txn.SetExpiring(runFeedKey(env, n), []byte(runID), expiresAt)
}

// RunFeed reads the feed in commit order. Where the backend issues cursors
// itself (CursorIssuer: several nodes append at once, each from its own
// block of cursors), that is not key order, and the feed is read as a log
// from the reader's entry; a cursor whose entry is no longer stored
// (expired, or not issued here) then reads from the oldest entry kept,
// which is at least everything after it. Otherwise cursors are handed out
// in commit order (AppendRunFeed) and key order is commit order.
func (t tx) RunFeed(env string, after uint64, limit int) ([]engine.RunFeedEntry, error) {
	prefix := under(tableRunFeed, env)
	var out []engine.RunFeedEntry
	if limit <= 0 || after == math.MaxUint64 {
		return out, nil // nothing comes after the greatest cursor (after+1 would wrap to 0)
	}
	each := func(k, v []byte) (bool, error) {
		if len(k) != len(prefix)+8 {
			return false, fmt.Errorf("run feed key %x is malformed", k)
		}
		out = append(out, engine.RunFeedEntry{Cursor: binary.BigEndian.Uint64(k[len(prefix):]), RunID: string(v)})
		return len(out) < limit, nil
	}
	if lr, ok := t.txn.(LogReader); ok {
		_, issued := t.txn.(CursorIssuer)
		var from []byte
		if after > 0 {
			from = runFeedKey(env, after)
		}
		if from != nil || issued {
			found, err := lr.ReadLogAfter(prefix, from, each)
			if err != nil || found {
				return out, err
			}
		}
		if issued && from != nil {
			if found, err := lr.ReadLogAfter(prefix, nil, each); err != nil || found {
				return out, err
			}
		}
	}
	if err := t.txn.Scan(prefix, runFeedKey(env, after+1), false, false, each); err != nil {
		return nil, err
	}
	return out, nil
}

func (t tx) TriggerRequest(env, k string) ([]byte, string, time.Time, error) {
	v, err := t.txn.Get(key(tableTriggerReq, env, k))
	if errors.Is(err, ErrNotFound) {
		return nil, "", time.Time{}, &engine.NotFoundError{Resource: "idempotency key", ID: k}
	}
	if err != nil {
		return nil, "", time.Time{}, err
	}
	if len(v) < 9 || len(v) < 9+int(v[8]) {
		return nil, "", time.Time{}, fmt.Errorf("trigger request record %q is malformed", k)
	}
	n := int(v[8])
	// The digest outlives the call: a copy, not a slice of v.
	return bytes.Clone(v[9 : 9+n]), string(v[9+n:]), time.Unix(0, int64(binary.BigEndian.Uint64(v[:8]))), nil
}

func (t tx) PutTriggerRequest(env, k string, digest []byte, runID string, expiresAt time.Time) error {
	if len(digest) > 255 {
		return fmt.Errorf("digest of %d bytes is too long", len(digest))
	}
	v := binary.BigEndian.AppendUint64(nil, uint64(expiresAt.UnixNano()))
	v = append(v, byte(len(digest)))
	v = append(v, digest...)
	v = append(v, runID...)
	return t.txn.SetExpiring(key(tableTriggerReq, env, k), v, expiresAt)
}
