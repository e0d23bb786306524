package engine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"

	"google.golang.org/protobuf/proto"

	"github.com/harkhq/hark/engine/rules"
	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// compiledTrigger is a trigger with its programs. Nil programs take the
// defaults of DESIGN §4.
type compiledTrigger struct {
	t                                                        *harkv1.Trigger
	act                                                      action
	rank                                                     int32 // actionRank: where it runs among an event's actions
	condition, recipients, actor, tenant, data, cancellation *rules.Program
	fields                                                   [numActionFields]*rules.Program // ActionMapping's
}

// compileTrigger compiles every expression of t, or returns the first that
// does not compile as an *ExpressionError.
func compileTrigger(t *harkv1.Trigger) (*compiledTrigger, error) {
	return compileTriggerCached(t, nil)
}

// compileTriggerCached is compileTrigger sharing programs through cache
// (nil: no sharing).
func compileTriggerCached(t *harkv1.Trigger, cache programCache) (*compiledTrigger, error) {
	act, ok := actions[t.GetActionType()]
	if !ok {
		return nil, &ValidationError{Violations: []FieldViolation{{Field: "actionType", Description: fmt.Sprintf("unknown action type %d", t.GetActionType())}}}
	}
	ct := &compiledTrigger{t: t, act: act, rank: actionRank(t.GetActionType())}
	for _, f := range ct.expressions() {
		if f.source == "" {
			continue
		}
		compile := rules.CompileValue
		if f.cond {
			compile = rules.CompileCondition
		}
		cacheKey := f.source
		if f.cond {
			cacheKey = "\x00" + f.source // conditions compile differently
		}
		if p, ok := cache[cacheKey]; ok {
			*f.dst = p
			continue
		}
		p, err := compile(f.source)
		if err != nil {
			var ce *rules.CompileError
			if errors.As(err, &ce) {
				return nil, &ExpressionError{Field: f.field, CompileError: ce}
			}
			return nil, err
		}
		*f.dst = p
		if cache != nil {
			cache[cacheKey] = p
		}
	}
	return ct, nil
}

// triggerKey is what an event matches triggers by.
type triggerKey struct{ env, source, typ, name string }

func keyOf(t *harkv1.Trigger) triggerKey {
	return triggerKey{t.GetEnvironment(), t.GetSourceId(), t.GetEventType(), t.GetEvent()}
}

// triggerRegistry holds every trigger compiled, indexed by what events match
// them, so an event touches only its own triggers: 10,000 triggers cost what
// 10 do (DESIGN §6).
//
// Readers (the ingest path) take a key's list without locks. Each list is
// immutable once stored: a writer builds the new list of the one key it
// changes and swaps it in, so a match read before an update never changes,
// and an update costs the size of its key's list, not of the registry.
// Writers are serialized by mu, which also guards byID.
type triggerRegistry struct {
	mu    sync.Mutex
	byKey sync.Map                    // triggerKey → []*compiledTrigger, run order
	byID  map[string]*compiledTrigger // guarded by mu
}

// runOrder orders the triggers of one key as their actions run: by action
// rank (Knock's order, DESIGN §9), then creation (time-ordered ids).
func runOrder(a, b *compiledTrigger) int {
	return cmp.Or(cmp.Compare(a.rank, b.rank), cmp.Compare(a.t.GetId(), b.t.GetId()))
}

// match returns the triggers of an event, in run order (runOrder). The slice is
// shared: callers must not modify it.
func (r *triggerRegistry) match(env, source, typ, name string) []*compiledTrigger {
	v, ok := r.byKey.Load(triggerKey{env, source, typ, name})
	if !ok {
		return nil
	}
	return v.([]*compiledTrigger)
}

// get returns the compiled trigger of that id, if the registry holds it.
func (r *triggerRegistry) get(id string) (*compiledTrigger, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ct, ok := r.byID[id]
	return ct, ok
}

// size is how many triggers the registry holds.
func (r *triggerRegistry) size() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.byID)
}

// update applies changes: put replaces or adds a trigger, remove drops one
// by id. It touches only the keys of the triggers involved.
func (r *triggerRegistry) update(put *compiledTrigger, remove string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byID == nil {
		r.byID = map[string]*compiledTrigger{}
	}
	if remove != "" {
		r.drop(remove)
	}
	if put == nil {
		return
	}
	r.drop(put.t.GetId())
	r.byID[put.t.GetId()] = put
	k := keyOf(put.t)
	old := r.match(k.env, k.source, k.typ, k.name)
	i, _ := slices.BinarySearchFunc(old, put, runOrder)
	list := make([]*compiledTrigger, 0, len(old)+1)
	list = append(append(append(list, old[:i]...), put), old[i:]...)
	r.byKey.Store(k, list)
}

// drop removes a trigger by id; r.mu is held.
func (r *triggerRegistry) drop(id string) {
	prev, ok := r.byID[id]
	if !ok {
		return
	}
	delete(r.byID, id)
	k := keyOf(prev.t)
	list := slices.DeleteFunc(slices.Clone(r.match(k.env, k.source, k.typ, k.name)), func(c *compiledTrigger) bool { return c.t.GetId() == id })
	if len(list) == 0 {
		r.byKey.Delete(k)
	} else {
		r.byKey.Store(k, list)
	}
}

// replaceAll swaps in a whole set of triggers at once, grouped and sorted in
// one pass; it is how the registry is built at start.
func (r *triggerRegistry) replaceAll(all []*compiledTrigger) {
	r.mu.Lock()
	defer r.mu.Unlock()
	byKey := map[triggerKey][]*compiledTrigger{}
	r.byID = make(map[string]*compiledTrigger, len(all))
	for _, ct := range all {
		if _, dup := r.byID[ct.t.GetId()]; dup {
			continue
		}
		r.byID[ct.t.GetId()] = ct
		k := keyOf(ct.t)
		byKey[k] = append(byKey[k], ct)
	}
	r.byKey.Clear()
	for k, list := range byKey {
		slices.SortFunc(list, runOrder)
		r.byKey.Store(k, list)
	}
}

// programCache shares compiled programs between triggers with the same
// expression while the registry is built: stores often hold many triggers
// with the same mapping, and compiling is most of the start-up cost.
// Programs are immutable and safe for concurrent use, so sharing is safe.
type programCache map[string]*rules.Program

// loadTriggers compiles every stored trigger into the registry at start,
// then swaps the whole index in at once.
func (e *Engine) loadTriggers(ctx context.Context) error {
	var all []*harkv1.Trigger
	err := e.store.View(ctx, func(tx Tx) error {
		return ForEach(tx.Environments, (*harkv1.Environment).GetSlug, func(env *harkv1.Environment) error {
			list := func(after string, limit int) ([]*harkv1.Trigger, error) {
				return tx.Triggers(env.GetSlug(), after, limit)
			}
			return ForEach(list, (*harkv1.Trigger).GetId, func(t *harkv1.Trigger) error {
				all = append(all, t)
				return nil
			})
		})
	})
	if err != nil {
		return err
	}
	// Compile on every core, each worker with its own cache (a program
	// shared within a worker needs no lock).
	compiled := make([]*compiledTrigger, len(all))
	workers := max(1, min(runtime.GOMAXPROCS(0), len(all)/64))
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			cache := programCache{}
			for i := w; i < len(all); i += workers {
				ct, err := compileTriggerCached(all[i], cache)
				if err != nil {
					// Saved expressions compiled when saved; a language
					// change that breaks one must not stop hark.
					e.log.Error("trigger no longer compiles; it will not run", "trigger", all[i].GetId(), "err", err)
					continue
				}
				compiled[i] = ct
			}
		})
	}
	wg.Wait()
	e.triggers.replaceAll(slices.DeleteFunc(compiled, func(ct *compiledTrigger) bool { return ct == nil }))
	return nil
}

const defaultEventType = "track"

// checkTrigger validates a trigger's fields and references inside tx and
// compiles it. The roots of the expressions fresh says are new are checked
// (sourceRoots); nil means all of them.
func (e *Engine) checkTrigger(tx Tx, t *harkv1.Trigger, fresh func(field string) bool) (*compiledTrigger, error) {
	var v validation
	act, ok := actions[t.GetActionType()]
	if !ok {
		v.add("actionType", "unknown action type %d", t.GetActionType())
	} else {
		act.check(t, &v)
	}
	if t.GetSourceId() == "" {
		v.add("sourceId", "is required")
	}
	if t.GetEventType() == "" {
		t.EventType = defaultEventType
	}
	if t.GetEventType() == "track" && t.GetEvent() == "" {
		v.add("event", "is required for track triggers: the event name to match")
	}
	if len(t.GetEvent()) > maxNameLen {
		v.add("event", "must be at most %d characters", maxNameLen)
	}
	if t.GetStatus() == harkv1.TriggerStatus_TRIGGER_STATUS_UNSPECIFIED {
		t.Status = harkv1.TriggerStatus_TRIGGER_STATUS_ACTIVE
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	if _, err := tx.Environment(t.GetEnvironment()); err != nil {
		return nil, err
	}
	src, err := tx.Source(t.GetSourceId())
	if err != nil {
		return nil, err
	}
	if isWorkflowAction(t.GetActionType()) {
		if _, err := tx.Workflow(t.GetWorkflowKey()); err != nil {
			return nil, err
		}
	}
	ct, err := compileTrigger(t)
	if err != nil {
		return nil, err
	}
	if roots, ok := sourceRoots[src.GetType()]; ok {
		if err := ct.checkRoots(roots, fresh); err != nil {
			return nil, err
		}
	}
	return ct, nil
}

// sourceRoots are the names expressions may start a path with, by source
// type: the top-level fields its events are known to have, besides hark's
// own (body, data, user_id, headers). A name outside them is a typo, refused
// when a trigger is saved or tested (DESIGN §4: a missing field is nil, so
// `propertes.plan == "pro"` would otherwise never be true, silently).
//
// Segment and RudderStack events follow the Segment spec. Other sources (the
// http source, third-party plugins) deliver events whose top-level fields
// are the sender's own and unknown until one arrives, so their roots are not
// checked. The check is for saving only: stored triggers are compiled as
// they always were (loadTriggers), so none stops running.
var sourceRoots = map[string]rules.Roots{
	"segment":     segmentRoots,
	"rudderstack": segmentRoots,
}

var segmentRoots = rules.NewRoots(rules.SegmentFields...)

// triggerExpression is one expression field of a trigger and its program.
type triggerExpression struct {
	field  string // as ExpressionError names it
	source string
	dst    **rules.Program
	cond   bool // a condition: compiled as a boolean
}

// expressions are ct's expression fields, in the order they are compiled
// and their roots checked.
func (ct *compiledTrigger) expressions() []triggerExpression {
	m := ct.t.GetMapping()
	out := []triggerExpression{
		{"condition", ct.t.GetCondition(), &ct.condition, true},
		{"mapping.recipients", m.GetRecipients(), &ct.recipients, false},
		{"mapping.actor", m.GetActor(), &ct.actor, false},
		{"mapping.tenant", m.GetTenant(), &ct.tenant, false},
		{"mapping.data", m.GetData(), &ct.data, false},
		{"mapping.cancellationKey", m.GetCancellationKey(), &ct.cancellation, false},
	}
	if am := ct.t.GetActionMapping(); am != nil {
		for f := range numActionFields {
			out = append(out, triggerExpression{"actionMapping." + f.name(), f.source(am), &ct.fields[f], false})
		}
	}
	return out
}

// checkRoots returns an *ExpressionError for the first expression of ct
// that starts a path outside roots, of those fresh says are new (nil: all).
func (ct *compiledTrigger) checkRoots(roots rules.Roots, fresh func(field string) bool) error {
	for _, f := range ct.expressions() {
		if *f.dst == nil || (fresh != nil && !fresh(f.field)) {
			continue
		}
		if err := (*f.dst).CheckRoots(roots); err != nil {
			var ce *rules.CompileError
			if errors.As(err, &ce) {
				return &ExpressionError{Field: f.field, CompileError: ce}
			}
			return err
		}
	}
	return nil
}

// saveTrigger checks t (see checkTrigger) and writes it; the registry takes
// it from the store's change (watch.go).
func (e *Engine) saveTrigger(tx Tx, t *harkv1.Trigger, fresh func(field string) bool) error {
	if _, err := e.checkTrigger(tx, t, fresh); err != nil {
		return err
	}
	return tx.PutTrigger(t)
}

// CreateTrigger saves a trigger after checking that its environment, source
// and workflow exist and its expressions compile.
func (e *Engine) CreateTrigger(ctx context.Context, req *harkv1.CreateTriggerRequest) (*harkv1.Trigger, error) {
	now := e.timestamp()
	t := &harkv1.Trigger{
		Id:            newID("trg_"),
		Environment:   req.GetEnvironment(),
		WorkflowKey:   req.GetWorkflowKey(),
		SourceId:      req.GetSourceId(),
		EventType:     req.GetEventType(),
		Event:         req.GetEvent(),
		Condition:     req.GetCondition(),
		Mapping:       req.GetMapping(),
		Status:        req.GetStatus(),
		ActionType:    req.GetActionType(),
		ActionMapping: req.GetActionMapping(),
		Frequency:     req.GetFrequency(),
		CreatedAt:     now,
		UpdatedAt:     now,
	}
	if t.Mapping == nil {
		t.Mapping = &harkv1.TriggerMapping{}
	}
	err := e.store.Update(ctx, func(tx Tx) error {
		return e.saveTrigger(tx, t, nil)
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// GetTrigger returns one trigger.
func (e *Engine) GetTrigger(ctx context.Context, env, id string) (*harkv1.Trigger, error) {
	var t *harkv1.Trigger
	err := e.store.View(ctx, func(tx Tx) (err error) {
		if _, err := tx.Environment(env); err != nil {
			return err
		}
		t, err = tx.Trigger(env, id)
		return err
	})
	return t, err
}

// ListTriggers returns a page of an environment's triggers, in creation
// order, filtered by source, event and workflow.
func (e *Engine) ListTriggers(ctx context.Context, req *harkv1.ListTriggersRequest) (*harkv1.ListTriggersResponse, error) {
	p, err := readPage(req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	keep := func(t *harkv1.Trigger) bool {
		return (req.GetSourceId() == "" || t.GetSourceId() == req.GetSourceId()) &&
			(req.GetEvent() == "" || t.GetEvent() == req.GetEvent()) &&
			(req.GetWorkflowKey() == "" || t.GetWorkflowKey() == req.GetWorkflowKey())
	}
	resp := &harkv1.ListTriggersResponse{}
	err = e.store.View(ctx, func(tx Tx) error {
		if _, err := tx.Environment(req.GetEnvironment()); err != nil {
			return err
		}
		var out []*harkv1.Trigger
		list := func(after string, limit int) ([]*harkv1.Trigger, error) {
			return tx.Triggers(req.GetEnvironment(), after, limit)
		}
		after := p.after
		for len(out) < p.limit() {
			page, err := list(after, MaxPageSize)
			if err != nil {
				return err
			}
			for _, t := range page {
				if keep(t) && len(out) < p.limit() {
					out = append(out, t)
				}
			}
			if len(page) < MaxPageSize {
				break
			}
			after = page[len(page)-1].GetId()
		}
		resp.Triggers, resp.NextPageToken = finishPage(out, p, (*harkv1.Trigger).GetId)
		return nil
	})
	return resp, err
}

// UpdateTrigger changes the fields the request gives, checks the result as
// CreateTrigger does, and swaps the compiled trigger in.
func (e *Engine) UpdateTrigger(ctx context.Context, req *harkv1.UpdateTriggerRequest) (*harkv1.Trigger, error) {
	var t *harkv1.Trigger
	err := e.store.Update(ctx, func(tx Tx) (err error) {
		if _, err := tx.Environment(req.GetEnvironment()); err != nil {
			return err
		}
		if t, err = tx.Trigger(req.GetEnvironment(), req.GetId()); err != nil {
			return err
		}
		if req.WorkflowKey != nil {
			t.WorkflowKey = req.GetWorkflowKey()
		}
		if req.SourceId != nil {
			t.SourceId = req.GetSourceId()
		}
		if req.EventType != nil {
			t.EventType = req.GetEventType()
		}
		if req.Event != nil {
			t.Event = req.GetEvent()
		}
		if req.Condition != nil {
			t.Condition = req.GetCondition()
		}
		if req.Mapping != nil {
			t.Mapping = proto.CloneOf(req.GetMapping())
		}
		if req.Status != nil {
			t.Status = req.GetStatus()
		}
		if req.ActionType != nil {
			t.ActionType = req.GetActionType()
		}
		if req.ActionMapping != nil {
			t.ActionMapping = proto.CloneOf(req.GetActionMapping())
		}
		if req.Frequency != nil {
			t.Frequency = req.GetFrequency()
		}
		t.UpdatedAt = e.timestamp()
		// Only the expressions the update gives (all of them on a move to
		// another source) have their roots checked: a trigger saved before
		// the check existed can still be paused or renamed as it is.
		fresh := func(field string) bool {
			return req.SourceId != nil || req.ActionType != nil || (field == "condition" && req.Condition != nil) ||
				(strings.HasPrefix(field, "mapping.") && req.Mapping != nil) ||
				(strings.HasPrefix(field, "actionMapping.") && req.ActionMapping != nil)
		}
		return e.saveTrigger(tx, t, fresh)
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// DeleteTrigger deletes a trigger.
func (e *Engine) DeleteTrigger(ctx context.Context, env, id string) error {
	err := e.store.Update(ctx, func(tx Tx) error {
		if _, err := tx.Environment(env); err != nil {
			return err
		}
		if _, err := tx.Trigger(env, id); err != nil {
			return err
		}
		return tx.DeleteTrigger(env, id)
	})
	return err
}
