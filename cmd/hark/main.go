// Command hark is the hark server and, in later stages, its client.
//
//	hark serve    run the server (embedded Badger in --data-dir)
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
		fmt.Fprintln(os.Stderr, "hark:", err)
		os.Exit(1)
	}
}

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "hark",
		Short:         "hark turns product-analytics events into notification workflow runs",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newServeCommand(), newPluginCommand())
	return root
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
