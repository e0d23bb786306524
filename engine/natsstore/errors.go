package natsstore

import (
	"errors"
	"fmt"
	"strings"
)

// JetStream error codes this package tells apart, from nats-server's errors.json, in one place.
const (
	errCodeInsufficientResources = 10023 // "insufficient resources" (EnsureStream)
	errCodeNoMessageFound        = 10037 // "no message found" (a get of an empty subject)
	errCodeWrongLastSeq          = 10071 // "wrong last sequence: {seq}"
	errCodeReplicasNotSupported  = 10074 // "replicas > 1 not supported in non-clustered mode" (EnsureStream)
	errCodeWrongLastSeqConstant  = 10164 // "wrong last sequence"
	errCodeAtomicDisabled        = 10174 // "atomic publish is disabled"
	// "atomic publish batch is incomplete": part of the batch never reached the leader, or
	// the batch timed out. A batch of several messages refused at its first message (for
	// example for too many batches in flight) is reported this way too, because the first
	// message is sent without a reply subject.
	errCodeBatchIncomplete = 10176
	errCodeBatchTooLarge   = 10199 // "atomic publish batch is too large: {size}"
	errCodeTooManyInflight = 10210 // "atomic publish too many inflight"
)

// ErrNoJetStream means the server accepts connections but JetStream is not enabled on it (or not
// for hark's account). Connect wraps it with the server's URL.
var ErrNoJetStream = errors.New("JetStream is not enabled")

// ErrEmptyBatch is returned by Commit for a batch without messages: there is nothing to make
// atomic, and the server has no way to acknowledge it.
var ErrEmptyBatch = errors.New("commit an empty batch")

// ErrTooManyInflight means the stream already has the server's maximum of open atomic batches
// (50 per stream by default, JetStream error code 10210). Nothing of the batch was stored; the
// caller may retry after a short pause. Only a one-message batch gets this answer: a longer
// batch is refused at its first message, which carries no reply subject, and its commit is
// then answered "batch is incomplete".
var ErrTooManyInflight = errors.New("too many atomic batches in flight on the stream")

// ServerTooOldError says that the connected nats-server predates what hark relies on.
type ServerTooOldError struct {
	// Version is the version the server reported in its INFO.
	Version string
	// URL is the server hark connected to.
	URL string
}

func (e *ServerTooOldError) Error() string {
	return fmt.Sprintf("nats-server %s at %s: hark needs %d.%d or newer (atomic batch publish, per-message TTL)",
		e.Version, e.URL, minMajor, minMinor)
}

// ConflictError means a guard of the batch failed: a subject's last sequence was not the
// expected one, so nothing of the batch was stored. For the ingest commit this is the outcome
// "another node (or an earlier delivery) already committed this message id", not a fault.
//
// The server does not say which message or subject failed: its answer is "wrong last sequence:
// N" (JetStream error 10071, N being the subject's actual last sequence) or a bare "wrong last
// sequence" (10164, when another batch that writes the subject is being committed at that moment,
// or when the subject is written earlier in the same batch). Commit names the subject when that
// is unambiguous from the answer (the batch carries one guard, or exactly one guard expected a
// sequence other than N); otherwise it reads the guarded subjects once more and reports those
// whose last sequence differs from their guard as Stale.
type ConflictError struct {
	// Subject is the guarded subject that failed, or empty when the server's answer does not
	// single it out (see the type's doc).
	Subject string
	// Guarded lists every subject the batch guarded, in batch order.
	Guarded []string
	// Stale lists the guarded subjects whose last sequence, read right after the refusal,
	// differed from their guard, in batch order; it is filled only when the server's answer
	// alone does not name the subject. It is a diagnosis, not a lock: the read comes after the
	// refusal and may be answered by a trailing replica. Empty when the read failed or showed
	// every guard satisfied (the conflicting batch was still in flight, error 10164).
	Stale []string
	// LastSeq is the failing subject's actual last sequence as the server reported it; it is
	// meaningful only when HasLastSeq is set (error 10071).
	LastSeq    uint64
	HasLastSeq bool
	// ErrCode is the JetStream error code (10071 or 10164).
	ErrCode int
}

func (e *ConflictError) Error() string {
	var b strings.Builder
	b.WriteString("batch guard failed")
	if e.Subject != "" {
		fmt.Fprintf(&b, " on %s", e.Subject)
	} else if len(e.Guarded) > 0 {
		fmt.Fprintf(&b, " on one of %s", strings.Join(e.Guarded, ", "))
	}
	if e.HasLastSeq {
		fmt.Fprintf(&b, ": its last sequence is %d", e.LastSeq)
	} else {
		b.WriteString(": the subject is being written by another batch")
	}
	b.WriteString("; nothing was stored")
	return b.String()
}

// BatchTooLargeError means a batch has more messages than one atomic batch may hold. Commit does
// not split it: two batches could not be all-or-nothing together.
type BatchTooLargeError struct {
	// Size is the number of messages in the batch.
	Size int
	// Max is the limit: MaxBatch when Commit refused before sending, or the server's own limit
	// when the server refused (its max_batch_size may be configured lower).
	Max int
}

func (e *BatchTooLargeError) Error() string {
	return fmt.Sprintf("batch of %d messages exceeds the atomic batch limit of %d; nothing was stored", e.Size, e.Max)
}

// UncertainError means Commit does not know whether the batch was stored: the commit message
// was sent but no answer came (timeout, lost connection, stream leader change). The batch is
// either wholly stored or not at all. A caller that retries must not assume either: retrying
// with the same guards is safe, since a stored batch makes the retry fail with a ConflictError
// (the engine then reads the ledger to see whose commit won).
type UncertainError struct {
	Err error
}

func (e *UncertainError) Error() string {
	return "commit outcome unknown (the batch is either wholly stored or not at all): " + e.Err.Error()
}

func (e *UncertainError) Unwrap() error { return e.Err }

// StreamConfigError means an existing stream does not have what hark needs. Problems says what
// to change; hark never changes a stream it did not create in a way that loses data or weakens
// durability, so the operator decides.
type StreamConfigError struct {
	Stream   string
	Problems []string
}

func (e *StreamConfigError) Error() string {
	return fmt.Sprintf("stream %s is not usable by hark: %s", e.Stream, strings.Join(e.Problems, "; "))
}
