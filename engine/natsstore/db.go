package natsstore

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/harkhq/hark/engine/kvstore"
)

// DB is kvstore.DB on one JetStream stream: every key is a subject holding
// its latest value (MaxMsgsPerSubject 1), a transaction's writes are one
// atomic batch publish, and each write of a key the transaction read
// carries the sequence it read (Nats-Expected-Last-Subject-Sequence), so a
// concurrent commit to that key fails the batch as a whole and the
// transaction runs again. That is what makes the idempotency ledger execute
// a messageId once when three nodes receive it at the same moment.
//
// One stream holds every table, so every transaction — an ingest commit, a
// configuration apply — is all or nothing (an atomic batch cannot span
// streams). A Get asks the stream's leader, so a node reads what it has just
// committed; Prefetch reads many keys in one direct get, which a replica
// answers and may answer a moment stale — harmless for the keys the commit
// then writes (the guard fails and the transaction runs again, without
// prefetching).
type DB struct {
	conn       *Conn
	stream     jetstream.Stream
	root       string // first subject token, e.g. "hark"
	streamName string
	// node marks this DB's commits (hdrNode), so its watch skips them:
	// Update reported them already.
	node string

	// watchers hear this node's commits from Update, and each has a
	// consumer of its own for the other nodes' (follow).
	watchers kvstore.Watchers
	// seen keeps reads from going back behind what the watch and the
	// commits have shown this node.
	seen seen
	// cursors issues the run feed's cursors (kvstore.CursorIssuer).
	cursors cursors
}

var _ kvstore.DB = (*DB)(nil)

// DBConfig configures OpenDB.
type DBConfig struct {
	// Stream is the stream's name; "" means "HARK".
	Stream string
	// Subject is the first token of every subject; "" means "hark".
	Subject string
}

// Headers of DB's messages: hdrOp marks a deleted key's tombstone ("del"),
// hdrNode names the DB that committed the message.
const (
	hdrOp   = "Hark-Op"
	hdrNode = "Hark-Node"
)

// tombstoneTTL is how long a deleted key's tombstone stays. A tombstone and
// an absent subject read alike; the tombstone exists because a delete must
// be a message to be part of an atomic batch.
const tombstoneTTL = 10 * time.Minute

// OpenDB creates the stream when it is missing and checks an existing one
// (Conn.EnsureStream, with one message per subject): it must keep the
// connection's Replicas copies and allow atomic batches, message TTLs and
// direct gets.
func OpenDB(ctx context.Context, c *Conn, cfg DBConfig) (*DB, error) {
	cfg.Stream = cmp.Or(cfg.Stream, "HARK")
	cfg.Subject = cmp.Or(cfg.Subject, "hark")
	// A cluster that is starting (or busy) may not answer for a while: a
	// stream just created, here or by a node starting beside this one, has
	// no leader until its replicas elect one. Ask again, each try bounded,
	// for up to a minute.
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var stream jetstream.Stream
	err := untilAnswered(ctx, func(ctx context.Context) (err error) {
		stream, err = c.ensureStream(ctx, streamSpec{name: cfg.Stream, subjects: []string{cfg.Subject + ".>"}, lastValue: true})
		return err
	})
	if err != nil {
		return nil, err
	}
	err = untilAnswered(ctx, func(ctx context.Context) error {
		info, err := stream.Info(ctx)
		if err == nil && info.Cluster != nil && info.Cluster.Leader == "" {
			return errNoLeader
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", cfg.Stream, err)
	}
	return &DB{conn: c, stream: stream, streamName: cfg.Stream, root: cfg.Subject, node: nuid.Next()}, nil
}

// errNoLeader is a stream without a leader, for untilAnswered.
var errNoLeader = errors.New("no leader elected yet")

// untilAnswered runs fn, each try bounded to a few seconds, until it gets
// an answer: again after a try that timed out, met no responders or found
// no leader, until ctx ends.
func untilAnswered(ctx context.Context, fn func(ctx context.Context) error) error {
	for wait := 50 * time.Millisecond; ; wait = min(2*wait, time.Second) {
		try, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := fn(try)
		cancel()
		unanswered := errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
			errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, errNoLeader)
		if !unanswered || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
	}
}

// Close implements kvstore.DB; the connection belongs to the caller.
func (db *DB) Close() error { return nil }

// View implements kvstore.DB.
func (db *DB) View(ctx context.Context, fn func(kvstore.Txn) error) error {
	return fn(db.newTxn(ctx, false))
}

// conflictBudget is how long Update runs a transaction again after
// conflicts before it gives up with kvstore.ErrConflict. It is a time, not a
// count: two nodes whose every commit writes one hot key (the run feed's
// counter) take turns, and the one that lost may lose tens of times in a
// row, each run a few milliseconds: with a bound of 40 runs, 2 nodes
// under load answered 51–58 webhooks in 10 s with 503; with this one, 0–15
// (one commit that lost for 5 s; README "Running more than one node").
const conflictBudget = 5 * time.Second

// Update implements kvstore.DB.
func (db *DB) Update(ctx context.Context, fn func(kvstore.Txn) error) error {
	began := time.Now()
	var lost error
	for attempt := 0; attempt == 0 || time.Since(began) < conflictBudget; attempt++ {
		t := db.newTxn(ctx, true)
		t.attempt = attempt
		if err := fn(t); err != nil {
			return err
		}
		keys, err := t.commit()
		if err == nil {
			db.watchers.Notify(keys)
			return nil
		}
		if !errors.Is(err, kvstore.ErrConflict) {
			return err
		}
		lost = err
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(conflictBackoff(attempt)):
		}
	}
	return fmt.Errorf("%w for %v; the last: %v", kvstore.ErrConflict, conflictBudget, lost)
}

// conflictBackoff is the pause before a conflicting transaction runs again:
// growing, capped at 25 ms, at random within it so that the nodes that
// collided do not collide again in step. Every ingest commit that starts a
// run rewrites the run feed's counter, so nodes committing at once collide
// often (README "Running more than one node").
func conflictBackoff(attempt int) time.Duration {
	ceiling := min(25*time.Millisecond, time.Millisecond<<min(attempt, 5))
	return time.Duration(rand.Int64N(int64(ceiling))) + 100*time.Microsecond
}

// txn is a transaction: reads go to the stream (or the transaction's own
// writes), writes wait in writes until commit.
type txn struct {
	db       *DB
	ctx      context.Context
	writable bool
	attempt  int // the run of Update (0: first)
	// read is the sequence each subject had when the transaction read it
	// (0: absent), the guard of its write.
	read map[string]uint64
	// got holds what Get read (nil: absent), so the transaction reads a
	// key once: a second Get of it costs no round trip and sees the same.
	got    map[string][]byte
	writes map[string]*write
	order  []string // subjects of writes, in first-write order
}

type write struct {
	key       []byte
	value     []byte
	expiresAt time.Time // zero: never
	del       bool
}

func (db *DB) newTxn(ctx context.Context, writable bool) *txn {
	return &txn{db: db, ctx: ctx, writable: writable, read: map[string]uint64{}, got: map[string][]byte{}, writes: map[string]*write{}}
}

var errReadOnly = errors.New("natsstore: write in a read-only transaction")

func (t *txn) Get(key []byte) ([]byte, error) {
	subj := t.db.subject(key)
	if w, ok := t.writes[subj]; ok {
		if w.del {
			return nil, kvstore.ErrNotFound
		}
		return w.value, nil
	}
	if v, ok := t.got[subj]; ok {
		if v == nil {
			return nil, kvstore.ErrNotFound
		}
		return v, nil
	}
	var (
		msg   Stored
		found bool
	)
	err := untilCurrent(t.ctx, func() (bool, error) {
		mark := t.db.seen.mark()
		err := t.db.retryLeaderless(t.ctx, func() (err error) {
			msg, found, err = t.db.conn.leaderLast(t.ctx, t.db.streamName, subj)
			return err
		})
		return err == nil && t.db.seen.behind(subj, msg.Seq, mark), err
	})
	if err != nil {
		return nil, unavailable("read "+subj, err)
	}
	return t.took(subj, msg, found)
}

// errBehind is a read that still trailed what this node has seen
// (DB.seen) when untilCurrent gave up.
var errBehind = errors.New("the cluster has not applied a change this node has already seen")

// untilCurrent runs read again, after a growing pause, while it reports
// that what it read trails what this node has seen, for up to two
// seconds: a server applies a committed message milliseconds after
// another one did.
func untilCurrent(ctx context.Context, read func() (behind bool, err error)) error {
	deadline := time.Now().Add(2 * time.Second)
	for wait := time.Millisecond; ; wait = min(2*wait, 100*time.Millisecond) {
		behind, err := read()
		switch {
		case err != nil:
			return err
		case !behind:
			return nil
		case time.Now().After(deadline):
			return errBehind
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

// took records what a read found of subj (found false: no message) and
// returns it as Get does.
func (t *txn) took(subj string, msg Stored, found bool) ([]byte, error) {
	if !found {
		t.noteRead(subj, 0)
		t.got[subj] = nil
		return nil, kvstore.ErrNotFound
	}
	t.noteRead(subj, msg.Seq)
	if msg.Header.Get(hdrOp) == "del" {
		t.got[subj] = nil
		return nil, kvstore.ErrNotFound
	}
	data := msg.Data
	if data == nil {
		data = []byte{} // present, empty: not the cache's "absent"
	}
	t.got[subj] = data
	return data, nil
}

// Prefetch implements kvstore.Prefetcher: one direct get per MaxLastSubjects
// keys instead of a request each. Only a transaction's first run
// prefetches: a rerun after a conflict reads from the leader, so a replica
// that trails cannot make a transaction lose again and again.
func (t *txn) Prefetch(keys [][]byte) error {
	if t.attempt > 0 {
		return nil
	}
	var subjects []string
	for _, k := range keys {
		subj := t.db.subject(k)
		if _, ok := t.writes[subj]; ok {
			continue
		}
		if _, ok := t.got[subj]; ok || slices.Contains(subjects, subj) {
			continue
		}
		subjects = append(subjects, subj)
	}
	for chunk := range slices.Chunk(subjects, MaxLastSubjects) {
		mark := t.db.seen.mark()
		var last map[string]Stored
		err := t.db.retryLeaderless(t.ctx, func() (err error) {
			last, err = t.db.conn.LastBySubjects(t.ctx, t.db.streamName, chunk)
			return err
		})
		if err != nil {
			return unavailable(fmt.Sprintf("read %d keys", len(chunk)), err)
		}
		for _, subj := range chunk {
			msg, found := last[subj]
			if t.db.seen.behind(subj, msg.Seq, mark) {
				continue // trails: Get reads it from the leader
			}
			_, _ = t.took(subj, msg, found) // an absent key is ErrNotFound: nothing to report
		}
	}
	return nil
}

// noteRead keeps the first sequence read of a subject: the guard must be
// what the transaction's decisions were based on.
func (t *txn) noteRead(subj string, seq uint64) {
	if _, ok := t.read[subj]; !ok {
		t.read[subj] = seq
	}
}

func (t *txn) put(w *write) error {
	if !t.writable {
		return errReadOnly
	}
	subj := t.db.subject(w.key)
	if _, ok := t.writes[subj]; !ok {
		t.order = append(t.order, subj)
	}
	t.writes[subj] = w
	return nil
}

func (t *txn) Set(key, value []byte) error {
	return t.put(&write{key: bytes.Clone(key), value: bytes.Clone(value)})
}

func (t *txn) SetExpiring(key, value []byte, expiresAt time.Time) error {
	return t.put(&write{key: bytes.Clone(key), value: bytes.Clone(value), expiresAt: expiresAt})
}

func (t *txn) Delete(key []byte) error {
	return t.put(&write{key: bytes.Clone(key), del: true})
}

// Scan lists the subjects under the prefix with their latest messages
// (through an ordered consumer delivering the last message per subject),
// lays the transaction's own writes over them, sorts by key and walks.
// It reads the whole prefix, so its cost grows with the table, not the
// page: fine for the catalog and per-object tables, the known limit for the
// largest ones (see the package doc).
func (t *txn) Scan(prefix, from []byte, reverse, keysOnly bool, fn func(key, value []byte) (bool, error)) error {
	entries, err := t.db.list(t.ctx, prefix, keysOnly)
	if err != nil {
		return err
	}
	byKey := make(map[string]int, len(entries))
	for i, e := range entries {
		byKey[string(e.key)] = i
		t.noteRead(t.db.subject(e.key), e.seq)
	}
	for _, subj := range t.order {
		w := t.writes[subj]
		if !bytes.HasPrefix(w.key, prefix) {
			continue
		}
		i, ok := byKey[string(w.key)]
		switch {
		case ok:
			entries[i].del, entries[i].value = w.del, w.value
		case !w.del:
			entries = append(entries, entry{key: w.key, value: w.value})
		}
	}
	entries = slices.DeleteFunc(entries, func(e entry) bool { return e.del })
	slices.SortFunc(entries, func(a, b entry) int { return bytes.Compare(a.key, b.key) })
	if reverse {
		slices.Reverse(entries)
	}
	for _, e := range entries {
		if from != nil {
			if c := bytes.Compare(e.key, from); (!reverse && c < 0) || (reverse && c > 0) {
				continue
			}
		}
		value := e.value
		if keysOnly {
			value = nil
		}
		more, err := fn(e.key, value)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

var _ kvstore.LogReader = (*txn)(nil)

// ReadLogAfter implements kvstore.LogReader: the entry after is read by key
// (from the leader), which gives its stream sequence, and the log from
// there on in one direct get of the prefix's subjects from the next
// sequence, in stream order, which is commit order. Listing the prefix
// instead would read every entry the log holds on each call.
func (t *txn) ReadLogAfter(prefix, after []byte, fn func(key, value []byte) (bool, error)) (bool, error) {
	for _, subj := range t.order {
		if bytes.HasPrefix(t.writes[subj].key, prefix) {
			return false, nil
		}
	}
	var from uint64 // the sequence read after; 0: the log's start
	if after != nil {
		if _, err := t.Get(after); errors.Is(err, kvstore.ErrNotFound) {
			return false, nil
		} else if err != nil {
			return false, err
		}
		from = t.read[t.db.subject(after)]
	}
	filter := t.db.filter(prefix)
	for {
		var msgs []Stored
		err := untilCurrent(t.ctx, func() (bool, error) {
			mark := t.db.seen.mark()
			err := t.db.retryLeaderless(t.ctx, func() (err error) {
				msgs, err = t.db.conn.Read(t.ctx, t.db.streamName, from+1, logPage, filter)
				return err
			})
			if err != nil || len(msgs) == logPage {
				return false, err // a full page: the next one is checked
			}
			newest := from
			for _, m := range msgs {
				newest = max(newest, m.Seq)
			}
			return t.db.seen.scanBehind(prefix, newest, mark), nil
		})
		if err != nil {
			return false, unavailable("read "+filter+" after "+strconv.FormatUint(from, 10), err)
		}
		for _, m := range msgs {
			if m.Header.Get(hdrOp) == "del" {
				continue
			}
			key, err := t.db.keyOf(m.Subject)
			if err != nil {
				return true, err
			}
			if !bytes.HasPrefix(key, prefix) {
				continue
			}
			if more, err := fn(key, m.Data); err != nil || !more {
				return true, err
			}
		}
		if len(msgs) < logPage {
			return true, nil
		}
		from = msgs[len(msgs)-1].Seq
	}
}

// logPage is the most entries one request of ReadLogAfter reads; it reads
// on from the last while fn wants more.
const logPage = 1000

type entry struct {
	key   []byte
	value []byte
	seq   uint64
	del   bool
}

// list reads the latest message of every subject under the prefix.
func (db *DB) list(ctx context.Context, prefix []byte, keysOnly bool) ([]entry, error) {
	filter := db.filter(prefix)
	var out []entry
	err := untilCurrent(ctx, func() (bool, error) {
		mark := db.seen.mark()
		err := db.retryLeaderless(ctx, func() (err error) {
			out, err = db.listOnce(ctx, prefix, filter, keysOnly)
			return err
		})
		var newest uint64
		for _, e := range out {
			newest = max(newest, e.seq)
		}
		return err == nil && db.seen.scanBehind(prefix, newest, mark), err
	})
	if err != nil {
		return nil, unavailable("list "+filter, err)
	}
	return out, nil
}

// retryLeaderless runs fn again, for a few seconds, while nobody answers
// its requests: a stream or consumer that was just created, or whose leader
// is being elected, has no responders for a moment.
//
// It first waits for the connection (Conn.connected): a node cut off from
// the cluster answers at once, instead of after each request's timeout.
func (db *DB) retryLeaderless(ctx context.Context, fn func() error) error {
	if err := db.conn.connected(ctx); err != nil {
		return err
	}
	deadline := time.Now().Add(5 * time.Second)
	for wait := 10 * time.Millisecond; ; wait = min(2*wait, 500*time.Millisecond) {
		err := fn()
		if !errors.Is(err, nats.ErrNoResponders) && !errors.Is(err, jetstream.ErrNoStreamResponse) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
	}
}

// listOnce is one try of list.
func (db *DB) listOnce(ctx context.Context, prefix []byte, filter string, keysOnly bool) ([]entry, error) {
	cons, err := db.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{filter},
		DeliverPolicy:  jetstream.DeliverLastPerSubjectPolicy,
		HeadersOnly:    keysOnly,
	})
	if err != nil {
		return nil, err
	}
	info := cons.CachedInfo()
	defer func() {
		// An ordered consumer is ephemeral; delete it rather than leave
		// it to the inactivity threshold.
		_ = db.stream.DeleteConsumer(context.WithoutCancel(ctx), info.Name)
	}()
	pending := int(info.NumPending)
	var out []entry
	for seen := 0; seen < pending; {
		batch, err := cons.Fetch(min(pending-seen, 1000), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return nil, err
		}
		n := 0
		for msg := range batch.Messages() {
			n++
			meta, err := msg.Metadata()
			if err != nil {
				return nil, fmt.Errorf("list %s: %w", filter, err)
			}
			if meta.NumPending == 0 {
				// Fewer than counted: some expired since.
				pending = seen + n
			}
			key, err := db.keyOf(msg.Subject())
			if err != nil {
				return nil, err
			}
			if bytes.HasPrefix(key, prefix) {
				out = append(out, entry{key: key, value: msg.Data(), seq: meta.Sequence.Stream, del: msg.Headers().Get(hdrOp) == "del"})
			}
		}
		if err := batch.Error(); err != nil {
			return nil, err
		}
		if n == 0 {
			return nil, fmt.Errorf("%d of %d messages arrived", seen, pending)
		}
		seen += n
	}
	return out, nil
}

// commit publishes the writes as one atomic batch (Conn.Commit) and returns
// their keys. A write of a key the transaction read is guarded by the
// sequence it read.
func (t *txn) commit() ([][]byte, error) {
	if len(t.order) == 0 {
		return nil, nil
	}
	if len(t.order) > MaxBatch {
		return nil, fmt.Errorf("%w: %d writes, one atomic batch holds %d", kvstore.ErrTooLarge, len(t.order), MaxBatch)
	}
	now := time.Now()
	node := []string{t.db.node}
	msgs := make([]Msg, 0, len(t.order))
	keys := make([][]byte, 0, len(t.order))
	for _, subj := range t.order {
		w := t.writes[subj]
		m := Msg{Subject: subj, Data: w.value, Header: nats.Header{hdrNode: node}}
		if seq, ok := t.read[subj]; ok {
			m.ExpectSeq = Seq(seq)
		}
		switch {
		case w.del:
			m.Data, m.TTL = nil, tombstoneTTL
			m.Header[hdrOp] = []string{"del"}
		case !w.expiresAt.IsZero():
			m.TTL = max(MinTTL, w.expiresAt.Sub(now))
		}
		msgs = append(msgs, m)
		keys = append(keys, w.key)
	}
	// No responders: no leader took the commit, so nothing was stored and
	// it may be sent again (a leader is being elected).
	var first uint64
	err := t.db.retryLeaderless(t.ctx, func() (err error) {
		first, _, err = t.db.conn.commit(t.ctx, msgs, false)
		return err
	})
	var conflict *ConflictError
	var tooLarge *BatchTooLargeError
	switch {
	case err == nil:
		// A batch is stored in one piece, in order: its messages have
		// consecutive sequences.
		for i, m := range msgs {
			t.db.seen.note(m.Subject, keys[i], first+uint64(i), m.TTL)
		}
		return keys, nil
	case errors.As(err, &conflict), errors.Is(err, ErrTooManyInflight):
		return nil, fmt.Errorf("%w: %v", kvstore.ErrConflict, err)
	case errors.As(err, &tooLarge):
		return nil, fmt.Errorf("%w: %v", kvstore.ErrTooLarge, err)
	default:
		// Unreachable or uncertain (sent, unanswered: stored wholly or not
		// at all): 503, and the sender's retry finds out by the ledger.
		return nil, unavailable(fmt.Sprintf("commit %d writes", len(msgs)), err)
	}
}

// unavailable wraps a failure to reach the cluster as kvstore.ErrUnavailable:
// the engine answers 503, and the sender's retry finds the cluster back.
func unavailable(what string, err error) error {
	return fmt.Errorf("%w: %s: %v", kvstore.ErrUnavailable, what, err)
}

// Keys and subjects. A key is a table byte, then segments separated by
// 0x00 (see kvstore's keyspace). Its subject is root.<table, 2 hex
// digits>.<segment>…, a segment written as itself when it is made of
// letters, digits, '-' and '_' (ids and slugs: readable in `nats stream
// view`), else as '~' and its unpadded base64url. Splitting on 0x00 and
// joining again is exact, so every key has one subject and back, and a
// prefix that ends at a separator is a subject wildcard.

func (db *DB) subject(key []byte) string {
	var b strings.Builder
	b.WriteString(db.root)
	b.WriteByte('.')
	if len(key) == 0 {
		b.WriteString("~")
		return b.String()
	}
	fmt.Fprintf(&b, "%02x", key[0])
	for seg := range bytes.SplitSeq(key[1:], []byte{0}) {
		b.WriteByte('.')
		b.WriteString(token(seg))
	}
	return b.String()
}

func token(seg []byte) string {
	plain := len(seg) > 0
	for _, c := range seg {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			plain = false
			break
		}
	}
	if plain {
		return string(seg)
	}
	return "~" + base64.RawURLEncoding.EncodeToString(seg)
}

func (db *DB) keyOf(subject string) ([]byte, error) {
	rest, ok := strings.CutPrefix(subject, db.root+".")
	if !ok {
		return nil, fmt.Errorf("subject %q is outside %s.>", subject, db.root)
	}
	toks := strings.Split(rest, ".")
	table, err := strconv.ParseUint(toks[0], 16, 8)
	if err != nil || len(toks[0]) != 2 {
		return nil, fmt.Errorf("subject %q: no table", subject)
	}
	key := []byte{byte(table)}
	for i, tok := range toks[1:] {
		if i > 0 {
			key = append(key, 0)
		}
		if enc, ok := strings.CutPrefix(tok, "~"); ok {
			seg, err := base64.RawURLEncoding.DecodeString(enc)
			if err != nil {
				return nil, fmt.Errorf("subject %q: %w", subject, err)
			}
			key = append(key, seg...)
			continue
		}
		key = append(key, tok...)
	}
	return key, nil
}

// filter is the subject wildcard covering every key with the prefix: the
// prefix's whole segments, then '>'. A trailing partial segment is left to
// the caller's bytes.HasPrefix.
func (db *DB) filter(prefix []byte) string {
	if len(prefix) == 0 {
		return db.root + ".>"
	}
	var b strings.Builder
	b.WriteString(db.root)
	fmt.Fprintf(&b, ".%02x", prefix[0])
	segs := bytes.Split(prefix[1:], []byte{0})
	for _, seg := range segs[:len(segs)-1] {
		b.WriteByte('.')
		b.WriteString(token(seg))
	}
	b.WriteString(".>")
	return b.String()
}

// Watch implements kvstore.DB. This node's commits are reported by Update
// itself, before it returns; an ordered consumer of the watched subjects
// (headers only, from the newest message on) reports the other nodes'.
func (db *DB) Watch(prefixes [][]byte, fn func(keys [][]byte, reset bool)) (stop func()) {
	remove := db.watchers.Add(prefixes, fn)
	stopOthers := db.WatchOthers(prefixes, fn)
	return func() {
		stopOthers()
		remove()
	}
}

var _ kvstore.OthersWatcher = (*DB)(nil)

// WatchOthers implements kvstore.OthersWatcher: Watch without this node's
// commits, for a follower of a busy table (the event log) that has this
// node's writes from elsewhere.
func (db *DB) WatchOthers(prefixes [][]byte, fn func(keys [][]byte, reset bool)) (stop func()) {
	w := &watcher{prefixes: prefixes, fn: fn, done: make(chan struct{})}
	var filters []string
	for _, p := range prefixes {
		if f := db.filter(p); !slices.Contains(filters, f) {
			filters = append(filters, f)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{})
	go db.follow(ctx, w, filters, started)
	<-started
	return func() {
		cancel()
		<-w.done
	}
}

// watchConsumer is an ordered consumer of the filters' messages (headers
// only) from the stream's next sequence on. It names that sequence rather
// than asking for new messages: an ordered consumer that recreates itself
// before delivering anything applies its start policy again, and "new"
// would then skip what was committed in between.
func (db *DB) watchConsumer(ctx context.Context, filters []string) (jetstream.Consumer, error) {
	info, err := db.stream.Info(ctx)
	if err != nil {
		return nil, err
	}
	return db.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: filters,
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    info.State.LastSeq + 1,
		HeadersOnly:    true,
	})
}

// watcher is what follow needs of one Watch: what it watches, whom to tell,
// and done, closed when its consumer has stopped.
type watcher struct {
	prefixes [][]byte
	fn       func([][]byte, bool)
	done     chan struct{}
}

// follow consumes the watched subjects until ctx ends, closing started once
// the consumer exists (or its first attempt failed). An ordered consumer
// recreates itself without a gap after a server or connection loss; when it
// cannot be created at all, follow retries and reports a reset once it is
// back, since writes may have been missed in between.
func (db *DB) follow(ctx context.Context, w *watcher, filters []string, started chan struct{}) {
	defer close(w.done)
	once := sync.OnceFunc(func() { close(started) })
	defer once()
	for missed := false; ctx.Err() == nil; {
		cons, err := db.watchConsumer(ctx, filters)
		if err != nil {
			once()
			missed = true
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			continue
		}
		cc, err := cons.Consume(func(msg jetstream.Msg) {
			if msg.Headers().Get(hdrNode) == db.node {
				return // reported by the Update that committed it
			}
			key, err := db.keyOf(msg.Subject())
			if err != nil || !kvstore.Under(w.prefixes, key) {
				return
			}
			if meta, err := msg.Metadata(); err == nil {
				// Before the watcher reads the key again.
				ttl, _ := time.ParseDuration(msg.Headers().Get(jetstream.MsgTTLHeader))
				db.seen.note(msg.Subject(), key, meta.Sequence.Stream, ttl)
			}
			w.fn([][]byte{key}, false)
		})
		if err != nil {
			once()
			missed = true
			continue
		}
		once()
		if missed {
			w.fn(nil, true)
			missed = false
		}
		<-ctx.Done()
		cc.Stop()
		return
	}
}
