package server_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"
	"google.golang.org/genproto/googleapis/api/httpbody"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	grpcstatus "google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"

	harkv1 "github.com/harkhq/hark/gen/hark/v1"
	"github.com/harkhq/hark/gen/hark/v1/harkv1connect"
	httpsource "github.com/harkhq/hark/plugins/http"
	"github.com/harkhq/hark/plugins/segment"
	"github.com/harkhq/hark/server"
)

// testTimeout bounds every call a test makes, so a hung server fails the test
// instead of the whole run.
const testTimeout = 30 * time.Second

// ingestTokenPattern is the form of the secret token at the end of an ingest
// URL: base64url, at least 22 characters (128 bits).
var ingestTokenPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{22,}$`)

// ---------------------------------------------------------------------------
// Harness: the real server, in-process, on loopback.
// ---------------------------------------------------------------------------

// harness is one real hark server, in this process, on a loopback port, with
// a data dir of its own. Its source plugins run as real processes (this test
// binary re-executed; see TestMain), as hark serve runs them. restart
// reopens the same data dir on a new port while keeping the public URL, so
// ingest URLs compare across restarts.
type harness struct {
	dir       string
	token     string
	publicURL string
	addr      string // current host:port
	base      string // "http://" + addr
	http      *http.Client

	srv  *server.Server
	done chan error  // Serve's result
	logs *syncBuffer // the server's warnings and errors, shown when a test fails
}

// syncBuffer is a bytes.Buffer safe for the server's goroutines to log into.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startServer starts a server in a fresh t.TempDir and stops it (Shutdown,
// then Close) when the test ends. startServerWith (ingest_helpers_test.go)
// takes options.
func startServer(t *testing.T) *harness {
	t.Helper()
	return startServerWith(t, harnessOptions{})
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	return ln
}

// pluginEnv makes the test binary run a built-in source plugin instead of
// the tests, as `hark plugin <type>` does for the hark binary: the server
// under test starts its plugins as real processes.
const pluginEnv = "HARK_TEST_RUN_PLUGIN"

func TestMain(m *testing.M) {
	switch typ := os.Getenv(pluginEnv); typ {
	case "":
		os.Exit(m.Run())
	case "segment":
		segment.Serve()
		os.Exit(0)
	case "http":
		httpsource.Serve()
		os.Exit(0)
	default:
		fmt.Fprintf(os.Stderr, "%s=%q: no such built-in plugin\n", pluginEnv, typ)
		os.Exit(2)
	}
}

// builtinPlugins runs the built-in plugins by re-executing the test binary.
func builtinPlugins() map[string]func() *exec.Cmd {
	self, err := os.Executable()
	if err != nil {
		panic("find the test binary: " + err.Error())
	}
	out := map[string]func() *exec.Cmd{}
	for _, typ := range []string{"segment", "http"} {
		out[typ] = func() *exec.Cmd {
			cmd := exec.Command(self)
			cmd.Env = append(os.Environ(), pluginEnv+"="+typ)
			return cmd
		}
	}
	return out
}

// config is the server configuration of h.
//
// The server keeps only 16 MiB of the disk free rather than the default, so
// the tests do not depend on how full the machine's disk is.
func (h *harness) config() server.Config {
	return server.Config{
		DataDir:        h.dir,
		PublicURL:      h.publicURL,
		AdminToken:     h.token,
		BuiltinPlugins: builtinPlugins(),
		Logger:         slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelWarn})),
		MinFreeDisk:    16 << 20,
	}
}

func (h *harness) serve(t *testing.T, ln net.Listener) {
	t.Helper()
	srv, err := server.New(ctxFor(t), h.config())
	if err != nil {
		ln.Close()
		t.Fatalf("server.New: %v", err)
	}
	h.srv = srv
	h.addr = ln.Addr().String()
	h.base = "http://" + h.addr
	h.done = make(chan error, 1)
	go func(done chan<- error) { done <- srv.Serve(ln) }(h.done)
}

// stop shuts the server down gracefully and closes it; it is a no-op when the
// server is already stopped.
func (h *harness) stop(t *testing.T) {
	t.Helper()
	if h.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := h.srv.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	select {
	case err := <-h.done:
		if err != nil {
			t.Errorf("Serve returned %v after Shutdown, want nil", err)
		}
	case <-ctx.Done():
		t.Errorf("Serve did not return after Shutdown")
	}
	if err := h.srv.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	h.srv = nil
	h.http.CloseIdleConnections()
}

// restart stops the server and opens a new one on the same data dir and
// public URL, listening on a new port.
func (h *harness) restart(t *testing.T) {
	t.Helper()
	h.stop(t)
	h.serve(t, listen(t))
}

// ctxFor returns a context that ends with the test or after testTimeout.
func ctxFor(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// ---------------------------------------------------------------------------
// Connect clients.
// ---------------------------------------------------------------------------

// authHeader is a Connect client interceptor that sends its value as the
// Authorization header; the empty value sends none.
type authHeader string

func (a authHeader) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if a != "" {
			req.Header().Set("Authorization", string(a))
		}
		return next(ctx, req)
	}
}

func (a authHeader) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		conn := next(ctx, spec)
		if a != "" {
			conn.RequestHeader().Set("Authorization", string(a))
		}
		return conn
	}
}

func (a authHeader) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}

// admin is the Authorization header value that carries h's admin token.
func (h *harness) admin() authHeader { return authHeader("Bearer " + h.token) }

// opts are the Connect client options of an admin client, plus extra.
func (h *harness) opts(extra ...connect.ClientOption) []connect.ClientOption {
	return append([]connect.ClientOption{connect.WithInterceptors(h.admin())}, extra...)
}

func (h *harness) environments(extra ...connect.ClientOption) harkv1connect.EnvironmentServiceClient {
	return harkv1connect.NewEnvironmentServiceClient(h.http, h.base, h.opts(extra...)...)
}

func (h *harness) sources(extra ...connect.ClientOption) harkv1connect.SourceServiceClient {
	return harkv1connect.NewSourceServiceClient(h.http, h.base, h.opts(extra...)...)
}

func (h *harness) workflows(extra ...connect.ClientOption) harkv1connect.WorkflowServiceClient {
	return harkv1connect.NewWorkflowServiceClient(h.http, h.base, h.opts(extra...)...)
}

// unaryFunc is a generated Connect client method.
type unaryFunc[Req, Res any] func(context.Context, *connect.Request[Req]) (*connect.Response[Res], error)

// call makes a Connect call and returns the response message and error.
func call[Req, Res any](t *testing.T, fn unaryFunc[Req, Res], req *Req) (*Res, error) {
	t.Helper()
	res, err := fn(ctxFor(t), connect.NewRequest(req))
	if err != nil {
		return nil, err
	}
	return res.Msg, nil
}

// mustCall makes a Connect call that must succeed.
func mustCall[Req, Res any](t *testing.T, fn unaryFunc[Req, Res], req *Req) *Res {
	t.Helper()
	res, err := call(t, fn, req)
	if err != nil {
		t.Fatalf("%T: %v", req, err)
	}
	return res
}

// wantCode fails unless err is a Connect error with code want.
func wantCode(t *testing.T, err error, want connect.Code) {
	t.Helper()
	if err == nil {
		t.Fatalf("call succeeded, want %v", want)
	}
	if got := connect.CodeOf(err); got != want {
		t.Fatalf("code = %v (%v), want %v", got, err, want)
	}
}

// connectViolations returns the fields of the google.rpc.BadRequest details
// of a Connect error.
func connectViolations(t *testing.T, err error) []string {
	t.Helper()
	var cerr *connect.Error
	if !errors.As(err, &cerr) {
		t.Fatalf("error %v is not a *connect.Error", err)
	}
	var fields []string
	for _, d := range cerr.Details() {
		msg, derr := d.Value()
		if derr != nil {
			t.Fatalf("error detail %s: %v", d.Type(), derr)
		}
		if br, ok := msg.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				fields = append(fields, v.GetField())
			}
		}
	}
	return fields
}

// wantViolation fails unless fields holds field.
func wantViolation(t *testing.T, fields []string, field string) {
	t.Helper()
	if !slices.Contains(fields, field) {
		t.Fatalf("BadRequest field violations = %q, want one for %q", fields, field)
	}
}

// createSource creates a segment source over Connect.
func (h *harness) createSource(t *testing.T, name string) *harkv1.Source {
	t.Helper()
	res := mustCall(t, h.sources().CreateSource, &harkv1.CreateSourceRequest{Name: name, Type: "segment"})
	return res.GetSource()
}

// ---------------------------------------------------------------------------
// gRPC clients.
// ---------------------------------------------------------------------------

// grpcConn dials h with grpc-go over h2c (no TLS).
func (h *harness) grpcConn(t *testing.T) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient("passthrough:///"+h.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("grpc.NewClient: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// grpcCtx returns a call context carrying the Authorization header value
// auth; the empty value sends none.
func grpcCtx(t *testing.T, auth authHeader) context.Context {
	t.Helper()
	ctx := ctxFor(t)
	if auth != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", string(auth))
	}
	return ctx
}

// h2cClient speaks HTTP/2 without TLS, which bidirectional streams need.
func h2cClient(t *testing.T) *http.Client {
	t.Helper()
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: testTimeout}
}

// ---------------------------------------------------------------------------
// REST and raw HTTP.
// ---------------------------------------------------------------------------

// httpResult is a read HTTP response.
type httpResult struct {
	status int
	header http.Header
	body   []byte
}

// send makes a raw HTTP request to h with plain net/http; path is relative
// to h's base URL. contentType is set when body is not nil and it is not
// empty, auth when it is not empty, and header adds any other request
// headers.
func (h *harness) send(t *testing.T, auth authHeader, method, path, contentType string, body io.Reader, header ...string) httpResult {
	t.Helper()
	req, err := http.NewRequestWithContext(ctxFor(t), method, h.base+path, body)
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	if body != nil && contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if auth != "" {
		req.Header.Set("Authorization", string(auth))
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := h.http.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return httpResult{status: res.StatusCode, header: res.Header, body: b}
}

// rest makes a REST call with the admin token; a non-empty body is sent as
// JSON.
func (h *harness) rest(t *testing.T, method, path, body string) httpResult {
	t.Helper()
	return h.restAs(t, h.admin(), method, path, body)
}

// restAs is rest with the Authorization header value auth.
func (h *harness) restAs(t *testing.T, auth authHeader, method, path, body string) httpResult {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	return h.send(t, auth, method, path, "application/json", r)
}

// wantStatus fails unless r has the HTTP status want.
func wantStatus(t *testing.T, r httpResult, want int) {
	t.Helper()
	if r.status != want {
		t.Fatalf("HTTP status = %d, want %d; body: %s", r.status, want, r.body)
	}
}

// decode unmarshals a protojson body into m and returns m.
func decode[M proto.Message](t *testing.T, r httpResult, m M) M {
	t.Helper()
	if err := protojson.Unmarshal(r.body, m); err != nil {
		t.Fatalf("decode %T from %s: %v", m, r.body, err)
	}
	return m
}

// decodeMap unmarshals a JSON object body, for checks of the wire names.
func decodeMap(t *testing.T, r httpResult) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("decode JSON object from %s: %v", r.body, err)
	}
	return m
}

// restViolations returns the fields of the google.rpc.BadRequest details of
// a REST error body (a JSON google.rpc.Status).
func restViolations(t *testing.T, r httpResult) []string {
	t.Helper()
	st := decode(t, r, &rpcstatus.Status{})
	var fields []string
	for _, d := range st.GetDetails() {
		msg, err := d.UnmarshalNew()
		if err != nil {
			t.Fatalf("error detail %s: %v", d.GetTypeUrl(), err)
		}
		if br, ok := msg.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				fields = append(fields, v.GetField())
			}
		}
	}
	return fields
}

// ingestPath turns an ingest URL (built on the public URL) into a path on the
// current listener, which differs from the public URL after a restart.
func (h *harness) ingestPath(t *testing.T, ingestURL string) string {
	t.Helper()
	path, ok := strings.CutPrefix(ingestURL, h.publicURL)
	if !ok || !strings.HasPrefix(path, "/integrations/receive/") {
		t.Fatalf("ingest URL %q does not start with %s/integrations/receive/", ingestURL, h.publicURL)
	}
	return path
}

// ingest posts body to an ingest URL without any admin token, as Segment
// does.
func (h *harness) ingest(t *testing.T, ingestURL string, body []byte) httpResult {
	t.Helper()
	return h.send(t, "", http.MethodPost, h.ingestPath(t, ingestURL), "application/json", bytes.NewReader(body))
}

// wantAccepted fails unless r answers a delivery of one event to a known
// webhook token: 200 with a ReceiveResponse whose one event was stored.
func wantAccepted(t *testing.T, r httpResult) {
	t.Helper()
	wantStatus(t, r, http.StatusOK)
	wantStored(t, decode(t, r, &harkv1.ReceiveResponse{}))
}

// wantStored fails unless res reports one stored (not rejected) event.
func wantStored(t *testing.T, res *harkv1.ReceiveResponse) {
	t.Helper()
	evs := res.GetEvents()
	if len(evs) != 1 || evs[0].GetId() == "" ||
		evs[0].GetStatus() == harkv1.SourceEventStatus_SOURCE_EVENT_STATUS_REJECTED ||
		evs[0].GetStatus() == harkv1.SourceEventStatus_SOURCE_EVENT_STATUS_UNSPECIFIED {
		t.Fatalf("ReceiveResponse = %v, want one stored event", res)
	}
}

// sign is Segment's X-Signature of body: lowercase hex HMAC-SHA1 with the
// shared secret.
func sign(secret string, body []byte) string {
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

// segmentTrack is a small, valid Segment track call.
var segmentTrack = []byte(`{"type":"track","event":"Signed Up","userId":"u1","messageId":"m1"}`)

// envByName returns a source's configuration in env.
func envByName(t *testing.T, src *harkv1.Source, env string) *harkv1.SourceEnvironment {
	t.Helper()
	for _, se := range src.GetEnvironments() {
		if se.GetEnvironment() == env {
			return se
		}
	}
	t.Fatalf("source %s has no %q environment: %v", src.GetId(), env, src.GetEnvironments())
	return nil
}

// ingestToken returns the token at the end of an ingest URL and checks its
// form.
func ingestToken(t *testing.T, ingestURL string) string {
	t.Helper()
	_, token, ok := strings.Cut(ingestURL, "/integrations/receive/")
	if !ok || !ingestTokenPattern.MatchString(token) {
		t.Fatalf("ingest URL %q does not end with /integrations/receive/<token matching %s>", ingestURL, ingestTokenPattern)
	}
	return token
}

// slugs returns the slugs of envs.
func slugs(envs []*harkv1.Environment) []string {
	out := make([]string, len(envs))
	for i, e := range envs {
		out[i] = e.GetSlug()
	}
	return out
}

// ---------------------------------------------------------------------------
// 1. Environments.
// ---------------------------------------------------------------------------

func TestEnvironments(t *testing.T) {
	t.Parallel()
	h := startServer(t)

	// The list runs first: "create" below adds an environment.
	t.Run("list", func(t *testing.T) {
		tests := []struct {
			name string
			list func(t *testing.T) []*harkv1.Environment
		}{
			{"connect", func(t *testing.T) []*harkv1.Environment {
				return mustCall(t, h.environments().ListEnvironments, &harkv1.ListEnvironmentsRequest{}).GetEnvironments()
			}},
			{"connect json", func(t *testing.T) []*harkv1.Environment {
				return mustCall(t, h.environments(connect.WithProtoJSON()).ListEnvironments, &harkv1.ListEnvironmentsRequest{}).GetEnvironments()
			}},
			{"grpc", func(t *testing.T) []*harkv1.Environment {
				res, err := harkv1.NewEnvironmentServiceClient(h.grpcConn(t)).ListEnvironments(grpcCtx(t, h.admin()), &harkv1.ListEnvironmentsRequest{})
				if err != nil {
					t.Fatalf("gRPC ListEnvironments: %v", err)
				}
				return res.GetEnvironments()
			}},
			{"grpc-web", func(t *testing.T) []*harkv1.Environment {
				return mustCall(t, h.environments(connect.WithGRPCWeb()).ListEnvironments, &harkv1.ListEnvironmentsRequest{}).GetEnvironments()
			}},
			{"rest", func(t *testing.T) []*harkv1.Environment {
				r := h.rest(t, http.MethodGet, "/v1/environments", "")
				wantStatus(t, r, http.StatusOK)
				if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
					t.Errorf("Content-Type = %q, want application/json", ct)
				}
				return decode(t, r, &harkv1.ListEnvironmentsResponse{}).GetEnvironments()
			}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				envs := tt.list(t)
				if got, want := slugs(envs), []string{"development", "production"}; !slices.Equal(got, want) {
					t.Fatalf("environments = %q, want %q", got, want)
				}
				for _, e := range envs {
					if e.GetName() == "" || e.GetCreatedAt() == nil {
						t.Errorf("environment %q has no name or created_at: %v", e.GetSlug(), e)
					}
				}
			})
		}
	})

	t.Run("create", func(t *testing.T) {
		src := h.createSource(t, "Before staging")
		if n := len(src.GetEnvironments()); n != 2 {
			t.Fatalf("new source has %d environments, want 2", n)
		}

		r := h.rest(t, http.MethodPost, "/v1/environments", `{"slug":"staging","name":"Staging"}`)
		wantStatus(t, r, http.StatusOK)
		env := decode(t, r, &harkv1.Environment{})
		if env.GetSlug() != "staging" || env.GetName() != "Staging" || env.GetCreatedAt() == nil {
			t.Fatalf("created environment = %v, want slug staging, name Staging, created_at set", env)
		}

		got := mustCall(t, h.sources().GetSource, &harkv1.GetSourceRequest{Id: src.GetId()}).GetSource()
		if n := len(got.GetEnvironments()); n != 3 {
			t.Fatalf("after CreateEnvironment the source has %d environments, want 3: %v", n, got.GetEnvironments())
		}
		staging := envByName(t, got, "staging")
		tokens := map[string]bool{}
		for _, se := range got.GetEnvironments() {
			tokens[ingestToken(t, se.GetIngestUrl())] = true
		}
		if len(tokens) != 3 {
			t.Fatalf("ingest tokens are not distinct: %v", got.GetEnvironments())
		}
		for _, env := range []string{"development", "production"} {
			if before, after := envByName(t, src, env).GetIngestUrl(), envByName(t, got, env).GetIngestUrl(); before != after {
				t.Errorf("%s ingest URL changed from %q to %q", env, before, after)
			}
		}
		wantAccepted(t, h.ingest(t, staging.GetIngestUrl(), segmentTrack))

		envs := mustCall(t, h.environments().ListEnvironments, &harkv1.ListEnvironmentsRequest{}).GetEnvironments()
		if got, want := slugs(envs), []string{"development", "production", "staging"}; !slices.Equal(got, want) {
			t.Fatalf("environments = %q, want %q", got, want)
		}

		// A source created after the environment gets it too.
		if n := len(h.createSource(t, "After staging").GetEnvironments()); n != 3 {
			t.Fatalf("source created after staging has %d environments, want 3", n)
		}
	})

	t.Run("create errors", func(t *testing.T) {
		tests := []struct {
			name       string
			body       string
			wantStatus int
			wantField  string
		}{
			{"invalid slug", `{"slug":"Bad Slug"}`, http.StatusBadRequest, "slug"},
			{"slug starting with a digit", `{"slug":"1env"}`, http.StatusBadRequest, "slug"},
			{"empty slug", `{}`, http.StatusBadRequest, "slug"},
			{"duplicate default", `{"slug":"development"}`, http.StatusConflict, ""},
			{"duplicate created", `{"slug":"staging"}`, http.StatusConflict, ""},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				r := h.rest(t, http.MethodPost, "/v1/environments", tt.body)
				wantStatus(t, r, tt.wantStatus)
				if tt.wantField != "" {
					wantViolation(t, restViolations(t, r), tt.wantField)
				}
			})
		}
		t.Run("duplicate over connect", func(t *testing.T) {
			t.Parallel()
			_, err := call(t, h.environments().CreateEnvironment, &harkv1.CreateEnvironmentRequest{Slug: "production"})
			wantCode(t, err, connect.CodeAlreadyExists)
		})
		t.Run("invalid over connect", func(t *testing.T) {
			t.Parallel()
			_, err := call(t, h.environments().CreateEnvironment, &harkv1.CreateEnvironmentRequest{Slug: "UPPER"})
			wantCode(t, err, connect.CodeInvalidArgument)
			wantViolation(t, connectViolations(t, err), "slug")
		})
	})
}

// TestCreateEnvironmentWhileCreatingSources checks DESIGN §3 ("creating [an
// environment] gives every source a configuration in it") when sources are
// created at the same time: every source must end with a configuration, and
// a webhook URL, in every environment.
func TestCreateEnvironmentWhileCreatingSources(t *testing.T) {
	t.Parallel()
	h := startServer(t)
	const newEnvs, newSources = 4, 16
	ctx := ctxFor(t)
	envs, sources := h.environments(), h.sources()

	var wg sync.WaitGroup
	for i := range newEnvs {
		wg.Go(func() {
			_, err := envs.CreateEnvironment(ctx, connect.NewRequest(&harkv1.CreateEnvironmentRequest{Slug: "env-" + strconv.Itoa(i)}))
			if err != nil {
				t.Errorf("CreateEnvironment env-%d: %v", i, err)
			}
		})
	}
	for i := range newSources {
		wg.Go(func() {
			_, err := sources.CreateSource(ctx, connect.NewRequest(&harkv1.CreateSourceRequest{Name: "s" + strconv.Itoa(i), Type: "segment"}))
			if err != nil {
				t.Errorf("CreateSource s%d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	want := slugs(mustCall(t, envs.ListEnvironments, &harkv1.ListEnvironmentsRequest{}).GetEnvironments())
	if len(want) != 2+newEnvs {
		t.Fatalf("environments = %q, want %d", want, 2+newEnvs)
	}
	list := mustCall(t, sources.ListSources, &harkv1.ListSourcesRequest{PageSize: 1000}).GetSources()
	if len(list) != newSources {
		t.Fatalf("ListSources = %d sources, want %d", len(list), newSources)
	}
	incomplete := 0
	for _, src := range list {
		var got []string
		for _, se := range src.GetEnvironments() {
			got = append(got, se.GetEnvironment())
		}
		if !slices.Equal(got, want) {
			incomplete++
			t.Logf("source %s has environments %q", src.GetId(), got)
		}
	}
	if incomplete > 0 {
		t.Fatalf("%d of %d sources lack a configuration in some of the %d environments %q", incomplete, len(list), len(want), want)
	}
}

// ---------------------------------------------------------------------------
// 2. Auth.
// ---------------------------------------------------------------------------

func TestAuth(t *testing.T) {
	t.Parallel()
	h := startServer(t)

	// Each protocol reports its outcome as "ok" or a lower-case code name.
	protocols := []struct {
		name string
		call func(t *testing.T, auth authHeader) string
	}{
		{"connect", func(t *testing.T, auth authHeader) string {
			c := harkv1connect.NewEnvironmentServiceClient(h.http, h.base, connect.WithInterceptors(auth))
			_, err := call(t, c.ListEnvironments, &harkv1.ListEnvironmentsRequest{})
			return connectOutcome(err)
		}},
		{"connect server stream", func(t *testing.T, auth authHeader) string {
			// A watch of an unknown environment ends at once with NotFound,
			// but only once the token has been checked.
			c := harkv1connect.NewEventServiceClient(h.http, h.base, connect.WithInterceptors(auth))
			stream, err := c.WatchSourceEvents(ctxFor(t), connect.NewRequest(&harkv1.WatchSourceEventsRequest{Environment: "no-such-env"}))
			if err != nil {
				return connectOutcome(err)
			}
			defer stream.Close()
			for stream.Receive() {
			}
			return connectOutcome(stream.Err())
		}},
		{"grpc", func(t *testing.T, auth authHeader) string {
			_, err := harkv1.NewEnvironmentServiceClient(h.grpcConn(t)).ListEnvironments(grpcCtx(t, auth), &harkv1.ListEnvironmentsRequest{})
			if err == nil {
				return "ok"
			}
			return strings.ToLower(grpcstatus.Code(err).String())
		}},
		{"rest", func(t *testing.T, auth authHeader) string {
			r := h.restAs(t, auth, http.MethodGet, "/v1/environments", "")
			switch r.status {
			case http.StatusOK:
				return "ok"
			case http.StatusUnauthorized:
				return "unauthenticated"
			}
			return "http " + http.StatusText(r.status)
		}},
	}
	creds := []struct {
		name string
		auth authHeader
		want string // for the unary RPCs; the stream answers not_found instead of ok
	}{
		{"no header", "", "unauthenticated"},
		{"wrong token", "Bearer wrong-token", "unauthenticated"},
		{"right token without scheme", authHeader(h.token), "unauthenticated"},
		{"basic scheme", authHeader("Basic " + h.token), "unauthenticated"},
		{"right token with suffix", authHeader("Bearer " + h.token + "x"), "unauthenticated"},
		{"right token", h.admin(), "ok"},
	}
	for _, p := range protocols {
		for _, c := range creds {
			t.Run(p.name+"/"+c.name, func(t *testing.T) {
				t.Parallel()
				want := c.want
				if p.name == "connect server stream" && want == "ok" {
					want = "not_found"
				}
				if got := p.call(t, c.auth); got != want {
					t.Fatalf("outcome = %q, want %q", got, want)
				}
			})
		}
	}

	t.Run("health without token", func(t *testing.T) {
		t.Parallel()
		for _, service := range []string{"", harkv1connect.SourceServiceName, harkv1connect.IngestServiceName} {
			res, err := grpchealth.NewClient(h.http, h.base).Check(ctxFor(t), &grpchealth.CheckRequest{Service: service})
			if err != nil {
				t.Fatalf("health Check(%q): %v", service, err)
			}
			if res.Status != grpchealth.StatusServing {
				t.Fatalf("health Check(%q) = %v, want SERVING", service, res.Status)
			}
		}
	})

	t.Run("health as plain connect json", func(t *testing.T) {
		t.Parallel()
		r := h.restAs(t, "", http.MethodPost, "/grpc.health.v1.Health/Check", `{}`)
		wantStatus(t, r, http.StatusOK)
		if got := decodeMap(t, r)["status"]; got != "SERVING_STATUS_SERVING" {
			t.Fatalf("health status = %v, want SERVING_STATUS_SERVING; body %s", got, r.body)
		}
	})

	t.Run("unknown ingest token without admin token", func(t *testing.T) {
		t.Parallel()
		r := h.send(t, "", http.MethodPost, "/integrations/receive/"+rand.Text(), "application/json", bytes.NewReader(segmentTrack))
		wantStatus(t, r, http.StatusNotFound)
	})

	t.Run("unknown ingest token over connect without admin token", func(t *testing.T) {
		t.Parallel()
		c := harkv1connect.NewIngestServiceClient(h.http, h.base)
		_, err := call(t, c.Receive, &harkv1.ReceiveRequest{Token: rand.Text(), Body: &httpbody.HttpBody{ContentType: "application/json", Data: segmentTrack}})
		wantCode(t, err, connect.CodeNotFound)
	})
}

func connectOutcome(err error) string {
	if err == nil {
		return "ok"
	}
	return connect.CodeOf(err).String()
}

// ---------------------------------------------------------------------------
// 3. Sources.
// ---------------------------------------------------------------------------

func TestSources(t *testing.T) {
	t.Parallel()
	h := startServer(t)

	t.Run("create over rest", func(t *testing.T) {
		t.Parallel()
		r := h.rest(t, http.MethodPost, "/v1/sources", `{"name":"Web","type":"segment"}`)
		wantStatus(t, r, http.StatusOK)

		// Wire names first: clients read lowerCamelCase JSON.
		raw := decodeMap(t, r)
		if id, _ := raw["id"].(string); !strings.HasPrefix(id, "src_") {
			t.Fatalf("id = %v, want src_…", raw["id"])
		}
		rawEnvs, _ := raw["environments"].([]any)
		if len(rawEnvs) != 2 {
			t.Fatalf("environments = %v, want 2 of them", raw["environments"])
		}
		for _, e := range rawEnvs {
			if _, ok := e.(map[string]any)["ingestUrl"].(string); !ok {
				t.Fatalf("environment %v has no ingestUrl string", e)
			}
		}

		src := decode(t, r, &harkv1.Source{})
		if src.GetName() != "Web" || src.GetType() != "segment" || src.GetCreatedAt() == nil {
			t.Fatalf("source = %v, want name Web, type segment, created_at set", src)
		}
		tokens := map[string]string{}
		for _, se := range src.GetEnvironments() {
			if se.GetSourceId() != src.GetId() {
				t.Errorf("environment %s has source_id %q, want %q", se.GetEnvironment(), se.GetSourceId(), src.GetId())
			}
			h.ingestPath(t, se.GetIngestUrl()) // starts with the public URL
			tokens[se.GetEnvironment()] = ingestToken(t, se.GetIngestUrl())
		}
		if len(tokens) != 2 || tokens["development"] == "" || tokens["production"] == "" {
			t.Fatalf("environments = %v, want development and production", src.GetEnvironments())
		}
		if tokens["development"] == tokens["production"] {
			t.Fatalf("development and production share the ingest token %q", tokens["development"])
		}
		for env := range tokens {
			wantAccepted(t, h.ingest(t, envByName(t, src, env).GetIngestUrl(), segmentTrack))
		}
	})

	t.Run("create errors", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			name      string
			body      string
			wantField string
		}{
			{"unknown type", `{"name":"Web","type":"no-such-plugin"}`, "type"},
			{"missing type", `{"name":"Web"}`, "type"},
			{"empty name", `{"name":"","type":"segment"}`, "name"},
			{"blank name", `{"name":"   ","type":"segment"}`, "name"},
			{"long name", `{"name":"` + strings.Repeat("n", 201) + `","type":"segment"}`, "name"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				r := h.rest(t, http.MethodPost, "/v1/sources", tt.body)
				wantStatus(t, r, http.StatusBadRequest)
				wantViolation(t, restViolations(t, r), tt.wantField)
			})
		}
	})

	t.Run("get list delete over connect", func(t *testing.T) {
		t.Parallel()
		c := h.sources()
		keep := h.createSource(t, "Keep")
		gone := h.createSource(t, "Gone")

		got := mustCall(t, c.GetSource, &harkv1.GetSourceRequest{Id: gone.GetId()}).GetSource()
		if !proto.Equal(got, gone) {
			t.Fatalf("GetSource = %v, want what CreateSource returned: %v", got, gone)
		}

		listed := map[string]*harkv1.Source{}
		for _, s := range mustCall(t, c.ListSources, &harkv1.ListSourcesRequest{PageSize: 1000}).GetSources() {
			listed[s.GetId()] = s
		}
		for _, want := range []*harkv1.Source{keep, gone} {
			if !proto.Equal(listed[want.GetId()], want) {
				t.Fatalf("ListSources has %v for %s, want %v", listed[want.GetId()], want.GetId(), want)
			}
		}

		mustCall(t, c.DeleteSource, &harkv1.DeleteSourceRequest{Id: gone.GetId()})

		_, err := call(t, c.GetSource, &harkv1.GetSourceRequest{Id: gone.GetId()})
		wantCode(t, err, connect.CodeNotFound)
		_, err = call(t, c.GetSourceEnvironment, &harkv1.GetSourceEnvironmentRequest{SourceId: gone.GetId(), Environment: "development"})
		wantCode(t, err, connect.CodeNotFound)
		_, err = call(t, c.DeleteSource, &harkv1.DeleteSourceRequest{Id: gone.GetId()})
		wantCode(t, err, connect.CodeNotFound)
		for _, se := range gone.GetEnvironments() {
			wantStatus(t, h.ingest(t, se.GetIngestUrl(), segmentTrack), http.StatusNotFound)
		}
		for _, s := range mustCall(t, c.ListSources, &harkv1.ListSourcesRequest{PageSize: 1000}).GetSources() {
			if s.GetId() == gone.GetId() {
				t.Fatalf("ListSources still lists deleted source %s", gone.GetId())
			}
		}

		// The other source is untouched.
		if got := mustCall(t, c.GetSource, &harkv1.GetSourceRequest{Id: keep.GetId()}).GetSource(); !proto.Equal(got, keep) {
			t.Fatalf("GetSource(kept) = %v, want %v", got, keep)
		}
		for _, se := range keep.GetEnvironments() {
			wantAccepted(t, h.ingest(t, se.GetIngestUrl(), segmentTrack))
		}
	})

	t.Run("get unknown", func(t *testing.T) {
		t.Parallel()
		_, err := call(t, h.sources().GetSource, &harkv1.GetSourceRequest{Id: "src_nope"})
		wantCode(t, err, connect.CodeNotFound)
		wantStatus(t, h.rest(t, http.MethodGet, "/v1/sources/src_nope", ""), http.StatusNotFound)
		wantStatus(t, h.rest(t, http.MethodDelete, "/v1/sources/src_nope", ""), http.StatusNotFound)
	})

	t.Run("delete over rest", func(t *testing.T) {
		t.Parallel()
		src := h.createSource(t, "Rest delete")
		wantStatus(t, h.rest(t, http.MethodGet, "/v1/sources/"+src.GetId(), ""), http.StatusOK)
		wantStatus(t, h.rest(t, http.MethodDelete, "/v1/sources/"+src.GetId(), ""), http.StatusOK)
		wantStatus(t, h.rest(t, http.MethodGet, "/v1/sources/"+src.GetId(), ""), http.StatusNotFound)
	})

	t.Run("known ingest token over connect", func(t *testing.T) {
		t.Parallel()
		src := h.createSource(t, "Connect ingest")
		token := ingestToken(t, envByName(t, src, "development").GetIngestUrl())
		c := harkv1connect.NewIngestServiceClient(h.http, h.base) // no admin token
		res, err := call(t, c.Receive, &harkv1.ReceiveRequest{Token: token, Body: &httpbody.HttpBody{ContentType: "application/json", Data: segmentTrack}})
		if err != nil {
			t.Fatalf("Receive over Connect: %v", err)
		}
		wantStored(t, res)
	})
}

// ---------------------------------------------------------------------------
// 4. A hand-written Connect call, as curl makes it.
// ---------------------------------------------------------------------------

func TestPlainConnectJSON(t *testing.T) {
	t.Parallel()
	h := startServer(t)
	src := h.createSource(t, "Curl")

	tests := []struct {
		name   string
		header []string // extra request headers, name then value
	}{
		{"no Connect-Protocol-Version", nil},
		{"with Connect-Protocol-Version", []string{"Connect-Protocol-Version", "1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// curl -X POST $BASE/hark.v1.SourceService/ListSources \
			//   -H 'Content-Type: application/json' -H "Authorization: Bearer $T" -d '{}'
			r := h.send(t, h.admin(), http.MethodPost, "/hark.v1.SourceService/ListSources", "application/json", strings.NewReader(`{}`), tt.header...)
			wantStatus(t, r, http.StatusOK)
			if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Fatalf("Content-Type = %q, want application/json", ct)
			}
			list := decode(t, r, &harkv1.ListSourcesResponse{})
			if len(list.GetSources()) != 1 || list.GetSources()[0].GetId() != src.GetId() {
				t.Fatalf("ListSources = %v, want the one source %s", list.GetSources(), src.GetId())
			}
		})
	}
}

// ---------------------------------------------------------------------------
// 5. Source environment settings.
// ---------------------------------------------------------------------------

func TestSourceEnvironmentSettings(t *testing.T) {
	t.Parallel()
	h := startServer(t)
	src := h.createSource(t, "Settings")
	path := "/v1/sources/" + src.GetId() + "/environments/development"
	const secret = "s3cret"

	// Every response body goes here; none may contain the secret.
	var bodies []httpResult
	do := func(t *testing.T, method, path, body string, want int) httpResult {
		t.Helper()
		r := h.rest(t, method, path, body)
		bodies = append(bodies, r)
		wantStatus(t, r, want)
		return r
	}
	get := func(t *testing.T) (*harkv1.SourceEnvironment, map[string]any) {
		t.Helper()
		r := do(t, http.MethodGet, path, "", http.StatusOK)
		return decode(t, r, &harkv1.SourceEnvironment{}), decodeMap(t, r)
	}
	// deliver posts segmentTrack to the development webhook, with an
	// X-Signature when sig is not empty.
	deliver := func(t *testing.T, sig string) httpResult {
		t.Helper()
		var header []string
		if sig != "" {
			header = []string{"X-Signature", sig}
		}
		ingestPath := h.ingestPath(t, envByName(t, src, "development").GetIngestUrl())
		r := h.send(t, "", http.MethodPost, ingestPath, "application/json", bytes.NewReader(segmentTrack), header...)
		bodies = append(bodies, r)
		return r
	}
	patch := func(t *testing.T, body string) (*harkv1.SourceEnvironment, map[string]any) {
		t.Helper()
		r := do(t, http.MethodPatch, path, body, http.StatusOK)
		return decode(t, r, &harkv1.SourceEnvironment{}), decodeMap(t, r)
	}

	initial, raw := get(t)
	if raw["idempotencyWindow"] != "86400s" {
		t.Fatalf("idempotencyWindow = %v, want \"86400s\"; body %v", raw["idempotencyWindow"], raw)
	}
	if initial.GetIdentifyEnabled() || initial.GetIdempotencyEnabled() {
		t.Fatalf("identify/idempotency enabled by default: %v", initial)
	}
	if initial.GetIngestUrl() != envByName(t, src, "development").GetIngestUrl() {
		t.Fatalf("ingestUrl = %q, want %q", initial.GetIngestUrl(), envByName(t, src, "development").GetIngestUrl())
	}

	t.Run("patch identifyEnabled only", func(t *testing.T) {
		se, _ := patch(t, `{"identifyEnabled":true}`)
		want := proto.CloneOf(initial)
		want.IdentifyEnabled = true
		want.UpdatedAt = se.GetUpdatedAt()
		if !proto.Equal(se, want) {
			t.Fatalf("after PATCH identifyEnabled:\n got %v\nwant %v", se, want)
		}
		if got, _ := get(t); !proto.Equal(got, se) {
			t.Fatalf("GET after PATCH = %v, want %v", got, se)
		}
	})

	t.Run("idempotency window", func(t *testing.T) {
		tests := []struct {
			name       string
			window     string
			wantStatus int
			wantRaw    string // idempotencyWindow on the wire afterwards
		}{
			{"too short", "30s", http.StatusBadRequest, "86400s"},
			{"too long", "2592001s", http.StatusBadRequest, "86400s"},
			{"one hour", "3600s", http.StatusOK, "3600s"},
			{"minimum", "60s", http.StatusOK, "60s"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := do(t, http.MethodPatch, path, `{"idempotencyWindow":"`+tt.window+`"}`, tt.wantStatus)
				if tt.wantStatus == http.StatusBadRequest {
					wantViolation(t, restViolations(t, r), "idempotencyWindow")
				}
				se, raw := get(t)
				if raw["idempotencyWindow"] != tt.wantRaw {
					t.Fatalf("idempotencyWindow = %v, want %q", raw["idempotencyWindow"], tt.wantRaw)
				}
				if !se.GetIdentifyEnabled() {
					t.Fatalf("identifyEnabled reset by a window PATCH")
				}
			})
		}
	})

	t.Run("secret setting", func(t *testing.T) {
		se, _ := patch(t, `{"pluginSettings":{"shared_secret":"`+secret+`"}}`)
		if got := se.GetPluginSettings()["shared_secret"]; got != "********" {
			t.Fatalf("PATCH response shared_secret = %q, want ********", got)
		}
		if got, _ := get(t); got.GetPluginSettings()["shared_secret"] != "********" {
			t.Fatalf("GET shared_secret = %q, want ********", got.GetPluginSettings()["shared_secret"])
		}
		if !se.GetIdentifyEnabled() {
			t.Fatalf("identifyEnabled reset by a pluginSettings PATCH")
		}
		// Other reads that carry the settings.
		do(t, http.MethodGet, "/v1/sources/"+src.GetId(), "", http.StatusOK)
		do(t, http.MethodGet, "/v1/sources", "", http.StatusOK)
		cse := mustCall(t, h.sources().GetSourceEnvironment, &harkv1.GetSourceEnvironmentRequest{SourceId: src.GetId(), Environment: "development"}).GetSourceEnvironment()
		if got := cse.GetPluginSettings()["shared_secret"]; got != "********" {
			t.Fatalf("Connect GetSourceEnvironment shared_secret = %q, want ********", got)
		}

		// The secret is in force: deliveries must be signed with it (DESIGN
		// §5: a missing or wrong X-Signature is 401).
		signed := []struct {
			name string
			sig  string
			want int
		}{
			{"unsigned", "", http.StatusUnauthorized},
			{"signed with another secret", sign("other", segmentTrack), http.StatusUnauthorized},
			{"signed with the mask", sign("********", segmentTrack), http.StatusUnauthorized},
			{"signed with the secret", sign(secret, segmentTrack), http.StatusOK},
		}
		checkSigning := func(t *testing.T, when string) {
			t.Helper()
			for _, c := range signed {
				r := deliver(t, c.sig)
				if r.status != c.want {
					t.Fatalf("%s, delivery %s: HTTP %d, want %d; body %s", when, c.name, r.status, c.want, r.body)
				}
			}
		}
		checkSigning(t, "secret set")

		// Writing the mask back keeps the secret: "s3cret" still signs, the
		// mask itself does not.
		se, _ = patch(t, `{"pluginSettings":{"shared_secret":"********"}}`)
		if got, ok := se.GetPluginSettings()["shared_secret"]; !ok || got != "********" {
			t.Fatalf("after writing the mask back shared_secret = %q (present %v), want ********", got, ok)
		}
		checkSigning(t, "mask written back")
		// Leaving the key out keeps it too.
		se, _ = patch(t, `{"pluginSettings":{}}`)
		if _, ok := se.GetPluginSettings()["shared_secret"]; !ok {
			t.Fatalf("an empty pluginSettings PATCH removed shared_secret: %v", se.GetPluginSettings())
		}
		checkSigning(t, "settings left out")
		// An empty value removes it, and unsigned deliveries are accepted.
		se, _ = patch(t, `{"pluginSettings":{"shared_secret":""}}`)
		if _, ok := se.GetPluginSettings()["shared_secret"]; ok {
			t.Fatalf("shared_secret still set after PATCH with \"\": %v", se.GetPluginSettings())
		}
		if got, _ := get(t); len(got.GetPluginSettings()) != 0 {
			t.Fatalf("GET pluginSettings = %v, want empty", got.GetPluginSettings())
		}
		if r := deliver(t, ""); r.status != http.StatusOK {
			t.Fatalf("unsigned delivery after removing the secret: HTTP %d, want 200; body %s", r.status, r.body)
		}
	})

	t.Run("unknown setting", func(t *testing.T) {
		r := do(t, http.MethodPatch, path, `{"pluginSettings":{"no_such_setting":"x"}}`, http.StatusBadRequest)
		wantViolation(t, restViolations(t, r), "pluginSettings.no_such_setting")
	})

	t.Run("unknown source or environment", func(t *testing.T) {
		do(t, http.MethodGet, "/v1/sources/src_nope/environments/development", "", http.StatusNotFound)
		do(t, http.MethodGet, "/v1/sources/"+src.GetId()+"/environments/nope", "", http.StatusNotFound)
		do(t, http.MethodPatch, "/v1/sources/src_nope/environments/development", `{"identifyEnabled":true}`, http.StatusNotFound)
		do(t, http.MethodPost, "/v1/sources/src_nope/environments/development:rotateToken", `{}`, http.StatusNotFound)
	})

	t.Run("rotate token", func(t *testing.T) {
		before, _ := get(t)
		r := do(t, http.MethodPost, path+":rotateToken", `{}`, http.StatusOK)
		rotated := decode(t, r, &harkv1.SourceEnvironment{}) // response_body: source_environment
		if rotated.GetIngestUrl() == "" || rotated.GetIngestUrl() == before.GetIngestUrl() {
			t.Fatalf("ingestUrl after rotation = %q, before %q: want a new URL", rotated.GetIngestUrl(), before.GetIngestUrl())
		}
		ingestToken(t, rotated.GetIngestUrl())
		wantStatus(t, h.ingest(t, before.GetIngestUrl(), segmentTrack), http.StatusNotFound)
		wantAccepted(t, h.ingest(t, rotated.GetIngestUrl(), segmentTrack))

		after, _ := get(t)
		if after.GetIngestUrl() != rotated.GetIngestUrl() {
			t.Fatalf("GET ingestUrl = %q, want the rotated %q", after.GetIngestUrl(), rotated.GetIngestUrl())
		}
		if !after.GetIdentifyEnabled() {
			t.Fatalf("rotation reset identifyEnabled")
		}
		// The other environment keeps its URL.
		prod := mustCall(t, h.sources().GetSourceEnvironment, &harkv1.GetSourceEnvironmentRequest{SourceId: src.GetId(), Environment: "production"}).GetSourceEnvironment()
		if want := envByName(t, src, "production").GetIngestUrl(); prod.GetIngestUrl() != want {
			t.Fatalf("production ingestUrl = %q, want unchanged %q", prod.GetIngestUrl(), want)
		}
		wantAccepted(t, h.ingest(t, prod.GetIngestUrl(), segmentTrack))
	})

	if len(bodies) == 0 {
		t.Fatal("no responses recorded")
	}
	for _, r := range bodies {
		if bytes.Contains(r.body, []byte(secret)) {
			t.Errorf("a response body contains the secret: %s", r.body)
		}
	}
}

// ---------------------------------------------------------------------------
// 6. Workflows.
// ---------------------------------------------------------------------------

func TestWorkflows(t *testing.T) {
	t.Parallel()
	h := startServer(t)

	t.Run("crud", func(t *testing.T) {
		t.Parallel()
		c := h.workflows()
		r := h.rest(t, http.MethodPost, "/v1/workflows", `{"key":"welcome","name":"Welcome","description":"Says hello"}`)
		wantStatus(t, r, http.StatusOK)
		if raw := decodeMap(t, r); raw["active"] != true {
			t.Fatalf("created workflow active = %v, want true; body %s", raw["active"], r.body)
		}
		created := decode(t, r, &harkv1.Workflow{})
		if created.GetKey() != "welcome" || created.GetName() != "Welcome" || created.GetDescription() != "Says hello" || created.GetCreatedAt() == nil {
			t.Fatalf("created workflow = %v", created)
		}

		if got := mustCall(t, c.GetWorkflow, &harkv1.GetWorkflowRequest{Key: "welcome"}).GetWorkflow(); !proto.Equal(got, created) {
			t.Fatalf("Connect GetWorkflow = %v, want %v", got, created)
		}
		r = h.rest(t, http.MethodGet, "/v1/workflows/welcome", "")
		wantStatus(t, r, http.StatusOK)
		if got := decode(t, r, &harkv1.Workflow{}); !proto.Equal(got, created) {
			t.Fatalf("REST GET = %v, want %v", got, created)
		}
		listedConnect := mustCall(t, c.ListWorkflows, &harkv1.ListWorkflowsRequest{PageSize: 1000}).GetWorkflows()
		r = h.rest(t, http.MethodGet, "/v1/workflows?pageSize=1000", "")
		wantStatus(t, r, http.StatusOK)
		listedREST := decode(t, r, &harkv1.ListWorkflowsResponse{}).GetWorkflows()
		for name, list := range map[string][]*harkv1.Workflow{"connect": listedConnect, "rest": listedREST} {
			if !slices.ContainsFunc(list, func(w *harkv1.Workflow) bool { return proto.Equal(w, created) }) {
				t.Fatalf("%s ListWorkflows = %v, want it to hold %v", name, list, created)
			}
		}

		// PATCH changes only what it gives.
		r = h.rest(t, http.MethodPatch, "/v1/workflows/welcome", `{"active":false}`)
		wantStatus(t, r, http.StatusOK)
		updated := decode(t, r, &harkv1.Workflow{})
		want := proto.CloneOf(created)
		want.Active = false
		want.UpdatedAt = updated.GetUpdatedAt()
		if !proto.Equal(updated, want) {
			t.Fatalf("after PATCH active=false:\n got %v\nwant %v", updated, want)
		}
		if updated.GetUpdatedAt().AsTime().Before(created.GetUpdatedAt().AsTime()) {
			t.Fatalf("updated_at went back: %v < %v", updated.GetUpdatedAt().AsTime(), created.GetUpdatedAt().AsTime())
		}
		renamed := mustCall(t, c.UpdateWorkflow, &harkv1.UpdateWorkflowRequest{Key: "welcome", Name: proto.String("Hello")}).GetWorkflow()
		if renamed.GetName() != "Hello" || renamed.GetActive() || renamed.GetDescription() != "Says hello" {
			t.Fatalf("after Connect rename = %v, want name Hello, still inactive, description kept", renamed)
		}
		if got := mustCall(t, c.GetWorkflow, &harkv1.GetWorkflowRequest{Key: "welcome"}).GetWorkflow(); !proto.Equal(got, renamed) {
			t.Fatalf("GetWorkflow after updates = %v, want %v", got, renamed)
		}

		// Delete over REST, then over Connect.
		wantStatus(t, h.rest(t, http.MethodDelete, "/v1/workflows/welcome", ""), http.StatusOK)
		wantStatus(t, h.rest(t, http.MethodGet, "/v1/workflows/welcome", ""), http.StatusNotFound)
		_, err := call(t, c.GetWorkflow, &harkv1.GetWorkflowRequest{Key: "welcome"})
		wantCode(t, err, connect.CodeNotFound)

		mustCall(t, c.CreateWorkflow, &harkv1.CreateWorkflowRequest{Key: "bye"})
		mustCall(t, c.DeleteWorkflow, &harkv1.DeleteWorkflowRequest{Key: "bye"})
		_, err = call(t, c.DeleteWorkflow, &harkv1.DeleteWorkflowRequest{Key: "bye"})
		wantCode(t, err, connect.CodeNotFound)
	})

	t.Run("create defaults", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			name       string
			body       string
			wantName   string
			wantActive bool
		}{
			{"name defaults to key", `{"key":"defaults-name"}`, "defaults-name", true},
			{"inactive on request", `{"key":"starts-inactive","active":false}`, "starts-inactive", false},
			{"active on request", `{"key":"starts-active","name":"A","active":true}`, "A", true},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				r := h.rest(t, http.MethodPost, "/v1/workflows", tt.body)
				wantStatus(t, r, http.StatusOK)
				wf := decode(t, r, &harkv1.Workflow{})
				if wf.GetName() != tt.wantName || wf.GetActive() != tt.wantActive {
					t.Fatalf("workflow = %v, want name %q active %v", wf, tt.wantName, tt.wantActive)
				}
			})
		}
	})

	t.Run("errors", func(t *testing.T) {
		t.Parallel()
		mustCall(t, h.workflows().CreateWorkflow, &harkv1.CreateWorkflowRequest{Key: "taken"})
		c := h.workflows()
		tests := []struct {
			name       string
			method     string
			path, body string
			connect    func(t *testing.T) error
			wantStatus int
			wantCode   connect.Code
			wantField  string
		}{
			{
				name: "duplicate key", method: http.MethodPost, path: "/v1/workflows", body: `{"key":"taken"}`,
				connect: func(t *testing.T) error {
					_, err := call(t, c.CreateWorkflow, &harkv1.CreateWorkflowRequest{Key: "taken"})
					return err
				},
				wantStatus: http.StatusConflict, wantCode: connect.CodeAlreadyExists,
			},
			{
				name: "invalid key", method: http.MethodPost, path: "/v1/workflows", body: `{"key":"Bad Key"}`,
				connect: func(t *testing.T) error {
					_, err := call(t, c.CreateWorkflow, &harkv1.CreateWorkflowRequest{Key: "Bad Key"})
					return err
				},
				wantStatus: http.StatusBadRequest, wantCode: connect.CodeInvalidArgument, wantField: "key",
			},
			{
				name: "empty key", method: http.MethodPost, path: "/v1/workflows", body: `{"name":"No key"}`,
				connect: func(t *testing.T) error {
					_, err := call(t, c.CreateWorkflow, &harkv1.CreateWorkflowRequest{Name: "No key"})
					return err
				},
				wantStatus: http.StatusBadRequest, wantCode: connect.CodeInvalidArgument, wantField: "key",
			},
			{
				name: "get unknown", method: http.MethodGet, path: "/v1/workflows/unknown",
				connect: func(t *testing.T) error {
					_, err := call(t, c.GetWorkflow, &harkv1.GetWorkflowRequest{Key: "unknown"})
					return err
				},
				wantStatus: http.StatusNotFound, wantCode: connect.CodeNotFound,
			},
			{
				name: "update unknown", method: http.MethodPatch, path: "/v1/workflows/unknown", body: `{"active":false}`,
				connect: func(t *testing.T) error {
					_, err := call(t, c.UpdateWorkflow, &harkv1.UpdateWorkflowRequest{Key: "unknown", Active: proto.Bool(false)})
					return err
				},
				wantStatus: http.StatusNotFound, wantCode: connect.CodeNotFound,
			},
			{
				name: "delete unknown", method: http.MethodDelete, path: "/v1/workflows/unknown",
				connect: func(t *testing.T) error {
					_, err := call(t, c.DeleteWorkflow, &harkv1.DeleteWorkflowRequest{Key: "unknown"})
					return err
				},
				wantStatus: http.StatusNotFound, wantCode: connect.CodeNotFound,
			},
		}
		for _, tt := range tests {
			t.Run(tt.name+"/rest", func(t *testing.T) {
				t.Parallel()
				r := h.rest(t, tt.method, tt.path, tt.body)
				wantStatus(t, r, tt.wantStatus)
				if tt.wantField != "" {
					wantViolation(t, restViolations(t, r), tt.wantField)
				}
			})
			t.Run(tt.name+"/connect", func(t *testing.T) {
				t.Parallel()
				err := tt.connect(t)
				wantCode(t, err, tt.wantCode)
				if tt.wantField != "" {
					wantViolation(t, connectViolations(t, err), tt.wantField)
				}
			})
		}
	})
}

func TestWorkflowPaging(t *testing.T) {
	t.Parallel()
	h := startServer(t)
	c := h.workflows()
	// Created out of order: lists are ordered by key, not creation.
	for _, key := range []string{"wf-c", "wf-a", "wf-e", "wf-b", "wf-d"} {
		mustCall(t, c.CreateWorkflow, &harkv1.CreateWorkflowRequest{Key: key})
	}

	type pageFunc func(t *testing.T, size int32, token string) (*harkv1.ListWorkflowsResponse, error)
	pagers := []struct {
		name string
		page pageFunc
	}{
		{"connect", func(t *testing.T, size int32, token string) (*harkv1.ListWorkflowsResponse, error) {
			return call(t, c.ListWorkflows, &harkv1.ListWorkflowsRequest{PageSize: size, PageToken: token})
		}},
		{"rest", func(t *testing.T, size int32, token string) (*harkv1.ListWorkflowsResponse, error) {
			q := "?pageSize=" + strconv.Itoa(int(size))
			if token != "" {
				q += "&pageToken=" + token
			}
			r := h.rest(t, http.MethodGet, "/v1/workflows"+q, "")
			if r.status != http.StatusOK {
				return nil, connect.NewError(connect.CodeUnknown, errors.New(string(r.body)))
			}
			return decode(t, r, &harkv1.ListWorkflowsResponse{}), nil
		}},
	}
	for _, p := range pagers {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			var pages [][]string
			token := ""
			for range 10 { // bounded: 3 pages expected
				res, err := p.page(t, 2, token)
				if err != nil {
					t.Fatalf("page %d: %v", len(pages)+1, err)
				}
				var keys []string
				for _, w := range res.GetWorkflows() {
					keys = append(keys, w.GetKey())
				}
				pages = append(pages, keys)
				token = res.GetNextPageToken()
				if token == "" {
					break
				}
			}
			want := [][]string{{"wf-a", "wf-b"}, {"wf-c", "wf-d"}, {"wf-e"}}
			if !slices.EqualFunc(pages, want, slices.Equal) {
				t.Fatalf("pages = %q, want %q", pages, want)
			}
		})
	}

	t.Run("exact page has no next token", func(t *testing.T) {
		t.Parallel()
		res := mustCall(t, c.ListWorkflows, &harkv1.ListWorkflowsRequest{PageSize: 5})
		if len(res.GetWorkflows()) != 5 || res.GetNextPageToken() != "" {
			t.Fatalf("pageSize 5 of 5 = %d workflows, next %q; want 5 and no next token", len(res.GetWorkflows()), res.GetNextPageToken())
		}
	})

	t.Run("bad requests", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			name      string
			req       *harkv1.ListWorkflowsRequest
			query     string
			wantField string
		}{
			{"bad page token", &harkv1.ListWorkflowsRequest{PageToken: "!!not-a-token"}, "?pageToken=%21%21not-a-token", "pageToken"},
			{"negative page size", &harkv1.ListWorkflowsRequest{PageSize: -1}, "?pageSize=-1", "pageSize"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				_, err := call(t, c.ListWorkflows, tt.req)
				wantCode(t, err, connect.CodeInvalidArgument)
				wantViolation(t, connectViolations(t, err), tt.wantField)

				r := h.rest(t, http.MethodGet, "/v1/workflows"+tt.query, "")
				wantStatus(t, r, http.StatusBadRequest)
				wantViolation(t, restViolations(t, r), tt.wantField)
			})
		}
	})
}

// ---------------------------------------------------------------------------
// 7. Persistence across restarts.
// ---------------------------------------------------------------------------

func TestPersistence(t *testing.T) {
	t.Parallel()
	h := startServer(t)
	src := h.createSource(t, "Durable")
	mustCall(t, h.sources().UpdateSourceEnvironment, &harkv1.UpdateSourceEnvironmentRequest{
		SourceId: src.GetId(), Environment: "production", IdentifyEnabled: proto.Bool(true),
	})
	src = mustCall(t, h.sources().GetSource, &harkv1.GetSourceRequest{Id: src.GetId()}).GetSource()
	wf := mustCall(t, h.workflows().CreateWorkflow, &harkv1.CreateWorkflowRequest{Key: "durable", Name: "Durable"}).GetWorkflow()
	oldBase := h.base

	h.restart(t)
	if h.base == oldBase {
		t.Fatalf("restart reused the listener %s; the test needs a new one", h.base)
	}

	got := mustCall(t, h.sources().GetSource, &harkv1.GetSourceRequest{Id: src.GetId()}).GetSource()
	if !proto.Equal(got, src) {
		t.Fatalf("after restart GetSource =\n%v\nwant\n%v", got, src)
	}
	if !envByName(t, got, "production").GetIdentifyEnabled() {
		t.Fatalf("identifyEnabled lost across the restart")
	}
	for _, se := range got.GetEnvironments() {
		wantAccepted(t, h.ingest(t, se.GetIngestUrl(), segmentTrack))
	}
	if gotWF := mustCall(t, h.workflows().GetWorkflow, &harkv1.GetWorkflowRequest{Key: "durable"}).GetWorkflow(); !proto.Equal(gotWF, wf) {
		t.Fatalf("after restart GetWorkflow = %v, want %v", gotWF, wf)
	}
	// Default environments are not duplicated or recreated by a restart.
	envs := mustCall(t, h.environments().ListEnvironments, &harkv1.ListEnvironmentsRequest{}).GetEnvironments()
	if got, want := slugs(envs), []string{"development", "production"}; !slices.Equal(got, want) {
		t.Fatalf("environments after restart = %q, want %q", got, want)
	}
}

// ---------------------------------------------------------------------------
// 8. Data dir lock.
// ---------------------------------------------------------------------------

func TestDataDirLock(t *testing.T) {
	t.Parallel()
	h := startServer(t)

	second, err := server.New(ctxFor(t), h.config())
	if err == nil {
		second.Close()
		t.Fatal("a second server.New on an open data dir succeeded")
	}
	if !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second server.New error = %q, want it to say the data dir is in use", err)
	}

	// The failed attempt did not disturb the first server…
	mustCall(t, h.environments().ListEnvironments, &harkv1.ListEnvironmentsRequest{})
	// …and once it is closed the data dir opens again.
	h.restart(t)
	mustCall(t, h.environments().ListEnvironments, &harkv1.ListEnvironmentsRequest{})
}

func TestNewGeneratesAdminToken(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	open := func() (string, bool) {
		srv, err := server.New(ctxFor(t), server.Config{DataDir: dir, PublicURL: "http://127.0.0.1:1"})
		if err != nil {
			t.Fatalf("server.New without an admin token: %v", err)
		}
		defer srv.Close()
		return srv.AdminToken()
	}
	first, generated := open()
	if first == "" || !generated {
		t.Fatalf("first start: token %q generated %v, want a new token", first, generated)
	}
	again, generated := open()
	if again != first || generated {
		t.Fatalf("second start: token %q generated %v, want the saved %q", again, generated, first)
	}
}

// ---------------------------------------------------------------------------
// 9. Reflection.
// ---------------------------------------------------------------------------

func TestReflection(t *testing.T) {
	t.Parallel()
	h := startServer(t)
	hc := h2cClient(t)

	t.Run("with token", func(t *testing.T) {
		t.Parallel()
		client := grpcreflect.NewClient(hc, h.base, connect.WithInterceptors(h.admin()))
		stream := client.NewStream(ctxFor(t))
		defer stream.Close()
		names, err := stream.ListServices()
		if err != nil {
			t.Fatalf("ListServices: %v", err)
		}
		for _, want := range []protoreflect.FullName{
			harkv1connect.EnvironmentServiceName,
			harkv1connect.SourceServiceName,
			harkv1connect.EventServiceName,
			harkv1connect.WorkflowServiceName,
			harkv1connect.TriggerServiceName,
			harkv1connect.UserServiceName,
			harkv1connect.WorkflowRunServiceName,
			harkv1connect.IngestServiceName,
		} {
			if !slices.Contains(names, want) {
				t.Errorf("ListServices = %v, missing %s", names, want)
			}
		}
		files, err := stream.FileContainingSymbol(harkv1connect.SourceServiceName)
		if err != nil {
			t.Fatalf("FileContainingSymbol: %v", err)
		}
		if !slices.ContainsFunc(files, func(f *descriptorpb.FileDescriptorProto) bool { return f.GetName() == "hark/v1/source.proto" }) {
			t.Errorf("FileContainingSymbol(%s) did not return hark/v1/source.proto", harkv1connect.SourceServiceName)
		}
	})

	t.Run("without token", func(t *testing.T) {
		t.Parallel()
		for _, auth := range []authHeader{"", "Bearer wrong"} {
			client := grpcreflect.NewClient(hc, h.base, connect.WithInterceptors(auth))
			stream := client.NewStream(ctxFor(t))
			names, err := stream.ListServices()
			stream.Close()
			if err == nil {
				t.Fatalf("ListServices with %q succeeded: %v", auth, names)
			}
			if code := connect.CodeOf(err); code != connect.CodeUnauthenticated {
				t.Fatalf("ListServices with %q: code %v (%v), want unauthenticated", auth, code, err)
			}
		}
	})
}

// ---------------------------------------------------------------------------
// 10. Source types and RPCs that are not built yet.
// ---------------------------------------------------------------------------

func TestSourceTypes(t *testing.T) {
	t.Parallel()
	h := startServer(t)
	tests := []struct {
		name string
		list func(t *testing.T) []*harkv1.SourceType
	}{
		{"connect", func(t *testing.T) []*harkv1.SourceType {
			return mustCall(t, h.sources().ListSourceTypes, &harkv1.ListSourceTypesRequest{}).GetSourceTypes()
		}},
		{"grpc", func(t *testing.T) []*harkv1.SourceType {
			res, err := harkv1.NewSourceServiceClient(h.grpcConn(t)).ListSourceTypes(grpcCtx(t, h.admin()), &harkv1.ListSourceTypesRequest{})
			if err != nil {
				t.Fatalf("gRPC ListSourceTypes: %v", err)
			}
			return res.GetSourceTypes()
		}},
		{"rest", func(t *testing.T) []*harkv1.SourceType {
			r := h.rest(t, http.MethodGet, "/v1/source-types", "")
			wantStatus(t, r, http.StatusOK)
			return decode(t, r, &harkv1.ListSourceTypesResponse{}).GetSourceTypes()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			types := tt.list(t)
			i := slices.IndexFunc(types, func(st *harkv1.SourceType) bool { return st.GetType() == "segment" })
			if i < 0 {
				t.Fatalf("source types = %v, want segment among them", types)
			}
			st := types[i]
			if st.GetOrigin() != harkv1.SourceTypeOrigin_SOURCE_TYPE_ORIGIN_BUILT_IN ||
				st.GetHealth() != harkv1.SourceTypeHealth_SOURCE_TYPE_HEALTH_SERVING ||
				st.GetIdempotencyKey() != "messageId" {
				t.Fatalf("segment = %v, want built in, serving, idempotency key messageId", st)
			}
			secret := slices.ContainsFunc(st.GetSettings(), func(s *harkv1.SourceTypeSetting) bool {
				return s.GetKey() == "shared_secret" && s.GetSecret()
			})
			if !secret {
				t.Fatalf("segment settings = %v, want a secret shared_secret", st.GetSettings())
			}
		})
	}
}

func TestIngestBodyLimit(t *testing.T) {
	t.Parallel()
	h := startServer(t)
	src := h.createSource(t, "Big")
	ingestURL := envByName(t, src, "development").GetIngestUrl()
	restPath := h.ingestPath(t, ingestURL)
	connectPath := harkv1connect.IngestServiceReceiveProcedure
	big := bytes.Repeat([]byte("a"), 5<<20)
	// A small gzip body that inflates past the limit: the limit is on what
	// the server must hold, so it applies after decompression too.
	var bomb bytes.Buffer
	zw := gzip.NewWriter(&bomb)
	if _, err := zw.Write(big); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}

	// A valid Segment batch under the 4 MiB limit (about 3.4 MiB: 4,000
	// events, the most one request may carry, of about 870 bytes each).
	var batch bytes.Buffer
	batch.WriteString(`{"batch":[`)
	pad := strings.Repeat("x", 800)
	const batchEvents = 4000
	for i := range batchEvents {
		if i > 0 {
			batch.WriteByte(',')
		}
		fmt.Fprintf(&batch, `{"type":"track","event":"Big","userId":"u1","messageId":"m%d","properties":{"pad":%q}}`, i, pad)
	}
	batch.WriteString(`]}`)
	if batch.Len() >= server.DefaultMaxBodyBytes || batch.Len() < 3<<20 {
		t.Fatalf("batch is %d bytes; the case needs one between 3 MiB and the limit", batch.Len())
	}

	// The limit answers in the caller's error shape: google.rpc.Status JSON
	// (numeric code 3) on REST routes, a Connect error on Connect paths.
	const restCode, connectCode = float64(3), "invalid_argument"
	tests := []struct {
		name     string
		path     string
		body     func() io.Reader
		header   []string // extra request headers, name then value
		want     int
		wantCode any // the "code" of the error body, for 400s
		// wantEvents is the number of events a 200 must report stored.
		wantEvents int
	}{
		{"rest known token", restPath, func() io.Reader { return bytes.NewReader(big) }, nil, http.StatusBadRequest, restCode, 0},
		{"rest known token chunked", restPath, func() io.Reader { return onlyReader{bytes.NewReader(big)} }, nil, http.StatusBadRequest, restCode, 0},
		// The token is looked up before the body is read.
		{"rest unknown token", "/integrations/receive/" + rand.Text(), func() io.Reader { return bytes.NewReader(big) }, nil, http.StatusNotFound, float64(connect.CodeNotFound), 0},
		{"connect path", connectPath, func() io.Reader { return bytes.NewReader(big) }, nil, http.StatusBadRequest, connectCode, 0},
		{"connect path chunked", connectPath, func() io.Reader { return onlyReader{bytes.NewReader(big)} }, nil, http.StatusBadRequest, connectCode, 0},
		{"rest small body reaches the handler", restPath, func() io.Reader { return bytes.NewReader(segmentTrack) }, nil, http.StatusOK, nil, 1},
		{"rest batch under the limit is accepted", restPath, func() io.Reader { return bytes.NewReader(batch.Bytes()) }, nil, http.StatusOK, nil, batchEvents},
		{"rest gzip inflating past the limit", restPath, func() io.Reader { return bytes.NewReader(bomb.Bytes()) }, []string{"Content-Encoding", "gzip"}, http.StatusBadRequest, restCode, 0},
		{"connect path gzip inflating past the limit", connectPath, func() io.Reader { return bytes.NewReader(bomb.Bytes()) }, []string{"Content-Encoding", "gzip"}, http.StatusBadRequest, connectCode, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := h.send(t, "", http.MethodPost, tt.path, "application/json", tt.body(), tt.header...)
			wantStatus(t, r, tt.want)
			if tt.wantCode != nil {
				if got := decodeMap(t, r)["code"]; got != tt.wantCode {
					t.Fatalf("error code = %v, want %v; body %s", got, tt.wantCode, r.body)
				}
			}
			if tt.want == http.StatusOK {
				evs := decode(t, r, &harkv1.ReceiveResponse{}).GetEvents()
				stored := 0
				for _, ev := range evs {
					if ev.GetId() != "" && ev.GetStatus() != harkv1.SourceEventStatus_SOURCE_EVENT_STATUS_REJECTED {
						stored++
					}
				}
				if len(evs) != tt.wantEvents || stored != tt.wantEvents {
					t.Fatalf("ReceiveResponse has %d events, %d stored; want %d stored", len(evs), stored, tt.wantEvents)
				}
			}
		})
	}

	t.Run("connect client", func(t *testing.T) {
		t.Parallel()
		c := harkv1connect.NewIngestServiceClient(h.http, h.base, connect.WithSendMaxBytes(0))
		_, err := call(t, c.Receive, &harkv1.ReceiveRequest{
			Token: ingestToken(t, ingestURL),
			Body:  &httpbody.HttpBody{ContentType: "application/json", Data: big},
		})
		wantCode(t, err, connect.CodeInvalidArgument)
	})
}

// onlyReader hides a reader's length, so the request is sent chunked, without
// a Content-Length the server could check up front.
type onlyReader struct{ io.Reader }
