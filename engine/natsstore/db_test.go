package natsstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/harkhq/hark/engine/kvstore"
	"github.com/harkhq/hark/engine/natsstore"
)

// openDB opens a DB on a fresh stream of the shared cluster through the
// given server, and another handle on the same stream through each of
// others: the nodes of one hark cluster.
func openDBs(t testing.TB, servers ...int) []*natsstore.DB {
	t.Helper()
	c := sharedCluster(t)
	n := streams.Add(1)
	cfg := natsstore.DBConfig{Stream: fmt.Sprintf("HARKDB_%d", n), Subject: fmt.Sprintf("harkdb%d", n)}
	var dbs []*natsstore.DB
	for _, i := range servers {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		db, err := natsstore.OpenDB(ctx, connect(t, c.ServerURL(i)), cfg)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		dbs = append(dbs, db)
	}
	return dbs
}

func dbKey(parts ...string) []byte {
	k := []byte{0x13}
	for i, p := range parts {
		if i > 0 {
			k = append(k, 0)
		}
		k = append(k, p...)
	}
	return k
}

func scanKeys(t *testing.T, db *natsstore.DB, prefix, from []byte, reverse bool) []string {
	t.Helper()
	var got []string
	err := db.View(context.Background(), func(tx kvstore.Txn) error {
		return tx.Scan(prefix, from, reverse, false, func(k, v []byte) (bool, error) {
			got = append(got, fmt.Sprintf("%q=%s", k[1:], v))
			return true, nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// TestDBKeys: keys of any bytes round-trip through subjects, scans keep byte
// order within their prefix (not another parent's: "dev" is not "dev2"),
// honour from in both directions, see the transaction's own writes, and a
// delete hides a key.
func TestDBKeys(t *testing.T) {
	t.Parallel()
	db := openDBs(t, 0)[0]
	ctx := context.Background()
	err := db.Update(ctx, func(tx kvstore.Txn) error {
		for _, id := range []string{"b", "a", "c", "x y", "", "\x00\xff", "~z"} {
			if err := tx.Set(dbKey("dev", id), []byte("v"+id)); err != nil {
				return err
			}
		}
		return tx.Set(dbKey("dev2", "a"), []byte("other"))
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{`"dev\x00"=v`, `"dev\x00\x00\xff"=v` + "\x00\xff", `"dev\x00a"=va`, `"dev\x00b"=vb`, `"dev\x00c"=vc`, `"dev\x00x y"=vx y`, `"dev\x00~z"=v~z`}
	if got := scanKeys(t, db, dbKey("dev", ""), nil, false); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("scan dev:\n got %q\nwant %q", got, want)
	}
	if got := scanKeys(t, db, dbKey("dev", ""), dbKey("dev", "b"), true); fmt.Sprint(got) != fmt.Sprint([]string{want[3], want[2], want[1], want[0]}) {
		t.Fatalf("reverse scan from b: %q", got)
	}
	err = db.Update(ctx, func(tx kvstore.Txn) error {
		if err := tx.Delete(dbKey("dev", "a")); err != nil {
			return err
		}
		if err := tx.Set(dbKey("dev", "bb"), []byte("new")); err != nil {
			return err
		}
		var inside []string
		err := tx.Scan(dbKey("dev", "a"), nil, false, true, func(k, v []byte) (bool, error) {
			inside = append(inside, string(k[1:]))
			return true, nil
		})
		if err != nil || len(inside) != 0 {
			return fmt.Errorf("scan of the deleted key inside its transaction: %q, %v", inside, err)
		}
		if _, err := tx.Get(dbKey("dev", "a")); !errors.Is(err, kvstore.ErrNotFound) {
			return fmt.Errorf("get of the deleted key inside its transaction: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got := scanKeys(t, db, dbKey("dev", ""), dbKey("dev", "b"), false)
	if fmt.Sprint(got) != fmt.Sprint([]string{want[3], `"dev\x00bb"=new`, want[4], want[5], want[6]}) {
		t.Fatalf("after delete and insert, from b: %q", got)
	}
}

// TestDBExactlyOnceAcrossNodes: transactions on three nodes (connections to
// three servers) that each read a ledger key and claim it when absent,
// together with a marker of their own, leave one claim and one marker.
func TestDBExactlyOnceAcrossNodes(t *testing.T) {
	t.Parallel()
	dbs := openDBs(t, 0, 1, 2)
	ctx := context.Background()
	for round := range 10 {
		ledger := dbKey("ledger", fmt.Sprint("m", round))
		var commits atomic.Int64
		var wg sync.WaitGroup
		for i := range 9 {
			db := dbs[i%3]
			wg.Go(func() {
				claimed := false
				err := db.Update(ctx, func(tx kvstore.Txn) error {
					claimed = false
					if _, err := tx.Get(ledger); !errors.Is(err, kvstore.ErrNotFound) {
						return err // claimed already (or a failure)
					}
					claimed = true
					if err := tx.Set(ledger, []byte(fmt.Sprint(i))); err != nil {
						return err
					}
					return tx.Set(dbKey("marker", fmt.Sprint(round), fmt.Sprint(i)), nil)
				})
				if err != nil {
					t.Error(err)
				}
				if claimed {
					commits.Add(1)
				}
			})
		}
		wg.Wait()
		if n := commits.Load(); n != 1 {
			t.Fatalf("round %d: %d transactions committed a claim, want 1", round, n)
		}
		if got := scanKeys(t, dbs[1], dbKey("marker", fmt.Sprint(round), ""), nil, false); len(got) != 1 {
			t.Fatalf("round %d: markers %q, want one", round, got)
		}
	}
}

// TestDBExpiry: a key set to expire is gone some seconds after; one that
// does not stays.
func TestDBExpiry(t *testing.T) {
	t.Parallel()
	db := openDBs(t, 0)[0]
	ctx := context.Background()
	err := db.Update(ctx, func(tx kvstore.Txn) error {
		if err := tx.SetExpiring(dbKey("ttl", "soon"), []byte("x"), time.Now().Add(time.Second)); err != nil {
			return err
		}
		return tx.SetExpiring(dbKey("ttl", "later"), []byte("y"), time.Now().Add(time.Hour))
	})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := scanKeys(t, db, dbKey("ttl", ""), nil, false)
		if len(got) == 1 && got[0] == `"ttl\x00later"=y` {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("keys under ttl 10 s after: %q, want only the later one", got)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestDBWatchAcrossNodes: a write committed through one node reaches the
// watchers of another, and the committing node's own watchers have it
// before Update returns.
func TestDBWatchAcrossNodes(t *testing.T) {
	t.Parallel()
	dbs := openDBs(t, 0, 2)
	type seen struct {
		mu   sync.Mutex
		keys [][]byte
	}
	watch := func(db *natsstore.DB) *seen {
		s := &seen{}
		stop := db.Watch([][]byte{dbKey("watched", "")}, func(keys [][]byte, reset bool) {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.keys = append(s.keys, keys...)
		})
		t.Cleanup(stop)
		return s
	}
	has := func(s *seen, key []byte) bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, k := range s.keys {
			if bytes.Equal(k, key) {
				return true
			}
		}
		return false
	}
	here, there := watch(dbs[0]), watch(dbs[1])
	ctx := context.Background()
	err := dbs[0].Update(ctx, func(tx kvstore.Txn) error {
		if err := tx.Set(dbKey("watched", "k1"), []byte("v")); err != nil {
			return err
		}
		return tx.Set(dbKey("unwatched", "k2"), []byte("v"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if !has(here, dbKey("watched", "k1")) {
		t.Fatal("the committing node's watcher did not have the key when Update returned")
	}
	deadline := time.Now().Add(10 * time.Second)
	for !has(there, dbKey("watched", "k1")) {
		if time.Now().After(deadline) {
			t.Fatal("the other node's watcher never saw the write")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if has(there, dbKey("unwatched", "k2")) || has(here, dbKey("unwatched", "k2")) {
		t.Fatal("a watcher saw a key outside its prefixes")
	}
}
