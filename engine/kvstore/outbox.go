package kvstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/harkhq/hark/engine"
	"github.com/harkhq/hark/engine/delivery"
	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// Destinations and the delivery outbox (0x1A–0x1D). A destination's record
// holds its signing secrets beside it; a delivery's holds the run as of the
// change it carries, so a retry sends what the first attempt sent.

func (t tx) Destination(env, id string) (*harkv1.Destination, delivery.Secrets, error) {
	v, err := t.txn.Get(key(tableDestination, env, id))
	if errors.Is(err, ErrNotFound) {
		return nil, delivery.Secrets{}, &engine.NotFoundError{Resource: "destination", ID: id}
	}
	if err != nil {
		return nil, delivery.Secrets{}, fmt.Errorf("read destination: %w", err)
	}
	d, secrets, err := decodeDestination(v)
	if err != nil {
		return nil, delivery.Secrets{}, fmt.Errorf("decode destination %q: %w", id, err)
	}
	return d, secrets, nil
}

func (t tx) Destinations(env, after string, limit int) ([]*harkv1.Destination, error) {
	return listDecoded(t, under(tableDestination, env), after, limit, func(v []byte) (*harkv1.Destination, error) {
		d, _, err := decodeDestination(v)
		return d, err
	})
}

func (t tx) PutDestination(d *harkv1.Destination, secrets delivery.Secrets) error {
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
	if err := deletePrefix(t, under(tableHeldDelivery, env, id)); err != nil {
		return err
	}
	return t.txn.Delete(key(tableDestination, env, id))
}

func (t tx) Delivery(env, id string) (*harkv1.Delivery, *harkv1.WorkflowRun, error) {
	d, run, _, err := t.delivery(env, id)
	return d, run, err
}

// delivery reads an outbox record, also returning the run's encoding: a
// slice of the Txn's value, valid until t's next call.
func (t tx) delivery(env, id string) (*harkv1.Delivery, *harkv1.WorkflowRun, []byte, error) {
	v, err := t.txn.Get(key(tableDelivery, env, id))
	if errors.Is(err, ErrNotFound) {
		return nil, nil, nil, &engine.NotFoundError{Resource: "delivery", ID: id}
	}
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
// the run's encoding (a slice of v).
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
		// runBytes is the Txn's value: copied into v below, before t's
		// next call.
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
	if err := t.txn.SetExpiring(key(tableDelivery, env, id), v, expiresAt); err != nil {
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
		if err := t.txn.SetExpiring(dueKey(newAt, env, d.GetDestinationId(), id), nil, expiresAt); err != nil {
			return err
		}
	}
	heldKey := key(tableHeldDelivery, env, d.GetDestinationId(), id)
	switch {
	case oldHeld && !newHeld:
		return t.txn.Delete(heldKey)
	case newHeld && !oldHeld:
		return t.txn.SetExpiring(heldKey, nil, expiresAt)
	}
	return nil
}

func (t tx) Deliveries(env, before string, limit, scanLimit int, filter engine.DeliveryFilter) ([]*harkv1.Delivery, string, error) {
	return scanNewest(t, under(tableDelivery, env), before, limit, scanLimit, func(v []byte) (*harkv1.Delivery, error) {
		d, _, err := decodeDelivery(v)
		if err != nil || !filter.Match(d) {
			return nil, err
		}
		return d, nil
	})
}

func (t tx) DueDeliveries(until time.Time, after *engine.DueDelivery, limit int) ([]engine.DueDelivery, error) {
	var out []engine.DueDelivery
	if limit <= 0 {
		return out, nil
	}
	var start []byte
	if after != nil {
		start = dueKey(after.Due, after.Environment, after.DestinationID, after.ID)
	}
	err := t.txn.Scan([]byte{tableDueDelivery}, start, false, true, func(k, _ []byte) (bool, error) {
		if start != nil && bytes.Equal(k, start) {
			return true, nil
		}
		if len(k) < 1+8 {
			return false, fmt.Errorf("due index key %x is malformed", k)
		}
		at := time.Unix(0, int64(binary.BigEndian.Uint64(k[1:9])))
		if at.After(until) {
			return false, nil
		}
		parts := bytes.SplitN(k[9:], []byte{sep}, 3)
		if len(parts) != 3 {
			return false, fmt.Errorf("due index key %x is malformed", k)
		}
		out = append(out, engine.DueDelivery{Environment: string(parts[0]), DestinationID: string(parts[1]), ID: string(parts[2]), Due: at})
		return len(out) < limit, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (t tx) HeldDeliveries(env, destinationID, after string, limit int) ([]string, error) {
	return keySuffixes(t, under(tableHeldDelivery, env, destinationID), after, limit)
}

func (t tx) OutboxDepth() (int, time.Time, error) {
	n := 0
	var oldest string
	err := t.txn.Scan([]byte{tableDueDelivery}, nil, false, true, func(k, _ []byte) (bool, error) {
		if i := bytes.LastIndexByte(k, sep); i >= 9 {
			if id := k[i+1:]; oldest == "" || string(id) < oldest {
				oldest = string(id)
			}
		}
		n++
		return true, nil
	})
	if err != nil {
		return 0, time.Time{}, err
	}
	return n, engine.IDTime(oldest), nil
}
