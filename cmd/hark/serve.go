package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/harkhq/hark/engine"
	"github.com/harkhq/hark/engine/badgerstore"
	"github.com/harkhq/hark/engine/delivery"
	"github.com/harkhq/hark/plugins/host"
	"github.com/harkhq/hark/server"
)

// serveOptions are `hark serve`'s flags.
type serveOptions struct {
	listen    string
	dataDir   string
	publicURL string
	logLevel  string
	logFormat string
	pluginDir string

	eventRetention time.Duration
	runRetention   time.Duration

	// Limits (README "Limits").
	maxBody           int64
	ingestMemory      int64
	bodyTimeout       time.Duration
	maxConnections    int
	http2MaxStreams   int
	minFreeDisk       int64
	maxUserProperties int
	maxUserBytes      int64
	pluginCallTimeout time.Duration

	// Destinations.
	retrySchedule            string
	allowPrivateDestinations bool

	demo      bool
	noConsole bool

	// State: Badger in --data-dir, or a NATS JetStream cluster.
	store        string
	natsCreds    string
	natsTLSCA    string
	natsReplicas int
}

// newServeCommand is `hark serve`. Its --data-dir is the root's persistent
// flag, shared with the client commands, which read the admin token there.
func newServeCommand(g *globalOptions) *cobra.Command {
	var o serveOptions
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the hark server",
		Long: `Run the hark server: the API (Connect, gRPC, gRPC-Web and REST) and the
webhook URLs sources post to, with state in an embedded Badger database in
--data-dir. Every flag can also be set with its HARK_* environment variable;
the admin token comes from HARK_ADMIN_TOKEN or is generated on first start.

With --demo, the first start also creates a Segment source "Demo", a
workflow "welcome" and a development trigger that starts it for every
track "Signed Up", with identify and idempotency on, and writes a sample
batch to <data-dir>/demo-event.json; every start prints the commands that
send it and show the run.`,
		Example: `  hark serve --demo
  HARK_ADMIN_TOKEN=… hark serve --listen :8080 --public-url https://hark.example.com`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.dataDir = g.dataDir
			return runServe(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.listen, "listen", envOr("HARK_LISTEN", server.DefaultListen), "address to listen on (HARK_LISTEN)")
	f.StringVar(&o.publicURL, "public-url", envOr("HARK_PUBLIC_URL", ""), "base URL of webhook URLs, as sources reach hark (HARK_PUBLIC_URL; default http://<listen>)")
	f.StringVar(&o.pluginDir, "plugin-dir", envOr("HARK_PLUGIN_DIR", ""), "directory of third-party source plugins, hark-source-<type> (HARK_PLUGIN_DIR; default <data-dir>/plugins)")
	durationVar(f, &o.eventRetention, "event-retention", envDuration("HARK_EVENT_RETENTION", 30*24*time.Hour), "how long the event log keeps events (HARK_EVENT_RETENTION)")
	durationVar(f, &o.runRetention, "run-retention", envDuration("HARK_RUN_RETENTION", 30*24*time.Hour), "how long workflow runs are kept (HARK_RUN_RETENTION)")
	sizeVar(f, &o.maxBody, "max-body", "HARK_MAX_BODY", server.DefaultMaxBodyBytes, "largest webhook body, after decompression; larger is 400")
	sizeVar(f, &o.ingestMemory, "ingest-memory", "HARK_INGEST_MEMORY", server.DefaultIngestMemory, "webhook bodies held at once (read or waiting for their commit); past it deliveries get 503")
	durationVar(f, &o.bodyTimeout, "body-timeout", envDuration("HARK_BODY_TIMEOUT", server.DefaultBodyTimeout), "how long a webhook body may take to arrive; slower is 408 (HARK_BODY_TIMEOUT)")
	intVar(f, &o.maxConnections, "max-connections", "HARK_MAX_CONNECTIONS", server.DefaultMaxConnections, "open connections at most; more wait to be accepted (-1: no limit)")
	intVar(f, &o.http2MaxStreams, "http2-max-streams", "HARK_HTTP2_MAX_STREAMS", server.DefaultHTTP2MaxStreams, "concurrent streams per HTTP/2 connection")
	sizeVar(f, &o.minFreeDisk, "min-free-disk", "HARK_MIN_FREE_DISK", badgerstore.DefaultMinFreeBytes, "free space the data disk keeps; below it writes get 503 (0: off)")
	intVar(f, &o.maxUserProperties, "max-user-properties", "HARK_MAX_USER_PROPERTIES", engine.DefaultMaxUserProperties, "custom properties a user may have")
	sizeVar(f, &o.maxUserBytes, "max-user-bytes", "HARK_MAX_USER_BYTES", engine.DefaultMaxUserBytes, "encoded size a user's properties may take")
	durationVar(f, &o.pluginCallTimeout, "plugin-call-timeout", envDuration("HARK_PLUGIN_CALL_TIMEOUT", host.DefaultCallTimeout), "time limit of one source plugin call; past it the delivery gets 503 (HARK_PLUGIN_CALL_TIMEOUT)")
	f.StringVar(&o.retrySchedule, "delivery-retry-schedule", envOr("HARK_DELIVERY_RETRY_SCHEDULE", delivery.DefaultScheduleText),
		"waits before each delivery attempt, comma-separated (1d12h takes days); after the last, a delivery is FAILED (HARK_DELIVERY_RETRY_SCHEDULE)")
	f.BoolVar(&o.allowPrivateDestinations, "allow-private-destinations", envBool("HARK_ALLOW_PRIVATE_DESTINATIONS"),
		"let destinations reach loopback, private and link-local addresses: for on-premise receivers (HARK_ALLOW_PRIVATE_DESTINATIONS)")
	f.StringVar(&o.logLevel, "log-level", envOr("HARK_LOG_LEVEL", "info"), "debug, info, warn or error (HARK_LOG_LEVEL)")
	f.StringVar(&o.logFormat, "log-format", envOr("HARK_LOG_FORMAT", "text"), "text or json (HARK_LOG_FORMAT)")
	f.BoolVar(&o.noConsole, "no-console", envBool("HARK_NO_CONSOLE"), "do not serve the web console at / (HARK_NO_CONSOLE)")
	f.StringVar(&o.store, "store", envOr("HARK_STORE", "badger"), "where state lives: badger (in --data-dir) or nats://host:4222[,host:4222…], a JetStream cluster shared by every node (HARK_STORE)")
	f.StringVar(&o.natsCreds, "nats-creds", envOr("HARK_NATS_CREDS", ""), "credentials file for --store nats:// (HARK_NATS_CREDS)")
	f.StringVar(&o.natsTLSCA, "nats-tls-ca", envOr("HARK_NATS_TLS_CA", ""), "CA certificate file that signs the NATS servers' certificates (HARK_NATS_TLS_CA)")
	intVar(f, &o.natsReplicas, "nats-replicas", "HARK_NATS_REPLICAS", 3, "servers that keep each copy of hark's stream on --store nats:// (1 only for a single test server)")
	f.BoolVar(&o.demo, "demo", false, "seed a demo source, workflow and trigger on first start, and print how to try them")
	return cmd
}

func runServe(ctx context.Context, o serveOptions) error {
	// Only serve stops on SIGINT/SIGTERM: `hark plugin` processes are ended
	// by their host, not by signals meant for it.
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	log, err := newLogger(o.logLevel, o.logFormat)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	defer ln.Close()
	publicURL := o.publicURL
	if publicURL == "" {
		publicURL = "http://" + ln.Addr().String()
	}
	schedule, err := delivery.ParseSchedule(o.retrySchedule)
	if err != nil {
		return fmt.Errorf("--delivery-retry-schedule: %w", err)
	}
	builtins, err := builtinCommands()
	if err != nil {
		return err
	}
	srv, err := server.New(ctx, server.Config{
		DataDir:        o.dataDir,
		Store:          o.store,
		NATSCreds:      o.natsCreds,
		NATSTLSCA:      o.natsTLSCA,
		NATSReplicas:   o.natsReplicas,
		PublicURL:      publicURL,
		AdminToken:     os.Getenv("HARK_ADMIN_TOKEN"),
		Logger:         log,
		PluginDir:      o.pluginDir,
		BuiltinPlugins: builtins,
		EventRetention: o.eventRetention,
		RunRetention:   o.runRetention,

		MaxBodyBytes:      o.maxBody,
		IngestMemory:      o.ingestMemory,
		BodyTimeout:       o.bodyTimeout,
		MaxConnections:    o.maxConnections,
		HTTP2MaxStreams:   o.http2MaxStreams,
		MinFreeDisk:       minFreeDisk(o.minFreeDisk),
		MaxUserProperties: o.maxUserProperties,
		MaxUserBytes:      int(o.maxUserBytes),
		PluginCallTimeout: o.pluginCallTimeout,

		DeliverySchedule:         schedule,
		AllowPrivateDestinations: o.allowPrivateDestinations,
		NoConsole:                o.noConsole,
	})
	if err != nil {
		return err
	}
	defer srv.Close()

	base := "http://" + ln.Addr().String()
	if token, generated := srv.AdminToken(); generated {
		abs, _ := filepath.Abs(filepath.Join(o.dataDir, server.AdminTokenFile))
		fmt.Printf("Generated an admin token (saved in %s; shown only this once):\n\n    %s\n\n", abs, token)
		fmt.Printf("Use it as a bearer token, e.g.:\n\n    curl -H 'Authorization: Bearer %s' %s/v1/environments\n\n", token, base)
	}

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	if o.demo {
		// Seeded through the API, as a user would: the server is already
		// answering on ln.
		token, _ := srv.AdminToken()
		if err := seedDemo(ctx, demoConfig{
			base: clientBase(base), token: token, dataDir: o.dataDir,
			tokenFromEnv: strings.TrimSpace(os.Getenv("HARK_ADMIN_TOKEN")) != "",
		}, os.Stdout); err != nil {
			stop()
			_ = srv.Shutdown(context.Background())
			<-errc
			return fmt.Errorf("--demo: %w", err)
		}
	}
	if !o.noConsole {
		fmt.Printf("The console is at %s/ (sign in with the admin token)\n", base)
	}
	fmt.Printf("hark is listening on %s (webhook URLs start with %s)\n", base, publicURL)

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing in-flight requests")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return <-errc
}

// minFreeDisk maps the flag's 0 (off) to the store's negative (off).
func minFreeDisk(n int64) int64 {
	if n == 0 {
		return -1
	}
	return n
}

func newLogger(level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	default:
		return nil, fmt.Errorf("--log-format must be text or json, not %q", format)
	}
}
