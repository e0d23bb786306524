package sdk_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/harkhq/hark/plugins/sdk"
)

// recorder is a small hand-written Source: it keeps what reached it and
// answers each delivery from its headers, so a test can see both sides of the
// wire.
type recorder struct {
	desc sdk.Description
	// fail, when set, is what Translate returns instead of results.
	fail error

	mu   sync.Mutex
	seen [][]sdk.Delivery
}

func (r *recorder) Describe(context.Context) (sdk.Description, error) { return r.desc, nil }

func (r *recorder) Translate(ctx context.Context, ds []sdk.Delivery) ([]sdk.Result, error) {
	r.mu.Lock()
	r.seen = append(r.seen, ds)
	r.mu.Unlock()
	if r.fail != nil {
		return nil, r.fail
	}
	return sdk.TranslateEach(ctx, ds, func(_ context.Context, d sdk.Delivery) sdk.Result {
		if d.Header.Get("X-Signature") != d.Settings["secret"] {
			return sdk.Result{Err: sdk.BadSignature("X-Signature %q is wrong", d.Header.Get("X-Signature"))}
		}
		settings, _ := json.Marshal(d.Settings)
		return sdk.Result{
			Events: []sdk.Event{{
				Index:    0,
				Type:     "track",
				Name:     d.Header.Get("X-Event"),
				UserID:   strings.Join(d.Header.Values("X-User"), ","),
				Data:     settings,
				Original: d.Body,
			}},
			Rejections: []sdk.Rejection{{Index: 1, Reason: "content type " + d.ContentType}},
		}
	}), nil
}

func (r *recorder) calls() [][]sdk.Delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seen
}

func TestSourceDescribe(t *testing.T) {
	t.Parallel()
	desc := sdk.Description{
		Type:        "acme",
		DisplayName: "Acme Events",
		Version:     "1.2.3",
		Settings: []sdk.Setting{
			{Key: "secret", Description: "Shared secret.", Secret: true, Required: true},
			{Key: "region", Description: "Region of the account."},
		},
		IdempotencyKey: "eventId",
		// A plugin's own value is ignored: the SDK reports what it speaks.
		ProtocolMinor: 99,
	}
	src := sdk.TestSource(t, &recorder{desc: desc})

	got, err := src.Describe(context.Background())
	if err != nil {
		t.Fatalf("Describe: %v", err)
	}
	want := desc
	want.ProtocolMinor = sdk.ProtocolMinor
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Describe over the wire =\n%+v\nwant\n%+v", got, want)
	}
}

func TestSourceTranslateBatch(t *testing.T) {
	t.Parallel()
	rec := &recorder{desc: sdk.Description{Type: "acme"}}
	src := sdk.TestSource(t, rec)

	in := []sdk.Delivery{
		{
			Header: http.Header{
				"X-Signature": {"s3cret"},
				"X-Event":     {"Signed Up"},
				"X-User":      {"u1", "u2"}, // repeated header, order kept
			},
			Body:        []byte(`{"type":"track","event":"Signed Up"}`),
			ContentType: "application/json",
			Settings:    map[string]string{"secret": "s3cret", "region": "eu"},
		},
		{
			Header:      http.Header{"X-Event": {"Unsigned"}},
			Body:        []byte("raw bytes \x00\xff kept as sent"),
			ContentType: "text/plain; charset=utf-8",
		},
		{
			// The secret is set but the signature is wrong: this delivery
			// alone is refused.
			Header:   http.Header{"X-Signature": {"forged"}},
			Body:     []byte(`[{"type":"track"}]`),
			Settings: map[string]string{"secret": "s3cret"},
		},
	}
	got, err := src.Translate(context.Background(), in)
	if err != nil {
		t.Fatalf("Translate: %v", err)
	}
	if len(got) != len(in) {
		t.Fatalf("Translate returned %d results for %d deliveries", len(got), len(in))
	}

	// What the plugin received: one call holding every delivery, intact.
	calls := rec.calls()
	if len(calls) != 1 {
		t.Fatalf("the plugin was called %d times for one batch, want 1", len(calls))
	}
	for i, d := range calls[0] {
		w := in[i]
		if !reflect.DeepEqual(d.Header, w.Header) {
			t.Errorf("delivery %d: plugin got headers %v, want %v", i, d.Header, w.Header)
		}
		if !bytes.Equal(d.Body, w.Body) {
			t.Errorf("delivery %d: plugin got body %q, want %q", i, d.Body, w.Body)
		}
		if d.ContentType != w.ContentType {
			t.Errorf("delivery %d: plugin got content type %q, want %q", i, d.ContentType, w.ContentType)
		}
		if len(d.Settings) != len(w.Settings) || (len(w.Settings) > 0 && !reflect.DeepEqual(d.Settings, w.Settings)) {
			t.Errorf("delivery %d: plugin got settings %v, want %v", i, d.Settings, w.Settings)
		}
	}

	// What the host got back: results in delivery order.
	first := got[0]
	if first.Err != nil {
		t.Fatalf("result 0: unexpected error %v", first.Err)
	}
	if len(first.Events) != 1 {
		t.Fatalf("result 0: %d events, want 1", len(first.Events))
	}
	ev := first.Events[0]
	if ev.Name != "Signed Up" || ev.UserID != "u1,u2" || ev.Type != "track" {
		t.Errorf("result 0 event = %+v, want name %q, user %q, type track", ev, "Signed Up", "u1,u2")
	}
	if !bytes.Equal(ev.Original, in[0].Body) {
		t.Errorf("result 0 original = %s, want %s", ev.Original, in[0].Body)
	}
	if want := `{"region":"eu","secret":"s3cret"}`; string(ev.Data) != want {
		t.Errorf("result 0 data = %s, want %s", ev.Data, want)
	}
	if want := []sdk.Rejection{{Index: 1, Reason: "content type application/json"}}; !reflect.DeepEqual(first.Rejections, want) {
		t.Errorf("result 0 rejections = %+v, want %+v", first.Rejections, want)
	}

	second := got[1]
	if second.Err != nil || len(second.Events) != 1 || second.Events[0].Name != "Unsigned" {
		t.Errorf("result 1 = %+v, want one event named Unsigned", second)
	} else if !bytes.Equal(second.Events[0].Original, in[1].Body) {
		t.Errorf("result 1 original = %q, want %q", second.Events[0].Original, in[1].Body)
	}

	third := got[2]
	if third.Err == nil {
		t.Fatalf("result 2 = %+v, want a bad signature", third)
	}
	if third.Err.Code != sdk.CodeBadSignature || third.Err.Message != `X-Signature "forged" is wrong` {
		t.Errorf("result 2 error = %#v, want bad signature with the plugin's message", third.Err)
	}
	if len(third.Events) != 0 || len(third.Rejections) != 0 {
		t.Errorf("result 2 carries events or rejections beside its error: %+v", third)
	}
}

func TestSourceTranslateError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		fail   error
		wantIs error // nil: only the message is checked
	}{
		{"ordinary error keeps its message", errors.New("schema registry is down"), nil},
		{"unavailable", fmt.Errorf("shutting down: %w", sdk.ErrUnavailable), sdk.ErrUnavailable},
		{"deadline", fmt.Errorf("lookup: %w", context.DeadlineExceeded), context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			src := sdk.TestSource(t, &recorder{fail: tt.fail})
			res, err := src.Translate(context.Background(), []sdk.Delivery{{Body: []byte(`{}`)}})
			if err == nil {
				t.Fatalf("Translate = %+v, nil error; want the plugin's error", res)
			}
			if res != nil {
				t.Errorf("Translate returned results beside its error: %+v", res)
			}
			if !strings.Contains(err.Error(), tt.fail.Error()) {
				t.Errorf("Translate error = %q, want it to contain %q", err, tt.fail)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("Translate error = %v, want errors.Is %v", err, tt.wantIs)
			}
		})
	}
}

// miscount returns one result too few: the SDK must refuse that rather than
// let the host pair results with the wrong deliveries.
type miscount struct{ recorder }

func (m *miscount) Translate(context.Context, []sdk.Delivery) ([]sdk.Result, error) {
	return []sdk.Result{{}}, nil
}

func TestSourceTranslateWrongResultCount(t *testing.T) {
	t.Parallel()
	src := sdk.TestSource(t, &miscount{})
	_, err := src.Translate(context.Background(), []sdk.Delivery{{Body: []byte(`{}`)}, {Body: []byte(`{}`)}})
	if err == nil || !strings.Contains(err.Error(), "1 results for 2 deliveries") {
		t.Fatalf("Translate error = %v, want one naming 1 result for 2 deliveries", err)
	}
}

// waiter blocks until its context ends, as a stuck plugin would.
type waiter struct{ recorder }

func (w *waiter) Translate(ctx context.Context, _ []sdk.Delivery) ([]sdk.Result, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func TestSourceTranslateDeadline(t *testing.T) {
	t.Parallel()
	src := sdk.TestSource(t, &waiter{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := src.Translate(ctx, []sdk.Delivery{{Body: []byte(`{}`)}})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Translate error = %v, want errors.Is context.DeadlineExceeded", err)
	}
}

// TestSourceLargeDeliveries sends what hark's ingest path sends: a body at
// the 4 MiB request limit (DESIGN §5), and a batch of concurrent deliveries
// whose bodies add up to more than 4 MiB (the host batches up to 8 MiB).
// Serve and the host allow messages of MaxMessageBytes; TestSource, which
// stands for them in plugin tests, must accept the same.
func TestSourceLargeDeliveries(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		sizes []int
	}{
		{"one body at the 4 MiB limit", []int{4 << 20}},
		{"two 3 MiB bodies in one batch", []int{3 << 20, 3 << 20}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := &recorder{}
			src := sdk.TestSource(t, rec)
			in := make([]sdk.Delivery, len(tt.sizes))
			for i, n := range tt.sizes {
				in[i] = sdk.Delivery{Body: bytes.Repeat([]byte{'a' + byte(i)}, n)}
			}
			res, err := src.Translate(context.Background(), in)
			if err != nil {
				t.Fatalf("Translate of %v-byte bodies: %v", tt.sizes, err)
			}
			if len(res) != len(in) {
				t.Fatalf("Translate returned %d results for %d deliveries", len(res), len(in))
			}
			calls := rec.calls()
			if len(calls) != 1 {
				t.Fatalf("plugin called %d times, want 1", len(calls))
			}
			for i, d := range calls[0] {
				if !bytes.Equal(d.Body, in[i].Body) {
					t.Errorf("delivery %d: body of %d bytes arrived as %d bytes", i, len(in[i].Body), len(d.Body))
				}
			}
		})
	}
}

// TestSourceHeaderNotUTF8 sends a header value with a byte that is not
// UTF-8: net/http accepts such values (obs-text), so hark receives them.
// One such delivery must not fail the other deliveries of its batch.
func TestSourceHeaderNotUTF8(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	src := sdk.TestSource(t, rec)
	in := []sdk.Delivery{
		{Header: http.Header{"X-Event": {"Fine"}}, Body: []byte(`{}`)},
		{Header: http.Header{"User-Agent": {"caf\xe9/1.0"}, "X-Event": {"Latin-1"}}, Body: []byte(`{}`)},
	}
	res, err := src.Translate(context.Background(), in)
	if err != nil {
		t.Fatalf("Translate with a Latin-1 header value: %v", err)
	}
	if len(res) != 2 || len(res[0].Events) != 1 || res[0].Events[0].Name != "Fine" {
		t.Fatalf("Translate = %+v, want the first delivery translated", res)
	}
}
