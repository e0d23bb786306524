package server

import (
	"context"
	"fmt"
	"strings"

	"github.com/harkhq/hark/engine/badgerstore"
	"github.com/harkhq/hark/engine/natsstore"
)

// clusterMode reads Config.Store: Badger in the data dir ("" or "badger"),
// or a NATS JetStream cluster (nats://…, tls://…), which makes this node
// one of many sharing it.
func clusterMode(store string) (bool, error) {
	switch {
	case store == "" || store == "badger":
		return false, nil
	case strings.HasPrefix(store, "nats://") || strings.HasPrefix(store, "tls://"):
		return true, nil
	default:
		return false, fmt.Errorf("--store %q: want badger, or nats://host:4222[,host:4222…] for a NATS JetStream cluster", store)
	}
}

// openStore opens the store Config.Store names.
func (s *Server) openStore(ctx context.Context, clustered bool) error {
	if !clustered {
		b, err := badgerstore.Open(badgerstore.Options{
			Dir:          dbDir(s.cfg.DataDir),
			Logger:       s.log.With("component", "badger"),
			MinFreeBytes: s.cfg.MinFreeDisk,
		})
		if err != nil {
			return err
		}
		s.store, s.badger = b, b
		return nil
	}
	urls, err := natsstore.ParseURL(s.cfg.Store)
	if err != nil {
		return fmt.Errorf("--store: %w", err)
	}
	st, err := natsstore.Open(ctx, natsstore.Options{
		URLs:      urls,
		CredsFile: s.cfg.NATSCreds,
		TLSCAFile: s.cfg.NATSTLSCA,
		Replicas:  s.cfg.NATSReplicas,
		Logger:    s.log.With("component", "nats"),
	})
	if err != nil {
		return err
	}
	s.store, s.nats = st, st
	return nil
}
