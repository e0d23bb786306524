package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	"github.com/harkhq/hark/gen/hark/v1/harkv1connect"
	"github.com/harkhq/hark/server"
)

// defaultServer is where the client commands look for hark when neither
// --server nor HARK_SERVER says otherwise: hark serve's default address.
const defaultServer = "http://" + server.DefaultListen

// globalOptions are the root command's persistent flags. --data-dir is
// shared by hark serve (where the database lives) and the client commands
// (where they find the admin token of a local server), so one flag and one
// variable, HARK_DATA_DIR, mean the same directory for both.
type globalOptions struct {
	server  string
	token   string
	dataDir string
	output  string
	timeout time.Duration
}

func (g *globalOptions) bind(cmd *cobra.Command) {
	f := cmd.PersistentFlags()
	f.StringVar(&g.server, "server", envOr("HARK_SERVER", defaultServer), "URL of the hark server (HARK_SERVER)")
	f.StringVar(&g.token, "token", envOr("HARK_TOKEN", ""), "admin token (HARK_TOKEN; default: read <data-dir>/admin-token when the server is local)")
	f.StringVar(&g.dataDir, "data-dir", envOr("HARK_DATA_DIR", server.DefaultDataDir), "hark's data directory: the database (serve) and the admin token file (HARK_DATA_DIR)")
	f.StringVarP(&g.output, "output", "o", "table", "output format: table or json")
	durationVar(f, &g.timeout, "timeout", envDuration("HARK_TIMEOUT", 30*time.Second), "time limit of one API call, e.g. 30s, 5m; 0 is none; streams are not limited (HARK_TIMEOUT)")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"table", "json"}, cobra.ShellCompDirectiveNoFileComp))
}

// check validates the options every client command uses.
func (g *globalOptions) check() error {
	switch g.output {
	case "table", "json":
	default:
		return usageError{fmt.Errorf("-o must be table or json, not %q", g.output), ""}
	}
	return nil
}

// api is what a client command works with: the Connect clients of every
// service, where output goes and in which format.
type api struct {
	base     string // server URL, without a trailing slash
	out      io.Writer
	errOut   io.Writer // notes beside the output, such as "more results"
	json     bool
	timeout  time.Duration
	http     *http.Client
	tokenSrc string // where the token came from, for the Unauthenticated hint

	envs      harkv1connect.EnvironmentServiceClient
	sources   harkv1connect.SourceServiceClient
	events    harkv1connect.EventServiceClient
	workflows harkv1connect.WorkflowServiceClient
	triggers  harkv1connect.TriggerServiceClient
	users     harkv1connect.UserServiceClient
	tenants   harkv1connect.TenantServiceClient
	objects   harkv1connect.ObjectServiceClient
	audiences harkv1connect.AudienceServiceClient
	runs      harkv1connect.WorkflowRunServiceClient

	destinations harkv1connect.DestinationServiceClient
	deliveries   harkv1connect.DeliveryServiceClient
}

// newAPI builds the clients for base with token. The HTTP client has no
// overall timeout, because Watch* streams last until the user stops them;
// unary calls are bounded by timeout through the interceptor instead.
func newAPI(base, token string, timeout time.Duration, out io.Writer, asJSON bool) *api {
	a := &api{
		base:    strings.TrimRight(base, "/"),
		out:     out,
		errOut:  os.Stderr,
		json:    asJSON,
		timeout: timeout,
		http:    &http.Client{Transport: http.DefaultTransport},
	}
	opts := connect.WithInterceptors(bearer{token: token, timeout: timeout})
	a.envs = harkv1connect.NewEnvironmentServiceClient(a.http, a.base, opts)
	a.sources = harkv1connect.NewSourceServiceClient(a.http, a.base, opts)
	a.events = harkv1connect.NewEventServiceClient(a.http, a.base, opts)
	a.workflows = harkv1connect.NewWorkflowServiceClient(a.http, a.base, opts)
	a.triggers = harkv1connect.NewTriggerServiceClient(a.http, a.base, opts)
	a.users = harkv1connect.NewUserServiceClient(a.http, a.base, opts)
	a.tenants = harkv1connect.NewTenantServiceClient(a.http, a.base, opts)
	a.objects = harkv1connect.NewObjectServiceClient(a.http, a.base, opts)
	a.audiences = harkv1connect.NewAudienceServiceClient(a.http, a.base, opts)
	a.runs = harkv1connect.NewWorkflowRunServiceClient(a.http, a.base, opts)
	a.destinations = harkv1connect.NewDestinationServiceClient(a.http, a.base, opts)
	a.deliveries = harkv1connect.NewDeliveryServiceClient(a.http, a.base, opts)
	return a
}

// run is the body of every client command: it resolves the server and the
// token, calls fn, and adds a hint to the errors a user can fix.
func (g *globalOptions) run(cmd *cobra.Command, fn func(ctx context.Context, a *api) error) error {
	if err := g.check(); err != nil {
		return err
	}
	base, err := serverURL(g.server)
	if err != nil {
		return err
	}
	token, src := g.resolveToken(base)
	a := newAPI(base, token, g.timeout, cmd.OutOrStdout(), g.output == "json")
	a.tokenSrc = src
	a.errOut = cmd.ErrOrStderr()
	return a.explain(fn(cmd.Context(), a))
}

// serverURL checks --server and adds http:// when the scheme is missing, so
// `--server localhost:8080` works.
func serverURL(raw string) (string, error) {
	s := strings.TrimSpace(raw)
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", usageError{fmt.Errorf("--server %q is not an http(s) URL such as %s", raw, defaultServer), ""}
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// resolveToken returns the admin token and a description of where it came
// from: --token or HARK_TOKEN, else, for a server on this machine, the token
// file hark serve saved in the data dir. A remote server never gets the
// local file's token: it belongs to another hark.
func (g *globalOptions) resolveToken(base string) (token, source string) {
	if t := strings.TrimSpace(g.token); t != "" {
		return t, "the token from --token/HARK_TOKEN was refused"
	}
	if !isLocal(base) {
		return "", "no token was sent: --token and HARK_TOKEN are unset (and the server is not on this machine, so no token file is read)"
	}
	path := filepath.Join(g.dataDir, server.AdminTokenFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Sprintf("no token was sent: --token and HARK_TOKEN are unset, and %s cannot be read (%v)", path, errors.Unwrap(err))
	}
	return strings.TrimSpace(string(b)), "the token read from " + path + " was refused"
}

// isLocal reports whether base names this machine.
func isLocal(base string) bool {
	u, err := url.Parse(base)
	if err != nil {
		return false
	}
	host := u.Hostname()
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// bearer adds the admin token to every call and bounds unary calls.
type bearer struct {
	token   string
	timeout time.Duration
}

func (b bearer) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if b.token != "" {
			req.Header().Set("Authorization", "Bearer "+b.token)
		}
		if b.timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, b.timeout)
			defer cancel()
		}
		return next(ctx, req)
	}
}

func (b bearer) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		conn := next(ctx, spec)
		if b.token != "" {
			conn.RequestHeader().Set("Authorization", "Bearer "+b.token)
		}
		return conn
	}
}

func (b bearer) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}

// hintError is an error with advice on what to do about it; main prints the
// hint on its own line.
type hintError struct {
	err  error
	hint string
}

func (e *hintError) Error() string { return e.err.Error() }
func (e *hintError) Unwrap() error { return e.err }

// usageError is a mistake in the command line itself.
type usageError struct {
	err  error
	hint string
}

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// explain adds a hint to the errors whose cause is the command line or the
// environment rather than the request: a refused token, a server that does
// not answer.
func (a *api) explain(err error) error {
	if err == nil {
		return nil
	}
	switch connect.CodeOf(err) {
	case connect.CodeUnauthenticated:
		return &hintError{err, fmt.Sprintf("%s.\n"+
			"      Give the admin token hark serve printed on first start with --token or HARK_TOKEN; for a server\n"+
			"      on this machine, --data-dir or HARK_DATA_DIR naming its data dir also works (the token is in <data-dir>/%s).",
			a.tokenSrc, server.AdminTokenFile)}
	case connect.CodeUnavailable, connect.CodeUnknown:
		if isConnError(err) {
			return &hintError{err, fmt.Sprintf("is hark serve running at %s? Set --server or HARK_SERVER to its URL", a.base)}
		}
	}
	return err
}

// isConnError reports whether err is a failure to reach the server at all.
func isConnError(err error) bool {
	var op *net.OpError
	var dns *net.DNSError
	return errors.As(err, &op) || errors.As(err, &dns) || errors.Is(err, syscall.ECONNREFUSED)
}

// signalContext is ctx, cancelled on SIGINT or SIGTERM: streaming commands
// end cleanly when the user presses Ctrl-C.
func signalContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
}

// completionFunc is a cobra completion function.
type completionFunc = func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective)

// complete makes a shell completion from a server call. Completion must not
// print errors or wait long: a server that is down completes nothing.
func (g *globalOptions) complete(list func(ctx context.Context, a *api) ([]string, error)) completionFunc {
	return func(cmd *cobra.Command, _ []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
		base, err := serverURL(g.server)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		token, _ := g.resolveToken(base)
		ctx, cancel := context.WithTimeout(cmd.Context(), 3*time.Second)
		defer cancel()
		out, err := list(ctx, newAPI(base, token, 3*time.Second, io.Discard, false))
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// completeSources completes source ids, described by name and type.
func (g *globalOptions) completeSources() completionFunc {
	return g.complete(func(ctx context.Context, a *api) ([]string, error) {
		srcs, _, err := a.listSources(ctx, maxPage)
		var out []string
		for _, s := range srcs {
			out = append(out, s.GetId()+"\t"+s.GetName()+" ("+s.GetType()+")")
		}
		return out, err
	})
}
