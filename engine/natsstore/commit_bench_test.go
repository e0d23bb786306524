package natsstore_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"github.com/harkhq/hark/engine/natsstore"
)

// BenchmarkCommit measures Commit on the 3-server cluster (R3, SyncAlways, loopback): batches of
// 1 and 100 messages with one guard per batch, and 100 messages each guarded (an ingest batch
// whose every event has its own ledger marker). replies/op counts the messages the client
// received per commit, i.e. the round trips; jetstreamext is the library helper with its
// default flow control, for comparison.
func BenchmarkCommit(b *testing.B) {
	c := connect(b, sharedCluster(b).URL())
	_, ledger, events := ensure(b, c, "BENCH")
	for ci, bc := range []struct {
		name         string
		msgs, guards int
		lib          bool
	}{
		{"msgs=1/guards=1", 1, 1, false},
		{"msgs=100/guards=1", 100, 1, false},
		{"msgs=100/guards=100", 100, 100, false},
		{"jetstreamext/msgs=100/guards=1", 100, 1, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			data := make([]byte, 200) // about an event's size on the wire
			batch := make([]natsstore.Msg, bc.msgs)
			before := c.NATS().Stats()
			n := 0
			for b.Loop() {
				n++
				for i := range batch {
					batch[i] = natsstore.Msg{Subject: fmt.Sprintf("%s.%d.%d.%d", events, ci, n, i), Data: data}
					if i < bc.guards {
						batch[i].Subject = fmt.Sprintf("%s.%d.%d.%d", ledger, ci, n, i)
						batch[i].ExpectSeq = natsstore.Seq(0)
					}
				}
				if bc.lib {
					if err := libCommit(ctx, c, batch); err != nil {
						b.Fatal(err)
					}
					continue
				}
				if _, _, err := c.Commit(ctx, batch); err != nil {
					b.Fatal(err)
				}
			}
			after := c.NATS().Stats()
			b.ReportMetric(float64(after.InMsgs-before.InMsgs)/float64(n), "replies/op")
			b.ReportMetric(float64(bc.msgs*n)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

// libCommit commits batch with jetstreamext.PublishMsgBatch and its default flow control
// (it waits for an ack of the first message before sending the rest).
func libCommit(ctx context.Context, c *natsstore.Conn, batch []natsstore.Msg) error {
	msgs := make([]*nats.Msg, len(batch))
	for i, m := range batch {
		msgs[i] = &nats.Msg{Subject: m.Subject, Data: m.Data, Header: nats.Header{}}
		if m.ExpectSeq != nil {
			msgs[i].Header.Set("Nats-Expected-Last-Subject-Sequence", "0")
		}
	}
	_, err := jetstreamext.PublishMsgBatch(ctx, c.JetStream(), msgs)
	return err
}
