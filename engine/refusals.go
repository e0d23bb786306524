package engine

import (
	"context"
	"sync"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/timestamppb"

	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// refusalsKept is how many refusals the log keeps per source environment:
// enough to see what a broken setup does (a sender retries each delivery
// several times), bounded so a flood of bad deliveries costs a fixed
// amount of memory.
const refusalsKept = 1000

// maxRefusalReason bounds the reason kept with a refusal.
const maxRefusalReason = 1024

// refusalLog is the refused-delivery log (DESIGN §10): per source
// environment, the newest refusalsKept answers that refused a delivery,
// without bodies. It lives in memory, not in the store: the answers it
// records include the ones given because the store could not take writes
// (disk low, store unavailable), and a diagnostic log must not compete
// with events for the disk. It starts empty on every start (README).
type refusalLog struct {
	mu    sync.Mutex
	rings map[refusalKey]*refusalRing
}

type refusalKey struct{ env, sourceID string }

// refusalRing holds the newest refusals: next is where the next one goes,
// and the ring is full once n reaches len(items).
type refusalRing struct {
	items [refusalsKept]*harkv1.Refusal
	next  int
	n     int
}

// RecordRefusal logs that the delivery to a webhook token was refused with
// an HTTP status, and streams it to the live tails that asked for refusals
// (WatchSourceEvents include_refusals). A token that names no source
// environment has nobody to show the refusal to and is not logged (it is
// counted in metrics).
func (e *Engine) RecordRefusal(ctx context.Context, token string, status int, reason string, size int64) {
	_, se, err := e.ResolveIngestToken(ctx, token)
	if err != nil {
		return
	}
	if len(reason) > maxRefusalReason {
		reason = trimUTF8(reason, maxRefusalReason)
	}
	r := &harkv1.Refusal{Time: timestamppb.New(e.now()), StatusCode: int32(status), Reason: reason, SizeBytes: max(size, 0)}
	k := refusalKey{se.GetEnvironment(), se.GetSourceId()}
	l := &e.refusals
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.rings == nil {
		l.rings = map[refusalKey]*refusalRing{}
	}
	ring := l.rings[k]
	if ring == nil {
		ring = &refusalRing{}
		l.rings[k] = ring
	}
	ring.items[ring.next] = r
	ring.next = (ring.next + 1) % refusalsKept
	ring.n = min(ring.n+1, refusalsKept)
	// Live tails (events tail) see it as it happens; under l.mu, so they
	// get refusals in the order the log keeps them.
	e.eventHub.publishRefusal(&harkv1.RefusedDelivery{SourceId: k.sourceID, Environment: k.env, Refusal: r})
}

// ListRefusals returns a source environment's refusals, newest first.
func (e *Engine) ListRefusals(ctx context.Context, req *harkv1.ListRefusalsRequest) ([]*harkv1.Refusal, error) {
	p, err := readPage(req.GetPageSize(), "")
	if err != nil {
		return nil, err
	}
	// The source environment must exist: an unknown one is a 404, not an
	// empty log.
	if _, err := e.GetSourceEnvironment(ctx, req.GetSourceId(), req.GetEnvironment()); err != nil {
		return nil, err
	}
	l := &e.refusals
	l.mu.Lock()
	defer l.mu.Unlock()
	ring := l.rings[refusalKey{req.GetEnvironment(), req.GetSourceId()}]
	if ring == nil {
		return []*harkv1.Refusal{}, nil
	}
	out := make([]*harkv1.Refusal, 0, min(ring.n, p.size))
	for i := 1; i <= ring.n && len(out) < p.size; i++ {
		out = append(out, ring.items[(ring.next-i+refusalsKept)%refusalsKept])
	}
	return out, nil
}

// forget drops a source environment's log when its source is
// deleted, so a source created later never shows another's refusals.
func (l *refusalLog) forget(sourceID string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k := range l.rings {
		if k.sourceID == sourceID {
			delete(l.rings, k)
		}
	}
}

// trimUTF8 cuts s to at most n bytes without splitting a character.
func trimUTF8(s string, n int) string {
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
