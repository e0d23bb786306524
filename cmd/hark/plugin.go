package main

import (
	"fmt"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	httpsource "github.com/harkhq/hark/plugins/http"
	"github.com/harkhq/hark/plugins/segment"
)

// builtinPlugins are the source plugins inside the hark binary. hark serve
// runs each as a separate process by re-executing itself as
// `hark plugin <type>`, so a plugin crash costs only its own deliveries.
var builtinPlugins = map[string]func(){
	"segment": segment.Serve,
	"http":    httpsource.Serve,
}

// newPluginCommand is the hidden entry point of built-in plugins.
func newPluginCommand() *cobra.Command {
	return &cobra.Command{
		Use:    "plugin TYPE",
		Short:  "Run a built-in source plugin (started by hark serve, not by hand)",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			serve, ok := builtinPlugins[args[0]]
			if !ok {
				return fmt.Errorf("no built-in plugin %q (built in: %s)", args[0], strings.Join(slices.Sorted(maps.Keys(builtinPlugins)), ", "))
			}
			serve()
			return nil
		},
	}
}

// builtinCommands returns, for hark serve, the command that starts each
// built-in plugin: this very binary.
func builtinCommands() (map[string]func() *exec.Cmd, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find the hark binary to run built-in plugins: %w", err)
	}
	out := map[string]func() *exec.Cmd{}
	for name := range builtinPlugins {
		out[name] = func() *exec.Cmd { return exec.Command(self, "plugin", name) }
	}
	return out, nil
}
