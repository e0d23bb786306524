package natsstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/harkhq/hark/engine/natsstore"
	"github.com/harkhq/hark/engine/natsstore/natsembed"
)

// batchRecord is what a committer knows about one of its batches.
type batchRecord struct {
	ledger      string
	msgs        []natsstore.Msg
	first, last uint64
	err         error
	afterKill   bool
}

// TestCommitSurvivesServerLoss commits batches from two goroutines while the stream's leader is
// killed and later restarted. Afterwards every acknowledged batch is in the stream, whole, at the
// sequences its ack gave; every batch refused for certain left nothing; a batch whose outcome was
// uncertain is there whole or not at all. Commits must succeed again while the server is down.
func TestCommitSurvivesServerLoss(t *testing.T) {
	t.Parallel()
	cl := natsembed.StartTest(t, 3)
	setup := connect(t, cl.URL())
	stream, ledger, events := ensure(t, setup, "KILL")

	var (
		stop     atomic.Bool
		killed   atomic.Bool
		wg       sync.WaitGroup
		mu       sync.Mutex
		records  []*batchRecord
		ackKill  atomic.Int64 // batches acked while the server was down
		ackTotal atomic.Int64
	)
	for g := range 2 {
		c := connect(t, cl.URL())
		wg.Go(func() {
			for k := 0; !stop.Load(); k++ {
				id := fmt.Sprintf("%d.%d", g, k)
				r := &batchRecord{ledger: ledger + "." + id, afterKill: killed.Load()}
				r.msgs = []natsstore.Msg{
					{Subject: r.ledger, Data: []byte(id), ExpectSeq: natsstore.Seq(0)},
					{Subject: events + "." + id + ".a", Data: []byte(id + "a")},
					{Subject: events + "." + id + ".b", Data: []byte(id + "b")},
				}
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				r.first, r.last, r.err = c.Commit(ctx, r.msgs)
				cancel()
				if r.err == nil {
					ackTotal.Add(1)
					if r.afterKill && killed.Load() {
						ackKill.Add(1)
					}
				} else {
					time.Sleep(20 * time.Millisecond) // do not spin while the cluster elects
				}
				mu.Lock()
				records = append(records, r)
				mu.Unlock()
			}
		})
	}

	waitAcks := func(n int64, what string) {
		deadline := time.Now().Add(20 * time.Second)
		for ackTotal.Load() < n {
			if time.Now().After(deadline) {
				stop.Store(true)
				wg.Wait()
				t.Fatalf("%s: only %d batches acked", what, ackTotal.Load())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitAcks(50, "before the kill")
	leader := streamLeader(t, cl, stream)
	killed.Store(true)
	cl.Kill(leader)
	// Commits must recover while the server is down.
	deadline := time.Now().Add(20 * time.Second)
	for ackKill.Load() < 200 {
		if time.Now().After(deadline) {
			stop.Store(true)
			wg.Wait()
			t.Fatalf("only %d batches acked in 20 s after killing server %d", ackKill.Load(), leader)
		}
		time.Sleep(10 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.Restart(ctx, leader); err != nil {
		stop.Store(true)
		wg.Wait()
		t.Fatal(err)
	}
	killed.Store(false)
	n := ackTotal.Load()
	waitAcks(n+50, "after the restart")
	stop.Store(true)
	wg.Wait()

	var acked, refused, uncertain int
	for _, r := range records {
		var ue *natsstore.UncertainError
		switch {
		case r.err == nil:
			acked++
		case errors.As(r.err, &ue):
			uncertain++
		default:
			refused++
		}
	}
	t.Logf("killed server %d (stream leader): %d batches acked (%d while it was down), %d refused, %d uncertain",
		leader, acked, ackKill.Load(), refused, uncertain)

	// Read back once every acked batch is visible (a replica may trail for a moment).
	var bySubject map[string]natsstore.Stored
	for {
		bySubject = map[string]natsstore.Stored{}
		for _, m := range readAll(t, setup, stream, ">") {
			bySubject[m.Subject] = m
		}
		missing := 0
		for _, r := range records {
			if r.err == nil {
				if _, ok := bySubject[r.ledger]; !ok {
					missing++
				}
			}
		}
		if missing == 0 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("%d acknowledged batches are not in the stream", missing)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, r := range records {
		present := 0
		for i, m := range r.msgs {
			s, ok := bySubject[m.Subject]
			if !ok {
				continue
			}
			present++
			if string(s.Data) != string(m.Data) {
				t.Errorf("%s holds %q, want %q", m.Subject, s.Data, m.Data)
			}
			if r.err == nil && s.Seq != r.first+uint64(i) {
				t.Errorf("%s at sequence %d, ack said %d", m.Subject, s.Seq, r.first+uint64(i))
			}
		}
		var ue *natsstore.UncertainError
		switch {
		case r.err == nil && present != len(r.msgs):
			t.Errorf("acked batch %s: %d of %d messages stored", r.ledger, present, len(r.msgs))
		case r.err != nil && errors.As(r.err, &ue) && present != 0 && present != len(r.msgs):
			t.Errorf("uncertain batch %s: %d of %d messages stored (%v)", r.ledger, present, len(r.msgs), r.err)
		case r.err != nil && !errors.As(r.err, &ue) && present != 0:
			t.Errorf("refused batch %s: %d messages stored (%v)", r.ledger, present, r.err)
		}
	}
}

// streamLeader returns the index of the server that leads stream in the default account.
func streamLeader(t *testing.T, cl *natsembed.Cluster, stream string) int {
	t.Helper()
	for i := range cl.Servers() {
		if s := cl.Server(i); s != nil && s.JetStreamIsStreamLeader("$G", stream) {
			return i
		}
	}
	t.Fatalf("no server leads stream %s", stream)
	return -1
}
