package badgerstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
	"google.golang.org/protobuf/proto"

	"github.com/harkhq/hark/engine"
	"github.com/harkhq/hark/engine/delivery"
	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// Destinations and the delivery outbox (see the keyspace in the package
// doc). A destination's record holds its signing secrets beside it; a
// delivery's holds the run as of the change it carries, so a retry sends
// what the first attempt sent.

func (t tx) Destination(env, id string) (*harkv1.Destination, delivery.Secrets, error) {
	item, err := t.txn.Get(key(tableDestination, env, id))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, delivery.Secrets{}, &engine.NotFoundError{Resource: "destination", ID: id}
	}
	if err != nil {
		return nil, delivery.Secrets{}, fmt.Errorf("read destination: %w", err)
	}
	var (
		d       *harkv1.Destination
		secrets delivery.Secrets
	)
	err = item.Value(func(v []byte) (err error) {
		d, secrets, err = decodeDestination(v)
		return err
	})
	if err != nil {
		return nil, delivery.Secrets{}, fmt.Errorf("decode destination %q: %w", id, err)
	}
	return d, secrets, nil
}

func (t tx) Destinations(env, after string, limit int) ([]*harkv1.Destination, error) {
	prefix := append(key(tableDestination, env), sep)
	it := t.txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true, PrefetchSize: min(limit, 100)})
	defer it.Close()
	start := append(bytes.Clone(prefix), after...)
	var out []*harkv1.Destination
	for it.Seek(start); it.Valid() && len(out) < limit; it.Next() {
		item := it.Item()
		if after != "" && bytes.Equal(item.Key(), start) {
			continue
		}
		var d *harkv1.Destination
		if err := item.Value(func(v []byte) (err error) {
			d, _, err = decodeDestination(v)
			return err
		}); err != nil {
			return nil, fmt.Errorf("decode destination %x: %w", item.Key(), err)
		}
		out = append(out, d)
	}
	return out, nil
}

func (t tx) PutDestination(d *harkv1.Destination, secrets delivery.Secrets) error {
	t.changed(engine.ChangeCatalog, d.GetEnvironment(), d.GetId())
	stored := proto.CloneOf(d)
	stored.SigningSecret = ""
	b, err := proto.Marshal(stored)
	if err != nil {
		return fmt.Errorf("encode destination: %w", err)
	}
	v := binary.AppendUvarint(nil, uint64(len(b)))
	v = append(v, b...)
	for _, s := range []string{secrets.Current, secrets.Previous} {
		v = binary.AppendUvarint(v, uint64(len(s)))
		v = append(v, s...)
	}
	var until int64
	if !secrets.PreviousExpiresAt.IsZero() {
		until = secrets.PreviousExpiresAt.UnixNano()
	}
	v = binary.BigEndian.AppendUint64(v, uint64(until))
	return t.txn.Set(key(tableDestination, d.GetEnvironment(), d.GetId()), v)
}

// decodeDestination reads a destination record: uvarint-prefixed
// Destination, current and previous secrets, then the previous secret's
// expiry (8-byte big-endian Unix ns, 0 for none).
func decodeDestination(v []byte) (*harkv1.Destination, delivery.Secrets, error) {
	var secrets delivery.Secrets
	field := func() ([]byte, error) {
		n, k := binary.Uvarint(v)
		if k <= 0 || uint64(len(v)-k) < n {
			return nil, errors.New("record is malformed")
		}
		f := v[k : k+int(n)]
		v = v[k+int(n):]
		return f, nil
	}
	b, err := field()
	if err != nil {
		return nil, secrets, err
	}
	d := &harkv1.Destination{}
	if err := proto.Unmarshal(b, d); err != nil {
		return nil, secrets, err
	}
	cur, err := field()
	if err != nil {
		return nil, secrets, err
	}
	prev, err := field()
	if err != nil {
		return nil, secrets, err
	}
	if len(v) != 8 {
		return nil, secrets, errors.New("record is malformed")
	}
	secrets.Current, secrets.Previous = string(cur), string(prev)
	if until := int64(binary.BigEndian.Uint64(v)); until != 0 {
		secrets.PreviousExpiresAt = time.Unix(0, until)
	}
	return d, secrets, nil
}

func (t tx) DeleteDestination(env, id string) error {
	t.changed(engine.ChangeCatalog, env, id)
	prefix := append(key(tableHeldDelivery, env, id), sep)
	if err := deletePrefix(t, prefix); err != nil {
		return err
	}
	return t.txn.Delete(key(tableDestination, env, id))
}

func (t tx) Delivery(env, id string) (*harkv1.Delivery, *harkv1.WorkflowRun, error) {
	d, run, _, err := t.delivery(env, id)
	return d, run, err
}

// delivery reads an outbox record, also returning the run's encoding.
func (t tx) delivery(env, id string) (*harkv1.Delivery, *harkv1.WorkflowRun, []byte, error) {
	item, err := t.txn.Get(key(tableDelivery, env, id))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, nil, nil, &engine.NotFoundError{Resource: "delivery", ID: id}
	}
	if err != nil {
		return nil, nil, nil, fmt.Errorf("read delivery: %w", err)
	}
	v, err := item.ValueCopy(nil)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("read delivery: %w", err)
	}
	d, runBytes, err := decodeDelivery(v)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("decode delivery %q: %w", id, err)
	}
	run := &harkv1.WorkflowRun{}
	if err := proto.Unmarshal(runBytes, run); err != nil {
		return nil, nil, nil, fmt.Errorf("decode delivery %q: %w", id, err)
	}
	return d, run, runBytes, nil
}

// decodeDelivery reads a delivery record: uvarint-prefixed Delivery, then
// the run's encoding.
func decodeDelivery(v []byte) (*harkv1.Delivery, []byte, error) {
	n, k := binary.Uvarint(v)
	if k <= 0 || uint64(len(v)-k) < n {
		return nil, nil, errors.New("record is malformed")
	}
	d := &harkv1.Delivery{}
	if err := proto.Unmarshal(v[k:k+int(n)], d); err != nil {
		return nil, nil, err
	}
	return d, v[k+int(n):], nil
}

func dueKey(at time.Time, env, destination, id string) []byte {
	k := binary.BigEndian.AppendUint64([]byte{tableDueDelivery}, uint64(at.UnixNano()))
	return append(append(append(append(append(k, env...), sep), destination...), sep), id...)
}

// due is where a delivery's state puts it: the due index (at), the held
// index (held), or neither (done).
func due(d *harkv1.Delivery) (at time.Time, held bool) {
	if d == nil || d.GetStatus() != harkv1.DeliveryStatus_DELIVERY_STATUS_PENDING {
		return time.Time{}, false
	}
	if d.GetNextAttemptAt() == nil {
		return time.Time{}, true
	}
	return d.GetNextAttemptAt().AsTime(), false
}

func (t tx) PutDelivery(d *harkv1.Delivery, run *harkv1.WorkflowRun, expiresAt time.Time) error {
	env, id := d.GetEnvironment(), d.GetId()
	var (
		old      *harkv1.Delivery
		runBytes []byte
		err      error
	)
	if run != nil {
		// A new delivery (see engine.Tx): nothing stored to read.
		if runBytes, err = proto.Marshal(run); err != nil {
			return fmt.Errorf("encode run: %w", err)
		}
	} else {
		old, _, runBytes, err = t.delivery(env, id)
		if err != nil {
			return err
		}
	}
	b, err := proto.Marshal(d)
	if err != nil {
		return fmt.Errorf("encode delivery: %w", err)
	}
	v := binary.AppendUvarint(make([]byte, 0, len(b)+len(runBytes)+4), uint64(len(b)))
	v = append(append(v, b...), runBytes...)
	if err := t.txn.SetEntry(expiring(key(tableDelivery, env, id), v, expiresAt)); err != nil {
		return err
	}
	oldAt, oldHeld := due(old)
	newAt, newHeld := due(d)
	if !oldAt.IsZero() && !oldAt.Equal(newAt) {
		if err := t.txn.Delete(dueKey(oldAt, env, old.GetDestinationId(), id)); err != nil {
			return err
		}
	}
	if !newAt.IsZero() && !newAt.Equal(oldAt) {
		if err := t.txn.SetEntry(expiring(dueKey(newAt, env, d.GetDestinationId(), id), nil, expiresAt)); err != nil {
			return err
		}
	}
	heldKey := key(tableHeldDelivery, env, d.GetDestinationId(), id)
	switch {
	case oldHeld && !newHeld:
		return t.txn.Delete(heldKey)
	case newHeld && !oldHeld:
		return t.txn.SetEntry(expiring(heldKey, nil, expiresAt))
	}
	return nil
}

func (t tx) Deliveries(env, before string, limit, scanLimit int, filter engine.DeliveryFilter) ([]*harkv1.Delivery, string, error) {
	return scanNewest(t, append(key(tableDelivery, env), sep), before, limit, scanLimit, func(v []byte) (*harkv1.Delivery, error) {
		d, _, err := decodeDelivery(v)
		if err != nil || !filter.Match(d) {
			return nil, err
		}
		return d, nil
	})
}

func (t tx) DueDeliveries(until time.Time, after *engine.DueDelivery, limit int) ([]engine.DueDelivery, error) {
	it := t.txn.NewIterator(badger.IteratorOptions{Prefix: []byte{tableDueDelivery}})
	defer it.Close()
	var out []engine.DueDelivery
	var start []byte
	if after != nil {
		start = dueKey(after.Due, after.Environment, after.DestinationID, after.ID)
		it.Seek(start)
	} else {
		it.Rewind()
	}
	for ; it.Valid() && len(out) < limit; it.Next() {
		k := it.Item().Key()
		if start != nil && bytes.Equal(k, start) {
			continue
		}
		if len(k) < 1+8 {
			return nil, fmt.Errorf("due index key %x is malformed", k)
		}
		at := time.Unix(0, int64(binary.BigEndian.Uint64(k[1:9])))
		if at.After(until) {
			break
		}
		parts := bytes.SplitN(k[9:], []byte{sep}, 3)
		if len(parts) != 3 {
			return nil, fmt.Errorf("due index key %x is malformed", k)
		}
		out = append(out, engine.DueDelivery{Environment: string(parts[0]), DestinationID: string(parts[1]), ID: string(parts[2]), Due: at})
	}
	return out, nil
}

func (t tx) HeldDeliveries(env, destinationID, after string, limit int) ([]string, error) {
	prefix := append(key(tableHeldDelivery, env, destinationID), sep)
	it := t.txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
	defer it.Close()
	start := append(bytes.Clone(prefix), after...)
	var out []string
	for it.Seek(start); it.Valid() && len(out) < limit; it.Next() {
		k := it.Item().Key()
		if after != "" && bytes.Equal(k, start) {
			continue
		}
		out = append(out, string(k[len(prefix):]))
	}
	return out, nil
}

func (t tx) OutboxDepth() (int, time.Time, error) {
	it := t.txn.NewIterator(badger.IteratorOptions{Prefix: []byte{tableDueDelivery}})
	defer it.Close()
	n := 0
	var oldest string
	for it.Rewind(); it.Valid(); it.Next() {
		k := it.Item().Key()
		if i := bytes.LastIndexByte(k, sep); i >= 9 {
			if id := string(k[i+1:]); oldest == "" || id < oldest {
				oldest = id
			}
		}
		n++
	}
	return n, engine.IDTime(oldest), nil
}
