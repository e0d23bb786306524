package natsstore

import (
	"context"

	"github.com/harkhq/hark/engine/kvstore"
)

// Store is engine.Store on a JetStream cluster: kvstore's tables on a DB,
// and the connection it owns. Every hark node of a cluster opens one on the
// same stream.
type Store struct {
	*kvstore.Store
	conn *Conn
}

// Open connects to the cluster (checking the servers: Connect), opens or
// creates hark's stream (OpenDB) and returns the store on it.
func Open(ctx context.Context, o Options) (*Store, error) {
	c, err := Connect(ctx, o)
	if err != nil {
		return nil, err
	}
	db, err := OpenDB(ctx, c, DBConfig{})
	if err != nil {
		c.Close()
		return nil, err
	}
	return &Store{Store: kvstore.New(db), conn: c}, nil
}

// Stats are the messages this node has sent to the cluster and received
// from it (requests, publishes, their answers, the watch): per ingest
// commit, the round trips it costs.
func (s *Store) Stats() (sent, received uint64) {
	st := s.conn.NATS().Stats()
	return st.OutMsgs, st.InMsgs
}

// Connected reports whether the node is connected to the cluster now (for
// health checks: while it is not, every write is answered 503).
func (s *Store) Connected() bool { return s.conn.NATS().IsConnected() }

// Close closes the store and the connection.
func (s *Store) Close() error {
	err := s.Store.Close()
	s.conn.Close()
	return err
}
