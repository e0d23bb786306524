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
	"strings"
	"time"

	"github.com/spf13/cobra"
)

func main() {
	cmd, err := newRootCommand().ExecuteContextC(context.Background())
	if err != nil {
		printError(os.Stderr, withUsage(cmd, err))
		os.Exit(1)
	}
}

// withUsage turns the command-line errors cobra makes itself, which reach
// main as plain errors, into usage errors with a hint: a missing required
// flag shows the usage line, an unknown command points at --help.
func withUsage(cmd *cobra.Command, err error) error {
	if cmd == nil {
		return err
	}
	msg := err.Error()
	switch {
	case strings.HasPrefix(msg, "required flag(s)"):
		return usageError{err, "usage: " + cmd.UseLine()}
	case strings.HasPrefix(msg, "unknown command"):
		return usageError{err, fmt.Sprintf("see '%s --help'", cmd.CommandPath())}
	}
	return err
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
	dev := newDevCommand(g)
	dev.GroupID = "server"
	root.AddCommand(serve, backup, restore, dev, newPluginCommand(), newVersionCommand(g))
	for _, c := range []*cobra.Command{
		newEnvCommand(g), newSourcesCommand(g), newEventsCommand(g), newWorkflowsCommand(g),
		newTriggersCommand(g), newUsersCommand(g), newTenantsCommand(g), newObjectsCommand(g), newAudiencesCommand(g), newRunsCommand(g), newSendCommand(g),
		newDestinationsCommand(g), newDeliveriesCommand(g), newListenCommand(),
		newExportCommand(g), newApplyCommand(g), newPromoteCommand(g),
	} {
		c.GroupID = "manage"
		root.AddCommand(c)
	}
	completeSourceFlags(g, root)
	setVersion(root)
	strictArgs(root)
	return root
}

// strictArgs makes the arguments of every command below c checked the way
// people expect: a command group (hark triggers) refuses an unknown
// subcommand — cobra would print the group's help and exit 0 — and shows its
// help when given none; a wrong argument count shows the usage line.
func strictArgs(c *cobra.Command) {
	for _, sub := range c.Commands() {
		switch {
		case sub.HasSubCommands() && !sub.Runnable():
			sub.Args = unknownSubcommand
			sub.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
			sub.DisableFlagsInUseLine = true // "hark triggers [command]" says it
		case sub.Args != nil:
			sub.Args = withUsageLine(sub.Args)
		}
		strictArgs(sub)
	}
}

// unknownSubcommand is the Args of a command group: any argument is a
// subcommand that does not exist.
func unknownSubcommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2 // cobra's default, which only its root check applies
	}
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += "\n\nDid you mean this?\n\t" + strings.Join(s, "\n\t") + "\n"
	}
	return usageError{fmt.Errorf("%s", msg), fmt.Sprintf("see '%s --help'", cmd.CommandPath())}
}

// withUsageLine wraps an Args check so that its error carries the usage
// line; cobra's NoArgs error ("unknown command") is reworded for a command
// that simply takes no arguments.
func withUsageLine(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		err := check(cmd, args)
		if err == nil {
			return nil
		}
		if strings.HasPrefix(err.Error(), "unknown command") {
			err = fmt.Errorf("%s takes no arguments, got %q", cmd.CommandPath(), args)
		}
		return usageError{err, "usage: " + cmd.UseLine()}
	}
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

// envBool is a boolean environment variable: true for 1, true, yes or on
// (any case), false otherwise.
func envBool(name string) bool {
	switch strings.ToLower(strings.TrimSpace(os.Getenv(name))) {
	case "1", "true", "yes", "on":
		return true
	}
	return false
}

// envDuration is envOr for durations, read as parseDuration reads them
// (days too: HARK_EVENT_RETENTION=30d); an unparsable value falls back to
// def, with a warning.
func envDuration(name string, def time.Duration) time.Duration {
	v, ok := os.LookupEnv(name)
	if !ok || v == "" {
		return def
	}
	d, err := parseDuration(v)
	if err != nil {
		fmt.Fprintf(os.Stderr, "hark: ignoring %s=%q: %v\n", name, v, err)
		return def
	}
	return d
}
