package natsembed_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/harkhq/hark/engine/natsstore/natsembed"
)

// TestKillRestart starts three servers, writes to an R3 stream, kills a server, writes again,
// restarts it from the same directory and checks that it serves the stream with every message.
func TestKillRestart(t *testing.T) {
	t.Parallel()
	c := natsembed.StartTest(t, 3)
	if got := len(c.URLs()); got != 3 {
		t.Fatalf("URLs: %d, want 3", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	nc, err := nats.Connect(c.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}, Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "s.1", []byte("one")); err != nil {
		t.Fatal(err)
	}
	c.Kill(2)
	if c.Server(2) != nil {
		t.Fatal("killed server is still listed")
	}
	publish(ctx, t, js, "s.2")
	if err := c.Restart(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if err := c.Restart(ctx, 2); err == nil {
		t.Fatal("restarting a running server: no error")
	}

	// Read from the restarted server alone once it has caught up.
	one, err := nats.Connect(c.ServerURL(2))
	if err != nil {
		t.Fatal(err)
	}
	defer one.Close()
	js2, err := jetstream.New(one)
	if err != nil {
		t.Fatal(err)
	}
	for {
		s, err := js2.Stream(ctx, "S")
		if err == nil {
			info, err := s.Info(ctx)
			if err == nil && info.State.Msgs == 2 {
				break
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("stream never showed 2 messages through the restarted server: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// publish retries a publish while the cluster settles after a kill (a stream leader election
// makes publishes fail for a moment; that is JetStream's contract, not a test flake).
func publish(ctx context.Context, t *testing.T, js jetstream.JetStream, subj string) {
	t.Helper()
	for {
		// Each attempt gets its own short deadline: a request sent while the client reconnects
		// can lose its reply (the reply subscription's interest reaches the other servers after
		// the reply), and waiting for it longer does not help. The message id makes a retry of a
		// publish that was stored but not acked a no-op.
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := js.Publish(actx, subj, []byte(subj), jetstream.WithMsgID(subj))
		cancel()
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("publish %s: %v", subj, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
