package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/harkhq/hark/engine/natsstore/natsembed"
)

// natsCommand runs the 3-server NATS JetStream cluster of --cluster in a
// process of its own, so its CPU is measured apart from hark's.
const natsCommand = "nats-child"

// benchCluster is what --cluster starts: the NATS process and the hark
// nodes on it.
type benchCluster struct {
	nats  *childServer
	nodes []*childServer
}

// startCluster starts the NATS cluster and n hark nodes on it, sharing one
// admin token.
func startCluster(ctx context.Context, n int) (*benchCluster, error) {
	token := "bench_" + rand.Text()
	natsProc, err := startChildWith(ctx, natsCommand, token, "nats ")
	if err != nil {
		return nil, fmt.Errorf("start the NATS cluster: %w", err)
	}
	c := &benchCluster{nats: natsProc}
	for range n {
		node, err := startChildWith(ctx, childCommand, token, "listening ", "--store", natsProc.url)
		if err != nil {
			c.stop()
			return nil, err
		}
		node.url = "http://" + node.url
		c.nodes = append(c.nodes, node)
	}
	return c, nil
}

func (c *benchCluster) stop() {
	for _, n := range c.nodes {
		n.stop()
	}
	c.nats.stop()
}

// cpu is the hark nodes' CPU (servers and plugins), and NATS's as a third
// figure.
func (c *benchCluster) cpu() cpuUse {
	var u cpuUse
	for _, n := range c.nodes {
		v := n.cpu()
		u.server += v.server
		u.plugins += v.plugins
	}
	u.nats = cpuSeconds(c.nats.cmd.Process.Pid)
	return u
}

func (c *benchCluster) peakRSS() float64 {
	total := 0.0
	for _, n := range c.nodes {
		total += n.peakRSS()
	}
	return total
}

// natsTraffic sums, over the nodes, the messages sent to NATS and received
// from it and the ingest commits, from their /metrics (a series a node's
// /metrics lacks counts nothing).
func (c *benchCluster) natsTraffic(ctx context.Context, hc *http.Client, token string) (sent, received, commits float64) {
	for _, n := range c.nodes {
		m := scrape(ctx, hc, n.url, token, "hark_nats_sent_messages_total", "hark_nats_received_messages_total", "hark_ingest_commit_duration_seconds_count")
		sent += max(0, m[0])
		received += max(0, m[1])
		commits += max(0, m[2])
	}
	return sent, received, commits
}

// scrape reads the named unlabelled series from a server's /metrics; -1 for
// each it cannot.
func scrape(ctx context.Context, hc *http.Client, base, token string, names ...string) []float64 {
	out := make([]float64, len(names))
	for i := range out {
		out[i] = -1
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return out
	}
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := hc.Do(req)
	if err != nil {
		return out
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		for i, name := range names {
			if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
				out[i], _ = strconv.ParseFloat(v, 64)
			}
		}
	}
	return out
}

// runNATSChild is the NATS side of --cluster: three JetStream servers in
// this process, on free loopback ports, until SIGTERM.
func runNATSChild(args []string) error {
	fs := flag.NewFlagSet(natsCommand, flag.ContinueOnError)
	dir := fs.String("data-dir", "", "data dir")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c, err := natsembed.Start(ctx, natsembed.Config{Dir: *dir})
	if err != nil {
		return err
	}
	defer c.Close()
	fmt.Println("nats " + c.URL())
	<-ctx.Done()
	return nil
}

// startChildWith starts this binary's command in a process of its own with
// a temporary data dir and the admin token, and returns once it printed the
// line starting with ready (the rest of it is the child's address).
func startChildWith(ctx context.Context, command, token, ready string, args ...string) (*childServer, error) {
	dir, err := os.MkdirTemp("", "hark-bench-")
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, os.Args[0], append([]string{command, "--data-dir", dir}, args...)...)
	cmd.Env = append(os.Environ(), "HARK_ADMIN_TOKEN="+token)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &childServer{cmd: cmd, token: token, dir: dir}
	lines := bufio.NewScanner(out)
	deadline := time.AfterFunc(60*time.Second, func() { cmd.Process.Kill() })
	defer deadline.Stop()
	for lines.Scan() {
		if addr, ok := strings.CutPrefix(lines.Text(), ready); ok {
			c.url = addr
			return c, nil
		}
	}
	c.stop()
	return nil, errors.New(command + " did not start")
}
