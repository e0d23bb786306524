package sdk

import (
	"context"
	"errors"
	"math"
	"net"
	"net/http"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	pluginv1 "github.com/harkhq/hark/gen/hark/plugin/v1"
)

// echo answers every delivery with one event whose Original is its body.
type echo struct{}

func (echo) Describe(context.Context) (Description, error) { return Description{Type: "echo"}, nil }

func (echo) Translate(ctx context.Context, ds []Delivery) ([]Result, error) {
	return TranslateEach(ctx, ds, func(_ context.Context, d Delivery) Result {
		return Result{Events: []Event{{Type: "track", Name: "echo", Original: d.Body}}}
	}), nil
}

// serveForTest serves srv (a SourcePluginServiceServer) on loopback and
// returns a client of it whose stream is not opened.
func serveForTest(t *testing.T, srv pluginv1.SourcePluginServiceServer) *grpcClient {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	server := grpc.NewServer()
	pluginv1.RegisterSourcePluginServiceServer(server, srv)
	go func() { _ = server.Serve(ln) }()
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		server.Stop()
		t.Fatal(err)
	}
	c := &grpcClient{c: pluginv1.NewSourcePluginServiceClient(conn)}
	t.Cleanup(func() {
		c.CloseStream()
		conn.Close()
		server.Stop()
	})
	return c
}

// breaker breaks its first stream after the first batch arrives, without
// answering it, as a plugin whose stream dies would; later streams work.
type breaker struct {
	*grpcServer
	streams atomic.Int32
}

func (b *breaker) TranslateStream(stream grpc.BidiStreamingServer[pluginv1.TranslateStreamRequest, pluginv1.TranslateStreamResponse]) error {
	if b.streams.Add(1) > 1 {
		return b.grpcServer.TranslateStream(stream)
	}
	if err := stream.Send(&pluginv1.TranslateStreamResponse{}); err != nil {
		return err
	}
	if _, err := stream.Recv(); err != nil {
		return err
	}
	return status.Error(codes.Internal, "stream broken on purpose")
}

// TestBrokenStreamFailsBatchAndReopens breaks the stream with a batch in
// flight: that batch fails with ErrUnavailable, as a failed call does, and
// the next batch goes over a new stream.
func TestBrokenStreamFailsBatchAndReopens(t *testing.T) {
	t.Parallel()
	srv := &breaker{grpcServer: &grpcServer{impl: echo{}}}
	c := serveForTest(t, srv)
	if err := c.OpenStream(t.Context()); err != nil {
		t.Fatalf("OpenStream: %v", err)
	}
	ds := []Delivery{{Body: []byte(`{"a":1}`)}}
	_, err := c.Translate(t.Context(), ds)
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "stream broken on purpose") {
		t.Fatalf("a batch whose stream broke: %v, want ErrUnavailable with the stream's error", err)
	}
	res, err := c.Translate(t.Context(), ds)
	if err != nil || string(res[0].Events[0].Original) != `{"a":1}` {
		t.Fatalf("the batch after the break: %+v, %v; want it translated", res, err)
	}
	if n := srv.streams.Load(); n != 2 {
		t.Fatalf("the plugin saw %d streams, want 2", n)
	}
}

// unaryOnly is a plugin of protocol 1.0: no TranslateStream.
type unaryOnly struct {
	pluginv1.UnimplementedSourcePluginServiceServer
	impl *grpcServer
}

func (u unaryOnly) Translate(ctx context.Context, req *pluginv1.TranslateRequest) (*pluginv1.TranslateResponse, error) {
	return u.impl.Translate(ctx, req)
}

func TestOpenStreamOfPluginWithoutIt(t *testing.T) {
	t.Parallel()
	c := serveForTest(t, unaryOnly{impl: &grpcServer{impl: echo{}}})
	if err := c.OpenStream(t.Context()); !errors.Is(err, ErrStreamUnsupported) {
		t.Fatalf("OpenStream of a plugin without TranslateStream: %v, want ErrStreamUnsupported", err)
	}
	res, err := c.Translate(t.Context(), []Delivery{{Body: []byte(`{"b":2}`)}})
	if err != nil || string(res[0].Events[0].Original) != `{"b":2}` {
		t.Fatalf("Translate after the stream was refused: %+v, %v; want a call that works", res, err)
	}
}

// silent serves a stream but never says so.
type silent struct {
	pluginv1.UnimplementedSourcePluginServiceServer
}

func (silent) TranslateStream(stream grpc.BidiStreamingServer[pluginv1.TranslateStreamRequest, pluginv1.TranslateStreamResponse]) error {
	<-stream.Context().Done()
	return nil
}

func TestOpenStreamWithoutAnswer(t *testing.T) {
	t.Parallel()
	c := serveForTest(t, silent{})
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if err := c.OpenStream(ctx); !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("OpenStream of a plugin that never answers: %v, want ErrUnavailable and DeadlineExceeded", err)
	}
}

func TestResultOffsetsOutsideTheirPartAreRefused(t *testing.T) {
	t.Parallel()
	body := []byte(`{"properties":{"a":1}}`)
	tests := []struct {
		name string
		ev   *pluginv1.Event
		want string
	}{
		{"event past the body", &pluginv1.Event{EventOffset: 10, EventLength: 20}, "event 0 gives its event as 20 bytes at offset 10 of 22"},
		{"event offset overflowing", &pluginv1.Event{EventOffset: math.MaxUint32, EventLength: math.MaxUint32}, "at offset 4294967295 of 22"},
		{"data past the event", &pluginv1.Event{EventJson: []byte(`{}`), DataOffset: 1, DataLength: 2}, "its data as 2 bytes at offset 1 of 2"},
		{"traits without an event", &pluginv1.Event{TraitsLength: 1}, "its traits as 1 bytes at offset 0 of 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := resultFromWire(&pluginv1.DeliveryResult{Events: []*pluginv1.Event{tt.ev}}, body)
			if r.Err == nil || r.Err.Code != CodeInternal || !strings.Contains(r.Err.Message, tt.want) || len(r.Events) != 0 {
				t.Fatalf("result = %+v, want a plugin failure saying %q and no events", r, tt.want)
			}
		})
	}
	// Offsets into a body the caller does not have are refused too.
	if r := resultFromProto(&pluginv1.DeliveryResult{Events: []*pluginv1.Event{{EventLength: 1}}}); r.Err == nil {
		t.Fatalf("an event offset without a body: %+v, want a plugin failure", r)
	}
}

func TestHeaderBlockRoundTrip(t *testing.T) {
	t.Parallel()
	h := http.Header{
		"X-Repeated":   {"one", "two", "three"},
		"X-Empty":      {""},
		"X-Not-Utf8":   {"caf\xe9"},
		"Content-Type": {"application/json"},
		"x-lowercase":  {"kept, under its canonical name"},
	}
	got, err := parseHeaderBlock(appendHeaderBlock(nil, h))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	want := h.Clone()
	delete(want, "x-lowercase")
	want["X-Lowercase"] = []string{"kept, under its canonical name"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("headers after the block = %q, want %q", got, want)
	}
	// Appending to one name's values must not overwrite the next name's.
	got["X-Repeated"] = append(got["X-Repeated"], "four")
	if !reflect.DeepEqual(got["X-Empty"], []string{""}) || !reflect.DeepEqual(got["X-Not-Utf8"], []string{"caf\xe9"}) {
		t.Fatalf("appending to one header changed another: %q", got)
	}

	// A name seen again after others keeps all its values.
	block := appendHeaderBlock(nil, http.Header{"A": {"1"}})
	block = appendHeaderBlock(block, http.Header{"B": {"2"}})
	block = appendHeaderBlock(block, http.Header{"A": {"3"}})
	block = appendHeaderBlock(block, http.Header{"A": {"4"}})
	if got, err := parseHeaderBlock(block); err != nil || !reflect.DeepEqual(got, http.Header{"A": {"1", "3", "4"}, "B": {"2"}}) {
		t.Fatalf("interleaved names: %q, %v", got, err)
	}

	for _, bad := range [][]byte{{5, 'a'}, {1, 'a', 9, 'b'}, {1, 'a'}, {0xff}} {
		if got, err := parseHeaderBlock(bad); !errors.Is(err, errHeaderBlock) {
			t.Errorf("parseHeaderBlock(%q) = %q, %v; want errHeaderBlock", bad, got, err)
		}
	}
}
