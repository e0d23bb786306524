package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/harkhq/hark/engine/natsstore/natsembed"
	"github.com/harkhq/hark/server"
)

// newDevCommand is `hark dev`: local setups for trying hark out.
func newDevCommand(g *globalOptions) *cobra.Command {
	dev := &cobra.Command{
		Use:   "dev",
		Short: "Local setups for trying hark out",
	}
	var o devClusterOptions
	cluster := &cobra.Command{
		Use:   "cluster",
		Short: "Run a local NATS JetStream cluster and hark nodes on it",
		Long: `Run cluster mode on this machine: a 3-server NATS JetStream cluster in this
process (nats-server embedded, on 127.0.0.1, state in <data-dir>/dev-cluster/nats)
and --nodes hark nodes, each a 'hark serve --store nats://…' process with its
own data dir, sharing one admin token (HARK_ADMIN_TOKEN, or one generated and
saved in <data-dir>/dev-cluster). Every node serves the same state: configure
on one, send events to another. Ctrl-C stops it all; the next run finds the
state again. It is for seeing cluster mode work, not for production: there,
run the NATS servers on their own machines (README "Running more than one
node").`,
		Example: `  hark dev cluster
  hark dev cluster --nodes 3 --port 9080`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.dataDir = g.dataDir
			return runDevCluster(cmd.Context(), o)
		},
	}
	f := cluster.Flags()
	f.IntVar(&o.nodes, "nodes", 2, "hark nodes to run")
	f.IntVar(&o.port, "port", 8080, "HTTP port of the first hark node; the others take the next ones")
	f.IntVar(&o.natsPort, "nats-port", 4222, "client port of the first NATS server; the others take the next ones")
	dev.AddCommand(cluster)
	return dev
}

type devClusterOptions struct {
	dataDir               string
	nodes, port, natsPort int
}

func runDevCluster(ctx context.Context, o devClusterOptions) error {
	if o.nodes < 1 {
		return fmt.Errorf("--nodes must be at least 1")
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	dir := filepath.Join(o.dataDir, "dev-cluster")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	token, _, err := server.LoadAdminToken(dir, os.Getenv("HARK_ADMIN_TOKEN"))
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find the hark binary: %w", err)
	}
	nats, err := natsembed.Start(ctx, natsembed.Config{Dir: filepath.Join(dir, "nats"), Servers: 3, BasePort: o.natsPort})
	if err != nil {
		return fmt.Errorf("start the NATS cluster: %w", err)
	}
	defer nats.Close()
	fmt.Printf("NATS JetStream cluster of 3 servers: %s\n", nats.URL())

	exited := make(chan error, o.nodes)
	var nodes []*exec.Cmd
	running := 0
	defer func() {
		for _, cmd := range nodes {
			_ = cmd.Process.Signal(syscall.SIGTERM) // a node that is gone ignores it
		}
		for ; running > 0; running-- {
			<-exited
		}
	}()
	for i := range o.nodes {
		listen := "127.0.0.1:" + strconv.Itoa(o.port+i)
		args := []string{"serve", "--data-dir", filepath.Join(dir, "node-"+strconv.Itoa(i+1)),
			"--listen", listen, "--store", nats.URL()}
		cmd := exec.Command(self, args...)
		cmd.Env = append(os.Environ(), "HARK_ADMIN_TOKEN="+token)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("start node %d: %w", i+1, err)
		}
		nodes = append(nodes, cmd)
		running++
		go func() { exited <- cmd.Wait() }()
		fmt.Printf("node %d: hark %s\n", i+1, strings.Join(args, " "))
	}
	fmt.Printf("\nThe admin token of every node: %s\nTry: curl -H 'Authorization: Bearer %s' http://127.0.0.1:%d/v1/environments\n\n", token, token, o.port)

	select {
	case <-ctx.Done():
		return nil
	case err := <-exited:
		// A node stopped by itself: stop the others, and say so.
		running--
		if err == nil {
			err = errors.New("it exited without an error")
		}
		return fmt.Errorf("a hark node stopped: %w", err)
	}
}
