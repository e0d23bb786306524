package engine

import (
	"context"
	"fmt"
	"sync"

	"google.golang.org/protobuf/proto"

	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// maxEventScan bounds how many log entries one ListSourceEvents call reads
// while filtering. A page may come back short with a next_page_token when
// matches are rare; the client continues from there. This keeps a filter
// that matches nothing from reading 30 days of log in one call.
const maxEventScan = 10000

// ListEventTypes returns a page of the unique events a source has sent to an
// environment, ordered by type then name.
func (e *Engine) ListEventTypes(ctx context.Context, req *harkv1.ListEventTypesRequest) (*harkv1.ListEventTypesResponse, error) {
	p, err := readPage(req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	resp := &harkv1.ListEventTypesResponse{}
	err = e.store.View(ctx, func(tx Tx) error {
		if _, err := e.loadSourceEnvironment(tx, req.GetSourceId(), req.GetEnvironment()); err != nil {
			return err
		}
		ets, err := tx.EventTypes(req.GetSourceId(), req.GetEnvironment(), p.after, p.limit())
		if err != nil {
			return err
		}
		resp.EventTypes, resp.NextPageToken = finishPage(ets, p, eventTypeKey)
		return nil
	})
	return resp, err
}

// eventTypeKey is an event type's position in its source environment's list.
func eventTypeKey(et *harkv1.EventType) string { return et.GetType() + "\x00" + et.GetName() }

// ListSourceEvents returns a page of an environment's event log, newest
// first, filtered by the request.
func (e *Engine) ListSourceEvents(ctx context.Context, req *harkv1.ListSourceEventsRequest) (*harkv1.ListSourceEventsResponse, error) {
	p, err := readPage(req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	filter := EventFilter{SourceID: req.GetSourceId(), Type: req.GetType(), Name: req.GetName(), UserID: req.GetUserId(), Status: req.GetStatus()}
	resp := &harkv1.ListSourceEventsResponse{}
	err = e.store.View(ctx, func(tx Tx) error {
		if _, err := tx.Environment(req.GetEnvironment()); err != nil {
			return err
		}
		evs, last, err := tx.SourceEvents(req.GetEnvironment(), p.after, p.limit(), maxEventScan, filter)
		if err != nil {
			return err
		}
		resp.SourceEvents, resp.NextPageToken = finishPage(evs, p, (*harkv1.SourceEvent).GetId)
		if resp.NextPageToken == "" && last != "" {
			// The scan budget ran out before the page filled: continue
			// from the last entry read.
			resp.NextPageToken = encodePageToken(last)
		}
		return nil
	})
	return resp, err
}

// GetSourceEvent returns one logged event.
func (e *Engine) GetSourceEvent(ctx context.Context, env, id string) (*harkv1.SourceEvent, error) {
	var ev *harkv1.SourceEvent
	err := e.store.View(ctx, func(tx Tx) (err error) {
		if _, err := tx.Environment(env); err != nil {
			return err
		}
		ev, err = tx.SourceEvent(env, id)
		return err
	})
	return ev, err
}

// watchBuffer is how many events a live tail may lag before it is cut off.
const watchBuffer = 1024

// WatchSourceEvents calls send for every event logged in the environment (and
// source, when given) from now until ctx ends or send fails, and, with
// include_refusals, for every delivery its webhooks refuse, in the order
// they happen. A watcher that falls more than watchBuffer messages behind is
// ended with ErrUnavailable; it is a live tail, and the log itself (and the
// refused-delivery log) keeps every event.
//
// ready is called once the watcher is subscribed: events logged from then on
// reach it. The server uses it to send the response headers, so a client
// knows when its tail has started.
func (e *Engine) WatchSourceEvents(ctx context.Context, req *harkv1.WatchSourceEventsRequest, ready func() error, send func(*harkv1.WatchSourceEventsResponse) error) error {
	if _, err := e.getEnvironment(ctx, req.GetEnvironment()); err != nil {
		return err
	}
	if req.GetSourceId() != "" && req.GetIncludeRefusals() {
		// The refusals of an unknown source would never come: say so.
		if _, err := e.GetSourceEnvironment(ctx, req.GetSourceId(), req.GetEnvironment()); err != nil {
			return err
		}
	}
	sub := e.eventHub.subscribe(req.GetEnvironment(), req.GetSourceId(), req.GetIncludeRefusals())
	defer e.eventHub.unsubscribe(sub)
	// Before ready: from then on the other nodes' events reach it too.
	defer e.followOthersEvents()()
	if err := ready(); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-e.streamsEnd:
			return fmt.Errorf("%w: the server is shutting down; watch again", ErrUnavailable)
		case msg, ok := <-sub.ch:
			if !ok {
				return fmt.Errorf("%w: the watcher fell more than %d events behind; watch again", ErrUnavailable, watchBuffer)
			}
			if err := send(msg); err != nil {
				return err
			}
		}
	}
}

func (e *Engine) getEnvironment(ctx context.Context, slug string) (*harkv1.Environment, error) {
	var env *harkv1.Environment
	err := e.store.View(ctx, func(tx Tx) (err error) {
		env, err = tx.Environment(slug)
		return err
	})
	return env, err
}

// eventHub fans newly committed events out to live watchers.
type eventHub struct {
	mu   sync.Mutex
	subs map[*eventSub]struct{}

	// others follows the events other nodes log (EventFollower) while
	// anyone watches: followers counts the watchers, stop ends it.
	othersMu  sync.Mutex
	followers int
	stop      func()
}

// followOthersEvents has the events other nodes log reach the live
// watchers, on a store that reports them, and returns the function that
// ends that for this watcher. The store is followed while at least one
// watcher is: every event of the cluster is a message to this node then.
func (e *Engine) followOthersEvents() (release func()) {
	f, ok := e.store.(EventFollower)
	if !ok {
		return func() {}
	}
	h := &e.eventHub
	h.othersMu.Lock()
	defer h.othersMu.Unlock()
	if h.followers == 0 {
		h.stop = f.FollowEvents(e.publishOthersEvent)
	}
	h.followers++
	return func() {
		h.othersMu.Lock()
		defer h.othersMu.Unlock()
		if h.followers--; h.followers == 0 {
			h.stop()
			h.stop = nil
		}
	}
}

// publishOthersEvent reads an event another node logged and hands it to
// the watchers of its environment, if any still watch it.
func (e *Engine) publishOthersEvent(env, id string) {
	if !e.eventHub.watched(env) {
		return
	}
	var ev *harkv1.SourceEvent
	err := e.store.View(context.Background(), func(tx Tx) (err error) {
		ev, err = tx.SourceEvent(env, id)
		return err
	})
	if err != nil {
		if !isNotFound(err) {
			e.log.Warn("read an event another node logged, for live tails", "event", id, "err", err)
		}
		return
	}
	e.eventHub.publishDecoded(ev)
}

// watched reports whether a watcher of env is subscribed.
func (h *eventHub) watched(env string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		if !s.closed && s.env == env {
			return true
		}
	}
	return false
}

type eventSub struct {
	env, sourceID string
	refusals      bool // the watcher takes refused deliveries too
	ch            chan *harkv1.WatchSourceEventsResponse
	closed        bool
}

func (h *eventHub) subscribe(env, sourceID string, refusals bool) *eventSub {
	s := &eventSub{env: env, sourceID: sourceID, refusals: refusals, ch: make(chan *harkv1.WatchSourceEventsResponse, watchBuffer)}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.subs == nil {
		h.subs = map[*eventSub]struct{}{}
	}
	h.subs[s] = struct{}{}
	return s
}

func (h *eventHub) unsubscribe(s *eventSub) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.subs, s)
}

// publish never blocks the committer: a watcher whose buffer is full is
// closed and dropped. The event as watchers see it (with event, data and
// traits decoded from raw) is built once, and only when one is watching.
func (h *eventHub) publish(ev *harkv1.SourceEvent, raw EventJSON) {
	h.fanOut(ev, func() (*harkv1.SourceEvent, error) {
		full := proto.CloneOf(ev)
		return full, withStructs(full, raw)
	})
}

// publishDecoded is publish for an event read back from the store, with
// its JSON parts decoded already.
func (h *eventHub) publishDecoded(ev *harkv1.SourceEvent) {
	h.fanOut(ev, func() (*harkv1.SourceEvent, error) { return ev, nil })
}

// fanOut sends ev, as full builds it (once, and only when one is
// watching), to the watchers of its environment and source.
func (h *eventHub) fanOut(ev *harkv1.SourceEvent, full func() (*harkv1.SourceEvent, error)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var msg *harkv1.WatchSourceEventsResponse
	for s := range h.subs {
		if s.closed || s.env != ev.GetEnvironment() || (s.sourceID != "" && s.sourceID != ev.GetSourceId()) {
			continue
		}
		if msg == nil {
			built, err := full()
			if err != nil {
				return
			}
			msg = &harkv1.WatchSourceEventsResponse{Message: &harkv1.WatchSourceEventsResponse_SourceEvent{SourceEvent: built}}
		}
		h.sendLocked(s, msg)
	}
}

// publishRefusal sends a refused delivery to the watchers that take them.
// Like publish, it never blocks: the refusal is answered to its sender
// right after.
func (h *eventHub) publishRefusal(r *harkv1.RefusedDelivery) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var msg *harkv1.WatchSourceEventsResponse
	for s := range h.subs {
		if s.closed || !s.refusals || s.env != r.GetEnvironment() || (s.sourceID != "" && s.sourceID != r.GetSourceId()) {
			continue
		}
		if msg == nil {
			msg = &harkv1.WatchSourceEventsResponse{Message: &harkv1.WatchSourceEventsResponse_RefusedDelivery{RefusedDelivery: r}}
		}
		h.sendLocked(s, msg)
	}
}

// sendLocked sends msg to s, or closes and drops s when its buffer is full.
// The caller holds h.mu.
func (h *eventHub) sendLocked(s *eventSub, msg *harkv1.WatchSourceEventsResponse) {
	select {
	case s.ch <- msg:
	default:
		s.closed = true
		close(s.ch)
		delete(h.subs, s)
	}
}

// newEventID returns a time-ordered event id.
func newEventID() string { return newID("evt_") }
