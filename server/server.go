// Package server wires hark's HTTP surface: Connect, gRPC and gRPC-Web
// handlers for every hark.v1 service, mounted beside a vanguard transcoder
// that serves the same RPCs as REST, plus health and reflection. Handlers are
// thin: they hand the request messages to the engine and let the error
// interceptor (errors.go) map what comes back.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"
	"connectrpc.com/vanguard"

	"github.com/harkhq/hark/engine"
	"github.com/harkhq/hark/engine/badgerstore"
	"github.com/harkhq/hark/gen/hark/v1/harkv1connect"
)

// Defaults for Config.
const (
	DefaultListen  = "127.0.0.1:8080"
	DefaultDataDir = "./hark-data"
	// DefaultMaxBodyBytes bounds one request body (DESIGN §5: 4 MiB). It is
	// enforced before vanguard reads the body, because vanguard's own limit
	// answers 429, which Segment would retry for hours.
	DefaultMaxBodyBytes = 4 << 20
)

// Config holds what a Server needs.
type Config struct {
	// DataDir holds the Badger store, the admin token and the lock file.
	DataDir string
	// PublicURL is the base of ingest URLs, e.g. "https://hark.example.com".
	PublicURL string
	// AdminToken authorizes every API call but ingest and health.
	AdminToken string
	// MaxBodyBytes bounds request bodies; 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Logger receives the server's logs; nil discards them.
	Logger *slog.Logger
}

// Server is a running hark: its store, engine and HTTP handler.
type Server struct {
	cfg    Config
	log    *slog.Logger
	lock   *dataDirLock
	store  *badgerstore.Store
	engine *engine.Engine
	http   *http.Server
}

// New locks the data dir, opens the store and builds the handler. Close
// releases all of it.
func New(ctx context.Context, cfg Config) (_ *Server, err error) {
	if cfg.AdminToken == "" {
		return nil, errors.New("server: an admin token is required")
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	s := &Server{cfg: cfg, log: cfg.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if s.lock, err = lockDataDir(cfg.DataDir); err != nil {
		return nil, err
	}
	s.store, err = badgerstore.Open(badgerstore.Options{
		Dir:    filepath.Join(cfg.DataDir, "db"),
		Logger: s.log.With("component", "badger"),
	})
	if err != nil {
		return nil, err
	}
	s.engine, err = engine.New(ctx, engine.Config{
		Store:       s.store,
		SourceTypes: builtinSourceTypes{},
		PublicURL:   cfg.PublicURL,
		Logger:      s.log,
	})
	if err != nil {
		return nil, err
	}
	handler, err := s.handler()
	if err != nil {
		return nil, err
	}
	s.http = &http.Server{
		Handler: handler,
		// Timeouts bound what a slow or idle client can hold: headers must
		// arrive within 10s and a whole request within 60s. WriteTimeout is
		// left at zero because Watch* streams are long-lived; their writes
		// are bounded by the client's context instead.
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	// gRPC needs HTTP/2; without TLS that is h2c, which Go's server speaks
	// when asked.
	s.http.Protocols = new(http.Protocols)
	s.http.Protocols.SetHTTP1(true)
	s.http.Protocols.SetUnencryptedHTTP2(true)
	return s, nil
}

// Engine returns the server's engine (for in-process wiring such as tests).
func (s *Server) Engine() *engine.Engine { return s.engine }

// Serve answers requests on ln until Shutdown. It returns nil after a
// graceful Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	err := s.http.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting requests and waits for in-flight ones (up to
// ctx's deadline). It does not close the store; Close does.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.http == nil {
		return nil
	}
	return s.http.Shutdown(ctx)
}

// Close closes the store and releases the data dir. Call it after Shutdown.
func (s *Server) Close() error {
	var errs []error
	if s.store != nil {
		errs = append(errs, s.store.Close())
		s.store = nil
	}
	errs = append(errs, s.lock.release())
	s.lock = nil
	return errors.Join(errs...)
}

// handler builds the HTTP handler: each Connect service is mounted at its own
// path, so plain Connect calls need no Connect-Protocol-Version header, and
// the vanguard transcoder serves everything else (the REST routes).
func (s *Server) handler() (http.Handler, error) {
	errs := errorInterceptor{log: s.log}
	admin := connect.WithInterceptors(errs, newAuthInterceptor(s.cfg.AdminToken))
	limit := connect.WithReadMaxBytes(int(s.cfg.MaxBodyBytes))

	type mount struct {
		path    string
		handler http.Handler
	}
	var mounts []mount
	add := func(path string, h http.Handler) { mounts = append(mounts, mount{path, h}) }
	add(harkv1connect.NewEnvironmentServiceHandler(newEnvironmentService(s.engine), admin, limit))
	add(harkv1connect.NewSourceServiceHandler(newSourceService(s.engine), admin, limit))
	add(harkv1connect.NewEventServiceHandler(newEventService(s.engine), admin, limit))
	add(harkv1connect.NewWorkflowServiceHandler(newWorkflowService(s.engine), admin, limit))
	add(harkv1connect.NewTriggerServiceHandler(newTriggerService(s.engine), admin, limit))
	add(harkv1connect.NewUserServiceHandler(newUserService(s.engine), admin, limit))
	add(harkv1connect.NewWorkflowRunServiceHandler(newWorkflowRunService(s.engine), admin, limit))
	// Ingest is authorized by the secret token in its URL, not the admin token.
	add(harkv1connect.NewIngestServiceHandler(newIngestService(s.engine), connect.WithInterceptors(errs), limit))

	mux := http.NewServeMux()
	services := make([]*vanguard.Service, 0, len(mounts))
	names := make([]string, 0, len(mounts))
	for _, m := range mounts {
		mux.Handle(m.path, m.handler)
		services = append(services, vanguard.NewService(m.path, m.handler))
		names = append(names, strings.Trim(m.path, "/"))
	}
	transcoder, err := vanguard.NewTranscoder(services)
	if err != nil {
		return nil, fmt.Errorf("build REST transcoder: %w", err)
	}
	mux.Handle("/", transcoder)

	mux.Handle(grpchealth.NewHandler(grpchealth.NewStaticChecker(names...)))
	reflector := grpcreflect.NewStaticReflector(names...)
	mux.Handle(grpcreflect.NewHandlerV1(reflector, admin))
	mux.Handle(grpcreflect.NewHandlerV1Alpha(reflector, admin))

	return limitIngestBody(mux, s.cfg.MaxBodyBytes), nil
}
