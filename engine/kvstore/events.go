package kvstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/harkhq/hark/engine"
	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// The ingest path's tables: the event log, event types, the idempotency
// ledger and users (0x10–0x13).

// eventRecord marks the event log's record form: 0x00, then uvarint-prefixed
// the SourceEvent's encoding (without event, data, traits), the original
// event's JSON and its data's, then its traits'. A protobuf encoding never
// starts with 0x00 (field 0 does not exist), so records written before the
// JSON was kept as received — a plain encoding — still read.
const eventRecord = 0x00

func (t tx) PutSourceEvent(env, id string, meta []byte, raw engine.EventJSON, expiresAt time.Time) error {
	v := make([]byte, 0, 1+len(meta)+len(raw.Event)+len(raw.Data)+len(raw.Traits)+12)
	v = append(v, eventRecord)
	for _, part := range [][]byte{meta, raw.Event, raw.Data} {
		v = binary.AppendUvarint(v, uint64(len(part)))
		v = append(v, part...)
	}
	v = append(v, raw.Traits...)
	return t.txn.SetExpiring(key(tableEvent, env, id), v, expiresAt)
}

// decodeEvent reads an event log record: the event without its JSON parts,
// and the parts, which are slices of v.
func decodeEvent(v []byte) (*harkv1.SourceEvent, engine.EventJSON, error) {
	ev := &harkv1.SourceEvent{}
	if len(v) == 0 || v[0] != eventRecord {
		return ev, engine.EventJSON{}, proto.Unmarshal(v, ev) // the older form
	}
	v = v[1:]
	var parts [3][]byte
	for i := range parts {
		n, k := binary.Uvarint(v)
		if k <= 0 || uint64(len(v)-k) < n {
			return nil, engine.EventJSON{}, errors.New("event record is malformed")
		}
		parts[i] = v[k : k+int(n)]
		v = v[k+int(n):]
	}
	if err := proto.Unmarshal(parts[0], ev); err != nil {
		return nil, engine.EventJSON{}, err
	}
	raw := engine.EventJSON{Event: parts[1], Data: parts[2], Traits: v}
	for _, p := range []*[]byte{&raw.Event, &raw.Data, &raw.Traits} {
		if len(*p) == 0 {
			*p = nil
		}
	}
	return ev, raw, nil
}

// withJSON gives ev the Structs of its JSON parts (an event of the older
// form has them already). The Structs copy what they hold, so raw may be
// a value the Txn reuses.
func withJSON(ev *harkv1.SourceEvent, raw engine.EventJSON) error {
	var err error
	if raw.Event != nil {
		if ev.Event, err = engine.StructFromJSON(raw.Event); err != nil {
			return err
		}
	}
	if raw.Data != nil {
		if ev.Data, err = engine.StructFromJSON(raw.Data); err != nil {
			return err
		}
	}
	if raw.Traits != nil {
		ev.Traits, err = engine.StructFromJSON(raw.Traits)
	}
	return err
}

func (t tx) SourceEvent(env, id string) (*harkv1.SourceEvent, error) {
	v, err := t.txn.Get(key(tableEvent, env, id))
	if errors.Is(err, ErrNotFound) {
		return nil, &engine.NotFoundError{Resource: "event", ID: id}
	}
	if err != nil {
		return nil, fmt.Errorf("read event: %w", err)
	}
	ev, raw, err := decodeEvent(v)
	if err == nil {
		err = withJSON(ev, raw)
	}
	if err != nil {
		return nil, fmt.Errorf("decode event %q: %w", id, err)
	}
	return ev, nil
}

func (t tx) SourceEvents(env, before string, limit, scanLimit int, filter engine.EventFilter) ([]*harkv1.SourceEvent, string, error) {
	return scanNewest(t, under(tableEvent, env), before, limit, scanLimit, func(v []byte) (*harkv1.SourceEvent, error) {
		ev, raw, err := decodeEvent(v)
		if err != nil || !filter.Match(ev) {
			return nil, err
		}
		return ev, withJSON(ev, raw)
	})
}

func (t tx) User(env, id string) (*harkv1.User, error) {
	return get(t, key(tableUser, env, id), &harkv1.User{}, "user", id)
}

func (t tx) Users(env, after string, limit int) ([]*harkv1.User, error) {
	return list(t, under(tableUser, env), after, limit, func() *harkv1.User { return &harkv1.User{} })
}

func (t tx) PutUser(u *harkv1.User) error {
	return put(t, key(tableUser, u.GetEnvironment(), u.GetId()), u)
}

func (t tx) DeleteUser(env, id string) error {
	return t.txn.Delete(key(tableUser, env, id))
}

// Prefetch implements engine.Tx: it hands the records' keys to a Txn that
// is a Prefetcher.
func (t tx) Prefetch(p engine.Prefetch) error {
	pf, ok := t.txn.(Prefetcher)
	if !ok {
		return nil
	}
	keys := make([][]byte, 0, len(p.Idempotency)+len(p.Users))
	for _, k := range p.Idempotency {
		keys = append(keys, key(tableIdempotency, k.Environment, k.SourceID, k.Type, k.Key))
	}
	for _, u := range p.Users {
		keys = append(keys, key(tableUser, u.Environment, u.ID))
	}
	for _, et := range p.EventTypes {
		keys = append(keys, t.eventTypeCountKey(et.SourceID, et.Environment, et.Type, et.Name))
	}
	if _, issued := t.txn.(CursorIssuer); !issued {
		for _, env := range p.RunFeeds {
			keys = append(keys, key(tableRunCursor, env))
		}
	}
	return pf.Prefetch(keys)
}

func (t tx) IdempotencyRecord(env, sourceID, typ, k string) (string, time.Time, error) {
	v, err := t.txn.Get(key(tableIdempotency, env, sourceID, typ, k))
	if errors.Is(err, ErrNotFound) {
		return "", time.Time{}, &engine.NotFoundError{Resource: "idempotency key", ID: k}
	}
	if err != nil {
		return "", time.Time{}, fmt.Errorf("read idempotency key: %w", err)
	}
	if len(v) < 8 {
		return "", time.Time{}, fmt.Errorf("idempotency record %q is malformed", k)
	}
	return string(v[8:]), time.Unix(0, int64(binary.BigEndian.Uint64(v[:8]))), nil
}

func (t tx) PutIdempotencyRecord(env, sourceID, typ, k, originalID string, expiresAt time.Time) error {
	v := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(originalID)), uint64(expiresAt.UnixNano()))
	v = append(v, originalID...)
	return t.txn.SetExpiring(key(tableIdempotency, env, sourceID, typ, k), v, expiresAt)
}
