package natsstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// MaxBatch is the most messages one Commit takes: nats-server's default limit for an atomic
// batch (streamDefaultMaxAtomicBatchSize, configurable per server as jetstream.limits.batch.
// max_batch_size). A server configured lower refuses larger batches itself, and Commit reports
// that as a *BatchTooLargeError too.
const MaxBatch = 1000

// MinTTL is the shortest per-message TTL the server accepts. TTLs are kept in whole seconds;
// Commit rounds a TTL up to the next second.
const MinTTL = time.Second

// Headers of the atomic batch protocol (ADR-50) and of the checks JetStream applies per message.
const (
	hdrBatchID     = "Nats-Batch-Id"
	hdrBatchSeq    = "Nats-Batch-Sequence"
	hdrBatchCommit = "Nats-Batch-Commit"
	hdrTTL         = jetstream.MsgTTLHeader              // Nats-TTL
	hdrExpectSubj  = jetstream.ExpectedLastSubjSeqHeader // Nats-Expected-Last-Subject-Sequence
)

// Msg is one message of a batch.
type Msg struct {
	// Subject is where the message is stored; it decides the stream.
	Subject string
	// Data is the payload.
	Data []byte
	// TTL, when positive, makes the server delete the message after it (at least MinTTL; kept
	// in whole seconds). Zero means the message stays until the stream's limits remove it.
	TTL time.Duration
	// ExpectSeq, when set, guards the batch: the message's subject must have this last
	// sequence when the batch is committed, 0 meaning the subject must hold no message. If any
	// guard fails, nothing of the batch is stored. A guarded subject may appear only once in a
	// batch, and only in its first message on that subject.
	ExpectSeq *uint64
	// Header holds further headers of the caller's own (DB marks a deleted
	// key's tombstone so); the batch's headers are set over them.
	Header nats.Header
}

// Seq returns a pointer to seq, for Msg.ExpectSeq.
func Seq(seq uint64) *uint64 { return &seq }

// commitAck is the server's answer to a batch's commit message.
type commitAck struct {
	Stream string              `json:"stream"`
	Seq    uint64              `json:"seq"`
	Batch  string              `json:"batch"`
	Count  uint64              `json:"count"`
	Error  *jetstream.APIError `json:"error"`
}

// Commit stores msgs as one atomic batch: all of them or none. It returns the stream sequences
// of the first and last message; a batch is stored contiguously, so msgs[i] has sequence
// first+i. All subjects must belong to one stream.
//
// Cost: one round trip. The messages before the last are published without a reply subject
// (the server stages them and answers nothing), the last carries the commit header and a
// reply subject, and nats.go writes them all in one flush; the only answer is the commit's
// acknowledgement, which comes after the batch is replicated and on disk. (The jetstreamext
// helper waits for an ack of the first message as flow control by default, which costs a second
// round trip that a batch of at most MaxBatch messages does not need.)
//
// Errors:
//   - *ConflictError: a guard failed; nothing was stored.
//   - *BatchTooLargeError: more than MaxBatch messages (or more than the server's limit);
//     nothing was stored. Commit never splits a batch, since two batches are not atomic together.
//   - ErrTooManyInflight: the stream has too many open batches; nothing was stored.
//   - *UncertainError: the commit was sent but no answer came; the batch is wholly stored or
//     not at all.
//   - anything else (a bad TTL, a subject no stream holds, a stream without atomic publish):
//     nothing was stored.
//
// Commit is safe for concurrent use. A batch that is abandoned half-sent (the connection drops
// before the commit message) is dropped by the server after its batch timeout (10 s).
func (c *Conn) Commit(ctx context.Context, msgs []Msg) (first, last uint64, err error) {
	return c.commit(ctx, msgs, true)
}

// commit is Commit; explain says whether to find out which guard failed
// when the server does not say (one more read, on the conflict path). DB
// does not need to know: it runs the transaction again.
func (c *Conn) commit(ctx context.Context, msgs []Msg, explain bool) (first, last uint64, err error) {
	if len(msgs) == 0 {
		return 0, 0, ErrEmptyBatch
	}
	if len(msgs) > MaxBatch {
		return 0, 0, &BatchTooLargeError{Size: len(msgs), Max: MaxBatch}
	}
	batchID := nuid.Next()
	var guarded []string
	out := make([]*nats.Msg, len(msgs))
	for i, m := range msgs {
		if m.TTL != 0 && m.TTL < MinTTL {
			return 0, 0, fmt.Errorf("commit batch: message %d on %s: TTL %s is under the server's minimum of %s", i, m.Subject, m.TTL, MinTTL)
		}
		h := make(nats.Header, 5+len(m.Header))
		for k, v := range m.Header {
			h[k] = v
		}
		h.Set(hdrBatchID, batchID)
		h.Set(hdrBatchSeq, strconv.Itoa(i+1))
		if m.TTL > 0 {
			// Whole seconds, rounded up: a marker must not expire before its window ends.
			h.Set(hdrTTL, strconv.FormatInt(int64((m.TTL+time.Second-1)/time.Second), 10)+"s")
		}
		if m.ExpectSeq != nil {
			h.Set(hdrExpectSubj, strconv.FormatUint(*m.ExpectSeq, 10))
			guarded = append(guarded, m.Subject)
		}
		if i == len(msgs)-1 {
			h.Set(hdrBatchCommit, "1")
		}
		out[i] = &nats.Msg{Subject: m.Subject, Data: m.Data, Header: h}
	}
	for _, m := range out[:len(out)-1] {
		if err := c.nc.PublishMsg(m); err != nil {
			// The commit message was not sent, so the server cannot have stored the batch.
			return 0, 0, fmt.Errorf("commit batch: publish staged message: %w", err)
		}
	}
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	resp, err := c.nc.RequestMsgWithContext(ctx, out[len(out)-1])
	if errors.Is(err, nats.ErrNoResponders) {
		// Nobody received the commit: no stream holds the subject, or its stream has no leader
		// at this moment (an election). Nothing was stored.
		return 0, 0, fmt.Errorf("commit batch: no stream leader answers for %s (no stream holds the subject, or a leader is being elected): %w", out[len(out)-1].Subject, err)
	}
	if err != nil {
		return 0, 0, &UncertainError{Err: err}
	}
	var ack commitAck
	if err := json.Unmarshal(resp.Data, &ack); err != nil {
		return 0, 0, &UncertainError{Err: fmt.Errorf("read commit ack %q: %w", resp.Data, err)}
	}
	if ack.Error != nil {
		err := commitError(ack.Error, msgs, guarded)
		if ce, ok := err.(*ConflictError); ok && explain && ce.Subject == "" && ack.Stream != "" {
			c.explainConflict(ctx, ack.Stream, msgs, ce)
		}
		return 0, 0, err
	}
	if ack.Batch != batchID || ack.Count != uint64(len(msgs)) || ack.Seq < ack.Count {
		return 0, 0, &UncertainError{Err: fmt.Errorf("commit ack for batch %q of %d ending at %d, sent %q of %d", ack.Batch, ack.Count, ack.Seq, batchID, len(msgs))}
	}
	return ack.Seq - ack.Count + 1, ack.Seq, nil
}

// commitError turns the server's refusal of a batch into one of Commit's error types.
func commitError(e *jetstream.APIError, msgs []Msg, guarded []string) error {
	switch int(e.ErrorCode) {
	case errCodeWrongLastSeq, errCodeWrongLastSeqConstant:
		ce := &ConflictError{Guarded: guarded, ErrCode: int(e.ErrorCode)}
		if int(e.ErrorCode) == errCodeWrongLastSeq {
			// The description is "wrong last sequence: N", N the failing subject's last sequence.
			var n uint64
			if _, err := fmt.Sscanf(e.Description, "wrong last sequence: %d", &n); err == nil {
				ce.LastSeq, ce.HasLastSeq = n, true
			}
		}
		ce.Subject = failedGuard(msgs, guarded, ce)
		return ce
	case errCodeBatchTooLarge:
		limit := MaxBatch
		fmt.Sscanf(e.Description, "atomic publish batch is too large: %d", &limit)
		return &BatchTooLargeError{Size: len(msgs), Max: limit}
	case errCodeTooManyInflight:
		return ErrTooManyInflight
	case errCodeAtomicDisabled:
		return fmt.Errorf("commit batch: the stream of %s does not allow atomic publish (allow_atomic: true): %w", msgs[0].Subject, e)
	case errCodeBatchIncomplete:
		// The leader does not have the whole batch: a leader change between the staged
		// messages and the commit, a batch timeout, or a refusal of the first message (see
		// errCodeBatchIncomplete). Nothing was stored.
		return fmt.Errorf("commit batch: the server did not receive the whole batch, nothing was stored: %w", e)
	}
	return fmt.Errorf("commit batch: %w", e)
}

// explainConflict fills ce.Stale (and ce.Subject) from one read of the guarded subjects, when the
// server's answer did not say which guard failed. It costs one more round trip, on the conflict
// path only. It is best effort: the read happens after the refusal and may be answered by a
// replica that trails the leader; a failed read leaves ce as it was.
func (c *Conn) explainConflict(ctx context.Context, stream string, msgs []Msg, ce *ConflictError) {
	last, err := c.LastBySubjects(ctx, stream, ce.Guarded)
	if err != nil {
		return
	}
	for _, m := range msgs {
		if m.ExpectSeq != nil && last[m.Subject].Seq != *m.ExpectSeq {
			ce.Stale = append(ce.Stale, m.Subject)
		}
	}
	if len(ce.Stale) > 0 {
		ce.Subject = ce.Stale[0]
	}
}

// failedGuard names the guard that failed when the server's answer allows it: the only guard,
// or the only guard whose expected sequence differs from the last sequence the server reported.
func failedGuard(msgs []Msg, guarded []string, ce *ConflictError) string {
	if len(guarded) == 1 {
		return guarded[0]
	}
	if !ce.HasLastSeq {
		return ""
	}
	var subject string
	for _, m := range msgs {
		if m.ExpectSeq != nil && *m.ExpectSeq != ce.LastSeq {
			if subject != "" {
				return ""
			}
			subject = m.Subject
		}
	}
	return subject
}
