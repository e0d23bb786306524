package natsstore

import (
	"context"
	"time"

	"github.com/harkhq/hark/engine/kvstore"
)

// Store is engine.Store on a JetStream cluster: kvstore's tables on a DB,
// and the connection it owns. Every hark node of a cluster opens one on the
// same stream.
type Store struct {
	*kvstore.Store
	conn *Conn
	// stop ends the fold loop; folded is closed when it has.
	stop   context.CancelFunc
	folded chan struct{}
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
	ctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	s := &Store{Store: kvstore.New(db), conn: c, stop: stop, folded: make(chan struct{})}
	go s.foldLoop(ctx)
	return s, nil
}

// Every foldEvery, a node takes into the event types' records the counts
// that nodes added to their own (kvstore.PerNode) and have not added to
// for foldQuiet: those of nodes that stopped, mostly. A node still
// counting rarely meets the fold (its commit or the fold runs again).
const (
	foldEvery = time.Minute
	foldQuiet = 10 * time.Minute
)

func (s *Store) foldLoop(ctx context.Context) {
	defer close(s.folded)
	t := time.NewTicker(foldEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := s.FoldEventTypeCounts(ctx, time.Now().Add(-foldQuiet)); err != nil && ctx.Err() == nil {
			s.conn.log.Warn("fold event type counts", "err", err)
		}
	}
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
	s.stop()
	<-s.folded
	err := s.Store.Close()
	s.conn.Close()
	return err
}
