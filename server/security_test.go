package server_test

// Security over the real server (issue 8, "Security"): ingest tokens
// (rotation takes effect at once, unknown tokens are 404 whatever their
// form), secret plugin settings never leave the server (responses and
// logs at every level), the admin token's checks, the modes of the data dir
// and the generated token file, and plugin binaries that others could have
// written are refused.

import (
	"bytes"
	"crypto/rand"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/api/httpbody"

	harkv1 "github.com/harkhq/hark/gen/hark/v1"
	"github.com/harkhq/hark/gen/hark/v1/harkv1connect"
	"github.com/harkhq/hark/server"
)

// secStartServer is startServer with the server's log captured at level
// (startServer keeps warnings and errors only).
func secStartServer(t *testing.T, level slog.Level) *harness {
	t.Helper()
	h := &harness{
		dir:   t.TempDir(),
		token: "test_" + rand.Text(),
		http:  &http.Client{Timeout: testTimeout},
		logs:  &syncBuffer{},
	}
	ln := listen(t)
	h.publicURL = "http://" + ln.Addr().String()
	cfg := h.config()
	cfg.Logger = slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: level}))
	h.serveConfig(t, ln, cfg)
	t.Cleanup(func() { h.stop(t) })
	return h
}

// ---------------------------------------------------------------------------
// Ingest tokens.
// ---------------------------------------------------------------------------

func TestSecurityIngestTokens(t *testing.T) {
	t.Parallel()
	h := startServer(t)

	t.Run("rotation makes the old URL 404 at once", func(t *testing.T) {
		t.Parallel()
		src := h.createSource(t, "rotated")
		prod := envByName(t, src, "production").GetIngestUrl()
		url := devURL(t, src)
		wantAccepted(t, h.ingest(t, url, segmentTrack))
		var old []string
		for range 5 {
			r := h.rest(t, http.MethodPost, "/v1/sources/"+src.GetId()+"/environments/development:rotateToken", `{}`)
			wantStatus(t, r, http.StatusOK)
			rotated := decode(t, r, &harkv1.SourceEnvironment{}).GetIngestUrl()
			old = append(old, url)
			url = rotated
			// The very next request to any previous URL is refused, over
			// REST and Connect; the new one works.
			for _, o := range old {
				wantStatus(t, h.ingest(t, o, segmentTrack), http.StatusNotFound)
				c := harkv1connect.NewIngestServiceClient(h.http, h.base)
				_, err := call(t, c.Receive, &harkv1.ReceiveRequest{Token: ingestToken(t, o), Body: &httpbody.HttpBody{ContentType: "application/json", Data: segmentTrack}})
				wantCode(t, err, connect.CodeNotFound)
			}
			wantAccepted(t, h.ingest(t, url, segmentTrack))
		}
		// The other environment keeps its URL.
		wantAccepted(t, h.ingest(t, prod, segmentTrack))
		// Refused deliveries stored nothing: one event per accepted one.
		if n := len(h.sourceEvents(t, "development", src.GetId())); n != 6 {
			t.Fatalf("the log holds %d events, want the 6 accepted ones", n)
		}
	})

	t.Run("a deleted source's URL is 404", func(t *testing.T) {
		t.Parallel()
		src := h.createSource(t, "deleted")
		url := devURL(t, src)
		wantAccepted(t, h.ingest(t, url, segmentTrack))
		wantStatus(t, h.rest(t, http.MethodDelete, "/v1/sources/"+src.GetId(), ""), http.StatusOK)
		wantStatus(t, h.ingest(t, url, segmentTrack), http.StatusNotFound)
	})

	src := h.createSource(t, "known")
	known := ingestToken(t, devURL(t, src))
	long := func(n int) string { return strings.Repeat("A", n) }
	tests := []struct {
		name string
		// path is the raw request path after /integrations/receive/.
		path string
		want int
	}{
		{"empty", "", http.StatusNotFound},
		{"one character", "x", http.StatusNotFound},
		{"random, the form of a real token", rand.Text() + rand.Text(), http.StatusNotFound},
		{"known token upper-cased", strings.ToUpper(known), http.StatusNotFound},
		{"known token minus its last character", known[:len(known)-1], http.StatusNotFound},
		{"known token plus a character", known + "A", http.StatusNotFound},
		{"known token with a trailing slash", known + "/", http.StatusNotFound},
		{"known token with a path after it", known + "/x", http.StatusNotFound},
		{"slash inside", "abc/def", http.StatusNotFound},
		{"encoded slash", "abc%2Fdef", http.StatusNotFound},
		{"encoded NUL", "abc%00def", http.StatusNotFound},
		{"encoded space after the known token", known + "%20", http.StatusNotFound},
		{"encoded non-ASCII", "%E2%98%83%F0%9F%94%91", http.StatusNotFound},
		{"encoded invalid UTF-8", "%FF%FE", http.StatusNotFound},
		{"punctuation", "!$&'()*+,;=:@", http.StatusNotFound},
		{"1 KiB", long(1 << 10), http.StatusNotFound},
		{"32 KiB", long(32 << 10), http.StatusNotFound},
		// Past the 64 KiB header limit the request line itself is refused.
		{"80 KiB", long(80 << 10), http.StatusRequestHeaderFieldsTooLarge},
	}
	for _, tt := range tests {
		t.Run("unknown token/"+tt.name, func(t *testing.T) {
			t.Parallel()
			r := h.send(t, "", http.MethodPost, "/integrations/receive/"+tt.path, "application/json", bytes.NewReader(segmentTrack))
			wantStatus(t, r, tt.want)
			// URLs end up in logs; the answer does not repeat the token.
			if len(tt.path) >= 8 && bytes.Contains(r.body, []byte(tt.path)) {
				t.Fatalf("the answer repeats the token: %.300s", r.body)
			}
		})
	}
	connectTokens := []struct{ name, token string }{
		{"empty", ""},
		{"with a slash", known + "/x"},
		{"known token upper-cased", strings.ToUpper(known)},
		{"64 KiB", long(64 << 10)},
		{"NUL", known + "\x00"},
		{"non-ASCII", "🔑" + known},
	}
	for _, tt := range connectTokens {
		t.Run("unknown token over connect/"+tt.name, func(t *testing.T) {
			t.Parallel()
			c := harkv1connect.NewIngestServiceClient(h.http, h.base)
			_, err := call(t, c.Receive, &harkv1.ReceiveRequest{Token: tt.token, Body: &httpbody.HttpBody{ContentType: "application/json", Data: segmentTrack}})
			wantCode(t, err, connect.CodeNotFound)
		})
	}
	t.Run("known token still works", func(t *testing.T) {
		t.Parallel()
		wantAccepted(t, h.ingest(t, devURL(t, src), segmentTrack))
	})
}

// ---------------------------------------------------------------------------
// Secret settings.
// ---------------------------------------------------------------------------

// TestSecuritySecretSettings sets a shared secret and then reads everything
// that could carry it — every API response about sources, source
// environments, source types and events, over REST and Connect, the answers
// to unsigned, wrongly signed and signed deliveries — and the server's log
// at debug level, and looks for the secret in the raw bytes.
func TestSecuritySecretSettings(t *testing.T) {
	t.Parallel()
	h := secStartServer(t, slog.LevelDebug)
	secret := "sec_" + rand.Text()
	src := h.createSource(t, "secret")
	srcPath := "/v1/sources/" + src.GetId()
	envPath := srcPath + "/environments/development"
	url := devURL(t, src)

	var bodies [][]byte
	record := func(t *testing.T, r httpResult, want int) httpResult {
		t.Helper()
		bodies = append(bodies, r.body)
		wantStatus(t, r, want)
		return r
	}
	rest := func(t *testing.T, method, path, body string, want int) httpResult {
		t.Helper()
		return record(t, h.rest(t, method, path, body), want)
	}

	// Writes that carry the secret, and what they answer.
	se := decode(t, rest(t, http.MethodPatch, envPath, `{"pluginSettings":{"shared_secret":"`+secret+`"},"identifyEnabled":true}`, http.StatusOK), &harkv1.SourceEnvironment{})
	if got := se.GetPluginSettings()["shared_secret"]; got != "********" {
		t.Fatalf("PATCH answer shared_secret = %q, want the mask", got)
	}
	// A refused write that carries a secret does not echo it either.
	rest(t, http.MethodPatch, envPath, `{"pluginSettings":{"shared_secret":"`+secret+`","no_such_setting":"x"}}`, http.StatusBadRequest)
	rest(t, http.MethodPatch, envPath, `{"pluginSettings":{"shared_secret":"`+secret+strings.Repeat("x", 5000)+`"}}`, http.StatusBadRequest)

	// Deliveries: the answers to bad signatures say neither the secret nor
	// the signature that would have been right.
	body := []byte(`{"type":"identify","userId":"u-secret","traits":{"name":"S"},"messageId":"m-secret"}`)
	good := sign(secret, body)
	deliver := func(t *testing.T, sig string, want int) httpResult {
		t.Helper()
		var header []string
		if sig != "" {
			header = []string{"X-Signature", sig}
		}
		return record(t, h.send(t, "", http.MethodPost, h.ingestPath(t, url), "application/json", bytes.NewReader(body), header...), want)
	}
	for _, sig := range []string{"", "00", sign("wrong", body), good[:len(good)-2], good + "00", "not hex", sign(secret, array0(body))} {
		r := deliver(t, sig, http.StatusUnauthorized)
		if bytes.Contains(r.body, []byte(good)) {
			t.Fatalf("a 401 holds the right signature, an oracle for forging: %s", r.body)
		}
	}
	array := []byte(`[` + string(body) + `]`)
	record(t, h.send(t, "", http.MethodPost, h.ingestPath(t, url), "application/json", bytes.NewReader(array), "X-Signature", sign("wrong", body)), http.StatusUnauthorized)
	ev := deliver(t, good, http.StatusOK)
	evID := decode(t, ev, &harkv1.ReceiveResponse{}).GetEvents()[0].GetId()

	// Every read that touches the source, its settings or its events.
	rest(t, http.MethodGet, srcPath, "", http.StatusOK)
	rest(t, http.MethodGet, "/v1/sources", "", http.StatusOK)
	rest(t, http.MethodGet, "/v1/sources?pageSize=1", "", http.StatusOK)
	rest(t, http.MethodGet, envPath, "", http.StatusOK)
	rest(t, http.MethodGet, srcPath+"/environments/production", "", http.StatusOK)
	rest(t, http.MethodGet, "/v1/source-types", "", http.StatusOK)
	rest(t, http.MethodGet, "/v1/environments/development/events", "", http.StatusOK)
	rest(t, http.MethodGet, "/v1/environments/development/events/"+evID, "", http.StatusOK)
	rest(t, http.MethodGet, "/v1/environments/development/sources/"+src.GetId()+"/event-types", "", http.StatusOK)
	rest(t, http.MethodGet, "/v1/environments/development/users/u-secret", "", http.StatusOK)
	rest(t, http.MethodPatch, envPath, `{"pluginSettings":{"shared_secret":"********"}}`, http.StatusOK)
	rest(t, http.MethodPatch, envPath, `{"identifyEnabled":false}`, http.StatusOK)
	rest(t, http.MethodPost, envPath+":rotateToken", `{}`, http.StatusOK)
	// Connect, in both codecs.
	for _, opts := range [][]connect.ClientOption{nil, {connect.WithProtoJSON()}} {
		c := h.sources(opts...)
		for _, msg := range []any{
			mustCall(t, c.GetSource, &harkv1.GetSourceRequest{Id: src.GetId()}),
			mustCall(t, c.ListSources, &harkv1.ListSourcesRequest{}),
			mustCall(t, c.GetSourceEnvironment, &harkv1.GetSourceEnvironmentRequest{SourceId: src.GetId(), Environment: "development"}),
			mustCall(t, c.UpdateSourceEnvironment, &harkv1.UpdateSourceEnvironmentRequest{SourceId: src.GetId(), Environment: "development", PluginSettings: map[string]string{"shared_secret": "********"}}),
		} {
			bodies = append(bodies, []byte(protoText(msg)))
		}
	}

	if len(bodies) < 20 {
		t.Fatalf("only %d responses recorded", len(bodies))
	}
	for _, b := range bodies {
		if bytes.Contains(b, []byte(secret)) {
			t.Errorf("a response holds the shared secret: %.500s", b)
		}
	}
	// The secret is still in force.
	se = mustCall(t, h.sources().GetSourceEnvironment, &harkv1.GetSourceEnvironmentRequest{SourceId: src.GetId(), Environment: "development"}).GetSourceEnvironment()
	r := h.send(t, "", http.MethodPost, h.ingestPath(t, se.GetIngestUrl()), "application/json", bytes.NewReader(body))
	wantStatus(t, r, http.StatusUnauthorized)

	logs := h.logs.String()
	if !strings.Contains(logs, "level=DEBUG") && !strings.Contains(logs, "level=INFO") {
		t.Fatalf("the captured log has no debug or info records; the check below would prove nothing:\n%s", logs)
	}
	if strings.Contains(logs, secret) {
		for _, line := range strings.Split(logs, "\n") {
			if strings.Contains(line, secret) {
				t.Errorf("the server log holds the shared secret: %.500s", line)
			}
		}
	}
	if strings.Contains(logs, good) {
		t.Errorf("the server log holds a valid X-Signature")
	}
}

// array0 is body as a one-element array: a signature over it is not one
// over body.
func array0(body []byte) []byte { return append(append([]byte("["), body...), ']') }

// protoText renders a response message for the secret search.
func protoText(m any) string {
	switch v := m.(type) {
	case interface{ String() string }:
		return v.String()
	default:
		return ""
	}
}

// ---------------------------------------------------------------------------
// Admin token.
// ---------------------------------------------------------------------------

func TestSecurityAdminToken(t *testing.T) {
	t.Parallel()
	h := startServer(t)
	src := h.createSource(t, "admin")
	ingest := ingestToken(t, devURL(t, src))
	tok := h.token
	sameLength := tok[:len(tok)-1] + string(rune('A'+(tok[len(tok)-1]-'A'+1)%26))
	if sameLength == tok || len(sameLength) != len(tok) {
		sameLength = strings.Repeat("x", len(tok))
	}

	tests := []struct {
		name   string
		header []string // Authorization (and other) headers, name then value
		query  string
		ok     bool
	}{
		{"right token", []string{"Authorization", "Bearer " + tok}, "", true},
		{"lower-case scheme", []string{"Authorization", "bearer " + tok}, "", true},
		{"upper-case scheme", []string{"Authorization", "BEARER " + tok}, "", true},
		{"mixed-case scheme", []string{"Authorization", "bEaReR " + tok}, "", true},
		// HTTP/1.1 strips the header value's surrounding whitespace (RFC
		// 9110 §5.5), and the server trims the token.
		{"trailing spaces", []string{"Authorization", "Bearer " + tok + "   "}, "", true},
		{"two spaces after the scheme", []string{"Authorization", "Bearer  " + tok}, "", true},
		{"wrong token of the same length", []string{"Authorization", "Bearer " + sameLength}, "", false},
		{"token upper-cased", []string{"Authorization", "Bearer " + strings.ToUpper(tok)}, "", false},
		{"token minus its last character", []string{"Authorization", "Bearer " + tok[:len(tok)-1]}, "", false},
		{"token twice", []string{"Authorization", "Bearer " + tok + tok}, "", false},
		{"token with a space inside", []string{"Authorization", "Bearer " + tok[:4] + " " + tok[4:]}, "", false},
		{"tab instead of a space", []string{"Authorization", "Bearer\t" + tok}, "", false},
		{"no scheme", []string{"Authorization", tok}, "", false},
		{"scheme only", []string{"Authorization", "Bearer"}, "", false},
		{"empty token", []string{"Authorization", "Bearer "}, "", false},
		{"basic scheme", []string{"Authorization", "Basic " + tok}, "", false},
		{"scheme glued to the token", []string{"Authorization", "Bearer" + tok}, "", false},
		{"ingest token as admin token", []string{"Authorization", "Bearer " + ingest}, "", false},
		{"token in a cookie", []string{"Cookie", "token=" + tok}, "", false},
		{"token in another header", []string{"X-Api-Key", tok}, "", false},
		{"long garbage", []string{"Authorization", "Bearer " + strings.Repeat("z", 32<<10)}, "", false},
	}
	for _, tt := range tests {
		t.Run("rest/"+tt.name, func(t *testing.T) {
			t.Parallel()
			r := h.send(t, "", http.MethodGet, "/v1/sources"+tt.query, "", nil, tt.header...)
			want := http.StatusUnauthorized
			if tt.ok {
				want = http.StatusOK
			}
			wantStatus(t, r, want)
			if !tt.ok && !bytes.Contains(r.body, []byte("admin token")) {
				t.Errorf("401 body = %s, want it to say an admin token is needed", r.body)
			}
			if bytes.Contains(r.body, []byte(tok)) {
				t.Errorf("the answer holds the admin token: %s", r.body)
			}
		})
		t.Run("connect/"+tt.name, func(t *testing.T) {
			t.Parallel()
			if tt.query != "" {
				t.Skip("a query parameter is a REST-only form")
			}
			req := connect.NewRequest(&harkv1.ListSourcesRequest{})
			for i := 0; i+1 < len(tt.header); i += 2 {
				req.Header().Set(tt.header[i], tt.header[i+1])
			}
			_, err := harkv1connect.NewSourceServiceClient(h.http, h.base).ListSources(ctxFor(t), req)
			if tt.ok {
				if err != nil {
					t.Fatalf("ListSources: %v, want ok", err)
				}
				return
			}
			wantCode(t, err, connect.CodeUnauthenticated)
		})
	}

	// A REST query parameter that is not a field of the request is the
	// client's mistake: 400 (or 401 without the token), never a 5xx.
	t.Run("token in the query", func(t *testing.T) {
		t.Parallel()
		r := h.send(t, "", http.MethodGet, "/v1/sources?access_token="+url.QueryEscape(tok), "", nil)
		if r.status != http.StatusUnauthorized && r.status != http.StatusBadRequest {
			t.Fatalf("HTTP %d, want 401 (or 400); body %s", r.status, r.body)
		}
	})
	t.Run("unknown query parameter with the token", func(t *testing.T) {
		t.Parallel()
		r := h.rest(t, http.MethodGet, "/v1/sources?no_such_field=1", "")
		if r.status != http.StatusOK && r.status != http.StatusBadRequest {
			t.Fatalf("HTTP %d, want 200 (ignored) or 400; body %s", r.status, r.body)
		}
	})

	t.Run("a wrong header before the right one", func(t *testing.T) {
		t.Parallel()
		req, err := http.NewRequestWithContext(ctxFor(t), http.MethodGet, h.base+"/v1/sources", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Add("Authorization", "Bearer wrong")
		req.Header.Add("Authorization", "Bearer "+tok)
		res, err := h.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("HTTP %d, want 401: only the first Authorization header counts", res.StatusCode)
		}
	})
}

// ---------------------------------------------------------------------------
// Data dir and token file modes.
// ---------------------------------------------------------------------------

func TestSecurityDataDirModes(t *testing.T) {
	t.Parallel()
	// Parents that do not exist yet are created too.
	dir := filepath.Join(t.TempDir(), "a", "b", "data")
	srv, err := server.New(ctxFor(t), server.Config{DataDir: dir, PublicURL: "http://127.0.0.1:1", BuiltinPlugins: builtinPlugins()})
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	token, generated := srv.AdminToken()
	if err := srv.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if !generated || token == "" {
		t.Fatalf("AdminToken() = %q, %v; want a generated token", token, generated)
	}
	wantMode := func(t *testing.T, path string, want fs.FileMode) {
		t.Helper()
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s has mode %v, want %v", path, got, want)
		}
	}
	wantMode(t, dir, 0o700)
	wantMode(t, filepath.Dir(dir), 0o700)
	wantMode(t, filepath.Join(dir, server.AdminTokenFile), 0o600)
	b, err := os.ReadFile(filepath.Join(dir, server.AdminTokenFile))
	if err != nil || strings.TrimSpace(string(b)) != token {
		t.Fatalf("token file holds %q (%v), want the token", b, err)
	}
	// Nothing in the data dir is writable by others, and nothing but the
	// dir's own traversal is readable by them.
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if fi.Mode().Perm()&0o022 != 0 {
			t.Errorf("%s has mode %v: writable by group or others", path, fi.Mode().Perm())
		}
		if d.IsDir() && fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("directory %s has mode %v, want no access for group or others", path, fi.Mode().Perm())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// ---------------------------------------------------------------------------
// Plugin binaries.
// ---------------------------------------------------------------------------

// TestSecurityPluginBinaries installs the RudderStack plugin in ways that
// let others replace what hark runs, and checks that hark refuses it: it is
// not listed by /v1/source-types, no source of its type can be created, and
// the refusal is logged. The built-in Segment plugin still runs.
func TestSecurityPluginBinaries(t *testing.T) {
	t.Parallel()
	built := filepath.Join(t.TempDir(), "built")
	buildRudderStack(t, built)
	binary := filepath.Join(built, "hark-source-rudderstack")

	copyTo := func(t *testing.T, dst string, mode fs.FileMode) {
		t.Helper()
		b, err := os.ReadFile(binary)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dst, mode); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name    string
		install func(t *testing.T, pluginDir string)
		// wantLog are what the refusal's log line says.
		wantLog []string
	}{
		{"world-writable binary", func(t *testing.T, pluginDir string) {
			copyTo(t, filepath.Join(pluginDir, "hark-source-rudderstack"), 0o777)
		}, []string{"refuse plugin", "world-writable", "hark-source-rudderstack"}},
		{"symlink to a world-writable binary outside the plugin dir", func(t *testing.T, pluginDir string) {
			outside := filepath.Join(t.TempDir(), "rudder")
			copyTo(t, outside, 0o777)
			if err := os.Symlink(outside, filepath.Join(pluginDir, "hark-source-rudderstack")); err != nil {
				t.Fatal(err)
			}
		}, []string{"refuse plugin", "world-writable", "hark-source-rudderstack"}},
		// Anyone can rename another file over a binary in a world-writable
		// directory (without the sticky bit), whatever the binary's mode.
		{"binary in a world-writable plugin dir", func(t *testing.T, pluginDir string) {
			copyTo(t, filepath.Join(pluginDir, "hark-source-rudderstack"), 0o755)
			if err := os.Chmod(pluginDir, 0o777); err != nil {
				t.Fatal(err)
			}
		}, []string{"refuse", "world-writable", "plugins"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := startServerWith(t, harnessOptions{before: func(t *testing.T, h *harness) {
				dir := filepath.Join(h.dir, "plugins")
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				tt.install(t, dir)
			}})
			r := h.rest(t, http.MethodGet, "/v1/source-types", "")
			wantStatus(t, r, http.StatusOK)
			var types []string
			for _, st := range decode(t, r, &harkv1.ListSourceTypesResponse{}).GetSourceTypes() {
				types = append(types, st.GetType())
			}
			if !slices.Contains(types, "segment") {
				t.Fatalf("source types = %q, want segment still there", types)
			}
			if slices.Contains(types, "rudderstack") {
				t.Errorf("source types = %q: hark runs a plugin others can replace", types)
			}
			r = h.rest(t, http.MethodPost, "/v1/sources", `{"name":"R","type":"rudderstack"}`)
			if r.status == http.StatusOK {
				t.Errorf("a rudderstack source was created: %s", r.body)
			}
			logs := h.logs.String()
			for _, want := range tt.wantLog {
				if !strings.Contains(logs, want) {
					t.Errorf("the log does not record the refusal (want %q):\n%s", want, logs)
				}
			}
		})
	}
}
