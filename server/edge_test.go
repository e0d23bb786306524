package server_test

// Tests of ingestEdge and adminGate (limits.go, gate.go): what every
// request meets before Connect, vanguard or the engine read it.

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/api/httpbody"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	grpcgzip "google.golang.org/grpc/encoding/gzip"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	harkv1 "github.com/harkhq/hark/gen/hark/v1"
	"github.com/harkhq/hark/gen/hark/v1/harkv1connect"
	"github.com/harkhq/hark/server"
)

// h2cPost posts body over HTTP/2 without TLS, as gRPC clients do, and
// returns the answer with its trailers merged into the header.
func h2cPost(t *testing.T, h *harness, path, contentType string, body []byte, header ...string) httpResult {
	t.Helper()
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctxFor(t), http.MethodPost, h.base+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := (&http.Client{Transport: tr, Timeout: testTimeout}).Do(req)
	if err != nil {
		t.Fatalf("POST %s over h2c: %v", path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("read the answer: %v", err)
	}
	for k, v := range res.Trailer {
		res.Header[k] = v
	}
	return httpResult{status: res.StatusCode, header: res.Header, body: b}
}

// TestEdgeErrorsInEachProtocol sends what ingestEdge refuses over gRPC,
// gRPC-Web and Connect: each client gets InvalidArgument in its own
// protocol. It used to answer every protocol with a JSON body, which a gRPC
// client reads as Internal "unexpected HTTP status 400".
func TestEdgeErrorsInEachProtocol(t *testing.T) {
	t.Parallel()
	h := startServer(t)
	src := h.createSource(t, "edge")
	token := ingestToken(t, devURL(t, src))
	big := bytes.Repeat([]byte("x"), server.DefaultMaxBodyBytes+1)

	t.Run("gRPC oversize", func(t *testing.T) {
		c := harkv1.NewIngestServiceClient(h.grpcConn(t))
		_, err := c.Receive(grpcCtx(t, ""), &harkv1.ReceiveRequest{Token: token, Body: &httpbody.HttpBody{ContentType: "application/json", Data: big}})
		if got := status.Code(err); got != codes.InvalidArgument {
			t.Fatalf("gRPC Receive of %d bytes: %v (%v), want InvalidArgument", len(big), got, err)
		}
		if !strings.Contains(status.Convert(err).Message(), "larger than") {
			t.Fatalf("message %q, want it to say the body is too large", status.Convert(err).Message())
		}
	})
	t.Run("gRPC-Web oversize", func(t *testing.T) {
		msg, err := proto.Marshal(&harkv1.ReceiveRequest{Token: token, Body: &httpbody.HttpBody{Data: big}})
		if err != nil {
			t.Fatal(err)
		}
		env := binary.BigEndian.AppendUint32([]byte{0}, uint32(len(msg)))
		r := h2cPost(t, h, "/hark.v1.IngestService/Receive", "application/grpc-web+proto", append(env, msg...))
		if r.header.Get("Grpc-Status") != "3" && !bytes.Contains(r.body, []byte("grpc-status: 3")) {
			t.Fatalf("gRPC-Web: HTTP %d, header %v, body %q; want grpc-status 3", r.status, r.header, r.body)
		}
	})
	t.Run("Connect broken gzip", func(t *testing.T) {
		r := h.send(t, "", http.MethodPost, "/hark.v1.IngestService/Receive", "application/json", strings.NewReader("not gzip"), "Content-Encoding", "gzip")
		wantStatus(t, r, http.StatusBadRequest)
		if got := decodeMap(t, r)["code"]; got != "invalid_argument" {
			t.Fatalf("Connect error code %v, want invalid_argument: %s", got, r.body)
		}
	})
	t.Run("gRPC gzip inflating past the limit", func(t *testing.T) {
		// One compressed gRPC message carrying a valid 8.7 MB delivery: the
		// limit applies after decompression (this used to be accepted).
		event := `{"type":"track","event":"Big","userId":"u1","properties":{"pad":"` + strings.Repeat("x", 29<<10) + `"}}`
		delivery := "[" + strings.Repeat(event+",", 299) + event + "]"
		msg, err := proto.Marshal(&harkv1.ReceiveRequest{Token: token, Body: &httpbody.HttpBody{ContentType: "application/json", Data: []byte(delivery)}})
		if err != nil {
			t.Fatal(err)
		}
		var z bytes.Buffer
		zw := gzip.NewWriter(&z)
		zw.Write(msg)
		zw.Close()
		env := binary.BigEndian.AppendUint32([]byte{1}, uint32(z.Len()))
		r := h2cPost(t, h, "/hark.v1.IngestService/Receive", "application/grpc", append(env, z.Bytes()...), "Grpc-Encoding", "gzip", "Te", "trailers")
		if got := r.header.Get("Grpc-Status"); got != "3" {
			t.Fatalf("gRPC gzip bomb: grpc-status %q (%s), want 3 (InvalidArgument)", got, r.header.Get("Grpc-Message"))
		}
	})
	t.Run("gRPC gzip under the limit", func(t *testing.T) {
		c := harkv1.NewIngestServiceClient(h.grpcConn(t))
		_, err := c.Receive(grpcCtx(t, ""), &harkv1.ReceiveRequest{Token: token, Body: &httpbody.HttpBody{ContentType: "application/json", Data: segmentTrack}},
			grpc.UseCompressor(grpcgzip.Name))
		if err != nil {
			t.Fatalf("gRPC Receive with gzip: %v", err)
		}
	})
}

// TestEdgeSlowBodyIs408 sends a webhook body slower than the body timeout:
// the answer is 408, which Segment retries; it used to be 400, which
// Segment drops.
func TestEdgeSlowBodyIs408(t *testing.T) {
	t.Parallel()
	h := startServerWith(t, harnessOptions{config: func(c *server.Config) { c.BodyTimeout = 500 * time.Millisecond }})
	src := h.createSource(t, "slow")
	conn, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	path := strings.TrimPrefix(devURL(t, src), h.publicURL)
	_, err = io.WriteString(conn, "POST "+path+" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"type\":")
	if err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(testTimeout))
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read the answer: %v", err)
	}
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusRequestTimeout || !bytes.Contains(body, []byte("did not arrive within 500ms")) {
		t.Fatalf("slow body: HTTP %d %s, want 408 saying it did not arrive in time", res.StatusCode, body)
	}
}

// TestAdminGateReadsNoBodyWithoutToken posts a body to an admin route with
// no token and never finishes it: the 401 comes at once, before the body.
// Connect reads a unary request's body before its interceptors run, so
// without the gate anyone could make hark hold a body to be told 401.
func TestAdminGateReadsNoBodyWithoutToken(t *testing.T) {
	t.Parallel()
	h := startServer(t)
	pr, pw := io.Pipe()
	defer pw.Close()
	go pw.Write([]byte(`{"name":`)) // and nothing more
	req, err := http.NewRequestWithContext(ctxFor(t), http.MethodPost, h.base+"/hark.v1.SourceService/CreateSource", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := h.http.Do(req)
	if err != nil {
		t.Fatalf("POST without token: %v", err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("HTTP %d %s, want 401", res.StatusCode, b)
	}
	// Over gRPC the same is Unauthenticated.
	_, err = harkv1.NewSourceServiceClient(h.grpcConn(t)).ListSources(grpcCtx(t, ""), &harkv1.ListSourcesRequest{})
	if status.Code(err) != codes.Unauthenticated {
		t.Fatalf("gRPC without token: %v, want Unauthenticated", err)
	}
	var cerr *connect.Error
	_, err = harkv1connect.NewSourceServiceClient(h.http, h.base).ListSources(ctxFor(t), connect.NewRequest(&harkv1.ListSourcesRequest{}))
	if !errors.As(err, &cerr) || cerr.Code() != connect.CodeUnauthenticated {
		t.Fatalf("Connect without token: %v, want unauthenticated", err)
	}
}
