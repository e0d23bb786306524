package natsstore_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/harkhq/hark/engine/natsstore"
	"github.com/harkhq/hark/engine/natsstore/natsembed"
)

// The tests share one 3-server cluster (each on its own streams) except those that kill servers,
// which start their own: starting a cluster costs about a second of both cores.
var (
	sharedOnce sync.Once
	shared     *natsembed.Cluster
	sharedErr  error
	sharedDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if shared != nil {
		shared.Close()
	}
	if sharedDir != "" {
		os.RemoveAll(sharedDir)
	}
	os.Exit(code)
}

// sharedCluster returns the package's shared cluster, starting it on first use.
func sharedCluster(t testing.TB) *natsembed.Cluster {
	t.Helper()
	sharedOnce.Do(func() {
		sharedDir, sharedErr = os.MkdirTemp("", "natsstore-test-")
		if sharedErr != nil {
			return
		}
		shared, sharedErr = natsembed.Start(context.Background(), natsembed.Config{Dir: sharedDir})
	})
	if sharedErr != nil {
		t.Fatalf("start shared cluster: %v", sharedErr)
	}
	return shared
}

// connect opens a Conn to the given servers and closes it when the test ends.
func connect(t testing.TB, urls ...string) *natsstore.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := natsstore.Connect(ctx, natsstore.Options{URLs: urls, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// streams numbers the streams ensure creates, so that every test run (go test -count=N on the
// shared cluster) starts from empty streams.
var streams atomic.Int64

// ensure creates a fresh stream named after base, with subjects <stream>.ledger.> and
// <stream>.events.>.
func ensure(t testing.TB, c *natsstore.Conn, base string) (stream, ledger, events string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream = fmt.Sprintf("%s_%d", base, streams.Add(1))
	ledger, events = stream+".ledger", stream+".events"
	if err := c.EnsureStream(ctx, stream, []string{ledger + ".>", events + ".>"}); err != nil {
		t.Fatalf("ensure stream %s: %v", stream, err)
	}
	return stream, ledger, events
}

// readAll reads every message of stream on subject (wildcards allowed) from sequence 1.
func readAll(t testing.TB, c *natsstore.Conn, stream, subject string) []natsstore.Stored {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var all []natsstore.Stored
	from := uint64(1)
	for {
		page, err := c.Read(ctx, stream, from, 500, subject)
		if err != nil {
			t.Fatalf("read %s: %v", stream, err)
		}
		all = append(all, page...)
		if len(page) < 500 {
			return all
		}
		from = page[len(page)-1].Seq + 1
	}
}

func subj(prefix string, i int) string { return fmt.Sprintf("%s.%d", prefix, i) }

// caughtUp waits until the replica that answers c's reads has stored sequence seq of stream.
// Reads are direct gets, answered by the replica on the server c is connected to, which may
// trail an acknowledged commit by a moment (an ack needs a quorum, not every replica); waiting
// once makes the reads that follow see everything up to seq.
func caughtUp(t testing.TB, c *natsstore.Conn, stream string, seq uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		page, err := c.Read(ctx, stream, seq, 1, "")
		if err == nil && len(page) == 1 && page[0].Seq == seq {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("the replica reads come from never reached sequence %d of %s (%v)", seq, stream, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
