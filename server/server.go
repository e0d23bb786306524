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
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"
	"connectrpc.com/vanguard"

	"github.com/harkhq/hark/console"
	"github.com/harkhq/hark/engine"
	"github.com/harkhq/hark/engine/badgerstore"
	"github.com/harkhq/hark/engine/delivery"
	"github.com/harkhq/hark/engine/natsstore"
	"github.com/harkhq/hark/gen/hark/v1/harkv1connect"
	"github.com/harkhq/hark/plugins/host"
)

// Defaults for Config.
const (
	DefaultListen  = "127.0.0.1:8080"
	DefaultDataDir = "./hark-data"
	// DefaultMaxBodyBytes bounds one request body (DESIGN §5: 4 MiB). It is
	// enforced before vanguard reads the body, because vanguard's own limit
	// answers 429, which Segment would retry for hours.
	DefaultMaxBodyBytes = 4 << 20
	// DefaultIngestMemory bounds the webhook bodies held at once (read, or
	// waiting for their commit): 16 full-size bodies, thousands of typical
	// ones. Past it deliveries get 503 and are retried.
	DefaultIngestMemory = 64 << 20
	// DefaultBodyTimeout is how long a webhook body may take to arrive;
	// a slower one is answered 408, which Segment retries.
	DefaultBodyTimeout = 60 * time.Second
	// DefaultMaxConnections bounds open connections; more wait in the
	// kernel's accept queue.
	DefaultMaxConnections = 1024
	// DefaultHTTP2MaxStreams bounds concurrent streams per HTTP/2
	// connection (Go's default is 250).
	DefaultHTTP2MaxStreams = 100
	// answerTimeout is how long writing an ingest answer may take once the
	// body has arrived and been processed: a client that never reads it
	// (a zero HTTP/2 window) would otherwise hold its body forever.
	answerTimeout = 30 * time.Second
)

// Config holds what a Server needs.
type Config struct {
	// DataDir holds the Badger store, the admin token and the lock file.
	DataDir string
	// Store is where state lives: "" or "badger" for Badger in DataDir,
	// "nats://host:port[,host:port…]" for a NATS JetStream cluster that
	// every node shares (cluster mode; DataDir then keeps only the lock and
	// the plugins). NATSCreds and NATSTLSCA are its credentials file and CA
	// certificate; NATSReplicas the copies of hark's stream (0: 3).
	Store                string
	NATSCreds, NATSTLSCA string
	NATSReplicas         int
	// PublicURL is the base of ingest URLs, e.g. "https://hark.example.com".
	PublicURL string
	// AdminToken authorizes every API call but ingest and health. When
	// empty, the token saved in DataDir is used, or one is generated and
	// saved there (see LoadAdminToken and Server.AdminToken).
	AdminToken string
	// MaxBodyBytes bounds request bodies; 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Logger receives the server's logs; nil discards them.
	Logger *slog.Logger
	// PluginDir is searched for third-party source plugins
	// (hark-source-<type>); "" means <DataDir>/plugins.
	PluginDir string
	// BuiltinPlugins maps built-in source types to the command that runs
	// them; `hark serve` re-executes itself as `hark plugin <type>`.
	BuiltinPlugins map[string]func() *exec.Cmd
	// PluginCallTimeout bounds one plugin call; 0 means the host's default.
	PluginCallTimeout time.Duration
	// EventRetention is how long the event log keeps events; 0 means 30 days.
	EventRetention time.Duration
	// RunRetention is how long workflow runs are kept; 0 means 30 days.
	RunRetention time.Duration
	// IngestMemory bounds the bytes of webhook bodies held at once; 0
	// means DefaultIngestMemory.
	IngestMemory int64
	// BodyTimeout bounds how long a webhook body may take to arrive; 0
	// means DefaultBodyTimeout.
	BodyTimeout time.Duration
	// MaxConnections bounds open connections; 0 means
	// DefaultMaxConnections, negative means no bound.
	MaxConnections int
	// HTTP2MaxStreams bounds concurrent streams per HTTP/2 connection; 0
	// means DefaultHTTP2MaxStreams.
	HTTP2MaxStreams int
	// DeliverySchedule is when delivery attempts are retried; nil means
	// Standard Webhooks' (delivery.DefaultSchedule).
	DeliverySchedule delivery.Schedule
	// AllowPrivateDestinations lets destinations reach loopback, private
	// and link-local addresses (for on-premise receivers and tests).
	AllowPrivateDestinations bool
	// DeliveryTimeout bounds one delivery attempt; 0 means 15 s.
	DeliveryTimeout time.Duration
	// DeliveryLease is how long a node's lease keeps a delivery from the
	// other nodes in cluster mode; 0 means twice the default attempt
	// timeout (engine.DefaultDeliveryLease). Tests shorten it.
	DeliveryLease time.Duration
	// MinFreeDisk is the free space on the data dir's disk below which
	// writes are refused with 503 (badgerstore.DefaultMinFreeBytes when 0,
	// off when negative).
	MinFreeDisk int64
	// MaxUserProperties and MaxUserBytes bound a user's custom properties
	// (count, and encoded bytes); 0 means the engine's defaults.
	MaxUserProperties int
	MaxUserBytes      int
	// NoConsole turns off the web console (package console) at /; its
	// paths then answer like any unknown path.
	NoConsole bool
	// Now is the one clock of every expiry (idempotency windows, retention,
	// API idempotency keys): the engine reads it and gives the store
	// absolute expiry times. Nil means time.Now; tests move it.
	Now func() time.Time
}

// Server is a running hark: its store, engine and HTTP handler.
type Server struct {
	cfg    Config
	log    *slog.Logger
	lock   *dataDirLock
	store  engine.Store
	badger *badgerstore.Store // the store, when it is Badger (backups, disk)
	nats   *natsstore.Store   // the store, in cluster mode (health, traffic)
	host   *host.Host
	engine *engine.Engine
	http   *http.Server

	metrics        *metrics
	tokenGenerated bool
}

// AdminToken returns the admin token in use, and whether this start
// generated it (so it has never been shown to anyone).
func (s *Server) AdminToken() (token string, generated bool) {
	return s.cfg.AdminToken, s.tokenGenerated
}

// New locks the data dir, opens the store and builds the handler. Close
// releases all of it.
func New(ctx context.Context, cfg Config) (_ *Server, err error) {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.IngestMemory <= 0 {
		cfg.IngestMemory = DefaultIngestMemory
	}
	if cfg.BodyTimeout <= 0 {
		cfg.BodyTimeout = DefaultBodyTimeout
	}
	if cfg.MaxConnections == 0 {
		cfg.MaxConnections = DefaultMaxConnections
	}
	if cfg.HTTP2MaxStreams <= 0 {
		cfg.HTTP2MaxStreams = DefaultHTTP2MaxStreams
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
	clustered, err := clusterMode(cfg.Store)
	if err != nil {
		return nil, err
	}
	if clustered && strings.TrimSpace(cfg.AdminToken) == "" {
		return nil, errors.New("--store nats://: every node needs the same admin token; set HARK_ADMIN_TOKEN")
	}
	if s.lock, err = lockDataDir(cfg.DataDir); err != nil {
		return nil, err
	}
	// Only the process holding the lock may generate a token: a second
	// `hark serve` refused above must not leave a token nobody saw.
	if s.cfg.AdminToken, s.tokenGenerated, err = LoadAdminToken(cfg.DataDir, cfg.AdminToken); err != nil {
		return nil, err
	}
	if err := s.openStore(ctx, clustered); err != nil {
		return nil, err
	}
	pluginDir := cfg.PluginDir
	if pluginDir == "" {
		pluginDir = filepath.Join(cfg.DataDir, "plugins")
	}
	s.host, err = host.Start(ctx, host.Config{
		Builtins:    cfg.BuiltinPlugins,
		PluginDir:   pluginDir,
		Logger:      s.log.With("component", "plugins"),
		CallTimeout: cfg.PluginCallTimeout,
	})
	if err != nil {
		return nil, err
	}
	s.metrics = newMetrics()
	s.metrics.watchPlugins(s.host)
	if s.badger != nil {
		s.metrics.watchStore(s.badger.Size)
		s.metrics.watchDisk(s.badger.Disk)
	}
	if s.nats != nil {
		s.metrics.watchNATS(s.nats.Stats)
	}
	plugins := pluginSources{h: s.host, metrics: s.metrics, log: s.log.With("component", "plugins")}
	s.engine, err = engine.New(ctx, engine.Config{
		Store:          s.store,
		SourceTypes:    plugins,
		Translator:     plugins,
		PublicURL:      cfg.PublicURL,
		Logger:         s.log,
		EventRetention: cfg.EventRetention,
		RunRetention:   cfg.RunRetention,
		Metrics:        s.metrics,
		Now:            cfg.Now,

		MaxUserProperties: cfg.MaxUserProperties,
		MaxUserBytes:      cfg.MaxUserBytes,

		DeliverySchedule:         cfg.DeliverySchedule,
		AllowPrivateDestinations: cfg.AllowPrivateDestinations,
		DeliveryTimeout:          cfg.DeliveryTimeout,
		SharedStore:              s.nats != nil,
		DeliveryLease:            cfg.DeliveryLease,
	})
	if err != nil {
		return nil, err
	}
	s.metrics.watchOutbox(s.engine)
	handler, err := s.handler()
	if err != nil {
		return nil, err
	}
	s.http = &http.Server{
		Handler: handler,
		// Timeouts bound what a slow or idle client can hold: headers must
		// arrive within 10s; a webhook body within BodyTimeout (ingestEdge
		// answers 408 then, so ReadTimeout here is only the backstop for
		// every other route). WriteTimeout is left at zero because Watch*
		// streams are long-lived; ingest answers get their own write
		// deadline, and HTTP/2 connections that cannot be written to are
		// closed after WriteByteTimeout.
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       cfg.BodyTimeout + 10*time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		HTTP2: &http.HTTP2Config{
			MaxConcurrentStreams: cfg.HTTP2MaxStreams,
			WriteByteTimeout:     answerTimeout,
			// A peer that stops answering pings is gone: free its streams.
			SendPingTimeout: time.Minute,
			PingTimeout:     15 * time.Second,
			// Unread request data buffered per stream and connection.
			MaxReceiveBufferPerStream:     256 << 10,
			MaxReceiveBufferPerConnection: 1 << 20,
		},
	}
	s.http.RegisterOnShutdown(s.engine.EndStreams)
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
	if s.cfg.MaxConnections > 0 {
		ln = newLimitListener(ln, s.cfg.MaxConnections)
	}
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

// Close stops the ingest committer and the plugins, closes the store and
// releases the data dir. Call it after Shutdown.
func (s *Server) Close() error {
	var errs []error
	if s.engine != nil {
		errs = append(errs, s.engine.Close())
		s.engine = nil
	}
	if s.host != nil {
		errs = append(errs, s.host.Close())
		s.host = nil
	}
	if s.store != nil {
		errs = append(errs, s.store.Close())
		s.store, s.badger, s.nats = nil, nil, nil
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
	// Responses under 8 KiB are not compressed: gzip costs more than it
	// saves there, and the ingest answers (small, many) go through vanguard
	// in-process, where compression saves nothing at all.
	common := connect.WithHandlerOptions(connect.WithReadMaxBytes(int(s.cfg.MaxBodyBytes)), connect.WithCodec(jsonCodec{}),
		connect.WithCompressMinBytes(8<<10))
	admin := connect.WithHandlerOptions(common, connect.WithInterceptors(errs, newAuthInterceptor(s.cfg.AdminToken)))

	type mount struct {
		path    string
		handler http.Handler
	}
	var mounts []mount
	add := func(path string, h http.Handler) { mounts = append(mounts, mount{path, h}) }
	add(harkv1connect.NewEnvironmentServiceHandler(newEnvironmentService(s.engine), admin))
	add(harkv1connect.NewSourceServiceHandler(newSourceService(s.engine), admin))
	add(harkv1connect.NewEventServiceHandler(newEventService(s.engine), admin))
	add(harkv1connect.NewWorkflowServiceHandler(newWorkflowService(s.engine), admin))
	add(harkv1connect.NewTriggerServiceHandler(newTriggerService(s.engine), admin))
	add(harkv1connect.NewUserServiceHandler(newUserService(s.engine), admin))
	add(harkv1connect.NewTenantServiceHandler(newTenantService(s.engine), admin))
	add(harkv1connect.NewObjectServiceHandler(newObjectService(s.engine), admin))
	add(harkv1connect.NewAudienceServiceHandler(newAudienceService(s.engine), admin))
	add(harkv1connect.NewWorkflowRunServiceHandler(newWorkflowRunService(s.engine), admin))
	add(harkv1connect.NewDestinationServiceHandler(newDestinationService(s.engine), admin))
	add(harkv1connect.NewDeliveryServiceHandler(newDeliveryService(s.engine), admin))
	add(harkv1connect.NewConfigServiceHandler(newConfigService(s.engine), admin))
	// Ingest is authorized by the secret token in its URL, not the admin token.
	// Its request is already bounded (and decompressed) by ingestEdge, and
	// Receive bounds the delivery inside it; a Connect JSON request carries
	// the body as base64, a third larger, so Connect's own limit here only
	// has to stop what cannot be a delivery.
	ingestLimit := connect.WithReadMaxBytes(int(s.cfg.MaxBodyBytes*4/3 + 64<<10))
	add(harkv1connect.NewIngestServiceHandler(newIngestService(s.engine, s.log, s.cfg.MaxBodyBytes), common, ingestLimit, connect.WithInterceptors(errs)))

	mux := http.NewServeMux()
	services := make([]*vanguard.Service, 0, len(mounts))
	names := make([]string, 0, len(mounts))
	for _, m := range mounts {
		mux.Handle(m.path, m.handler)
		// The hop from vanguard to the handler is in-process: compressing it
		// costs CPU (gzip was a tenth of the ingest profile) and saves nothing.
		services = append(services, vanguard.NewService(m.path, m.handler, vanguard.WithNoTargetCompression(),
			// Unknown query parameters are ignored (unlike unknown JSON
			// fields, see strictJSON): vanguard would otherwise answer them
			// with a 500, and a GET changes nothing.
			vanguard.WithRESTUnmarshalOptions(vanguard.RESTUnmarshalOptions{DiscardUnknownQueryParams: true})))
		names = append(names, strings.Trim(m.path, "/"))
	}
	transcoder, err := vanguard.NewTranscoder(services, vanguard.WithCodec(restJSONCodec))
	if err != nil {
		return nil, fmt.Errorf("build REST transcoder: %w", err)
	}
	mux.Handle("/", restInputErrors(transcoder))
	mux.Handle("POST "+engine.IngestPath+"{token}", ingestREST(s.engine, s.log))

	conditions := pluginConditions(s.host)
	if s.badger != nil {
		conditions = append(conditions, healthCondition{service: diskHealthService, ok: func() bool {
			d := s.badger.Disk()
			return !d.Low && !d.ReadOnly
		}})
	}
	if s.nats != nil {
		conditions = append(conditions, healthCondition{service: natsHealthService, ok: s.nats.Connected})
	}
	mux.Handle(grpchealth.NewHandler(newHealthChecker(names, conditions...)))
	reflector := grpcreflect.NewStaticReflector(names...)
	mux.Handle(grpcreflect.NewHandlerV1(reflector, admin))
	mux.Handle(grpcreflect.NewHandlerV1Alpha(reflector, admin))

	if !s.cfg.NoConsole {
		c, err := console.New()
		if err != nil {
			return nil, fmt.Errorf("load console: %w", err)
		}
		c.Register(mux)
	}

	mux.Handle("GET /metrics", s.metrics.handler(newAuthInterceptor(s.cfg.AdminToken)))
	mux.Handle("GET "+BackupPath, s.backupHandler(newAuthInterceptor(s.cfg.AdminToken)))

	errWriter := connect.NewErrorWriter()
	gate := adminGate{next: mux, auth: newAuthInterceptor(s.cfg.AdminToken), errors: errWriter, console: !s.cfg.NoConsole}
	edge := &ingestEdge{
		next:         gate,
		maxBody:      s.cfg.MaxBodyBytes,
		budget:       &byteBudget{limit: s.cfg.IngestMemory},
		bodyTimeout:  s.cfg.BodyTimeout,
		writeTimeout: answerTimeout,
		known: func(ctx context.Context, token string) (bool, error) {
			_, _, err := s.engine.ResolveIngestToken(ctx, token)
			switch {
			case err == nil:
				return true, nil
			case errors.Is(err, engine.ErrNotFound):
				return false, nil
			default:
				return false, err
			}
		},
		errors:  errWriter,
		refused: s.metrics.DeliveryRejected,
		record:  s.engine.RecordRefusal,
	}
	return s.metrics.instrument(edge), nil
}
