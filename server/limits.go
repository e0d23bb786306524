package server

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"

	"github.com/harkhq/hark/engine"
	"github.com/harkhq/hark/gen/hark/v1/harkv1connect"
)

// ingestEdge is what every webhook delivery passes before vanguard, Connect
// or the engine see it. It exists because a delivery's body is held in
// memory from the moment it is read until its events are committed, and
// anyone on the network can send one:
//
//   - a REST delivery's token is looked up first: a made-up token is a 404
//     before a byte of its body is read;
//   - bodies are read in full, up to maxBody (after gzip decompression), and
//     an oversize one is a 400: vanguard's own limit answers 429 and
//     Connect's resource_exhausted, which Segment retries for hours, while an
//     oversize body will never fit;
//   - the bytes of every body being read or waiting for its commit count
//     against one budget; past it, deliveries are refused with 503 (senders
//     retry) instead of growing the heap until the process dies;
//   - a body that has not arrived within bodyTimeout is a 408, which Segment
//     retries, not a 400, which it drops; the answer itself must be written
//     within writeTimeout, so a client that never reads (an HTTP/2 stream
//     with a zero window) cannot pin its body forever.
//
// Errors are written in the protocol of the request: google.rpc.Status JSON
// on REST routes, and Connect's own error writer for Connect, gRPC and
// gRPC-Web, so a gRPC client sees InvalidArgument, not a bare HTTP 400.
type ingestEdge struct {
	next         http.Handler
	maxBody      int64
	budget       *byteBudget
	bodyTimeout  time.Duration
	writeTimeout time.Duration
	// known reports whether a token belongs to a source environment; an
	// error means the lookup itself failed.
	known   func(ctx context.Context, token string) (bool, error)
	errors  *connect.ErrorWriter
	refused func(reason string)
	// record logs a refusal in the refused-delivery log of the webhook
	// URL's source environment (REST deliveries: a Connect or gRPC one's
	// token is in the body the edge refused to read).
	record func(ctx context.Context, token string, status int, reason string, size int64)
}

func (g *ingestEdge) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	token, rest := strings.CutPrefix(r.URL.Path, engine.IngestPath)
	if !rest && !strings.HasPrefix(r.URL.Path, "/"+harkv1connect.IngestServiceName+"/") {
		g.next.ServeHTTP(w, r)
		return
	}
	rc := http.NewResponseController(w)
	if g.writeTimeout > 0 {
		_ = rc.SetWriteDeadline(time.Now().Add(g.bodyTimeout + g.writeTimeout))
	}
	if rest {
		if !tokenShape.MatchString(token) {
			// Not a token hark could have issued (and maybe not even text,
			// which the request message could not carry): unknown.
			g.fail(w, r, connect.CodeNotFound, engine.ErrUnknownIngestToken.Error())
			return
		}
		switch ok, err := g.known(r.Context(), token); {
		case err != nil:
			g.fail(w, r, connect.CodeUnavailable, "temporarily unavailable, retry later")
			return
		case !ok:
			g.fail(w, r, connect.CodeNotFound, engine.ErrUnknownIngestToken.Error())
			return
		}
	}
	if r.ContentLength > g.maxBody {
		g.refused("bad_request")
		g.tooLarge(w, r)
		return
	}
	if g.bodyTimeout > 0 {
		_ = rc.SetReadDeadline(time.Now().Add(g.bodyTimeout))
	}
	held := &budgetReader{budget: g.budget}
	defer held.release()
	// A body of known length is reserved whole before a byte is read (and
	// read into one allocation of that size); one of unknown length (gzip,
	// chunked) as it arrives.
	if r.ContentLength > 0 && !held.reserve(r.ContentLength) {
		g.refused("busy")
		g.fail(w, r, connect.CodeUnavailable, "hark is holding as many webhook bodies as it may; retry later")
		return
	}
	var in io.Reader = r.Body
	if strings.EqualFold(r.Header.Get("Content-Encoding"), "gzip") {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			g.readFailed(w, r, err, "the body is not valid gzip: ")
			return
		}
		defer zr.Close()
		in = zr
		r.Header.Del("Content-Encoding")
	}
	// Decompressed bytes are what is held, so they are what is counted.
	held.r = io.LimitReader(in, g.maxBody+1)
	body, err := readBody(held, r.ContentLength, g.maxBody)
	switch {
	case errors.Is(err, errBudget):
		g.refused("busy")
		g.fail(w, r, connect.CodeUnavailable, "hark is holding as many webhook bodies as it may; retry later")
		return
	case err != nil:
		g.readFailed(w, r, err, "read request body: ")
		return
	case int64(len(body)) > g.maxBody:
		g.refused("bad_request")
		g.tooLarge(w, r)
		return
	}
	if g.bodyTimeout > 0 {
		_ = rc.SetReadDeadline(time.Time{})
	}
	if isGRPC(r) && strings.EqualFold(r.Header.Get("Grpc-Encoding"), "gzip") {
		// gRPC compresses each message, not the body; Connect would
		// inflate it past both the size limit and the budget. Inflate it
		// here, under both, and pass it on uncompressed.
		var err error
		if body, err = inflateGRPC(body, g.maxBody, g.budget, held); err != nil {
			switch {
			case errors.Is(err, errBudget):
				g.refused("busy")
				g.fail(w, r, connect.CodeUnavailable, "hark is holding as many webhook bodies as it may; retry later")
			case errors.Is(err, errTooLarge):
				g.refused("bad_request")
				g.tooLarge(w, r)
			default:
				g.refused("bad_request")
				g.fail(w, r, connect.CodeInvalidArgument, "read the gzip message: "+err.Error())
			}
			return
		}
		r.Header.Del("Grpc-Encoding")
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	g.next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), bodyKey{}, body)))
}

// isGRPC reports whether a request is gRPC or gRPC-Web (enveloped
// messages, compressed one by one).
func isGRPC(r *http.Request) bool {
	return strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc")
}

var errTooLarge = errors.New("too large")

// inflateGRPC rewrites a body of gRPC envelopes (a flags byte, a 4-byte
// big-endian length, the message) with every compressed message inflated,
// counting what it inflates against budget (held reserves it) and refusing
// more than limit bytes of messages in all.
func inflateGRPC(body []byte, limit int64, budget *byteBudget, held *budgetReader) ([]byte, error) {
	var out []byte
	total := int64(0)
	for len(body) > 0 {
		if len(body) < 5 {
			return nil, errors.New("truncated gRPC message")
		}
		flags, n := body[0], binary.BigEndian.Uint32(body[1:5])
		if uint64(n) > uint64(len(body)-5) {
			return nil, errors.New("truncated gRPC message")
		}
		msg := body[5 : 5+n]
		body = body[5+n:]
		if flags&1 != 0 {
			zr, err := gzip.NewReader(bytes.NewReader(msg))
			if err != nil {
				return nil, err
			}
			inflated := &budgetReader{r: io.LimitReader(zr, limit-total+1), budget: budget}
			msg, err = io.ReadAll(inflated)
			held.held += inflated.held // released with the rest of the body
			if err != nil {
				return nil, err
			}
		}
		total += int64(len(msg))
		if total > limit {
			return nil, errTooLarge
		}
		out = binary.BigEndian.AppendUint32(append(out, flags&^1), uint32(len(msg)))
		out = append(out, msg...)
	}
	return out, nil
}

// readBody reads all of r, sized by the request's Content-Length when it
// gives one, so a known body is read into one allocation.
func readBody(r io.Reader, contentLength, limit int64) ([]byte, error) {
	if contentLength <= 0 {
		return io.ReadAll(r)
	}
	buf := bytes.NewBuffer(make([]byte, 0, min(contentLength, limit)+1))
	_, err := buf.ReadFrom(r)
	return buf.Bytes(), err
}

// readFailed answers a body that could not be read: 408 when it did not
// arrive in time (senders retry), else 400 with why.
func (g *ingestEdge) readFailed(w http.ResponseWriter, r *http.Request, err error, prefix string) {
	var ne net.Error
	if errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
		g.refused("timeout")
		if token, ok := strings.CutPrefix(r.URL.Path, engine.IngestPath); ok {
			g.record(r.Context(), token, http.StatusRequestTimeout, fmt.Sprintf("the request body did not arrive within %s", engine.HumanDuration(g.bodyTimeout)), r.ContentLength)
			w.Header().Set("Connection", "close")
			writeStatusCode(w, http.StatusRequestTimeout, connect.NewError(connect.CodeDeadlineExceeded,
				fmt.Errorf("the request body did not arrive within %s", engine.HumanDuration(g.bodyTimeout))))
			return
		}
		g.fail(w, r, connect.CodeDeadlineExceeded, fmt.Sprintf("the request body did not arrive within %s", engine.HumanDuration(g.bodyTimeout)))
		return
	}
	g.refused("bad_request")
	g.fail(w, r, connect.CodeInvalidArgument, prefix+err.Error())
}

func (g *ingestEdge) tooLarge(w http.ResponseWriter, r *http.Request) {
	g.fail(w, r, connect.CodeInvalidArgument, fmt.Sprintf("request body is larger than %d bytes", g.maxBody))
}

// fail answers before vanguard or Connect see the request, in the shape the
// caller expects: the google.rpc.Status that vanguard writes for REST
// routes, or the Connect, gRPC or gRPC-Web error of the request's protocol.
// The connection is closed after it: the body may be unread, and net/http
// would otherwise wait to discard it before answering, for as long as a
// slow client takes to send it.
func (g *ingestEdge) fail(w http.ResponseWriter, r *http.Request, code connect.Code, msg string) {
	w.Header().Set("Connection", "close")
	err := connect.NewError(code, errors.New(msg))
	token, rest := strings.CutPrefix(r.URL.Path, engine.IngestPath)
	if !rest && g.errors.IsSupported(r) {
		_ = g.errors.Write(w, r, err)
		return
	}
	if rest && code != connect.CodeNotFound {
		g.record(r.Context(), token, httpStatus(code), msg, r.ContentLength)
	}
	w.Header().Set("Content-Type", "application/json")
	writeStatus(w, err)
}

// errBudget is a body refused because the budget of held bodies is spent.
var errBudget = errors.New("ingest body budget exhausted")

// byteBudget bounds the bytes of webhook bodies held at once: read, queued
// for the committer, or being committed. It is safe for concurrent use.
type byteBudget struct {
	limit int64
	used  atomic.Int64
}

// take reserves n bytes, or reports false when that would pass the limit.
func (b *byteBudget) take(n int64) bool {
	for {
		used := b.used.Load()
		if used+n > b.limit {
			return false
		}
		if b.used.CompareAndSwap(used, used+n) {
			return true
		}
	}
}

func (b *byteBudget) give(n int64) { b.used.Add(-n) }

// budgetReader reserves what it reads from r, beyond what reserve already
// took; release gives it all back.
type budgetReader struct {
	r      io.Reader
	budget *byteBudget
	held   int64 // reserved in all
	read   int64 // read so far
}

// reserve takes n bytes ahead of reading them.
func (b *budgetReader) reserve(n int64) bool {
	if !b.budget.take(n) {
		return false
	}
	b.held += n
	return true
}

func (b *budgetReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if n > 0 {
		b.read += int64(n)
		if over := b.read - b.held; over > 0 {
			if !b.budget.take(over) {
				return 0, errBudget
			}
			b.held += over
		}
	}
	return n, err
}

func (b *budgetReader) release() {
	b.budget.give(b.held)
	b.held = 0
}

// bodyKey carries the body ingestEdge read, so the direct ingest route
// takes it without another copy.
type bodyKey struct{}

// bodyOf returns the ingest body ingestEdge read.
func bodyOf(r *http.Request) []byte {
	b, _ := r.Context().Value(bodyKey{}).([]byte)
	return b
}

// tokenShape is what a webhook token can look like: base64url, at most 128
// characters (hark issues 43).
var tokenShape = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)

// restInputErrors turns vanguard's own input errors on REST routes into 400.
// Vanguard reports some malformed requests (a value that does not parse into
// its field) with code unknown, which it sends as 500; hark's handlers never
// answer unknown (errors.go maps everything), so on these routes it can only
// mean the request was bad.
func restInputErrors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(&unknownTo400{ResponseWriter: w}, r)
	})
}

type unknownTo400 struct {
	http.ResponseWriter
	held bool // a 500 is held until the body shows its code
}

func (u *unknownTo400) WriteHeader(code int) {
	if code == http.StatusInternalServerError {
		u.held = true
		return
	}
	u.ResponseWriter.WriteHeader(code)
}

func (u *unknownTo400) Write(p []byte) (int, error) {
	if u.held {
		u.held = false
		var st struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		}
		if json.Unmarshal(p, &st) == nil && st.Code == 2 {
			u.ResponseWriter.WriteHeader(http.StatusBadRequest)
			b, _ := json.Marshal(map[string]any{"code": 3, "message": st.Message})
			return u.ResponseWriter.Write(b)
		}
		u.ResponseWriter.WriteHeader(http.StatusInternalServerError)
	}
	return u.ResponseWriter.Write(p)
}

// Unwrap exposes the real writer to http.ResponseController.
func (u *unknownTo400) Unwrap() http.ResponseWriter { return u.ResponseWriter }

// Flush passes flushes through.
func (u *unknownTo400) Flush() {
	if u.held {
		u.held = false
		u.ResponseWriter.WriteHeader(http.StatusInternalServerError)
	}
	if f, ok := u.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
