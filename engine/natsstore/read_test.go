package natsstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/harkhq/hark/engine/natsstore"
)

// TestLastBySubjects: one read returns the last message of each subject asked for, with its
// sequence and data; subjects without messages are absent.
func TestLastBySubjects(t *testing.T) {
	t.Parallel()
	c := connect(t, sharedCluster(t).URL())
	stream, ledger, _ := ensure(t, c, "LAST")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	if got, err := c.LastBySubjects(ctx, stream, []string{subj(ledger, 1)}); err != nil || len(got) != 0 {
		t.Fatalf("empty stream: %v, %v; want an empty map", got, err)
	}
	// a.1 twice (the second wins), a.2 once, a.3 never.
	first, _, err := c.Commit(ctx, []natsstore.Msg{
		{Subject: subj(ledger, 1), Data: []byte("old")},
		{Subject: subj(ledger, 2), Data: []byte("two")},
	})
	if err != nil {
		t.Fatal(err)
	}
	_, last, err := c.Commit(ctx, []natsstore.Msg{{Subject: subj(ledger, 1), Data: []byte("new"), ExpectSeq: natsstore.Seq(first)}})
	if err != nil {
		t.Fatal(err)
	}
	caughtUp(t, c, stream, last)
	got, err := c.LastBySubjects(ctx, stream, []string{subj(ledger, 1), subj(ledger, 2), subj(ledger, 3)})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]natsstore.Stored{
		subj(ledger, 1): {Subject: subj(ledger, 1), Seq: last, Data: []byte("new")},
		subj(ledger, 2): {Subject: subj(ledger, 2), Seq: first + 1, Data: []byte("two")},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d subjects (%v), want %d", len(got), got, len(want))
	}
	for s, w := range want {
		g := got[s]
		if g.Subject != w.Subject || g.Seq != w.Seq || string(g.Data) != string(w.Data) || g.Time.IsZero() {
			t.Errorf("%s: got %+v, want %+v with a time", s, g, w)
		}
	}
	one, ok, err := c.Last(ctx, stream, subj(ledger, 2))
	if err != nil || !ok || one.Seq != first+1 {
		t.Errorf("Last(%s) = %+v, %v, %v; want sequence %d", subj(ledger, 2), one, ok, err, first+1)
	}
	if _, ok, err := c.Last(ctx, stream, subj(ledger, 3)); err != nil || ok {
		t.Errorf("Last of an empty subject: ok=%v, %v", ok, err)
	}
	many := make([]string, natsstore.MaxLastSubjects+1)
	for i := range many {
		many[i] = subj(ledger, i)
	}
	if _, err := c.LastBySubjects(ctx, stream, many); err == nil {
		t.Errorf("%d subjects: no error", len(many))
	}
}

// TestRead pages through a stream from a sequence, with and without a subject filter: the run
// feed's cursor is the stream sequence.
func TestRead(t *testing.T) {
	t.Parallel()
	c := connect(t, sharedCluster(t).URL())
	stream, ledger, events := ensure(t, c, "READ")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var msgs []natsstore.Msg
	for i := range 10 {
		msgs = append(msgs, natsstore.Msg{Subject: subj(events, i), Data: fmt.Appendf(nil, "e%d", i)})
		msgs = append(msgs, natsstore.Msg{Subject: subj(ledger, i), Data: fmt.Appendf(nil, "l%d", i)})
	}
	first, last, err := c.Commit(ctx, msgs)
	if err != nil {
		t.Fatal(err)
	}
	caughtUp(t, c, stream, last)
	page, err := c.Read(ctx, stream, first+4, 3, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(page) != 3 || page[0].Seq != first+4 || page[2].Seq != first+6 || page[0].Subject != msgs[4].Subject {
		t.Errorf("page from %d: %+v", first+4, page)
	}
	evs, err := c.Read(ctx, stream, first+5, 100, events+".>")
	if err != nil {
		t.Fatal(err)
	}
	// Events sit at even offsets; from offset 5 on the first is offset 6 (event 3).
	if len(evs) != 7 || evs[0].Seq != first+6 || string(evs[0].Data) != "e3" {
		t.Errorf("events from %d: %d messages, first %+v", first+5, len(evs), evs)
	}
	if past, err := c.Read(ctx, stream, first+100, 10, ""); err != nil || len(past) != 0 {
		t.Errorf("read past the end: %v, %v; want nothing", past, err)
	}
}
