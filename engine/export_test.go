package engine

import "context"

// SubscribersForTest runs subscribers, the fan-out the action engine uses
// inside its commit, in a read transaction of its own.
func (e *Engine) SubscribersForTest(ctx context.Context, env, collection, objectID string, limit int) ([]string, bool, error) {
	var (
		ids       []string
		truncated bool
	)
	err := e.store.View(ctx, func(tx Tx) (err error) {
		ids, truncated, err = e.subscribers(tx, env, collection, objectID, limit)
		return err
	})
	return ids, truncated, err
}
