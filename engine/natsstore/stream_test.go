package natsstore_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/harkhq/hark/engine/natsstore"
)

// TestEnsureStream: a stream EnsureStream creates is R3, file-backed, with atomic publish, TTL
// and direct get, and ensuring it again is a no-op; existing streams that lack something are
// refused with a *StreamConfigError that says what to change.
func TestEnsureStream(t *testing.T) {
	t.Parallel()
	c := connect(t, sharedCluster(t).URL())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	js := c.JetStream()

	if err := c.EnsureStream(ctx, "ENSURE", []string{"ensure.>"}); err != nil {
		t.Fatal(err)
	}
	if err := c.EnsureStream(ctx, "ENSURE", []string{"ensure.>"}); err != nil {
		t.Fatalf("ensure again: %v", err)
	}
	s, err := js.Stream(ctx, "ENSURE")
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	if cfg.Replicas != 3 || cfg.Storage != jetstream.FileStorage || !cfg.AllowAtomicPublish || !cfg.AllowMsgTTL || !cfg.AllowDirect {
		t.Errorf("created stream config: %+v", cfg)
	}
	if n := len(s.CachedInfo().Cluster.Replicas); n != 2 {
		t.Errorf("created stream has %d peers besides its leader, want 2", n)
	}

	for _, tc := range []struct {
		name string
		cfg  jetstream.StreamConfig
		want []string
	}{
		{
			name: "R1",
			cfg:  jetstream.StreamConfig{Replicas: 1, AllowAtomicPublish: true, AllowMsgTTL: true, AllowDirect: true},
			want: []string{"it has 1 replica(s), hark is configured for 3: raise the stream's replicas to 3"},
		},
		{
			name: "plain",
			cfg:  jetstream.StreamConfig{Replicas: 3, Storage: jetstream.MemoryStorage},
			want: []string{"memory storage", "allow_atomic: true", "allow_msg_ttl: true", "allow_direct: true"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := "EXISTING_" + tc.name
			tc.cfg.Name, tc.cfg.Subjects = name, []string{strings.ToLower(name) + ".a"}
			if _, err := js.CreateStream(ctx, tc.cfg); err != nil {
				t.Fatal(err)
			}
			err := c.EnsureStream(ctx, name, []string{strings.ToLower(name) + ".a", strings.ToLower(name) + ".b"})
			var sce *natsstore.StreamConfigError
			if !errors.As(err, &sce) || sce.Stream != name {
				t.Fatalf("EnsureStream: %v, want a *StreamConfigError", err)
			}
			for _, w := range append(tc.want, "does not have subject "+strings.ToLower(name)+".b") {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// TestEnsureStreamNeedsCluster: a standalone JetStream server cannot hold an R3 stream;
// EnsureStream says so and what to change, instead of creating a weaker stream.
func TestEnsureStreamNeedsCluster(t *testing.T) {
	t.Parallel()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true, JetStream: true, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(s.Shutdown)
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}
	c := connect(t, s.ClientURL())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = c.EnsureStream(ctx, "SOLO", []string{"solo.>"})
	if err == nil || !strings.Contains(err.Error(), "cannot hold 3 replicas") || !strings.Contains(err.Error(), "a single server needs Replicas 1") {
		t.Fatalf("EnsureStream R3 on one server: %v", err)
	}
	if _, err := c.JetStream().Stream(ctx, "SOLO"); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("stream after the refusal: %v, want none", err)
	}
}
