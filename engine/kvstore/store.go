package kvstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/harkhq/hark/engine"
)

// Store is engine.Store over a DB. It holds no state of its own beyond the
// DB, so it is as safe for concurrent use as the DB is.
type Store struct {
	db DB
}

var _ engine.Store = (*Store)(nil)

// New returns the store over db; Close closes db.
func New(db DB) *Store {
	return &Store{db: db}
}

// View implements engine.Store.
func (s *Store) View(ctx context.Context, fn func(engine.Tx) error) error {
	return unavailable(s.db.View(ctx, func(txn Txn) error { return fn(tx{txn: txn}) }))
}

// unavailable makes a DB's ErrUnavailable the engine's (503: retry later).
func unavailable(err error) error {
	if errors.Is(err, ErrUnavailable) && !errors.Is(err, engine.ErrUnavailable) {
		return fmt.Errorf("%w: %v", engine.ErrUnavailable, err)
	}
	return err
}

// Update implements engine.Store. It maps the DB's failures to the
// engine's: ErrTooLarge to engine.ErrTooLarge (the engine then commits in
// parts), ErrConflict — the DB's retries ran out — and ErrUnavailable to
// engine.ErrUnavailable, which callers may retry later.
func (s *Store) Update(ctx context.Context, fn func(engine.Tx) error) error {
	err := s.db.Update(ctx, func(txn Txn) error { return fn(tx{txn: txn}) })
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrTooLarge):
		return fmt.Errorf("%w: %v", engine.ErrTooLarge, err)
	case errors.Is(err, ErrConflict):
		return fmt.Errorf("commit: %w: too many write conflicts: %v", engine.ErrUnavailable, err)
	}
	return unavailable(err)
}

// Close implements engine.Store: it closes the DB.
func (s *Store) Close() error {
	return s.db.Close()
}
