package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"connectrpc.com/connect"

	harkv1 "github.com/harkhq/hark/gen/hark/v1"
	"github.com/harkhq/hark/server"
)

// What `hark serve --demo` seeds.
const (
	demoSource   = "Demo"
	demoType     = "segment"
	demoWorkflow = "welcome"
	demoEnv      = "development"
	demoEvent    = "Signed Up"
	demoFile     = "demo-event.json"
)

// demoPayload is the sample delivery: a Segment HTTP API batch whose identify
// makes the user known before the track names them as the recipient. The
// message ids are fixed on purpose: sent twice, the batch shows idempotency.
const demoPayload = `{
  "batch": [
    {
      "type": "identify",
      "messageId": "demo-identify-1",
      "userId": "demo-user",
      "traits": {"name": "Ada Lovelace", "email": "ada@example.com", "plan": "free"}
    },
    {
      "type": "track",
      "messageId": "demo-track-1",
      "userId": "demo-user",
      "event": "Signed Up",
      "properties": {"plan": "free", "referrer": "newsletter"}
    }
  ],
  "context": {"library": {"name": "hark-demo"}}
}
`

// demoConfig is what seedDemo needs to know about the server it seeds.
type demoConfig struct {
	base         string // the server's URL, as a client on this machine reaches it
	token        string // the admin token
	dataDir      string
	tokenFromEnv bool // the token is HARK_ADMIN_TOKEN's, not the data dir's file
}

// seedDemo creates the demo through the API of the server that has just
// started, unless sources exist already, and prints the commands to try it.
// It never creates duplicates: a later start finds the source by name.
func seedDemo(ctx context.Context, c demoConfig, out io.Writer) error {
	a := newAPI(c.base, c.token, 30*time.Second, io.Discard, false)
	srcs, _, err := a.listSources(ctx, 0)
	if err != nil {
		return fmt.Errorf("list sources: %w", err)
	}
	var src *harkv1.Source
	for _, s := range srcs {
		if s.GetName() == demoSource && s.GetType() == demoType {
			src = s
			break
		}
	}
	switch {
	case src == nil && len(srcs) > 0:
		fmt.Fprintf(out, "--demo: sources exist already and none is named %q, so nothing was seeded.\n\n", demoSource)
		return nil
	case src == nil:
		if src, err = createDemo(ctx, a); err != nil {
			return err
		}
		fmt.Fprintf(out, "Demo seeded: a Segment source %q (%s), a workflow %q, and a\n"+
			"%s trigger that starts %q for the userId of every track %q event.\n"+
			"Identify and idempotency are on for the source in %s.\n",
			demoSource, src.GetId(), demoWorkflow, demoEnv, demoWorkflow, demoEvent, demoEnv)
	default:
		fmt.Fprintf(out, "Demo: source %q (%s), workflow %q, trigger on track %q in %s.\n",
			demoSource, src.GetId(), demoWorkflow, demoEvent, demoEnv)
	}
	file := filepath.Join(c.dataDir, demoFile)
	if err := writeIfMissing(file, demoPayload); err != nil {
		return err
	}
	printDemoHints(out, c, src.GetId(), file)
	return nil
}

// createDemo creates the demo's source, workflow, settings and trigger.
func createDemo(ctx context.Context, a *api) (*harkv1.Source, error) {
	res, err := a.sources.CreateSource(ctx, connect.NewRequest(&harkv1.CreateSourceRequest{Name: demoSource, Type: demoType}))
	if err != nil {
		return nil, fmt.Errorf("create the source: %w", err)
	}
	src := res.Msg.GetSource()
	_, err = a.workflows.CreateWorkflow(ctx, connect.NewRequest(&harkv1.CreateWorkflowRequest{
		Key: demoWorkflow, Name: "Welcome", Description: "Sent when a user signs up (hark serve --demo)",
	}))
	if err != nil && connect.CodeOf(err) != connect.CodeAlreadyExists {
		return nil, fmt.Errorf("create the workflow: %w", err)
	}
	_, err = a.sources.UpdateSourceEnvironment(ctx, connect.NewRequest(&harkv1.UpdateSourceEnvironmentRequest{
		SourceId: src.GetId(), Environment: demoEnv, IdentifyEnabled: new(true), IdempotencyEnabled: new(true),
	}))
	if err != nil {
		return nil, fmt.Errorf("turn identify and idempotency on: %w", err)
	}
	_, err = a.triggers.CreateTrigger(ctx, connect.NewRequest(&harkv1.CreateTriggerRequest{
		Environment: demoEnv, WorkflowKey: demoWorkflow, SourceId: src.GetId(),
		EventType: "track", Event: demoEvent,
		Mapping: &harkv1.TriggerMapping{Recipients: "userId", Data: "properties"},
	}))
	if err != nil {
		return nil, fmt.Errorf("create the trigger: %w", err)
	}
	return src, nil
}

func writeIfMissing(path, content string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("write the sample event: %w", err)
	}
	if _, err := f.WriteString(content); err != nil {
		f.Close()
		return fmt.Errorf("write the sample event: %w", err)
	}
	return f.Close()
}

// printDemoHints prints the commands that send the sample and show the run,
// with the exports they need when the server is not where the client looks
// by default.
func printDemoHints(out io.Writer, c demoConfig, sourceID, file string) {
	var exports []string
	if c.base != defaultServer {
		exports = append(exports, "export HARK_SERVER="+c.base)
	}
	switch {
	case c.tokenFromEnv:
		exports = append(exports, `export HARK_TOKEN="$HARK_ADMIN_TOKEN"`)
	case filepath.Clean(c.dataDir) != filepath.Clean(server.DefaultDataDir):
		if abs, err := filepath.Abs(c.dataDir); err == nil {
			c.dataDir = abs
			file = filepath.Join(abs, demoFile)
		}
		exports = append(exports, "export HARK_DATA_DIR="+shellQuote(c.dataDir))
	}
	fmt.Fprintf(out, "\nTry it from another terminal: send the sample batch (an identify, then a track %q)\n", demoEvent)
	fmt.Fprintf(out, "and see the run it starts:\n\n")
	for _, e := range exports {
		fmt.Fprintf(out, "    %s\n", e)
	}
	cli, build := cliName()
	if build != "" {
		fmt.Fprintf(out, "    %s\n", build)
	}
	fmt.Fprintf(out, "    %s send --env %s --source %s %s\n", cli, demoEnv, sourceID, shellQuote(file))
	fmt.Fprintf(out, "    %s runs list --env %s\n", cli, demoEnv)
	fmt.Fprintf(out, "    %s runs watch --env %s    # follows new runs; Ctrl-C stops it\n", cli, demoEnv)
	fmt.Fprintf(out, "\nThen: %s events list --env %s shows what hark did with each event; sending the\n", cli, demoEnv)
	fmt.Fprintf(out, "same file again is dropped as a duplicate (status idempotent), so no second run starts.\n\n")
}

// cliName is how the hints name the CLI: as this process was started
// ("./hark", "hark"), or, under `go run` (a binary in Go's build cache that
// is gone when it stops), ./hark with the command that builds it.
func cliName() (name, build string) {
	exe, _ := os.Executable()
	if strings.Contains(exe, "go-build") {
		return "./hark", "go build -o hark ./cmd/hark"
	}
	if len(os.Args) > 0 && os.Args[0] != "" {
		return os.Args[0], ""
	}
	return "hark", ""
}

// clientBase is base as a client on this machine reaches it: a server
// listening on every address (0.0.0.0, ::) is reached at 127.0.0.1.
func clientBase(base string) string {
	u, err := url.Parse(base)
	if err != nil {
		return base
	}
	if ip := net.ParseIP(u.Hostname()); ip != nil && ip.IsUnspecified() {
		u.Host = net.JoinHostPort("127.0.0.1", u.Port())
	}
	return u.String()
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '/' || r == '.' || r == '-' || r == '_' || r == ':' || r == '=') {
			return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
		}
	}
	return s
}
