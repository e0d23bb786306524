// Command hark is the hark server and its client.
//
//	hark serve       run the server (embedded Badger in --data-dir)
//	hark sources …   and the other client commands: manage a server over
//	                 its Connect API (--server, --token, -o table|json)
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
)

func main() {
	if err := newRootCommand().ExecuteContext(context.Background()); err != nil {
		printError(os.Stderr, err)
		os.Exit(1)
	}
}

func newRootCommand() *cobra.Command {
	g := &globalOptions{}
	root := &cobra.Command{
		Use:   "hark",
		Short: "hark turns product-analytics events into notification workflow runs",
		Long: `hark turns product-analytics events into notification workflow runs.

The same binary runs the server (hark serve) and manages it: every other
command is a client of the server's API at --server (HARK_SERVER), with the
admin token from --token (HARK_TOKEN) or, for a server on this machine, from
the admin-token file in --data-dir (HARK_DATA_DIR).

Start with:  hark serve --demo`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	g.bind(root)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{err, fmt.Sprintf("see '%s --help'", c.CommandPath())}
	})
	root.AddGroup(
		&cobra.Group{ID: "server", Title: "Server:"},
		&cobra.Group{ID: "manage", Title: "Manage a server:"},
	)
	serve := newServeCommand(g)
	serve.GroupID = "server"
	backup, restore := newBackupCommand(g), newRestoreCommand(g)
	backup.GroupID, restore.GroupID = "server", "server"
	root.AddCommand(serve, backup, restore, newPluginCommand())
	for _, c := range []*cobra.Command{
		newEnvCommand(g), newSourcesCommand(g), newEventsCommand(g), newWorkflowsCommand(g),
		newTriggersCommand(g), newUsersCommand(g), newRunsCommand(g), newSendCommand(g),
	} {
		c.GroupID = "manage"
		root.AddCommand(c)
	}
	completeSourceFlags(g, root)
	return root
}

// completeSourceFlags completes every --source flag with the server's
// source ids.
func completeSourceFlags(g *globalOptions, c *cobra.Command) {
	if c.Flags().Lookup("source") != nil {
		_ = c.RegisterFlagCompletionFunc("source", g.completeSources())
	}
	for _, sub := range c.Commands() {
		completeSourceFlags(g, sub)
	}
}

// envOr returns the environment variable's value, or def when it is unset:
// flags take their defaults from HARK_* variables, and an explicit flag wins.
func envOr(name, def string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return def
}

// envDuration is envOr for durations; an unparsable value falls back to def
// and is reported when the flag is parsed from it.
func envDuration(name string, def time.Duration) time.Duration {
	v, ok := os.LookupEnv(name)
	if !ok || v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		fmt.Fprintf(os.Stderr, "hark: ignoring %s=%q: %v\n", name, v, err)
		return def
	}
	return d
}
