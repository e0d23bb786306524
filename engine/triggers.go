package engine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"google.golang.org/protobuf/proto"

	"github.com/harkhq/hark/engine/rules"
	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// ExpressionError is a trigger expression that does not compile, with the
// field it is in. The server returns it as InvalidArgument with a typed
// hark.v1.ExpressionError detail.
type ExpressionError struct {
	Field string
	*rules.CompileError
}

func (e *ExpressionError) Error() string {
	return fmt.Sprintf("%s: %d:%d: %s", e.Field, e.Line, e.Column, e.Message)
}

// compiledTrigger is a trigger with its programs. Nil programs take the
// defaults of DESIGN §4.
type compiledTrigger struct {
	t                                                        *harkv1.Trigger
	condition, recipients, actor, tenant, data, cancellation *rules.Program
}

// compileTrigger compiles every expression of t, or returns the first that
// does not compile as an *ExpressionError.
func compileTrigger(t *harkv1.Trigger) (*compiledTrigger, error) {
	ct := &compiledTrigger{t: t}
	m := t.GetMapping()
	for _, f := range []struct {
		field  string
		source string
		dst    **rules.Program
		cond   bool
	}{
		{"condition", t.GetCondition(), &ct.condition, true},
		{"mapping.recipients", m.GetRecipients(), &ct.recipients, false},
		{"mapping.actor", m.GetActor(), &ct.actor, false},
		{"mapping.tenant", m.GetTenant(), &ct.tenant, false},
		{"mapping.data", m.GetData(), &ct.data, false},
		{"mapping.cancellation_key", m.GetCancellationKey(), &ct.cancellation, false},
	} {
		if f.source == "" {
			continue
		}
		compile := rules.CompileValue
		if f.cond {
			compile = rules.CompileCondition
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
	}
	return ct, nil
}

// triggerKey is what an event matches triggers by.
type triggerKey struct{ env, source, typ, name string }

func keyOf(t *harkv1.Trigger) triggerKey {
	return triggerKey{t.GetEnvironment(), t.GetSourceId(), t.GetEventType(), t.GetEvent()}
}

// triggerIndex holds every trigger compiled, indexed by what events match
// them, so an event touches only its own triggers: 10,000 triggers cost what
// 10 do. It is copy-on-write: readers load it without locks; writers clone
// it under a mutex and swap it in.
type triggerIndex struct {
	byKey map[triggerKey][]*compiledTrigger // creation order
	byID  map[string]*compiledTrigger
}

type triggerRegistry struct {
	mu  sync.Mutex // serializes writers
	cur atomic.Pointer[triggerIndex]
}

func (r *triggerRegistry) load() *triggerIndex {
	if idx := r.cur.Load(); idx != nil {
		return idx
	}
	return &triggerIndex{}
}

// match returns the triggers of an event, in creation order.
func (r *triggerRegistry) match(env, source, typ, name string) []*compiledTrigger {
	return r.load().byKey[triggerKey{env, source, typ, name}]
}

// update applies changes: put replaces or adds a trigger, remove drops one
// by id.
func (r *triggerRegistry) update(put *compiledTrigger, remove string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.load()
	next := &triggerIndex{
		byKey: make(map[triggerKey][]*compiledTrigger, len(old.byKey)+1),
		byID:  make(map[string]*compiledTrigger, len(old.byID)+1),
	}
	for k, v := range old.byKey {
		next.byKey[k] = v
	}
	for k, v := range old.byID {
		next.byID[k] = v
	}
	drop := func(id string) {
		prev, ok := next.byID[id]
		if !ok {
			return
		}
		delete(next.byID, id)
		k := keyOf(prev.t)
		list := slices.DeleteFunc(slices.Clone(next.byKey[k]), func(c *compiledTrigger) bool { return c.t.GetId() == id })
		if len(list) == 0 {
			delete(next.byKey, k)
		} else {
			next.byKey[k] = list
		}
	}
	if remove != "" {
		drop(remove)
	}
	if put != nil {
		drop(put.t.GetId())
		next.byID[put.t.GetId()] = put
		k := keyOf(put.t)
		list := append(slices.Clone(next.byKey[k]), put)
		// Ids are time-ordered, so id order is creation order.
		slices.SortFunc(list, func(a, b *compiledTrigger) int { return cmp.Compare(a.t.GetId(), b.t.GetId()) })
		next.byKey[k] = list
	}
	r.cur.Store(next)
}

// loadTriggers compiles every stored trigger into the registry at start.
func (e *Engine) loadTriggers(ctx context.Context) error {
	return e.store.View(ctx, func(tx Tx) error {
		return ForEach(tx.Environments, (*harkv1.Environment).GetSlug, func(env *harkv1.Environment) error {
			list := func(after string, limit int) ([]*harkv1.Trigger, error) {
				return tx.Triggers(env.GetSlug(), after, limit)
			}
			return ForEach(list, (*harkv1.Trigger).GetId, func(t *harkv1.Trigger) error {
				ct, err := compileTrigger(t)
				if err != nil {
					// Saved expressions compiled when saved; a language
					// change that breaks one must not stop hark.
					e.log.Error("trigger no longer compiles; it will not run", "trigger", t.GetId(), "err", err)
					return nil
				}
				e.triggers.update(ct, "")
				return nil
			})
		})
	})
}

const defaultEventType = "track"

// checkTrigger validates a trigger's fields and references inside tx and
// compiles it.
func (e *Engine) checkTrigger(tx Tx, t *harkv1.Trigger) (*compiledTrigger, error) {
	var v validation
	if t.GetWorkflowKey() == "" {
		v.add("workflow_key", "is required")
	}
	if t.GetSourceId() == "" {
		v.add("source_id", "is required")
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
	if _, err := tx.Source(t.GetSourceId()); err != nil {
		return nil, err
	}
	if _, err := tx.Workflow(t.GetWorkflowKey()); err != nil {
		return nil, err
	}
	return compileTrigger(t)
}

// saveTrigger checks t (see checkTrigger) and writes it, returning its
// compiled form for the registry.
func (e *Engine) saveTrigger(tx Tx, t *harkv1.Trigger) (*compiledTrigger, error) {
	ct, err := e.checkTrigger(tx, t)
	if err != nil {
		return nil, err
	}
	return ct, tx.PutTrigger(t)
}

// CreateTrigger saves a trigger after checking that its environment, source
// and workflow exist and its expressions compile.
func (e *Engine) CreateTrigger(ctx context.Context, req *harkv1.CreateTriggerRequest) (*harkv1.Trigger, error) {
	// Held across the commit and the registry update, so the registry
	// applies trigger writes in the order they were committed.
	e.triggerMu.Lock()
	defer e.triggerMu.Unlock()
	now := e.timestamp()
	t := &harkv1.Trigger{
		Id:          newID("trg_"),
		Environment: req.GetEnvironment(),
		WorkflowKey: req.GetWorkflowKey(),
		SourceId:    req.GetSourceId(),
		EventType:   req.GetEventType(),
		Event:       req.GetEvent(),
		Condition:   req.GetCondition(),
		Mapping:     req.GetMapping(),
		Status:      req.GetStatus(),
		CreatedAt:   now,
		UpdatedAt:   now,
	}
	if t.Mapping == nil {
		t.Mapping = &harkv1.TriggerMapping{}
	}
	var ct *compiledTrigger
	err := e.store.Update(ctx, func(tx Tx) (err error) {
		ct, err = e.saveTrigger(tx, t)
		return err
	})
	if err != nil {
		return nil, err
	}
	e.triggers.update(ct, "")
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
	// Held across the commit and the registry update, so the registry
	// applies trigger writes in the order they were committed.
	e.triggerMu.Lock()
	defer e.triggerMu.Unlock()
	var (
		t  *harkv1.Trigger
		ct *compiledTrigger
	)
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
		t.UpdatedAt = e.timestamp()
		ct, err = e.saveTrigger(tx, t)
		return err
	})
	if err != nil {
		return nil, err
	}
	e.triggers.update(ct, "")
	return t, nil
}

// DeleteTrigger deletes a trigger.
func (e *Engine) DeleteTrigger(ctx context.Context, env, id string) error {
	// Held across the commit and the registry update, so the registry
	// applies trigger writes in the order they were committed.
	e.triggerMu.Lock()
	defer e.triggerMu.Unlock()
	err := e.store.Update(ctx, func(tx Tx) error {
		if _, err := tx.Environment(env); err != nil {
			return err
		}
		if _, err := tx.Trigger(env, id); err != nil {
			return err
		}
		return tx.DeleteTrigger(env, id)
	})
	if err != nil {
		return err
	}
	e.triggers.update(nil, id)
	return nil
}
