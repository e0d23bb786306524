package segment_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/harkhq/hark/plugins/sdk"
	"github.com/harkhq/hark/plugins/segment"
)

// typicalEvent is a Segment track as analytics.js sends it.
const typicalEvent = `{"type":"track","event":"Order Completed","userId":"user-42","anonymousId":"anon-7","messageId":"ajs-next-1732700000000-3f1e","timestamp":"2026-11-27T10:00:00.000Z","context":{"library":{"name":"analytics.js","version":"2.11.1"},"ip":"203.0.113.7","userAgent":"Mozilla/5.0","page":{"path":"/checkout","url":"https://example.com/checkout"}},"properties":{"orderId":"o-1","total":49.5,"currency":"EUR","products":[{"sku":"a-1","qty":2},{"sku":"b-2","qty":1}]}}`

// BenchmarkParseEvent measures decoding one typical event into the common
// form (the plugin's share of a single-event delivery).
func BenchmarkParseEvent(b *testing.B) {
	src := segment.Segment()
	ds := []sdk.Delivery{{Header: http.Header{}, Body: []byte(typicalEvent)}}
	b.SetBytes(int64(len(typicalEvent)))
	b.ReportAllocs()
	for b.Loop() {
		res, err := src.Translate(context.Background(), ds)
		if err != nil || len(res[0].Events) != 1 {
			b.Fatalf("translate: %v %+v", err, res)
		}
	}
}

// BenchmarkPluginCall measures a Translate call over a real gRPC connection
// with 1 and 100 deliveries per call: the cost a batched call spreads.
func BenchmarkPluginCall(b *testing.B) {
	src := sdk.TestSource(b, segment.Segment())
	for _, n := range []int{1, 100} {
		ds := make([]sdk.Delivery, n)
		for i := range ds {
			ds[i] = sdk.Delivery{Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(strings.Replace(typicalEvent, "o-1", fmt.Sprint("o-", i), 1))}
		}
		b.Run(fmt.Sprintf("deliveries=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				res, err := src.Translate(context.Background(), ds)
				if err != nil || len(res) != n {
					b.Fatalf("translate: %v", err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/delivery")
		})
	}
}
