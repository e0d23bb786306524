package badgerstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/harkhq/hark/engine"
	"github.com/harkhq/hark/engine/badgerstore"
	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// BenchmarkCommit measures one durable (fsynced) commit holding n logged
// events: the store's share of the ingest path, and what batching buys.
func BenchmarkCommit(b *testing.B) {
	s, err := badgerstore.Open(badgerstore.Options{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	data := []byte(`{"plan":"pro","amount":49.5,"email":"u@example.com"}`)
	for _, n := range []int{1, 100} {
		b.Run(fmt.Sprintf("events=%d", n), func(b *testing.B) {
			seq := 0
			b.ReportAllocs()
			for b.Loop() {
				err := s.Update(context.Background(), func(tx engine.Tx) error {
					for range n {
						seq++
						ev := &harkv1.SourceEvent{
							Id: fmt.Sprintf("evt_%026d", seq), Environment: "development", SourceId: "src_bench",
							Type: "track", Name: "Bench", UserId: "u1",
							Status: harkv1.SourceEventStatus_SOURCE_EVENT_STATUS_PROCESSED,
						}
						b, err := proto.Marshal(ev)
						if err != nil {
							return err
						}
						if err := tx.PutSourceEvent(ev.GetEnvironment(), ev.GetId(), b, engine.EventJSON{Event: data, Data: data}, time.Now().Add(time.Hour)); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/event")
		})
	}
}
