package sdk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	pluginv1 "github.com/harkhq/hark/gen/hark/plugin/v1"
)

// TranslateStream (protocol 1.1) carries Translate batches over one
// long-lived gRPC stream. A unary call per batch pays for a new HTTP/2
// stream, its headers and a goroutine on each side; most of what a batch of
// one delivery costs. Over the stream a batch is one message each way,
// named by an id, and many may be in flight.

// ErrStreamUnsupported is what OpenStream fails with when the plugin serves
// no TranslateStream: one built with an SDK of protocol 1.0, or one that
// says it speaks 1.1 but does not. Its Translate calls still work.
var ErrStreamUnsupported = errors.New("the source plugin serves no TranslateStream")

// StreamSource is the Source a host dispenses from a plugin process (see
// PluginSets). Until OpenStream, each Translate is a call of its own, as
// with every plugin of protocol 1.0; from OpenStream to CloseStream,
// Translate sends its batch over the plugin's TranslateStream. Its methods
// are safe for concurrent use.
type StreamSource interface {
	Source
	// OpenStream opens the plugin's TranslateStream and waits, within ctx,
	// for the plugin to say it serves it. It fails with an error wrapping
	// ErrStreamUnsupported when the plugin does not; Translate then goes on
	// making calls. Once it succeeds, a batch whose stream breaks fails with
	// an error wrapping ErrUnavailable (as a failed call does), and the next
	// Translate opens a new stream. Opening an open stream does nothing.
	OpenStream(ctx context.Context) error
	// CloseStream ends the stream: batches in flight on it fail with
	// ErrUnavailable, and the stream's goroutines have stopped when it
	// returns. Later Translate calls are calls of their own again.
	CloseStream()
}

var _ StreamSource = (*grpcClient)(nil)

// sendQueue is how many messages may wait for the stream's sender: enough
// for every batch a host has in flight, so a caller rarely waits to enqueue
// (and when it does, it waits within its context).
const sendQueue = 64

// OpenStream implements StreamSource.
func (c *grpcClient) OpenStream(ctx context.Context) error {
	c.mu.Lock()
	if c.open {
		c.mu.Unlock()
		return nil
	}
	life, end := context.WithCancel(context.Background())
	c.mu.Unlock()
	st, err := c.newStream(ctx, life)
	if err != nil {
		end()
		return err
	}
	// The plugin's first message says it serves the stream; the host sends
	// no batch before it, so a plugin without it costs no batch.
	go st.run()
	select {
	case <-st.ready:
	case <-st.done:
		end()
		st.wait()
		if status.Code(st.err) == codes.Unimplemented {
			return fmt.Errorf("%w: %s", ErrStreamUnsupported, status.Convert(st.err).Message())
		}
		return fmt.Errorf("%w: open the translate stream: %s", ErrUnavailable, describeStreamError(st.err))
	case <-ctx.Done():
		end()
		st.wait()
		return fmt.Errorf("%w: open the translate stream: no answer: %w", ErrUnavailable, ctx.Err())
	}
	c.mu.Lock()
	if c.open { // opened meanwhile by another OpenStream: keep that one
		c.mu.Unlock()
		end()
		st.wait()
		return nil
	}
	c.open, c.cur, c.life, c.end = true, st, life, end
	c.streams = append(c.streams, st)
	c.mu.Unlock()
	return nil
}

// CloseStream implements StreamSource.
func (c *grpcClient) CloseStream() {
	c.mu.Lock()
	end, streams := c.end, c.streams
	c.open, c.cur, c.life, c.end, c.streams = false, nil, nil, nil, nil
	c.mu.Unlock()
	if end != nil {
		end()
	}
	for _, st := range streams {
		st.wait()
	}
}

// stream returns the stream to send a batch over: nil when streams are not
// open (the batch is a call of its own), else the current stream, or a new
// one when it broke. Opening one is bounded by ctx.
func (c *grpcClient) stream(ctx context.Context) (*clientStream, error) {
	c.mu.Lock()
	open, cur, life := c.open, c.cur, c.life
	c.mu.Unlock()
	if !open {
		return nil, nil
	}
	if !cur.broken() {
		return cur, nil
	}
	st, err := c.newStream(ctx, life)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case !c.open || c.life != life: // closed meanwhile
		st.cancel()
		return nil, fmt.Errorf("%w: the translate stream was closed", ErrUnavailable)
	case c.cur != cur && !c.cur.broken(): // another caller reopened it first
		st.cancel()
		return c.cur, nil
	}
	c.cur = st
	c.streams = append(pruneStopped(c.streams), st)
	go st.run()
	return st, nil
}

// pruneStopped drops the streams whose goroutines have ended, so a long
// life of broken and reopened streams keeps no list of them.
func pruneStopped(streams []*clientStream) []*clientStream {
	out := streams[:0]
	for _, st := range streams {
		select {
		case <-st.stopped:
		default:
			out = append(out, st)
		}
	}
	return out
}

// newStream opens a stream that lives until life ends or it breaks. ctx
// bounds only the opening: gRPC may wait for the connection.
func (c *grpcClient) newStream(ctx, life context.Context) (*clientStream, error) {
	sctx, cancel := context.WithCancel(life)
	stopBounding := context.AfterFunc(ctx, cancel)
	s, err := c.c.TranslateStream(sctx)
	if !stopBounding() || err != nil {
		cancel()
		if err == nil {
			err = ctx.Err()
		}
		return nil, fmt.Errorf("%w: open the translate stream: %s", ErrUnavailable, describeStreamError(err))
	}
	return &clientStream{
		s: s, cancel: cancel,
		sendq: make(chan any, sendQueue), ready: make(chan struct{}), done: make(chan struct{}), stopped: make(chan struct{}),
		pending: map[uint64]chan *pluginv1.TranslateStreamResponse{},
	}, nil
}

// clientStream is one TranslateStream on the host's side. Two goroutines
// serve it, both ended by cancel (its context) or by the stream breaking:
// the sender, which is the only one to call SendMsg (gRPC allows one at a
// time), and the receiver, which hands each answer to the caller waiting
// for its id. No lock is held across either.
type clientStream struct {
	s      grpc.BidiStreamingClient[pluginv1.TranslateStreamRequest, pluginv1.TranslateStreamResponse]
	cancel context.CancelFunc

	// sendq holds what the sender sends: a batch already encoded by its
	// caller (*grpc.PreparedMsg: the caller's deliveries are not read after
	// it returns), or a cancellation.
	sendq chan any
	// ready is closed when the plugin's first message arrived.
	ready     chan struct{}
	readyOnce sync.Once
	// done is closed when the stream broke, with err saying why.
	done     chan struct{}
	err      error
	failOnce sync.Once
	// stopped is closed when both goroutines have returned.
	stopped chan struct{}

	mu      sync.Mutex
	pending map[uint64]chan *pluginv1.TranslateStreamResponse
}

// run serves the stream until it breaks or its context ends.
func (st *clientStream) run() {
	var wg sync.WaitGroup
	wg.Go(st.sendLoop)
	wg.Go(st.recvLoop)
	wg.Wait()
	close(st.stopped)
}

// wait waits for the stream's goroutines after its context ended.
func (st *clientStream) wait() { <-st.stopped }

func (st *clientStream) broken() bool {
	if st == nil {
		return true
	}
	select {
	case <-st.done:
		return true
	default:
		return false
	}
}

// fail breaks the stream: every batch waiting on it fails.
func (st *clientStream) fail(err error) {
	st.failOnce.Do(func() {
		st.err = err
		close(st.done)
		st.cancel()
	})
}

func (st *clientStream) sendLoop() {
	for {
		select {
		case m := <-st.sendq:
			if err := st.s.SendMsg(m); err != nil {
				// io.EOF says the stream ended; the receiver learns why.
				if !errors.Is(err, io.EOF) {
					st.fail(err)
				}
				return
			}
		case <-st.done:
			return
		}
	}
}

func (st *clientStream) recvLoop() {
	for {
		resp := new(pluginv1.TranslateStreamResponse)
		if err := st.s.RecvMsg(resp); err != nil {
			if errors.Is(err, io.EOF) {
				err = errors.New("the plugin ended the stream")
			}
			st.fail(err)
			return
		}
		if resp.GetId() == 0 {
			st.readyOnce.Do(func() { close(st.ready) })
			continue
		}
		st.mu.Lock()
		ch := st.pending[resp.GetId()]
		delete(st.pending, resp.GetId())
		st.mu.Unlock()
		if ch != nil { // else its caller gave up
			ch <- resp
		}
	}
}

// unavailable is the error of a batch whose stream broke.
func (st *clientStream) unavailable() error {
	return fmt.Errorf("%w: the translate stream broke: %s", ErrUnavailable, describeStreamError(st.err))
}

// describeStreamError is the message of a stream's error, without gRPC's
// "rpc error: code = … desc =" wrapping.
func describeStreamError(err error) string {
	if st, ok := status.FromError(err); ok {
		return st.Message()
	}
	return err.Error()
}

// roundTrip sends one batch and waits for its answer, within ctx. A caller
// that gives up tells the plugin to stop working on the batch.
func (st *clientStream) roundTrip(ctx context.Context, req *pluginv1.TranslateStreamRequest) (*pluginv1.TranslateStreamResponse, error) {
	var msg grpc.PreparedMsg
	if err := msg.Encode(st.s, req); err != nil {
		return nil, fmt.Errorf("encode the batch: %w", err)
	}
	id := req.GetId()
	answer := make(chan *pluginv1.TranslateStreamResponse, 1)
	st.mu.Lock()
	st.pending[id] = answer
	st.mu.Unlock()
	forget := func() {
		st.mu.Lock()
		delete(st.pending, id)
		st.mu.Unlock()
	}
	select {
	case st.sendq <- &msg:
	case <-st.done:
		forget()
		return nil, st.unavailable()
	case <-ctx.Done():
		forget()
		return nil, contextError(ctx)
	}
	select {
	case resp := <-answer:
		return resp, nil
	case <-st.done:
		select {
		case resp := <-answer: // answered just before the break
			return resp, nil
		default:
		}
		forget()
		return nil, st.unavailable()
	case <-ctx.Done():
		forget()
		select { // best effort: the batch's timeout bounds it anyway
		case st.sendq <- &pluginv1.TranslateStreamRequest{Id: id, Cancel: true}:
		default:
		}
		return nil, contextError(ctx)
	}
}

// contextError is the error of a batch whose caller's context ended: what a
// call ended by its context fails with.
func contextError(ctx context.Context) error {
	return callErrorFromStatus(status.FromContextError(ctx.Err()).Err())
}

// translateOverStream sends one batch over st.
func (c *grpcClient) translateOverStream(ctx context.Context, st *clientStream, deliveries []Delivery) ([]Result, error) {
	req, err := deliveriesToProto(deliveries, true)
	if err != nil {
		return nil, err
	}
	msg := &pluginv1.TranslateStreamRequest{Id: c.ids.Add(1), Request: req}
	if deadline, ok := ctx.Deadline(); ok {
		msg.Timeout = durationpb.New(time.Until(deadline))
	}
	resp, err := st.roundTrip(ctx, msg)
	if err != nil {
		return nil, err
	}
	if code := codes.Code(resp.GetErrorCode()); code != codes.OK {
		return nil, callErrorFromStatus(status.Error(code, resp.GetErrorMessage()))
	}
	return resultsFromProto(resp.GetResponse(), deliveries)
}

// TranslateStream implements the plugin's side: it says the stream is
// served, then translates each batch in a goroutine of its own (batches are
// independent, and the host may have several in flight) and sends each
// answer when it is ready. It returns when the host ends the stream, after
// its batches' goroutines, whose contexts end with it.
func (s *grpcServer) TranslateStream(stream grpc.BidiStreamingServer[pluginv1.TranslateStreamRequest, pluginv1.TranslateStreamResponse]) error {
	ctx, stop := context.WithCancel(stream.Context())
	var batches sync.WaitGroup
	defer batches.Wait()
	defer stop()
	var sendMu sync.Mutex
	send := func(m *pluginv1.TranslateStreamResponse) error {
		sendMu.Lock()
		defer sendMu.Unlock()
		return stream.Send(m)
	}
	if err := send(&pluginv1.TranslateStreamResponse{}); err != nil {
		return err
	}
	var mu sync.Mutex
	cancels := map[uint64]context.CancelFunc{}
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		id := req.GetId()
		if req.GetCancel() {
			mu.Lock()
			cancel := cancels[id]
			mu.Unlock()
			if cancel != nil {
				cancel()
			}
			continue
		}
		bctx, cancel := batchContext(ctx, req)
		mu.Lock()
		cancels[id] = cancel
		mu.Unlock()
		batches.Go(func() {
			defer func() {
				mu.Lock()
				delete(cancels, id)
				mu.Unlock()
				cancel()
			}()
			out := &pluginv1.TranslateStreamResponse{Id: id}
			if resp, err := s.translate(bctx, req.GetRequest(), true); err != nil {
				out.ErrorCode, out.ErrorMessage = streamError(err)
			} else {
				out.Response = resp
			}
			err := send(out)
			if status.Code(err) == codes.ResourceExhausted {
				// The answer is over the message limit; gRPC refused it
				// before writing anything, so the stream still works.
				out = &pluginv1.TranslateStreamResponse{Id: id}
				out.ErrorCode, out.ErrorMessage = streamError(fmt.Errorf("the answer is too large: %w", err))
				err = send(out)
			}
			if err != nil {
				stop() // the stream is broken: end the other batches too
			}
		})
	}
}

// batchContext is the context of one batch: the stream's, ended after the
// batch's timeout, as a call's deadline would end it.
func batchContext(ctx context.Context, req *pluginv1.TranslateStreamRequest) (context.Context, context.CancelFunc) {
	if t := req.GetTimeout(); t != nil {
		return context.WithTimeout(ctx, t.AsDuration())
	}
	return context.WithCancel(ctx)
}

// streamError is the status a batch's error would have as a call's error.
func streamError(err error) (uint32, string) {
	st := status.Convert(callErrorToStatus(err))
	return uint32(st.Code()), st.Message()
}
