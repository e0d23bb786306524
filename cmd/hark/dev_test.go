package main

import (
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"testing"
)

// TestDevCluster runs `hark dev cluster` as a newcomer would: a source
// created through the first node is listed by the second, and Ctrl-C stops
// it all cleanly.
func TestDevCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a NATS cluster and two servers")
	}
	t.Parallel()
	port, natsPort := freePorts(t, 2), freePorts(t, 6) // NATS: 3 client ports, then 3 route ports
	h := startStream(t, nil, "dev", "cluster", "--data-dir", t.TempDir(), "--port", strconv.Itoa(port), "--nats-port", strconv.Itoa(natsPort))
	line, ok := h.waitLine(t, "The admin token of every node:", procTimeout)
	if !ok {
		t.Fatalf("hark dev cluster printed no admin token; stderr:\n%s", h.stderr)
	}
	token := strings.TrimSpace(strings.TrimPrefix(line, "The admin token of every node:"))
	for range 2 {
		if _, ok := h.waitLine(t, "hark is listening on", procTimeout); !ok {
			t.Fatalf("the nodes did not both start; stderr:\n%s", h.stderr)
		}
	}
	node := func(i int) []string {
		return []string{fmt.Sprintf("HARK_SERVER=http://127.0.0.1:%d", port+i), "HARK_TOKEN=" + token}
	}
	mustHark(t, node(0), "sources", "create", "--type", "segment", "--name", "Made on node 1")
	if out := mustHark(t, node(1), "sources", "list"); !strings.Contains(out, "Made on node 1") {
		t.Fatalf("node 2 lists:\n%s\nwant the source created through node 1", out)
	}
	h.interrupt(t)
}

// freePorts finds n consecutive free loopback ports (hark dev cluster takes
// a first port and the ones after it).
func freePorts(t *testing.T, n int) int {
	t.Helper()
	for range 100 {
		base := 20000 + rand.IntN(30000)
		free := true
		for p := base; p < base+n && free; p++ {
			ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
			if err != nil {
				free = false
				continue
			}
			ln.Close()
		}
		if free {
			return base
		}
	}
	t.Fatalf("no %d consecutive free ports", n)
	return 0
}
