package badgerstore_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/harkhq/hark/engine"
	"github.com/harkhq/hark/engine/badgerstore"
	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// benchEvent is the bench tool's event: a Segment track of about 400 bytes.
const benchEvent = `{"type":"track","event":"Bench Event","userId":"user-%d","messageId":"bench-%d","anonymousId":"anon-%d","timestamp":"2026-11-27T10:00:00.000Z","context":{"library":{"name":"analytics.js","version":"2.11.1"},"ip":"203.0.113.7","userAgent":"Mozilla/5.0"},"properties":{"plan":"pro","amount":49.5,"email":"user-%d@example.com","name":"User %d","items":[{"sku":"a-1","qty":2},{"sku":"b-2","qty":1}]}}`

// eventsTranslator stands in for the Segment plugin, which these
// benchmarks leave out (hark-bench and plugins/segment measure it): each
// delivery's body is taken as n events already translated.
type eventsTranslator struct{ n int }

var seq int

func (t eventsTranslator) Translate(_ context.Context, _ string, ds []engine.Delivery) ([]engine.Translation, error) {
	out := make([]engine.Translation, len(ds))
	for i := range ds {
		for j := range t.n {
			seq++
			raw := fmt.Appendf(nil, benchEvent, seq%5000, seq, seq, seq%5000, seq%5000)
			out[i].Events = append(out[i].Events, engine.InEvent{
				Index: j, Type: "track", Name: "Bench Event", UserID: fmt.Sprintf("user-%d", seq%5000),
				IdempotencyKey: fmt.Appendf(nil, `"bench-%d"`, seq), Original: raw,
				Data: []byte(`{"plan":"pro","amount":49.5,"email":"u@example.com","name":"U","items":[{"sku":"a-1","qty":2}]}`),
			})
		}
	}
	return out, nil
}

// BenchmarkIngest measures the engine's ingest path after the plugin — the
// prepare stage (checking the event's JSON, its expression environment, ten
// triggers' conditions and mappings) and the commit (idempotency, an inline
// identify, a run, the log entry; one fsynced Badger commit) — for a
// delivery of 1, 32 and 100 events, with identify and idempotency on and
// the bench tool's ten triggers, one of which starts a run.
func BenchmarkIngest(b *testing.B) {
	for _, n := range []int{1, 32, 100} {
		b.Run(fmt.Sprintf("events=%d", n), func(b *testing.B) {
			ctx := context.Background()
			store, err := badgerstore.Open(badgerstore.Options{Dir: b.TempDir(), MinFreeBytes: -1})
			if err != nil {
				b.Fatal(err)
			}
			defer store.Close()
			e, err := engine.New(ctx, engine.Config{Store: store, SourceTypes: oneType{}, Translator: eventsTranslator{n}})
			if err != nil {
				b.Fatal(err)
			}
			defer e.Close()
			src, err := e.CreateSource(ctx, &harkv1.CreateSourceRequest{Name: "bench", Type: "segment"})
			if err != nil {
				b.Fatal(err)
			}
			on := true
			if _, err := e.UpdateSourceEnvironment(ctx, &harkv1.UpdateSourceEnvironmentRequest{
				SourceId: src.GetId(), Environment: "development", IdentifyEnabled: &on, IdempotencyEnabled: &on,
			}); err != nil {
				b.Fatal(err)
			}
			if _, err := e.CreateWorkflow(ctx, &harkv1.CreateWorkflowRequest{Key: "bench"}); err != nil {
				b.Fatal(err)
			}
			for i := range 10 {
				req := &harkv1.CreateTriggerRequest{Environment: "development", WorkflowKey: "bench", SourceId: src.GetId(),
					Event: "Bench Event", Condition: `properties.plan == "never"`}
				if i == 0 {
					req.Condition = `properties.plan == "pro"`
					req.Mapping = &harkv1.TriggerMapping{
						Recipients: `{"id": userId, "email": properties.email, "name": properties.name}`,
						Data:       `{"plan": properties.plan, "amount": properties.amount}`,
					}
				}
				if _, err := e.CreateTrigger(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
			token := tokenOf(b, src)
			d := engine.Delivery{Header: benchHeader, Body: []byte("{}")}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := e.Receive(ctx, token, d); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/event")
		})
	}
}

// benchHeader is what Segment's webhook destination sends with a delivery:
// the event log keeps it (redacted) with each event.
var benchHeader = http.Header{
	"Content-Type":      {"application/json"},
	"Content-Length":    {"412"},
	"User-Agent":        {"Segment.io/1.0"},
	"Accept-Encoding":   {"gzip"},
	"X-Signature":       {"5d1e0b8c9e0f3f0a7f4c8f1f3a1d2e4b5c6d7e8f"},
	"X-Forwarded-For":   {"203.0.113.7"},
	"X-Forwarded-Proto": {"https"},
	"Traceparent":       {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
}

func tokenOf(b *testing.B, src *harkv1.Source) string {
	for _, se := range src.GetEnvironments() {
		if se.GetEnvironment() == "development" {
			u := se.GetIngestUrl()
			return u[len(u)-43:]
		}
	}
	b.Fatal("no development environment")
	return ""
}
