// Package console serves hark's web console: a single-page app built from
// the TypeScript in src/ (npm run build) into dist/, which is committed and
// embedded, so `go run ./cmd/hark serve` needs only Go.
//
// The console is only static files. It talks to the public API from the
// browser (Connect, with the admin token as its bearer token) and adds no
// endpoint of its own; the API keeps its auth. Its client-side routes are
// the paths in Pages, so that a reload or a shared link of /triggers/… gets
// the app (the "SPA fallback") while every other path stays the API's:
// the console never shadows a REST route, whatever routes are added later
// under /v1/.
package console

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"
)

// dist is the built console (npm run build).
//
//go:embed all:dist
var dist embed.FS

// Pages are the first path segments of the console's client-side routes
// (src/router.ts's pages). GET /<page> and GET /<page>/… answer index.html.
var Pages = []string{
	"sign-in", "sources", "events", "event-types", "triggers", "workflows",
	"runs", "users", "tenants", "objects", "audiences", "destinations", "refusals",
}

// assetsPrefix holds the bundles. Their names carry a content hash, so they
// may be cached for good; index.html names the current ones and is
// revalidated on every load.
const assetsPrefix = "/assets/"

// file is one embedded file, ready to answer.
type file struct {
	body        []byte
	etag        string
	contentType string
}

// Console serves the embedded console. It is safe for concurrent use.
type Console struct {
	files map[string]file // by URL path, e.g. "/assets/app-XXXX.js"
	index file
}

// New loads the embedded console. It fails only if the build is broken
// (no index.html), which the package's tests catch.
func New() (*Console, error) {
	return load(dist)
}

func load(fsys fs.FS) (*Console, error) {
	root, err := fs.Sub(fsys, "dist")
	if err != nil {
		return nil, err
	}
	c := &Console{files: map[string]file{}}
	err = fs.WalkDir(root, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(root, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		ct := mime.TypeByExtension(path.Ext(p))
		if ct == "" {
			ct = http.DetectContentType(b)
		}
		c.files["/"+p] = file{body: b, etag: `"` + hex.EncodeToString(sum[:16]) + `"`, contentType: ct}
		return nil
	})
	if err != nil {
		return nil, err
	}
	idx, ok := c.files["/index.html"]
	if !ok {
		return nil, fs.ErrNotExist
	}
	c.index = idx
	return c, nil
}

// Register mounts the console on mux: GET / and the Pages answer
// index.html, GET /assets/… the bundles. GET patterns are more specific
// than the API's catch-all "/", and none overlaps an API path.
func (c *Console) Register(mux *http.ServeMux) {
	mux.Handle("GET /{$}", http.HandlerFunc(c.serveIndex))
	for _, p := range Pages {
		mux.Handle("GET /"+p, http.HandlerFunc(c.serveIndex))
		mux.Handle("GET /"+p+"/", http.HandlerFunc(c.serveIndex))
	}
	mux.Handle("GET "+assetsPrefix, http.HandlerFunc(c.serveAsset))
}

// Serves reports whether path is one of the console's (so it needs no
// admin token: the browser loads the app before it signs in).
func Serves(path string) bool {
	if path == "/" || strings.HasPrefix(path, assetsPrefix) {
		return true
	}
	first, _, _ := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	for _, p := range Pages {
		if first == p {
			return true
		}
	}
	return false
}

func (c *Console) serveIndex(w http.ResponseWriter, r *http.Request) {
	// no-cache: revalidate each load (cheap, with the ETag), so a new hark
	// version's bundles are picked up at once.
	c.serve(w, r, c.index, "no-cache")
}

func (c *Console) serveAsset(w http.ResponseWriter, r *http.Request) {
	f, ok := c.files[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	c.serve(w, r, f, "public, max-age=31536000, immutable")
}

func (c *Console) serve(w http.ResponseWriter, r *http.Request, f file, cache string) {
	h := w.Header()
	h.Set("Cache-Control", cache)
	h.Set("ETag", f.etag)
	h.Set("Content-Type", f.contentType)
	// The admin token lives in this page's sessionStorage: allow scripts
	// from hark only, no framing, and send no Referer to anything else.
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	// ServeContent answers If-None-Match from the ETag above, and HEAD and
	// ranges; the embedded files have no modification time.
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.body))
}
