package kvstore

import (
	"bytes"
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/harkhq/hark/engine"
)

// tx implements engine.Tx over one Txn: every table's logic, written once
// for every backend.
//
// Values a Txn hands out are valid only until the next call, so what a
// method keeps it copies: proto.Unmarshal copies every field it sets
// (strings and bytes alike, unknown fields too), string(v) copies, and
// slices of a value that outlive the call are cloned.
type tx struct {
	txn Txn
}

// get reads and decodes one record into m, or returns a *engine.NotFoundError.
func get[M proto.Message](t tx, k []byte, m M, resource, id string) (M, error) {
	var zero M
	v, err := t.txn.Get(k)
	if errors.Is(err, ErrNotFound) {
		return zero, &engine.NotFoundError{Resource: resource, ID: id}
	}
	if err != nil {
		return zero, fmt.Errorf("read %s: %w", resource, err)
	}
	if err := proto.Unmarshal(v, m); err != nil {
		return zero, fmt.Errorf("decode %s %q: %w", resource, id, err)
	}
	return m, nil
}

// put encodes and writes one record.
func put(t tx, k []byte, m proto.Message) error {
	v, err := proto.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	return t.txn.Set(k, v)
}

// scanAfter calls fn for the keys under prefix whose suffix sorts after
// `after` (all of them for ""), in order, until fn returns false.
func scanAfter(t tx, prefix []byte, after string, keysOnly bool, fn func(k, v []byte) (bool, error)) error {
	var from []byte
	if after != "" {
		from = append(bytes.Clone(prefix), after...)
	}
	return t.txn.Scan(prefix, from, false, keysOnly, func(k, v []byte) (bool, error) {
		if from != nil && bytes.Equal(k, from) {
			return true, nil
		}
		return fn(k, v)
	})
}

// list decodes up to limit records under prefix whose key suffix sorts after
// `after`.
func list[M proto.Message](t tx, prefix []byte, after string, limit int, newM func() M) ([]M, error) {
	return listDecoded(t, prefix, after, limit, func(v []byte) (M, error) {
		m := newM()
		return m, proto.Unmarshal(v, m)
	})
}

// listDecoded is list for records that are not a plain message encoding.
func listDecoded[M any](t tx, prefix []byte, after string, limit int, decode func(v []byte) (M, error)) ([]M, error) {
	var out []M
	if limit <= 0 {
		return out, nil
	}
	err := scanAfter(t, prefix, after, false, func(k, v []byte) (bool, error) {
		m, err := decode(v)
		if err != nil {
			return false, fmt.Errorf("decode %x: %w", k, err)
		}
		out = append(out, m)
		return len(out) < limit, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// keySuffixes lists, in order, the parts after prefix of up to limit keys
// under it that sort after `after`, reading keys only.
func keySuffixes(t tx, prefix []byte, after string, limit int) ([]string, error) {
	var out []string
	if limit <= 0 {
		return out, nil
	}
	err := scanAfter(t, prefix, after, true, func(k, _ []byte) (bool, error) {
		out = append(out, string(k[len(prefix):]))
		return len(out) < limit, nil
	})
	return out, err
}

// deletePrefix removes every key under prefix.
func deletePrefix(t tx, prefix []byte) error {
	var keys [][]byte
	err := t.txn.Scan(prefix, nil, false, true, func(k, _ []byte) (bool, error) {
		keys = append(keys, bytes.Clone(k))
		return true, nil
	})
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := t.txn.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// scanNewest lists records under prefix newest first (keys are time-ordered
// ids), starting below `before`, at most limit of those decode returns (nil
// for one the filter drops), reading at most scanLimit records. It returns
// the id of the last record read when the scan limit cut the walk short.
func scanNewest[M any](t tx, prefix []byte, before string, limit, scanLimit int, decode func(v []byte) (*M, error)) ([]*M, string, error) {
	var (
		out      []*M
		scanned  int
		last     []byte
		cutShort bool
	)
	if limit <= 0 {
		return out, "", nil
	}
	// In reverse, the scan starts at the largest key <= from: the record
	// before `before`, or the newest (prefix followed by 0xFF, above every
	// id).
	from := append(bytes.Clone(prefix), 0xFF)
	if before != "" {
		from = append(bytes.Clone(prefix), before...)
	}
	err := t.txn.Scan(prefix, from, true, false, func(k, v []byte) (bool, error) {
		if before != "" && bytes.Equal(k, from) {
			return true, nil
		}
		if scanned == scanLimit {
			cutShort = true
			return false, nil
		}
		scanned++
		last = append(last[:0], k...)
		m, err := decode(v)
		if err != nil {
			return false, fmt.Errorf("decode %q: %w", k[len(prefix):], err)
		}
		if m != nil {
			out = append(out, m)
		}
		return len(out) < limit, nil
	})
	if err != nil {
		return nil, "", err
	}
	if cutShort {
		return out, string(last[len(prefix):]), nil
	}
	return out, "", nil
}
