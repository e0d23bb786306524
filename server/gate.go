package server

import (
	"net/http"
	"strings"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"

	"github.com/harkhq/hark/console"
	"github.com/harkhq/hark/engine"
	"github.com/harkhq/hark/gen/hark/v1/harkv1connect"
)

// adminGate requires the admin token on every route but the webhook (whose
// URL token is its secret) and gRPC health, before anything reads the
// request's body. Connect reads a unary request's message before its
// interceptors run, so without this an anonymous client could make hark
// hold a body of up to the read limit per stream just to be told 401.
// The Connect handlers keep their auth interceptor as well.
type adminGate struct {
	next   http.Handler
	auth   authInterceptor
	errors *connect.ErrorWriter
	// console is whether the console's pages are served: they are public
	// (static files; the browser loads them before signing in, and every
	// API call they make carries the token).
	console bool
}

// public reports whether a path is served without the admin token.
func public(path string) bool {
	return strings.HasPrefix(path, engine.IngestPath) ||
		strings.HasPrefix(path, "/"+harkv1connect.IngestServiceName+"/") ||
		strings.HasPrefix(path, "/"+grpchealth.HealthV1ServiceName+"/")
}

func (g adminGate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if public(r.URL.Path) || g.console && (r.Method == http.MethodGet || r.Method == http.MethodHead) && console.Serves(r.URL.Path) {
		g.next.ServeHTTP(w, r)
		return
	}
	if err := g.auth.check(r.Header.Get("Authorization")); err != nil {
		// The body is not read: close the connection after the answer, or
		// net/http would wait to discard the body before answering, for as
		// long as a slow client takes to send it.
		w.Header().Set("Connection", "close")
		if g.errors.IsSupported(r) {
			_ = g.errors.Write(w, r, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		writeStatus(w, err)
		return
	}
	g.next.ServeHTTP(w, r)
}
