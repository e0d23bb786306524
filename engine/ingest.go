package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/harkhq/hark/engine/rules"
	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// Translator turns raw deliveries into events; the server wires the plugin
// host in. It returns one Translation per delivery, in order, or an error
// for the whole call (wrapping ErrUnavailable when the plugin is down).
type Translator interface {
	Translate(ctx context.Context, sourceType string, ds []Delivery) ([]Translation, error)
}

// Delivery is one raw request to a webhook URL, with the settings of the
// source environment it was sent to.
type Delivery struct {
	Header      http.Header
	Body        []byte
	ContentType string
	Settings    map[string]string
}

// Translation is a plugin's answer for one delivery.
type Translation struct {
	Events     []InEvent
	Rejections []Rejection
	// Err refuses the whole delivery.
	Err *DeliveryError
}

// InEvent is one translated event in the common form (DESIGN §4).
type InEvent struct {
	Index          int
	Type           string
	Name           string
	UserID         string
	AnonymousID    string
	IdempotencyKey json.RawMessage
	Timestamp      time.Time
	Data           json.RawMessage
	Traits         json.RawMessage
	Original       json.RawMessage
}

// Rejection is one event a plugin refused.
type Rejection struct {
	Index  int
	Reason string
}

// deliveryErrorReason is the metrics label of a refused delivery.
func deliveryErrorReason(k DeliveryErrorKind) string {
	switch k {
	case BadRequest:
		return "bad_request"
	case BadSignature:
		return "bad_signature"
	default:
		return "plugin_failed"
	}
}

// handledTypes are the event types the pipeline processes; others are logged
// as skipped so the event log still shows what arrived.
var handledTypes = map[string]bool{
	"track": true, "identify": true, "page": true, "screen": true, "group": true, "alias": true, "delete": true,
}

// ingestRequest is one delivery waiting for the committer.
type ingestRequest struct {
	src        *harkv1.Source
	se         *harkv1.SourceEnvironment
	delivery   Delivery
	receivedAt time.Time
	done       chan ingestResult // buffered, 1
}

type ingestResult struct {
	resp *harkv1.ReceiveResponse
	err  error
}

// Receive takes one delivery to a webhook URL and answers once its events
// are durably stored. Concurrent deliveries are gathered by the committer
// into one plugin call and one commit (DESIGN §6).
func (e *Engine) Receive(ctx context.Context, token string, d Delivery) (*harkv1.ReceiveResponse, error) {
	if e.translator == nil {
		return nil, fmt.Errorf("%w: no source plugins are running", ErrUnavailable)
	}
	src, se, err := e.ResolveIngestToken(ctx, token)
	if err != nil {
		return nil, err
	}
	if st, ok := e.types.SourceType(src.GetType()); ok {
		if missing := missingSettings(st, se); len(missing) > 0 {
			// The sender did nothing wrong and the source is being set up:
			// 503, so Segment retries (for hours) instead of dropping.
			return nil, &NotReadyError{Message: fmt.Sprintf("this webhook's source environment is not configured yet: setting %q is required", missing[0])}
		}
	}
	d.Settings = se.GetPluginSettings()
	req := &ingestRequest{src: src, se: se, delivery: d, receivedAt: e.now(), done: make(chan ingestResult, 1)}
	if err := e.enqueue(req); err != nil {
		return nil, err
	}
	// Once queued, the delivery is committed or failed as a whole; wait for
	// the answer even if the client goes away, so it is never half-known.
	r := <-req.done
	return r.resp, r.err
}

// enqueue hands a request to the ingest stage, or says why it cannot. It
// holds closeMu for reading, so no request is queued after Close has let
// the stage drain and stop: that one would wait for an answer forever.
func (e *Engine) enqueue(req *ingestRequest) error {
	e.closeMu.RLock()
	defer e.closeMu.RUnlock()
	if e.closed {
		return fmt.Errorf("%w: shutting down", ErrUnavailable)
	}
	select {
	case e.laneFor(req.src.GetType()).queue <- req:
		return nil
	default:
		// The committer is behind by a whole queue: say so now, so senders
		// back off and retry, instead of piling up memory and timeouts.
		return fmt.Errorf("%w: ingest queue is full", ErrUnavailable)
	}
}

// preparedQueue is how many prepared batches may wait for the committer,
// which takes them all into its next commit.
const preparedQueue = 8

// Batching bounds: a batch is what is queued when a lane is free, up to
// maxBatchDeliveries deliveries or maxBatchBytes of bodies.
const (
	maxBatchDeliveries = 256
	maxBatchBytes      = 2 << 20
	// ingestQueue is how many deliveries of one source type may wait for
	// their lane. The bodies they hold are bounded by the server's ingest
	// memory budget, whatever this says.
	ingestQueue = 4096
	// maxCommitBytes bounds the bodies written in one store commit, under
	// Badger's transaction size limit with room for the log's own fields.
	maxCommitBytes = 2 << 20
)

// The ingest path is two stages, so that preparing one batch overlaps
// committing the previous one:
//
//   - a lane per source type (runLane) gathers that type's deliveries into a
//     batch, translates it with one plugin call and prepares the log entries
//     on all cores — the work that needs no shared state. Lanes run side by
//     side, so a plugin that hangs holds up only its own deliveries;
//   - runCommitter commits what the lanes prepared, one transaction per
//     chunk under the store's size limit, and answers the senders. It is
//     the only writer of ingest state, so hot keys (event type counters,
//     idempotency keys) never conflict.

// lane is the ingest stage of one source type.
type lane struct {
	typ   string
	queue chan *ingestRequest
}

// laneFor returns the lane of a source type, starting it on first use.
// Callers hold closeMu for reading and have checked closed, so no lane
// starts after Close began waiting for them.
func (e *Engine) laneFor(typ string) *lane {
	e.lanesMu.Lock()
	defer e.lanesMu.Unlock()
	if l, ok := e.lanes[typ]; ok {
		return l
	}
	if e.lanes == nil {
		e.lanes = map[string]*lane{}
	}
	l := &lane{typ: typ, queue: make(chan *ingestRequest, ingestQueue)}
	e.lanes[typ] = l
	e.lanesWG.Add(1)
	go e.runLane(l)
	return l
}

// runLane gathers, translates and prepares one source type's deliveries
// until Close, then prepares what is still queued.
func (e *Engine) runLane(l *lane) {
	defer e.lanesWG.Done()
	for {
		var first *ingestRequest
		select {
		case first = <-l.queue:
		case <-e.stop:
			e.drainLane(l)
			return
		}
		// Take what is queued now, without waiting for more: while this
		// batch is translated and the previous one commits, the next one
		// gathers by itself, so a lone delivery pays no batching delay and
		// a busy server still batches.
		batch := []*ingestRequest{first}
		size := len(first.delivery.Body)
	gather:
		for len(batch) < maxBatchDeliveries && size < maxBatchBytes {
			select {
			case r := <-l.queue:
				batch = append(batch, r)
				size += len(r.delivery.Body)
			default:
				break gather
			}
		}
		if pending := e.prepareBatch(l.typ, batch); len(pending) > 0 {
			e.prepared <- pending
		}
	}
}

// runCommitter commits what the lanes prepared until Close closes the
// channel.
//
// A commit waits for Badger's write and fsync, while the lanes keep
// preparing; so the committer takes every batch prepared meanwhile into its
// next commit (commitBatch still cuts commits at maxCommitBytes): one fsync
// for all of them.
func (e *Engine) runCommitter() {
	defer e.wg.Done()
	for pending := range e.prepared {
	more:
		for {
			select {
			case next, ok := <-e.prepared:
				if !ok {
					break more
				}
				pending = append(pending, next...)
			default:
				break more
			}
		}
		e.commitBatch(pending)
	}
}

// drainLane prepares deliveries still queued at shutdown: their senders are
// waiting for a real answer.
func (e *Engine) drainLane(l *lane) {
	for {
		select {
		case r := <-l.queue:
			if pending := e.prepareBatch(l.typ, []*ingestRequest{r}); len(pending) > 0 {
				e.prepared <- pending
			}
		default:
			return
		}
	}
}

// answerOnPanic keeps a bug from taking a stage down with every sender
// waiting: the deliveries not yet answered fail as internal errors (500) and
// the stage goes on. Each done channel holds one answer (buffer 1); a
// request already answered keeps its answer.
func (e *Engine) answerOnPanic(reqs []*ingestRequest) {
	if r := recover(); r != nil {
		e.answerPanic(r, reqs)
	}
}

func (e *Engine) answerPanic(r any, reqs []*ingestRequest) {
	e.log.Error("ingest batch panicked", "panic", r, "stack", string(debug.Stack()))
	for _, req := range reqs {
		select {
		case req.done <- ingestResult{err: fmt.Errorf("process delivery: panic: %v", r)}:
		default: // already answered
		}
	}
}

// prepareBatch translates a batch of one source type and prepares its
// deliveries, answering those that fail here.
func (e *Engine) prepareBatch(typ string, batch []*ingestRequest) (pending []*pendingDelivery) {
	defer func() {
		if r := recover(); r != nil {
			// Everything not yet answered fails, and nothing of this
			// batch goes on to the committer: a sender told 500 must not
			// find its events stored.
			pending = nil
			e.answerPanic(r, batch)
		}
	}()
	translations := e.translateBatch(context.Background(), typ, batch)
	pending = make([]*pendingDelivery, 0, len(batch))
	for i, req := range batch {
		tr := translations[i]
		if tr.err != nil {
			e.metrics.DeliveryRejected("unavailable")
			req.done <- ingestResult{err: tr.err}
			continue
		}
		if tr.translation.Err != nil {
			e.metrics.DeliveryRejected(deliveryErrorReason(tr.translation.Err.Kind))
			req.done <- ingestResult{err: tr.translation.Err}
			continue
		}
		pending = append(pending, &pendingDelivery{req: req, translation: tr.translation, size: len(req.delivery.Body)})
	}
	e.prepareEvents(pending)
	out := pending[:0]
	for _, p := range pending {
		if err := p.finishPrepare(); err != nil {
			e.metrics.DeliveryRejected("bad_request")
			p.req.done <- ingestResult{err: err}
			continue
		}
		out = append(out, p)
	}
	return out
}

// commitChunk commits one chunk holding runMu, released even if the commit
// panics (answerOnPanic recovers the stage; a held mutex would stop every
// later commit and API trigger).
func (e *Engine) commitChunk(ctx context.Context, chunk []*pendingDelivery) error {
	e.runMu.Lock()
	defer e.runMu.Unlock()
	return e.store.Update(ctx, func(tx Tx) error { return e.commit(tx, chunk) })
}

// commitInParts commits a delivery too large for one store commit as two
// halves, in order, splitting again where a half is still too large. Only
// an event that alone exceeds the store's limit is refused (ErrTooLarge):
// a valid Segment batch of 4,000 events that each start a run with a
// destination writes more than one Badger transaction may hold, and a 400
// would lose it for good. A delivery committed in parts is not atomic: if
// a later part fails the caller answers 503, and the sender's retry finds
// the parts already stored by their idempotency keys (DESIGN §4).
func (e *Engine) commitInParts(ctx context.Context, p *pendingDelivery) error {
	n := len(p.events)
	if n < 2 {
		return ErrTooLarge
	}
	p.startedRuns = false
	for _, part := range []*pendingDelivery{p.part(0, n/2), p.part(n/2, n)} {
		err := e.commitChunk(ctx, []*pendingDelivery{part})
		if errors.Is(err, ErrTooLarge) {
			err = e.commitInParts(ctx, part)
		}
		if err != nil {
			return err
		}
		p.startedRuns = p.startedRuns || part.startedRuns
	}
	return nil
}

// commitBatch commits prepared deliveries in chunks under the store's
// transaction size, each delivery wholly inside one commit, and answers
// them.
func (e *Engine) commitBatch(pending []*pendingDelivery) {
	reqs := make([]*ingestRequest, len(pending))
	for i, p := range pending {
		reqs[i] = p.req
	}
	defer e.answerOnPanic(reqs)
	ctx := context.Background()
	for len(pending) > 0 {
		n, bytes := 0, 0
		for n < len(pending) && (n == 0 || bytes+pending[n].size <= maxCommitBytes) {
			bytes += pending[n].size
			n++
		}
		chunk := pending[:n]
		pending = pending[n:]
		began := time.Now()
		err := e.commitChunk(ctx, chunk)
		events := 0
		for _, p := range chunk {
			events += len(p.events)
		}
		e.metrics.Committed(events, time.Since(began), err)
		if errors.Is(err, ErrTooLarge) && len(chunk) > 1 {
			// Commit these one by one instead.
			e.log.Warn("ingest commit too large; splitting it", "deliveries", len(chunk))
			for _, p := range chunk {
				p.size = maxCommitBytes
			}
			pending = append(chunk, pending...)
			continue
		}
		if errors.Is(err, ErrTooLarge) {
			err = e.commitInParts(ctx, chunk[0])
		}
		if errors.Is(err, ErrTooLarge) {
			chunk[0].req.done <- ingestResult{err: &DeliveryError{Kind: BadRequest,
				Message: "an event is too large to store in one commit; send smaller events"}}
			continue
		}
		if err != nil {
			e.log.Error("commit ingest batch", "deliveries", len(chunk), "err", err)
			for _, p := range chunk {
				p.req.done <- ingestResult{err: fmt.Errorf("%w: store events: %v", ErrUnavailable, err)}
			}
			continue
		}
		for _, p := range chunk {
			for i, ev := range p.events {
				e.eventHub.publish(ev, p.raws[i])
				e.metrics.EventLogged(p.req.src.GetType(), ev.GetType(), ev.GetStatus())
				for _, a := range ev.GetActions() {
					if a.GetType() == harkv1.ActionType_ACTION_TYPE_TRIGGER_WORKFLOW {
						e.metrics.TriggerEvaluated(a.GetStatus())
					}
					if a.GetWorkflowRunId() != "" {
						e.metrics.RunStarted(true)
					}
				}
			}
			if p.startedRuns {
				e.outbox.notify()
			}
			p.req.done <- ingestResult{resp: p.resp}
		}
	}
}

type translated struct {
	translation Translation
	err         error
}

// translateBatch calls the source type's plugin once for all the batch's
// deliveries.
func (e *Engine) translateBatch(ctx context.Context, typ string, batch []*ingestRequest) (out []translated) {
	out = make([]translated, len(batch))
	fail := func(err error) []translated {
		for i := range out {
			out[i].err = err
		}
		return out
	}
	defer func() {
		if r := recover(); r != nil {
			e.log.Error("translating a batch panicked", "panic", r, "stack", string(debug.Stack()))
			out = fail(fmt.Errorf("translate with %s: internal error: %v", typ, r))
		}
	}()
	ds := make([]Delivery, len(batch))
	for i, req := range batch {
		ds[i] = req.delivery
	}
	res, err := e.translator.Translate(ctx, typ, ds)
	if err == nil && len(res) != len(ds) {
		err = fmt.Errorf("source plugin %s returned %d results for %d deliveries", typ, len(res), len(ds))
	}
	if err != nil {
		if !errors.Is(err, ErrUnavailable) {
			err = fmt.Errorf("translate with %s: %w", typ, err)
		}
		return fail(err)
	}
	for i := range out {
		out[i].translation = res[i]
	}
	return out
}

// pendingDelivery is a translated delivery on its way to the store.
type pendingDelivery struct {
	req         *ingestRequest
	translation Translation
	size        int
	headers     rules.Headers // the delivery's, as expressions see them

	// logged and loggedRec are the headers kept with each event, as a map
	// (for the events in memory) and encoded once for all of them (see
	// headers.go).
	logged        map[string]string
	loggedDropped int32
	loggedRec     []byte

	// Filled by prepareEvents, one per translated event.
	prepared []preparedEvent

	// Filled by finishPrepare: the accepted events, in order, and the answer.
	events []*harkv1.SourceEvent
	raws   []EventJSON                     // each event's JSON as received
	envs   []rules.Env                     // the expression environment of events with triggers
	mapped []map[*compiledTrigger]*outcome // trigger outcomes mapped before the commit
	fixed  [][]byte                        // each event's encoding without its outcome, see encodeFixed
	resp   *harkv1.ReceiveResponse

	// startedRuns is set by commit when a workflow run was stored.
	startedRuns bool
}

// part returns the delivery's events [i, j) as a delivery of their own,
// sharing its request and answer (commit fills in only its events').
func (p *pendingDelivery) part(i, j int) *pendingDelivery {
	return &pendingDelivery{
		req: p.req, translation: p.translation, headers: p.headers, logged: p.logged, loggedDropped: p.loggedDropped, loggedRec: p.loggedRec, resp: p.resp,
		size:   p.size * (j - i) / len(p.events),
		events: p.events[i:j], raws: p.raws[i:j], envs: p.envs[i:j], mapped: p.mapped[i:j], fixed: p.fixed[i:j],
	}
}

type preparedEvent struct {
	ev     *harkv1.SourceEvent
	raw    EventJSON
	env    rules.Env
	mapped map[*compiledTrigger]*outcome
	fixed  []byte
	err    error
}

// encodeFixed encodes everything of a prepared event but its outcome
// (status, reason, actions, original event) and its JSON (stored as
// received, beside the encoding; see Tx.PutSourceEvent), before the commit.
// The committer appends the outcome's encoding (appendOutcome);
// concatenated protobuf encodings decode as one message, so the stored
// record is the same as encoding the whole event at once.
func encodeFixed(ev *harkv1.SourceEvent) ([]byte, error) {
	status, reason := ev.GetStatus(), ev.GetReason()
	ev.Status, ev.Reason = harkv1.SourceEventStatus_SOURCE_EVENT_STATUS_UNSPECIFIED, ""
	b, err := proto.Marshal(ev)
	ev.Status, ev.Reason = status, reason
	return b, err
}

// appendOutcome returns fixed followed by the delivery's logged headers
// (encoded once for all its events) and the encoding of ev's outcome, in a
// new slice (a commit may be retried).
func appendOutcome(fixed, headers []byte, ev *harkv1.SourceEvent) ([]byte, error) {
	out := make([]byte, len(fixed)+len(headers), len(fixed)+len(headers)+64)
	copy(out, fixed)
	copy(out[len(fixed):], headers)
	return proto.MarshalOptions{}.MarshalAppend(out, &harkv1.SourceEvent{
		Status: ev.GetStatus(), Reason: ev.GetReason(), Actions: ev.GetActions(), OriginalEventId: ev.GetOriginalEventId(),
	})
}

// prepareEvents builds the log entries of every event of the pending
// deliveries, and the expression environment of those that have triggers,
// on all cores: decoding JSON is the bulk of the work, and it needs no
// shared state.
func (e *Engine) prepareEvents(pending []*pendingDelivery) {
	type job struct{ p, i int }
	var jobs []job
	for pi, p := range pending {
		p.prepared = make([]preparedEvent, len(p.translation.Events))
		p.headers = rules.NewHeaders(firstValues(p.req.delivery.Header))
		p.logged, p.loggedDropped = loggedHeaders(p.req.delivery.Header)
		// The encoding cannot fail for a map of strings; if it did, the
		// events would be logged without their headers rather than lost.
		p.loggedRec, _ = encodeLoggedHeaders(p.logged, p.loggedDropped)
		for i := range p.translation.Events {
			jobs = append(jobs, job{pi, i})
		}
	}
	var next atomic.Int64
	var work func()
	work = func() {
		var out *preparedEvent
		defer func() {
			// A bug in one event fails that event, not the process.
			if r := recover(); r != nil {
				e.log.Error("preparing an event panicked", "panic", r, "stack", string(debug.Stack()))
				if out != nil {
					out.err = fmt.Errorf("internal error preparing the event: %v", r)
				}
				work() // go on with the other jobs
			}
		}()
		for {
			n := int(next.Add(1)) - 1
			if n >= len(jobs) {
				return
			}
			p := pending[jobs[n].p]
			in := p.translation.Events[jobs[n].i]
			out = &p.prepared[jobs[n].i]
			out.ev, out.raw, out.err = e.newSourceEvent(p.req, in)
			if out.err == nil {
				out.fixed, out.err = encodeFixed(out.ev)
				// After the encoding: the headers are encoded once per
				// delivery (loggedRec), and the events share one map.
				out.ev.Headers, out.ev.HeadersDropped = p.logged, p.loggedDropped
			}
			if out.err != nil || out.ev.GetStatus() != harkv1.SourceEventStatus_SOURCE_EVENT_STATUS_PROCESSED {
				continue // skipped types run no triggers
			}
			// Conditions and mappings need only the event: run them here,
			// on all cores, and leave the committer what reads state.
			if matched := e.triggers.match(out.ev.GetEnvironment(), out.ev.GetSourceId(), out.ev.GetType(), out.ev.GetName()); len(matched) > 0 {
				out.env = jsonEnv(out.raw, in.UserID, p.headers)
				out.mapped = make(map[*compiledTrigger]*outcome, len(matched))
				for _, ct := range matched {
					out.mapped[ct] = mapEvent(ct, out.ev, out.env)
				}
			}
		}
	}
	workers := min(runtime.GOMAXPROCS(0), len(jobs))
	var wg sync.WaitGroup
	for range workers - 1 {
		wg.Go(work)
	}
	work()
	wg.Wait()
}

// finishPrepare assembles the answer: accepted events get their entry,
// refused ones (by the plugin or here) are REJECTED. A delivery with no
// accepted event is refused as a whole (400).
func (p *pendingDelivery) finishPrepare() error {
	tr := p.translation
	resp := &harkv1.ReceiveResponse{}
	for _, rej := range tr.Rejections {
		resp.Events = append(resp.Events, &harkv1.ReceivedEvent{
			Index: int32(rej.Index), Status: harkv1.SourceEventStatus_SOURCE_EVENT_STATUS_REJECTED, Reason: rej.Reason,
		})
	}
	for i, in := range tr.Events {
		pe := p.prepared[i]
		if pe.err != nil {
			resp.Events = append(resp.Events, &harkv1.ReceivedEvent{
				Index: int32(in.Index), Status: harkv1.SourceEventStatus_SOURCE_EVENT_STATUS_REJECTED, Reason: pe.err.Error(),
			})
			continue
		}
		p.events = append(p.events, pe.ev)
		p.raws = append(p.raws, pe.raw)
		p.envs = append(p.envs, pe.env)
		p.mapped = append(p.mapped, pe.mapped)
		p.fixed = append(p.fixed, pe.fixed)
		resp.Events = append(resp.Events, &harkv1.ReceivedEvent{Index: int32(in.Index), Id: pe.ev.GetId()})
	}
	p.prepared = nil
	slices.SortFunc(resp.Events, byIndex)
	p.resp = resp
	if len(p.events) == 0 {
		msg := "the delivery holds no events"
		if len(resp.Events) > 0 {
			msg = fmt.Sprintf("every event was rejected; event %d: %s", resp.Events[0].GetIndex(), resp.Events[0].GetReason())
		}
		return &DeliveryError{Kind: BadRequest, Message: msg, Rejected: resp.Events}
	}
	return nil
}

// jsonEnv builds an event's expression environment straight from its JSON,
// decoded once for all its triggers.
func jsonEnv(raw EventJSON, userID string, headers rules.Headers) rules.Env {
	original := decodeObject(raw.Event) // validated by newSourceEvent
	var data map[string]any
	if len(raw.Data) > 0 {
		data = decodeObject(raw.Data)
	}
	return rules.NewEnvWith(original, data, userID, headers)
}

func firstValues(h http.Header) map[string]string {
	out := make(map[string]string, len(h))
	for k, v := range h {
		if len(v) > 0 {
			out[k] = v[0]
		}
	}
	return out
}

func byIndex(a, b *harkv1.ReceivedEvent) int { return int(a.GetIndex() - b.GetIndex()) }

// newSourceEvent builds the log entry of one event, and checks its JSON,
// which the log keeps as received.
func (e *Engine) newSourceEvent(req *ingestRequest, in InEvent) (*harkv1.SourceEvent, EventJSON, error) {
	ev := &harkv1.SourceEvent{
		Id:          newEventID(),
		SourceId:    req.src.GetId(),
		Environment: req.se.GetEnvironment(),
		ReceivedAt:  timestamppb.New(req.receivedAt),
		Type:        cleanLabel(in.Type),
		Name:        cleanLabel(in.Name),
		UserId:      in.UserID,
		AnonymousId: in.AnonymousID,
	}
	// Type and name are keys of the catalog of unique events; a plugin's
	// long one would fail the whole commit it is in.
	if len(ev.Type) > maxLabelLen || len(ev.Name) > maxLabelLen {
		return nil, EventJSON{}, fmt.Errorf("the event's type or name is longer than %d bytes", maxLabelLen)
	}
	if len(ev.UserId) > maxUserIDLen || len(ev.AnonymousId) > maxUserIDLen {
		return nil, EventJSON{}, fmt.Errorf("the event's userId or anonymousId is longer than %d bytes", maxUserIDLen)
	}
	ev.IdempotencyKey, ev.IdempotencyKeyError = idempotencyKey(in.IdempotencyKey)
	if !in.Timestamp.IsZero() {
		ev.Timestamp = timestamppb.New(in.Timestamp)
	}
	raw := EventJSON{Event: jsonOrNil(in.Original), Data: jsonOrNil(in.Data), Traits: jsonOrNil(in.Traits)}
	for _, part := range []struct {
		name string
		b    []byte
	}{{"data", raw.Data}, {"traits", raw.Traits}, {"event", raw.Event}} {
		if part.b == nil {
			continue
		}
		if err := checkObject(part.b); err != nil {
			return nil, EventJSON{}, fmt.Errorf("%s: not a valid JSON object: %w", part.name, err)
		}
	}
	ev.Status, ev.Reason = initialStatus(ev.GetType())
	return ev, raw, nil
}

// jsonOrNil is nil for an absent or null part of an event.
func jsonOrNil(raw json.RawMessage) []byte {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	return raw
}

// initialStatus is an event's status before it runs: processed when hark
// handles its type, else skipped with the reason.
func initialStatus(typ string) (harkv1.SourceEventStatus, string) {
	switch {
	case typ == "":
		return harkv1.SourceEventStatus_SOURCE_EVENT_STATUS_SKIPPED, "the event has no type"
	case !handledTypes[typ]:
		return harkv1.SourceEventStatus_SOURCE_EVENT_STATUS_SKIPPED, fmt.Sprintf("events of type %q are logged but not processed", typ)
	default:
		return harkv1.SourceEventStatus_SOURCE_EVENT_STATUS_PROCESSED, ""
	}
}

// maxLabelLen bounds an event's type and name: they are store keys, and
// no trigger can match a name over 200 bytes (maxNameLen) anyway.
const maxLabelLen = 1024

// cleanLabel keeps type and name usable as store key segments: NUL (the
// key separator) becomes U+FFFD, the way invalid text is shown elsewhere.
func cleanLabel(s string) string { return strings.ReplaceAll(s, "\x00", "\uFFFD") }

// StructFromJSON decodes a JSON object of the event log into a Struct, as
// API calls show events; nil or null is nil. The ingest path checked it, so
// an error means the stored record is damaged.
func StructFromJSON(raw []byte) (*structpb.Struct, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	s, err := decodeStruct(raw)
	if err != nil {
		return nil, fmt.Errorf("not a valid JSON object: %w", err)
	}
	return s, nil
}

// withStructs fills an event's event, data and traits from its JSON, as
// API calls show them.
func withStructs(ev *harkv1.SourceEvent, raw EventJSON) error {
	var err error
	if ev.Event, err = StructFromJSON(raw.Event); err != nil {
		return err
	}
	if ev.Data, err = StructFromJSON(raw.Data); err != nil {
		return err
	}
	ev.Traits, err = StructFromJSON(raw.Traits)
	return err
}

// commit writes a chunk of deliveries' effects in one transaction: for each
// event in order, the idempotency check, identify, then the log entry. Update
// may call it again after a conflict with an API write, so every run starts
// from the prepared entries and keeps nothing from a previous run.
func (e *Engine) commit(tx Tx, chunk []*pendingDelivery) error {
	if err := tx.Prefetch(prefetchOf(chunk)); err != nil {
		return err
	}
	counts := eventTypeCounts{}
	for _, p := range chunk {
		p.startedRuns = false
		byID := make(map[string]*harkv1.SourceEvent, len(p.events))
		for i, ev := range p.events {
			// A rerun after a conflict starts from the prepared state:
			// execute only ever sets these fields.
			ev.Status, ev.Reason = initialStatus(ev.GetType())
			ev.Actions, ev.OriginalEventId = nil, ""
			started, err := e.execute(tx, p.req.se, ev, p.raws[i], p.envs[i], p.mapped[i], p.req.delivery.Header)
			if err != nil {
				return err
			}
			p.startedRuns = p.startedRuns || started
			encoded, err := appendOutcome(p.fixed[i], p.loggedRec, ev)
			if err != nil {
				return err
			}
			if err := tx.PutSourceEvent(ev.GetEnvironment(), ev.GetId(), encoded, p.raws[i], ev.GetReceivedAt().AsTime().Add(e.eventRetention)); err != nil {
				return err
			}
			counts.add(ev)
			byID[ev.GetId()] = ev
		}
		for _, re := range p.resp.Events {
			if ev, ok := byID[re.GetId()]; ok {
				re.Status, re.Reason = ev.GetStatus(), ev.GetReason()
			}
		}
	}
	return counts.write(tx)
}

// prefetchOf names what the commit of chunk will read of the ledger, the
// users (events' senders, and the recipients of runs mapped before the
// commit), the event types and the run feeds' counters, for Tx.Prefetch.
func prefetchOf(chunk []*pendingDelivery) Prefetch {
	var p Prefetch
	seen := map[EventTypeKey]bool{}
	for _, d := range chunk {
		for i, ev := range d.events {
			env := ev.GetEnvironment()
			if et := (EventTypeKey{ev.GetSourceId(), env, ev.GetType(), ev.GetName()}); !seen[et] {
				seen[et] = true
				p.EventTypes = append(p.EventTypes, et)
			}
			if !slices.Contains(p.RunFeeds, env) {
				p.RunFeeds = append(p.RunFeeds, env)
			}
			if d.req.se.GetIdempotencyEnabled() && ev.GetIdempotencyKey() != "" {
				p.Idempotency = append(p.Idempotency, IdempotencyKey{env, ev.GetSourceId(), ev.GetType(), ev.GetIdempotencyKey()})
			}
			if ev.GetUserId() != "" {
				p.Users = append(p.Users, UserKey{env, ev.GetUserId()})
			}
			if i < len(d.mapped) {
				for _, o := range d.mapped[i] {
					for _, id := range o.recipients {
						p.Users = append(p.Users, UserKey{env, id})
					}
				}
			}
		}
	}
	return p
}

// execute runs one event's effects inside tx and records them on ev: the
// idempotency check, then the event type's default action (identify,
// group, delete, alias) and the triggers, in Knock's action order. It
// reports whether a workflow run was started or cancelled.
func (e *Engine) execute(tx Tx, se *harkv1.SourceEnvironment, ev *harkv1.SourceEvent, raw EventJSON, env rules.Env, mapped map[*compiledTrigger]*outcome, headers http.Header) (bool, error) {
	if se.GetIdempotencyEnabled() && ev.GetIdempotencyKey() != "" {
		duplicate, err := e.checkIdempotency(tx, se, ev)
		if err != nil || duplicate {
			return false, err
		}
	}
	if ev.GetStatus() != harkv1.SourceEventStatus_SOURCE_EVENT_STATUS_PROCESSED {
		return false, nil
	}
	envOf := func() rules.Env {
		if env == nil {
			// A trigger was added since the event was prepared.
			env = jsonEnv(raw, ev.GetUserId(), rules.NewHeaders(firstValues(headers)))
		}
		return env
	}
	return e.runTriggers(tx, ev, envOf, mapped, e.defaultAction(tx, se, ev, raw))
}

// checkIdempotency marks ev as a duplicate when its key was processed within
// the window, and otherwise records the key — in the same commit as the
// event's effects, so a failed commit records neither (DESIGN §4).
func (e *Engine) checkIdempotency(tx Tx, se *harkv1.SourceEnvironment, ev *harkv1.SourceEvent) (bool, error) {
	now := e.now()
	original, expiresAt, err := tx.IdempotencyRecord(ev.GetEnvironment(), ev.GetSourceId(), ev.GetType(), ev.GetIdempotencyKey())
	switch {
	case err == nil && now.Before(expiresAt):
		ev.Status = harkv1.SourceEventStatus_SOURCE_EVENT_STATUS_IDEMPOTENT
		ev.Reason = "duplicate of " + original
		ev.OriginalEventId = original
		ev.Actions = nil
		return true, nil
	case err != nil && !isNotFound(err):
		return false, err
	}
	window := se.GetIdempotencyWindow().AsDuration()
	if se.GetIdempotencyWindow() == nil || window <= 0 {
		window = DefaultIdempotencyWindow
	}
	return false, tx.PutIdempotencyRecord(ev.GetEnvironment(), ev.GetSourceId(), ev.GetType(), ev.GetIdempotencyKey(), ev.GetId(), now.Add(window))
}

// identify upserts the user an identify event describes (DESIGN §4). Outcomes
// the sender caused are actions; only storage failures are errors.
func (e *Engine) identify(tx Tx, se *harkv1.SourceEnvironment, ev *harkv1.SourceEvent, raw EventJSON) (*harkv1.Action, error) {
	action := &harkv1.Action{Type: harkv1.ActionType_ACTION_TYPE_IDENTIFY_USER, UserId: ev.GetUserId()}
	var v validation
	checkUserID(&v, "userId", ev.GetUserId())
	switch {
	case !se.GetIdentifyEnabled():
		action.Status, action.Reason = harkv1.ActionStatus_ACTION_STATUS_SKIPPED, "identify handling is off"
	case ev.GetUserId() == "":
		action.Status, action.Reason = harkv1.ActionStatus_ACTION_STATUS_SKIPPED, "the identify has no userId"
	case v.err() != nil:
		action.Status, action.Reason = harkv1.ActionStatus_ACTION_STATUS_ERROR, v.err().Error()
	default:
		traits, err := StructFromJSON(raw.Traits)
		if err != nil {
			return nil, err
		}
		_, err = e.upsertUser(tx, ev.GetEnvironment(), ev.GetUserId(), patchFromTraits(traits))
		var limit *UserLimitError
		switch {
		case errors.As(err, &limit):
			action.Status, action.Reason = harkv1.ActionStatus_ACTION_STATUS_ERROR, limit.Message
		case err != nil:
			return nil, err
		default:
			action.Status = harkv1.ActionStatus_ACTION_STATUS_SUCCESS
		}
	}
	return action, nil
}

// eventTypeCounts gathers a commit's additions to the catalog of unique
// events, so each event type of the commit is read and written once, not
// once per event.
type eventTypeCounts map[eventTypeKeyOf]*eventTypeCount

type eventTypeKeyOf struct{ source, env, typ, name string }

type eventTypeCount struct {
	n           int64
	first, last *timestamppb.Timestamp
}

func (c eventTypeCounts) add(ev *harkv1.SourceEvent) {
	k := eventTypeKeyOf{ev.GetSourceId(), ev.GetEnvironment(), ev.GetType(), ev.GetName()}
	n, ok := c[k]
	if !ok {
		n = &eventTypeCount{first: ev.GetReceivedAt()}
		c[k] = n
	}
	n.n++
	n.last = ev.GetReceivedAt()
}

// write adds the counts to the catalog of unique events.
func (c eventTypeCounts) write(tx Tx) error {
	for k, n := range c {
		err := tx.CountEventType(&harkv1.EventType{SourceId: k.source, Environment: k.env, Type: k.typ, Name: k.name,
			Count: n.n, FirstReceivedAt: n.first, LastReceivedAt: n.last})
		if err != nil {
			return err
		}
	}
	return nil
}
