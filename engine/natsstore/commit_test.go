package natsstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/harkhq/hark/engine/natsstore"
)

// TestCommitExactlyOnce is the cluster-mode promise: one messageId delivered to three nodes at
// the same moment executes once. Three goroutines, each on a connection to a different server,
// commit a batch guarded on the same ledger subject (expected empty) plus an event of their own,
// released together; in every round exactly one commit succeeds, the others get a
// *ConflictError naming the ledger subject, and the stream holds exactly one event per round.
func TestCommitExactlyOnce(t *testing.T) {
	t.Parallel()
	cl := sharedCluster(t)
	conns := make([]*natsstore.Conn, 3)
	for i := range conns {
		conns[i] = connect(t, cl.ServerURL(i))
	}
	stream, ledger, events := ensure(t, conns[0], "ONCE")
	const rounds = 60
	codes := map[int]int{}
	var lastSeq atomic.Uint64 // the highest acked sequence; one winner per round stores it
	for r := range rounds {
		var wg sync.WaitGroup
		start := make(chan struct{})
		errs := make([]error, len(conns))
		for i, c := range conns {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				<-start
				var last uint64
				_, last, errs[i] = c.Commit(ctx, []natsstore.Msg{
					{Subject: subj(ledger, r), Data: []byte("seen"), ExpectSeq: natsstore.Seq(0)},
					{Subject: subj(events, r), Data: fmt.Appendf(nil, "node %d", i)},
				})
				if errs[i] == nil {
					lastSeq.Store(max(lastSeq.Load(), last))
				}
			})
		}
		close(start)
		wg.Wait()
		ok := 0
		for i, err := range errs {
			var ce *natsstore.ConflictError
			switch {
			case err == nil:
				ok++
			case errors.As(err, &ce):
				codes[ce.ErrCode]++
				if ce.Subject != subj(ledger, r) {
					t.Errorf("round %d node %d: conflict names %q, want %q", r, i, ce.Subject, subj(ledger, r))
				}
			default:
				t.Fatalf("round %d node %d: %v", r, i, err)
			}
		}
		if ok != 1 {
			t.Fatalf("round %d: %d commits succeeded, want exactly 1 (errors %v)", r, ok, errs)
		}
		// A late duplicate, after the winner's commit is acknowledged, is refused too.
		_, _, err := conns[r%3].Commit(context.Background(), []natsstore.Msg{
			{Subject: subj(ledger, r), Data: []byte("seen"), ExpectSeq: natsstore.Seq(0)},
			{Subject: subj(events, r), Data: []byte("late")},
		})
		var ce *natsstore.ConflictError
		if !errors.As(err, &ce) || ce.Subject != subj(ledger, r) {
			t.Fatalf("round %d: late duplicate: %v, want a *ConflictError on %s", r, err, subj(ledger, r))
		}
		codes[ce.ErrCode]++
	}
	t.Logf("conflict codes seen: %v", codes)

	caughtUp(t, conns[1], stream, lastSeq.Load())
	perRound := map[string]int{}
	for _, m := range readAll(t, conns[1], stream, events+".>") {
		perRound[m.Subject]++
	}
	for r := range rounds {
		if n := perRound[subj(events, r)]; n != 1 {
			t.Errorf("round %d: %d events stored, want 1", r, n)
		}
	}
	if len(perRound) != rounds {
		t.Errorf("%d event subjects stored, want %d", len(perRound), rounds)
	}
}

// TestCommitAllOrNothing commits a batch whose 5th message carries a failing guard: none of its
// six messages is stored, and the conflict names the subject and its actual last sequence. The
// same batch with the guard corrected is then stored whole, contiguously.
func TestCommitAllOrNothing(t *testing.T) {
	t.Parallel()
	c := connect(t, sharedCluster(t).URL())
	stream, ledger, events := ensure(t, c, "AON")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	taken := subj(ledger, 0)
	_, seq, err := c.Commit(ctx, []natsstore.Msg{{Subject: taken, Data: []byte("first"), ExpectSeq: natsstore.Seq(0)}})
	if err != nil {
		t.Fatal(err)
	}
	caughtUp(t, c, stream, seq)
	batch := func(guard uint64) []natsstore.Msg {
		return []natsstore.Msg{
			{Subject: subj(events, 1), Data: []byte("e1")},
			{Subject: subj(ledger, 1), Data: []byte("m1"), ExpectSeq: natsstore.Seq(0)},
			{Subject: subj(events, 2), Data: []byte("e2")},
			{Subject: subj(ledger, 2), Data: []byte("m2"), ExpectSeq: natsstore.Seq(0)},
			{Subject: taken, Data: []byte("again"), ExpectSeq: natsstore.Seq(guard)},
			{Subject: subj(events, 3), Data: []byte("e3")},
		}
	}
	_, _, err = c.Commit(ctx, batch(0))
	var ce *natsstore.ConflictError
	if !errors.As(err, &ce) {
		t.Fatalf("commit with a failing guard: %v, want a *ConflictError", err)
	}
	// Three guards all expect 0 and the server reports "wrong last sequence: 1" without naming
	// the subject, so Commit found it by reading the guarded subjects (Stale).
	if ce.Subject != taken || !ce.HasLastSeq || ce.LastSeq != seq || ce.ErrCode != 10071 ||
		len(ce.Stale) != 1 || ce.Stale[0] != taken {
		t.Errorf("conflict = %+v, want subject %s (the only stale one), last seq %d, code 10071", ce, taken, seq)
	}
	t.Logf("conflict: %v", ce)
	if got := readAll(t, c, stream, ">"); len(got) != 1 || got[0].Subject != taken {
		t.Fatalf("stream after the refused batch holds %d messages (%v), want only %s", len(got), got, taken)
	}

	first, last, err := c.Commit(ctx, batch(seq))
	if err != nil {
		t.Fatal(err)
	}
	if last-first != 5 {
		t.Fatalf("batch of 6 stored at %d..%d", first, last)
	}
	caughtUp(t, c, stream, last)
	for i, m := range batch(seq) {
		got := readAll(t, c, stream, m.Subject)
		if len(got) == 0 || got[len(got)-1].Seq != first+uint64(i) || string(got[len(got)-1].Data) != string(m.Data) {
			t.Errorf("message %d (%s): stored %v, want %q at %d", i, m.Subject, got, m.Data, first+uint64(i))
		}
	}
}

// TestCommitTTL commits a ledger marker with a 1 s TTL. While it lives, a guard expecting the
// subject empty fails and reports the marker's sequence; once it has expired, the subject's last
// sequence is 0 again (JetStream keeps no trace of an expired message unless the stream sets
// subject delete markers, which hark's streams do not), so the same guard commits.
func TestCommitTTL(t *testing.T) {
	t.Parallel()
	c := connect(t, sharedCluster(t).URL())
	stream, ledger, _ := ensure(t, c, "TTL")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	marker := []natsstore.Msg{{Subject: subj(ledger, 1), Data: []byte("seen"), TTL: time.Second, ExpectSeq: natsstore.Seq(0)}}
	_, seq, err := c.Commit(ctx, marker)
	if err != nil {
		t.Fatal(err)
	}
	var ce *natsstore.ConflictError
	if _, _, err := c.Commit(ctx, marker); !errors.As(err, &ce) || !ce.HasLastSeq || ce.LastSeq != seq {
		t.Fatalf("second marker while the first lives: %v, want a *ConflictError with last sequence %d", err, seq)
	}
	// Commit the same marker until the leader has expired the first (polling: no timing is
	// asserted, only that the guard "subject empty" passes again once it has).
	var first, last uint64
	for {
		first, last, err = c.Commit(ctx, marker)
		if err == nil {
			break
		}
		if !errors.As(err, &ce) || ctx.Err() != nil {
			t.Fatalf("marker after expiry, guard expecting an empty subject: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if first <= seq {
		t.Errorf("new marker at %d, want after the expired one at %d", first, seq)
	}
	caughtUp(t, c, stream, last)
	if got, ok, err := c.Last(ctx, stream, subj(ledger, 1)); err != nil || !ok || got.Seq != first {
		t.Errorf("Last after the new marker: %+v, %v, %v; want sequence %d", got, ok, err, first)
	}
	if _, _, err := c.Commit(ctx, []natsstore.Msg{{Subject: subj(ledger, 2), TTL: 500 * time.Millisecond}}); err == nil {
		t.Error("TTL under a second: no error")
	}
}

// TestCommitLimits: an empty batch and one over MaxBatch are refused before anything is sent;
// a batch of exactly MaxBatch is stored whole.
func TestCommitLimits(t *testing.T) {
	t.Parallel()
	c := connect(t, sharedCluster(t).URL())
	stream, _, events := ensure(t, c, "LIMITS")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, _, err := c.Commit(ctx, nil); !errors.Is(err, natsstore.ErrEmptyBatch) {
		t.Errorf("empty batch: %v, want ErrEmptyBatch", err)
	}
	msgs := make([]natsstore.Msg, natsstore.MaxBatch+1)
	for i := range msgs {
		msgs[i] = natsstore.Msg{Subject: subj(events, i), Data: []byte("x")}
	}
	var tl *natsstore.BatchTooLargeError
	if _, _, err := c.Commit(ctx, msgs); !errors.As(err, &tl) || tl.Max != natsstore.MaxBatch {
		t.Errorf("batch of %d: %v, want a *BatchTooLargeError", len(msgs), err)
	}
	first, last, err := c.Commit(ctx, msgs[:natsstore.MaxBatch])
	if err != nil {
		t.Fatalf("batch of MaxBatch: %v", err)
	}
	if last-first+1 != natsstore.MaxBatch {
		t.Errorf("batch of %d stored at %d..%d", natsstore.MaxBatch, first, last)
	}
	caughtUp(t, c, stream, last)
	if got := readAll(t, c, stream, ">"); len(got) != natsstore.MaxBatch {
		t.Errorf("stream holds %d messages, want %d", len(got), natsstore.MaxBatch)
	}
}

// TestCommitGuardAfterWrite: a subject written earlier in a batch cannot be guarded later in
// the same batch (the server cannot know what its last sequence will be); the batch is refused
// whole with the bare "wrong last sequence" (10164).
func TestCommitGuardAfterWrite(t *testing.T) {
	t.Parallel()
	c := connect(t, sharedCluster(t).URL())
	stream, ledger, events := ensure(t, c, "AFTER")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, _, err := c.Commit(ctx, []natsstore.Msg{
		{Subject: subj(events, 1), Data: []byte("e")},
		{Subject: subj(ledger, 1), Data: []byte("first")},
		{Subject: subj(ledger, 1), Data: []byte("second"), ExpectSeq: natsstore.Seq(2)},
	})
	var ce *natsstore.ConflictError
	if !errors.As(err, &ce) || ce.ErrCode != 10164 || ce.Subject != subj(ledger, 1) {
		t.Fatalf("guard after a write in the same batch: %v (%+v), want a 10164 conflict on %s", err, ce, subj(ledger, 1))
	}
	if got := readAll(t, c, stream, ">"); len(got) != 0 {
		t.Errorf("refused batch left %d messages", len(got))
	}
}

// TestCommitTooManyInflight opens the server's maximum of 50 batches on a stream (first messages
// without a commit, as a crashed client leaves them), then commits: a one-message batch is
// refused with ErrTooManyInflight; a longer one, refused at its reply-less first message, is
// answered "incomplete". Neither stores anything.
func TestCommitTooManyInflight(t *testing.T) {
	t.Parallel()
	c := connect(t, sharedCluster(t).URL())
	stream, ledger, events := ensure(t, c, "INFLIGHT")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range 50 {
		m := nats.NewMsg(subj(events, i))
		m.Header.Set("Nats-Batch-Id", fmt.Sprintf("open-%d", i))
		m.Header.Set("Nats-Batch-Sequence", "1")
		// A reply subject makes the server acknowledge the staged message, so the test knows
		// the batch is open before it goes on.
		if _, err := c.NATS().RequestMsgWithContext(ctx, m); err != nil {
			t.Fatalf("open batch %d: %v", i, err)
		}
	}
	if _, _, err := c.Commit(ctx, []natsstore.Msg{{Subject: subj(ledger, 1), ExpectSeq: natsstore.Seq(0)}}); !errors.Is(err, natsstore.ErrTooManyInflight) {
		t.Errorf("one-message batch: %v, want ErrTooManyInflight", err)
	}
	_, _, err := c.Commit(ctx, []natsstore.Msg{{Subject: subj(ledger, 2)}, {Subject: subj(ledger, 3)}})
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode != 10176 {
		t.Errorf("two-message batch: %v, want JetStream error 10176", err)
	}
	if got := readAll(t, c, stream, ">"); len(got) != 0 {
		t.Errorf("stream holds %d messages, want none", len(got))
	}
}
