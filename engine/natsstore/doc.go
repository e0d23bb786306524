// Package natsstore keeps hark's state on a NATS JetStream cluster, so that any number of hark
// nodes share it (cluster mode, DESIGN §13). Store is the engine.Store a node opens: kvstore's
// tables on a DB, which is kvstore.DB on one stream (one subject per key; a transaction is one
// atomic batch, guarded on the sequences it read; a watch consumer follows the other nodes'
// commits). Below it, Conn is the JetStream layer: a connection that checks the server, one
// atomic batch per Commit, and the embedded cluster of natsembed for `hark dev cluster` and the
// tests.
//
// An ingest commit is two round trips: DB's Prefetch reads the records it will touch in one
// multi-subject direct get (LastBySubjects; a replica may answer a moment stale, which only
// fails a guard of the commit, and the rerun reads from the leader), then Commit. Every other
// read asks the stream's leader, one request each.
//
// No read is sure to be current — a replica trails, a scan's consumer runs on any server, and
// even the leader applies a committed entry on its own schedule, after a follower (and a watch
// consumer on it) may have — so DB keeps the sequences its commits and its watch showed it for
// a few seconds (seen) and asks again while a read trails one of them: a node's reads never go
// back behind what it was shown (TestConformance/WatchedReadsAreCurrent). A request waits at
// most a second for a lost connection (Conn.connected), so a node cut off from the cluster
// answers 503 at once.
//
// Known limits of this first version: a scan reads every key under its prefix (an ordered
// consumer delivering the last message per subject), so listing a large table costs the table,
// not the page — a log such as the run feed excepted, which is read from an entry on
// (ReadLogAfter, kvstore.LogReader); and a View reads each key as last committed, not as of one moment
// (storetest.ReadCommitted). EnsureStream and Read are not used by DB (it checks its own
// stream's settings); they serve the tests of the layer below and the next steps.
//
// # Requirements
//
// nats-server 2.12 or newer (atomic batch publish, per-message TTL), with JetStream enabled and
// sync_interval: always on every server: JetStream acknowledges a write once a quorum has it,
// and with the default fsync interval a quorum can lose acknowledged writes on power loss
// (Jepsen, NATS 2.12). Connect refuses older servers (*ServerTooOldError) and servers without
// JetStream (ErrNoJetStream); the fsync setting is not visible to a client, so it is required
// here and in the operator docs rather than checked. Streams are R3 by default
// (Options.Replicas); EnsureStream refuses an existing stream with fewer replicas.
//
// # What the server does, as found in nats-server 2.15.2 and tested here
//
// Atomic batch (ADR-50). Every message carries Nats-Batch-Id and Nats-Batch-Sequence (1, 2, …);
// the last also Nats-Batch-Commit: 1. The stream leader stages the messages and checks every
// message's headers only when the commit arrives, then proposes the whole batch as one unit:
// all messages are stored, contiguously, or none. Messages sent without a reply subject get no
// answer, so Commit costs one round trip (see Commit). At most 1000 messages per batch (server
// limit jetstream.limits.batch.max_batch_size; error 10199); at most 50 open batches per stream
// and 1000 per server (10210 for a one-message batch; a longer one is refused at its reply-less
// first message, and its commit is answered 10176); a batch whose commit does not arrive within
// 10 s is dropped (10176 for a late commit). Nats-Expected-Last-Msg-Id is refused in a batch (10177); Nats-Msg-Id
// is allowed, a duplicate id refuses the whole batch (10201), but it only deduplicates within
// the stream's one duplicate window, so hark deduplicates with guards on ledger subjects, whose
// TTL is per message.
//
// Guards. Nats-Expected-Last-Subject-Sequence works inside a batch, on any of its messages: N
// means the subject's last message must have stream sequence N, 0 that the subject must be empty.
// If a guard fails the whole batch is refused with "wrong last sequence: N" (10071, N the
// subject's actual last sequence) — the answer does not say which message or subject failed,
// so Commit infers it or reads the guarded subjects (see ConflictError). While one batch that
// writes a subject is being committed, any other batch guarding that subject is refused at once
// with a bare "wrong last sequence" (10164) rather than queued behind it: this is what makes three
// nodes committing the same ledger subject at the same moment store exactly one batch. (If the
// batch in flight then fails, the refused ones are not retried by the server; the webhook sender's
// retry delivers the event again.) A subject may not be guarded after it was written earlier in
// the same batch (10164).
//
// Per-message TTL (ADR-43). Nats-TTL on a message (stream AllowMsgTTL) makes the server delete it
// after the TTL, in whole seconds, at least one second. Once a marker has expired its subject
// is empty again: its last sequence reads as 0, so a guard expecting 0 passes and the same
// message id can be committed anew. (Streams with SubjectDeleteMarkerTTL would leave a marker
// message instead; hark's streams do not set it.)
//
// Reads. LastBySubjects and Read use direct get (AllowDirect), answered by any replica in one
// round trip: up to 1024 subjects per multi-subject request. A replica may trail the leader by a
// moment: guards make it harmless for the engine's read-then-commit, and seen for the rest.
//
// Durability under failure (TestCommitSurvivesServerLoss): killing the stream leader while
// batches are committed makes some commits wait for the new leader; in-process kills rarely
// produce a failed commit at all, and when one fails it fails with an error (an UncertainError
// when the commit was sent), never with an ack for data that is then missing. A request sent
// while the client reconnects can lose its reply (the reply subscription's interest reaches the
// other servers after the reply does); it then fails only at its deadline, so give Commit a
// deadline of a few seconds (DefaultTimeout when the context has none) rather than a long one.
package natsstore
