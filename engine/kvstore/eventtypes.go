package kvstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/harkhq/hark/engine"
	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// The catalog of event types (0x11), and on a shared store each node's
// additions to it (0x26, PerNode): an event type's count is its record's
// plus every node record's, its first and last times the earliest and
// latest of them.

// eventTypeCountKey is the record a commit of this transaction adds an
// event type's counts to: the node's own on a shared store, else the
// event type's.
func (t tx) eventTypeCountKey(sourceID, env, typ, name string) []byte {
	if pn, ok := t.txn.(PerNode); ok {
		return key(tableNodeEventType, env, sourceID, typ, name, pn.Node())
	}
	return eventTypeKey(sourceID, env, typ, name)
}

func (t tx) EventType(sourceID, env, typ, name string) (*harkv1.EventType, error) {
	et, err := get(t, eventTypeKey(sourceID, env, typ, name), &harkv1.EventType{}, "event type", typ+" "+name)
	if _, ok := t.txn.(PerNode); !ok || (err != nil && !isNotFound(err)) {
		return et, err
	}
	found := err == nil
	if !found {
		et = &harkv1.EventType{SourceId: sourceID, Environment: env, Type: typ, Name: name}
	}
	err = t.txn.Scan(under(tableNodeEventType, env, sourceID, typ, name), nil, false, false, func(k, v []byte) (bool, error) {
		n := &harkv1.EventType{}
		if err := proto.Unmarshal(v, n); err != nil {
			return false, fmt.Errorf("decode %x: %w", k, err)
		}
		addEventType(et, n)
		found = true
		return true, nil
	})
	if err == nil && !found {
		err = &engine.NotFoundError{Resource: "event type", ID: typ + " " + name}
	}
	return et, err
}

func (t tx) EventTypes(sourceID, env, after string, limit int) ([]*harkv1.EventType, error) {
	out, err := list(t, under(tableEventType, env, sourceID), after, limit, func() *harkv1.EventType { return &harkv1.EventType{} })
	if _, ok := t.txn.(PerNode); !ok || err != nil {
		return out, err
	}
	// The nodes' records of the same source environment, each added to
	// its event type's (listed or not: one that only nodes have counted
	// yet is in the list too); then the first limit after `after`.
	byName := make(map[string]*harkv1.EventType, len(out))
	for _, et := range out {
		byName[et.GetType()+"\x00"+et.GetName()] = et
	}
	prefix := under(tableNodeEventType, env, sourceID)
	err = scanAfter(t, prefix, after, false, func(k, v []byte) (bool, error) {
		typ, name, _, ok := splitNodeEventType(k[len(prefix):])
		if !ok {
			return false, fmt.Errorf("node event type key %x is malformed", k)
		}
		id := typ + "\x00" + name
		if id <= after {
			return true, nil
		}
		n := &harkv1.EventType{}
		if err := proto.Unmarshal(v, n); err != nil {
			return false, fmt.Errorf("decode %x: %w", k, err)
		}
		et := byName[id]
		if et == nil {
			et = &harkv1.EventType{SourceId: sourceID, Environment: env, Type: typ, Name: name}
			byName[id] = et
			out = append(out, et)
		}
		addEventType(et, n)
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b *harkv1.EventType) int {
		return strings.Compare(a.GetType()+"\x00"+a.GetName(), b.GetType()+"\x00"+b.GetName())
	})
	return out[:min(len(out), limit)], nil
}

// splitNodeEventType splits a node event type key after its source
// environment's prefix into type, name and node (none holds a NUL).
func splitNodeEventType(rest []byte) (typ, name, node string, ok bool) {
	parts := bytes.Split(rest, []byte{sep})
	if len(parts) != 3 {
		return "", "", "", false
	}
	return string(parts[0]), string(parts[1]), string(parts[2]), true
}

func (t tx) CountEventType(add *harkv1.EventType) error {
	k := t.eventTypeCountKey(add.GetSourceId(), add.GetEnvironment(), add.GetType(), add.GetName())
	et := &harkv1.EventType{}
	if _, err := get(t, k, et, "event type", add.GetType()+" "+add.GetName()); isNotFound(err) {
		et = &harkv1.EventType{SourceId: add.GetSourceId(), Environment: add.GetEnvironment(), Type: add.GetType(), Name: add.GetName()}
	} else if err != nil {
		return err
	}
	addEventType(et, add)
	return put(t, k, et)
}

// addEventType adds n's count to et's and widens et's first and last
// times to n's.
func addEventType(et, n *harkv1.EventType) {
	et.Count += n.GetCount()
	if f := n.GetFirstReceivedAt(); f != nil && (et.FirstReceivedAt == nil || f.AsTime().Before(et.FirstReceivedAt.AsTime())) {
		et.FirstReceivedAt = f
	}
	if l := n.GetLastReceivedAt(); l != nil && (et.LastReceivedAt == nil || l.AsTime().After(et.LastReceivedAt.AsTime())) {
		et.LastReceivedAt = l
	}
}

// foldBatch is the most node records one commit of FoldEventTypeCounts
// takes in: two writes each, within a shared store's 1,000.
const foldBatch = 400

// FoldEventTypeCounts takes into each event type's record the node records
// (PerNode) last added to before `before` — those of nodes that stopped,
// or have been quiet since — and deletes them, so that they do not pile
// up as nodes come and go; it returns how many it took in. It reads and
// writes as one transaction per foldBatch records, so a node adding to
// its record at the same moment makes one of the two commits run again,
// and no count is lost or counted twice.
func (s *Store) FoldEventTypeCounts(ctx context.Context, before time.Time) (int, error) {
	total := 0
	for {
		n := 0
		err := s.db.Update(ctx, func(txn Txn) error {
			n = 0
			t := tx{txn: txn}
			type node struct {
				key []byte
				et  *harkv1.EventType
			}
			var stale []node
			err := txn.Scan([]byte{tableNodeEventType}, nil, false, false, func(k, v []byte) (bool, error) {
				et := &harkv1.EventType{}
				if err := proto.Unmarshal(v, et); err != nil {
					return false, fmt.Errorf("decode %x: %w", k, err)
				}
				if last := et.GetLastReceivedAt(); last == nil || last.AsTime().Before(before) {
					stale = append(stale, node{bytes.Clone(k), et})
				}
				return len(stale) < foldBatch, nil
			})
			if err != nil {
				return err
			}
			for _, nd := range stale {
				et := nd.et
				k := eventTypeKey(et.GetSourceId(), et.GetEnvironment(), et.GetType(), et.GetName())
				shared := &harkv1.EventType{}
				if _, err := get(t, k, shared, "event type", et.GetType()+" "+et.GetName()); isNotFound(err) {
					shared = &harkv1.EventType{SourceId: et.GetSourceId(), Environment: et.GetEnvironment(), Type: et.GetType(), Name: et.GetName()}
				} else if err != nil {
					return err
				}
				addEventType(shared, et)
				if err := put(t, k, shared); err != nil {
					return err
				}
				if err := txn.Delete(nd.key); err != nil {
					return err
				}
			}
			n = len(stale)
			return nil
		})
		if err != nil {
			return total, fmt.Errorf("fold event type counts: %w", err)
		}
		total += n
		if n < foldBatch {
			return total, nil
		}
	}
}

func isNotFound(err error) bool { return errors.Is(err, engine.ErrNotFound) }
