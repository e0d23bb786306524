package segment_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/harkhq/hark/plugins/sdk"
	"github.com/harkhq/hark/plugins/segment"
)

// FuzzTranslate feeds arbitrary deliveries to the Segment parser and checks
// what must hold for any input: no panic; a refused delivery carries no
// events; otherwise every event of the delivery is accounted for exactly
// once, accepted events are in order, and their JSON fields are valid.
func FuzzTranslate(f *testing.F) {
	for _, name := range []string{"track.json", "batch.json", "array.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, "", "")
		f.Add(b, secret, hmacHex(secret, b))
	}
	const first = `{"type":"track","event":"A","userId":1}`
	f.Add([]byte("["+first+`, 2, {"type":"identify","traits":{"a":[1]}}]`), secret, hmacHex(secret, []byte(first)))
	f.Add([]byte(`{"batch":[{"type":"page","properties":{"name":"P"},"context":[]},null],"context":{"a":1},"integrations":{"b":2}}`), "", "")
	f.Add([]byte(`{"action":"track","event":"x","messageId":12,"timestamp":"2015-2-02T00:30:08.276Z"}`), "", "")
	f.Add([]byte("{\"type\":\"track\",\"event\":\"caf\xe9\"}"), "", "")
	f.Add([]byte(`{"type":"track","event":"Cut`), "", "")
	f.Add([]byte(`{"batch":[]}`), "", "")
	f.Add([]byte(`"string"`), "", "")
	f.Add([]byte(deep(segment.MaxDepth+1)), "", "")
	f.Add([]byte(` [{"userId":{"id":1}},{"type":"group","traits":"x"},{"type":"screen","name":2}] `), "", "")

	seg := segment.Segment()
	f.Fuzz(func(t *testing.T, body []byte, secret, sig string) {
		d := sdk.Delivery{
			Header:   http.Header{"X-Signature": {sig}},
			Body:     body,
			Settings: map[string]string{segment.SettingSharedSecret: secret},
		}
		for _, src := range []*segment.Source{seg, rudder} {
			res, err := src.Translate(context.Background(), []sdk.Delivery{d})
			if err != nil {
				t.Fatalf("Translate failed the whole batch: %v", err)
			}
			if len(res) != 1 {
				t.Fatalf("%d results for 1 delivery", len(res))
			}
			checkInvariants(t, body, res[0])
		}
	})
}

func checkInvariants(t *testing.T, body []byte, r sdk.Result) {
	t.Helper()
	if r.Err != nil {
		if len(r.Events) != 0 || len(r.Rejections) != 0 {
			t.Fatalf("refused delivery (%v) carries %d events and %d rejections", r.Err, len(r.Events), len(r.Rejections))
		}
		if r.Err.Code != sdk.CodeBadRequest && r.Err.Code != sdk.CodeBadSignature {
			t.Fatalf("unexpected error code %v", r.Err)
		}
		if r.Err.Message == "" {
			t.Fatalf("refusal without a message: %#v", r.Err)
		}
		return
	}

	n, ok := countEvents(body)
	if !ok {
		t.Fatalf("delivery accepted, but its body is no JSON object or array: %q", body)
	}
	seen := make([]int, n)
	prev := -1
	for _, e := range r.Events {
		if e.Index < 0 || e.Index >= n {
			t.Fatalf("event index %d out of range [0,%d)", e.Index, n)
		}
		if e.Index <= prev {
			t.Fatalf("event indexes not ascending: %d after %d", e.Index, prev)
		}
		prev = e.Index
		seen[e.Index]++
		if !json.Valid(e.Original) {
			t.Fatalf("event %d: Original is not valid JSON: %q", e.Index, e.Original)
		}
		for field, raw := range map[string][]byte{"Data": e.Data, "Traits": e.Traits} {
			if raw != nil && (!json.Valid(raw) || !bytes.HasPrefix(raw, []byte("{"))) {
				t.Fatalf("event %d: %s is not a JSON object: %q", e.Index, field, raw)
			}
		}
		if e.IdempotencyKey != nil && !json.Valid(e.IdempotencyKey) {
			t.Fatalf("event %d: IdempotencyKey is not valid JSON: %q", e.Index, e.IdempotencyKey)
		}
	}
	for _, rej := range r.Rejections {
		if rej.Index < 0 || rej.Index >= n {
			t.Fatalf("rejection index %d out of range [0,%d)", rej.Index, n)
		}
		if rej.Reason == "" {
			t.Fatalf("rejection %d without a reason", rej.Index)
		}
		seen[rej.Index]++
	}
	for i, c := range seen {
		if c != 1 {
			t.Fatalf("event %d of %d appears %d times across events and rejections", i, n, c)
		}
	}
}

// countEvents says how many events a body holds, decoding it on its own:
// the elements of a bare array or of an object's batch, or one event.
func countEvents(body []byte) (int, bool) {
	var v any
	if err := json.Unmarshal(bytes.TrimSpace(body), &v); err != nil {
		return 0, false
	}
	switch v := v.(type) {
	case []any:
		return len(v), true
	case map[string]any:
		if b, ok := v["batch"]; ok {
			arr, ok := b.([]any)
			return len(arr), ok
		}
		return 1, true
	}
	return 0, false
}
