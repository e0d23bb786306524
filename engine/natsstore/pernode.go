package natsstore

// What a DB keeps of its own among the nodes sharing a stream: its blocks
// of run feed cursors (kvstore.CursorIssuer) and its name, under which it
// counts event types (kvstore.PerNode).

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/harkhq/hark/engine/kvstore"
)

// cursorBlock is how many cursors a DB takes from a counter at once: one
// commit of the counter per cursorBlock runs a node stores, instead of one
// in every ingest commit that stores a run, which two nodes' commits
// would make conflict every time (README "Running more than one node").
// Cursors a node has taken but not issued when it stops are never issued:
// the feed's cursors have gaps, and need none filled.
const cursorBlock = 1000

// cursors hands out a DB's cursors from the blocks it took, by counter.
type cursors struct {
	mu     sync.Mutex
	blocks map[string]*cursorRange
}

// cursorRange is a block's cursors not yet issued: next up to end.
type cursorRange struct{ next, end uint64 }

var _ kvstore.CursorIssuer = (*txn)(nil)

// IssueCursor implements kvstore.CursorIssuer: the next cursor of the
// DB's block for counter, after taking a new block when that one is used
// up. The block is taken in a commit of its own, whatever becomes of this
// transaction: a cursor of a transaction that does not commit is skipped.
func (t *txn) IssueCursor(counter []byte) (uint64, error) {
	return t.db.cursors.issue(t.ctx, counter, t.db.takeCursors)
}

func (c *cursors) issue(ctx context.Context, counter []byte, take func(context.Context, []byte) (uint64, error)) (uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.blocks[string(counter)]
	if b == nil || b.next > b.end {
		first, err := take(ctx, counter)
		if err != nil {
			return 0, err
		}
		b = &cursorRange{next: first, end: first + cursorBlock - 1}
		if c.blocks == nil {
			c.blocks = map[string]*cursorRange{}
		}
		c.blocks[string(counter)] = b
	}
	n := b.next
	b.next++
	return n, nil
}

// takeCursors moves counter on by a block, guarded as every read-then-write
// is, and returns the block's first cursor.
func (db *DB) takeCursors(ctx context.Context, counter []byte) (first uint64, err error) {
	err = db.Update(ctx, func(tx kvstore.Txn) error {
		var last uint64
		v, err := tx.Get(counter)
		switch {
		case err == nil && len(v) == 8:
			last = binary.BigEndian.Uint64(v)
		case err == nil:
			return fmt.Errorf("cursor counter %x is malformed", counter)
		case !errors.Is(err, kvstore.ErrNotFound):
			return err
		}
		first = last + 1
		return tx.Set(counter, binary.BigEndian.AppendUint64(nil, last+cursorBlock))
	})
	return first, err
}

var _ kvstore.PerNode = (*txn)(nil)

// Node implements kvstore.PerNode: the DB's name, new each time one opens.
func (t *txn) Node() string { return t.db.node }
