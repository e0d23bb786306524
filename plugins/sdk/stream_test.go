package sdk_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"
	"unsafe"

	"google.golang.org/grpc"

	"github.com/harkhq/hark/plugins/sdk"
)

// streamRecorder notes, for every batch it translates, the gRPC method and
// the server stream it came over, and answers each delivery with one event
// whose Original is the body without its first and last byte and whose
// Data is a slice of that.
type streamRecorder struct {
	mu      sync.Mutex
	methods []string
	streams map[grpc.ServerTransportStream]int
}

func (r *streamRecorder) Describe(context.Context) (sdk.Description, error) {
	return sdk.Description{Type: "rec"}, nil
}

func (r *streamRecorder) Translate(ctx context.Context, ds []sdk.Delivery) ([]sdk.Result, error) {
	method, _ := grpc.Method(ctx)
	r.mu.Lock()
	r.methods = append(r.methods, method)
	if r.streams == nil {
		r.streams = map[grpc.ServerTransportStream]int{}
	}
	r.streams[grpc.ServerTransportStreamFromContext(ctx)]++
	r.mu.Unlock()
	return sdk.TranslateEach(ctx, ds, func(_ context.Context, d sdk.Delivery) sdk.Result {
		original := d.Body[1 : len(d.Body)-1]
		return sdk.Result{Events: []sdk.Event{{Type: "track", Name: "x", Original: original, Data: original[8:21]}}}
	}), nil
}

// TestTranslateBatchesShareOneStream sends batches one after another and
// side by side: they all go over one TranslateStream, none as a call of its
// own.
func TestTranslateBatchesShareOneStream(t *testing.T) {
	t.Parallel()
	rec := &streamRecorder{}
	src := sdk.TestSource(t, rec)
	batch := []sdk.Delivery{{Body: []byte(` {"data":{"a":1,"b":2}} `)}}
	for range 5 {
		if _, err := src.Translate(t.Context(), batch); err != nil {
			t.Fatalf("Translate: %v", err)
		}
	}
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, err := src.Translate(t.Context(), batch); err != nil {
				t.Errorf("Translate in parallel: %v", err)
			}
		})
	}
	wg.Wait()

	rec.mu.Lock()
	defer rec.mu.Unlock()
	const want = "/hark.plugin.v1.SourcePluginService/TranslateStream"
	for i, m := range rec.methods {
		if m != want {
			t.Fatalf("batch %d reached the plugin through %s, want %s", i, m, want)
		}
	}
	if len(rec.streams) != 1 {
		t.Fatalf("25 batches came over %d streams, want 1", len(rec.streams))
	}
}

// within reports whether inner's bytes lie inside outer's memory.
func within(outer, inner []byte) bool {
	if len(inner) == 0 || len(outer) == 0 {
		return false
	}
	o, i := uintptr(unsafe.Pointer(unsafe.SliceData(outer))), uintptr(unsafe.Pointer(unsafe.SliceData(inner)))
	return i >= o && i+uintptr(len(inner)) <= o+uintptr(len(outer))
}

// TestEventSlicesArriveAsSlices translates an event whose Original is a
// slice of its delivery's body and whose Data is a slice of Original: on
// the host's side they come back as slices of the host's own body (the
// answer carried offsets, not the bytes again), with the same bytes, and
// with no room to append into the body.
func TestEventSlicesArriveAsSlices(t *testing.T) {
	t.Parallel()
	src := sdk.TestSource(t, &streamRecorder{})
	body := []byte(` {"data":{"a":1,"b":2}} `)
	res, err := src.Translate(t.Context(), []sdk.Delivery{{Body: body}})
	if err != nil {
		t.Fatalf("Translate: %v", err)
	}
	ev := res[0].Events[0]
	if want := body[1 : len(body)-1]; !bytes.Equal(ev.Original, want) {
		t.Fatalf("Original = %q, want %q", ev.Original, want)
	}
	if want := `{"a":1,"b":2}`; string(ev.Data) != want {
		t.Fatalf("Data = %q, want %q", ev.Data, want)
	}
	if !within(body, ev.Original) {
		t.Errorf("Original is a copy of the body's bytes, want a slice of the host's body")
	}
	if !within(ev.Original, ev.Data) {
		t.Errorf("Data is a copy of Original's bytes, want a slice of Original")
	}
	if cap(ev.Original) != len(ev.Original) || cap(ev.Data) != len(ev.Data) {
		t.Errorf("cap(Original) = %d, cap(Data) = %d: an append would write into the body", cap(ev.Original), cap(ev.Data))
	}
}

// copier answers with parts that are not slices of what it received: they
// must arrive as they were.
type copier struct{}

func (copier) Describe(context.Context) (sdk.Description, error) { return sdk.Description{}, nil }

func (copier) Translate(ctx context.Context, ds []sdk.Delivery) ([]sdk.Result, error) {
	return sdk.TranslateEach(ctx, ds, func(_ context.Context, d sdk.Delivery) sdk.Result {
		original := bytes.Clone(d.Body)
		return sdk.Result{Events: []sdk.Event{{
			Original: original,
			Data:     []byte(`{"copied":true}`),
			Traits:   bytes.Clone(original[8:21]),
		}}}
	}), nil
}

// mutator changes the body it was given in place, then answers with slices
// of it: the host must get the bytes the plugin answered with, not its own.
type mutator struct{}

func (mutator) Describe(context.Context) (sdk.Description, error) { return sdk.Description{}, nil }

func (mutator) Translate(ctx context.Context, ds []sdk.Delivery) ([]sdk.Result, error) {
	return sdk.TranslateEach(ctx, ds, func(_ context.Context, d sdk.Delivery) sdk.Result {
		copy(d.Body[9:], `"A"`)
		return sdk.Result{Events: []sdk.Event{{Original: d.Body, Data: d.Body[8:21]}}}
	}), nil
}

func TestEventPartsThatAreNotSlices(t *testing.T) {
	t.Parallel()
	const body = `{"data":{"a":1,"b":2}}`
	tests := []struct {
		name               string
		src                sdk.Source
		original, data, tr string
	}{
		{"copies", copier{}, body, `{"copied":true}`, `{"a":1,"b":2}`},
		{"a body changed in place", mutator{}, `{"data":{"A":1,"b":2}}`, `{"A":1,"b":2}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res, err := sdk.TestSource(t, tt.src).Translate(t.Context(), []sdk.Delivery{{Body: []byte(body)}})
			if err != nil {
				t.Fatalf("Translate: %v", err)
			}
			ev := res[0].Events[0]
			if string(ev.Original) != tt.original || string(ev.Data) != tt.data || string(ev.Traits) != tt.tr {
				t.Fatalf("event = original %q data %q traits %q, want %q %q %q", ev.Original, ev.Data, ev.Traits, tt.original, tt.data, tt.tr)
			}
		})
	}
}

// TestHeadersCostNoAllocationEach sends a delivery with many headers and
// one without: the difference in allocations over the round trip (both
// sides of the wire) must not grow with the number of headers, which are
// converted as one block each way. Not parallel: allocations are counted
// for the whole process.
func TestHeadersCostNoAllocationEach(t *testing.T) {
	src := sdk.TestSource(t, &recorder{})
	const n = 64
	many := http.Header{}
	for i := range n {
		many["X-Header-"+strconv.Itoa(i)] = []string{"value " + strconv.Itoa(i)}
	}
	allocs := func(h http.Header) float64 {
		ds := []sdk.Delivery{{Header: h, Body: []byte(`{}`)}}
		return testing.AllocsPerRun(200, func() {
			if _, err := src.Translate(context.Background(), ds); err != nil {
				t.Fatal(err)
			}
		})
	}
	base, with := allocs(http.Header{}), allocs(many)
	// A handful for the blocks (a slice of values, of header messages, the
	// map's growth) and run-to-run noise; one per header would be 64 or more.
	t.Logf("allocations per round trip: %.0f without headers, %.0f with %d", base, with, n)
	if extra := with - base; extra > 16 {
		t.Fatalf("%d headers cost %.0f more allocations per round trip than none (%.0f vs %.0f), want a handful",
			n, extra, with, base)
	}
}

// ctxRecorder blocks each batch until its context ends, and reports that
// context's deadline and error.
type ctxRecorder struct {
	deadline chan time.Time
	ended    chan error
}

func (r *ctxRecorder) Describe(context.Context) (sdk.Description, error) {
	return sdk.Description{}, nil
}

func (r *ctxRecorder) Translate(ctx context.Context, _ []sdk.Delivery) ([]sdk.Result, error) {
	d, _ := ctx.Deadline()
	r.deadline <- d
	<-ctx.Done()
	r.ended <- ctx.Err()
	return nil, ctx.Err()
}

// TestCallerGivingUpEndsBatch gives up on a batch: the plugin's context for
// it ends (the host told it), and it had the caller's deadline.
func TestCallerGivingUpEndsBatch(t *testing.T) {
	t.Parallel()
	rec := &ctxRecorder{deadline: make(chan time.Time, 1), ended: make(chan error, 1)}
	src := sdk.TestSource(t, rec)
	ctx, cancel := context.WithTimeout(t.Context(), time.Hour)
	want, _ := ctx.Deadline()
	errc := make(chan error, 1)
	go func() {
		_, err := src.Translate(ctx, []sdk.Delivery{{Body: []byte(`{}`)}})
		errc <- err
	}()
	got := <-rec.deadline
	if d := got.Sub(want); d < -time.Minute || d > time.Second {
		t.Errorf("the plugin's deadline is %v, want about the caller's, %v", got, want)
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("Translate after the caller gave up: %v, want context.Canceled", err)
	}
	select {
	case err := <-rec.ended:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("the plugin's context ended with %v, want context.Canceled", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the plugin's context did not end after the caller gave up")
	}
}
