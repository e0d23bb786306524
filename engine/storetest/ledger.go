package storetest

import (
	"fmt"
	"sync"
	"testing"

	"github.com/harkhq/hark/engine"
	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// testExactlyOnceLedger: of writers that all read an idempotency key, find
// it absent and claim it at once, exactly one commits; the others, rerun
// or refused, see the winner's claim. This is the read-then-write the
// ingest path relies on to execute a duplicate event once.
func testExactlyOnceLedger(t *testing.T, open opener) {
	s := open(t)
	const (
		env     = "dev"
		writers = 16
		keys    = 4
	)
	for k := range keys {
		key := fmt.Sprintf("key-%d", k)
		marker := func(w int) string { return fmt.Sprintf("%s-writer-%02d", key, w) }
		seen := make([]string, writers) // the original id each writer ended with
		var wg sync.WaitGroup
		start := make(chan struct{})
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				err := s.Update(t.Context(), func(tx engine.Tx) error {
					// Half of the writers say first what they will read,
					// as the ingest commit does: it changes nothing.
					if w%2 == 0 {
						if err := tx.Prefetch(engine.Prefetch{
							Idempotency: []engine.IdempotencyKey{{Environment: env, SourceID: "src", Type: "track", Key: key}},
							Users:       []engine.UserKey{{Environment: env, ID: marker(w)}},
						}); err != nil {
							return err
						}
					}
					id, _, err := tx.IdempotencyRecord(env, "src", "track", key)
					switch {
					case err == nil:
						seen[w] = id
						return nil
					case !notFound(err):
						return err
					}
					seen[w] = marker(w)
					if err := tx.PutIdempotencyRecord(env, "src", "track", key, marker(w), farFuture()); err != nil {
						return err
					}
					return tx.PutUser(&harkv1.User{Environment: env, Id: marker(w)})
				})
				if err != nil {
					t.Errorf("%s: %v", marker(w), err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if t.Failed() {
			return
		}

		var winner string
		view(t, s, func(tx engine.Tx) error {
			id, _, err := tx.IdempotencyRecord(env, "src", "track", key)
			if err != nil {
				return fmt.Errorf("%s after the race: %w", key, err)
			}
			winner = id
			var markers []string
			for w := range writers {
				_, err := tx.User(env, marker(w))
				switch {
				case err == nil:
					markers = append(markers, marker(w))
				case !notFound(err):
					return err
				}
			}
			if len(markers) != 1 || markers[0] != winner {
				t.Errorf("%s is held by %s, and the writers whose commits survive are %v: want exactly the holder's", key, winner, markers)
			}
			return nil
		})
		for w, id := range seen {
			if id != winner {
				t.Errorf("%s ended its Update with %s as the key's original, want the winner %s", marker(w), id, winner)
			}
		}
	}
}
