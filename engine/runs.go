package engine

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/harkhq/hark/engine/delivery"
	"github.com/harkhq/hark/engine/rules"
	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

const (
	// MaxRecipients bounds the recipients one mapping or API call names, as
	// Knock does.
	MaxRecipients = 1000
	// MaxFanOut bounds the subscribers that object recipients add to one
	// run: a run's recipients are stored in its record, which must fit one
	// store commit with the rest of the batch.
	MaxFanOut = 10000
	// DefaultRunRetention is how long runs are kept.
	DefaultRunRetention = 30 * 24 * time.Hour
	// apiIdempotencyWindow is how long an Idempotency-Key of TriggerWorkflow
	// is remembered (Knock: 24 hours).
	apiIdempotencyWindow = 24 * time.Hour
	// maxIdempotencyKeyLen bounds Idempotency-Key headers.
	maxIdempotencyKeyLen = 255
	// cancelChunk is how many runs one commit of CancelWorkflow cancels:
	// small enough for one store transaction, and to hold runMu (which the
	// ingest committer takes too) only briefly.
	cancelChunk = 256
)

// outcome is what a trigger does with an event, computed without writing.
type outcome struct {
	status          harkv1.ActionStatus // SUCCESS when a run is to start
	reason          string
	conditionResult bool
	conditionPassed bool // the trigger is active and its condition held

	// As the mapping yielded them (for TestTrigger).
	rawRecipients, rawActor, rawTenant, rawData any
	// values are an action mapping's values by field (for TestTrigger),
	// params what the action read from them (see fieldAction).
	values map[string]any
	params any

	recipients      []string
	skipped         []*harkv1.SkippedRecipient
	inline          map[string]userPatch // inline user objects to identify first
	objects         []objectRef          // object recipients, fanned out to their subscribers
	inlineTenant    *structpb.Struct     // an inline tenant's properties, set before the run
	actor, tenant   string
	data            *structpb.Struct
	cancellationKey string
}

func (o *outcome) fail(status harkv1.ActionStatus, format string, args ...any) *outcome {
	o.status, o.reason = status, fmt.Sprintf(format, args...)
	return o
}

// Outcomes that say only why nothing happened, shared: outcomes are never
// changed once made (finish copies before it writes).
var (
	conditionFalse  = &outcome{status: harkv1.ActionStatus_ACTION_STATUS_SKIPPED, reason: "condition false"}
	triggerInactive = &outcome{status: harkv1.ActionStatus_ACTION_STATUS_SKIPPED, reason: "the trigger is inactive"}
)

// eventEnv builds the expression environment of a logged event.
// An event without data has data nil, as jsonEnv gives it.
func eventEnv(ev *harkv1.SourceEvent, headers http.Header) rules.Env {
	var data map[string]any
	if ev.GetData() != nil {
		data = ev.GetData().AsMap()
	}
	return rules.NewEnv(ev.GetEvent().AsMap(), data, ev.GetUserId(), firstValues(headers))
}

// mapEvent runs the part of a trigger that needs only the event — the
// trigger's status, the condition and the mapping — so the ingest path can
// run it on all cores before the commit. The action's apply completes it.
func mapEvent(ct *compiledTrigger, ev *harkv1.SourceEvent, env rules.Env) *outcome {
	if ct.t.GetStatus() == harkv1.TriggerStatus_TRIGGER_STATUS_INACTIVE {
		return triggerInactive
	}
	if ct.condition != nil {
		ok, err := ct.condition.EvalBool(env)
		if err != nil {
			o := &outcome{conditionResult: true}
			return o.fail(harkv1.ActionStatus_ACTION_STATUS_ERROR, "condition: %v", err)
		}
		if !ok {
			return conditionFalse // most outcomes: one shared, not one per trigger and event
		}
	}
	// Allocated only once the condition held: most triggers of an event
	// end at a false condition.
	o := &outcome{status: harkv1.ActionStatus_ACTION_STATUS_SUCCESS, conditionResult: true, conditionPassed: true}
	return ct.act.mapEvent(ct, ev, env, o)
}

// mapRun evaluates a workflows_trigger's mapping into o.
func mapRun(ct *compiledTrigger, ev *harkv1.SourceEvent, env rules.Env, o *outcome) *outcome {
	eval := func(p *rules.Program, def any) (any, error) {
		if p == nil {
			return def, nil
		}
		return p.Eval(env)
	}
	var data, cancel any
	if d, ok := env["data"].(map[string]any); ok && d != nil {
		data = d
	}
	for _, f := range []struct {
		name string
		p    *rules.Program
		def  any
		dst  *any
	}{
		{"recipients", ct.recipients, nilIfEmpty(ev.GetUserId()), &o.rawRecipients},
		{"actor", ct.actor, nil, &o.rawActor},
		{"tenant", ct.tenant, nil, &o.rawTenant},
		{"data", ct.data, data, &o.rawData},
		{"cancellationKey", ct.cancellation, nil, &cancel},
	} {
		v, err := eval(f.p, f.def)
		if err == nil {
			err = rules.CheckValue(v)
		}
		if err != nil {
			return o.fail(harkv1.ActionStatus_ACTION_STATUS_ERROR, "%v", &MappingError{Field: f.name, Message: err.Error()})
		}
		*f.dst = v
	}
	if err := o.readMapping(cancel); err != nil {
		return o.fail(harkv1.ActionStatus_ACTION_STATUS_ERROR, "%v", err)
	}
	return o
}

// finish completes what mapEvent computed, inside tx: the workflow must exist
// and be active (checked after the condition, before the mapping's outcome
// counts), and the recipients must be identified. It does not change mapped:
// a commit that is retried finishes the same outcome again.
func (e *Engine) finish(tx Tx, ct *compiledTrigger, ev *harkv1.SourceEvent, mapped *outcome) (*outcome, error) {
	if !mapped.conditionPassed {
		return mapped, nil
	}
	o := *mapped
	wf, err := e.workflow(tx, ct.t.GetWorkflowKey())
	switch {
	case isNotFound(err):
		return o.fail(harkv1.ActionStatus_ACTION_STATUS_SKIPPED, "workflow %q not found", ct.t.GetWorkflowKey()), nil
	case err != nil:
		return nil, err
	case !wf.GetActive():
		return o.fail(harkv1.ActionStatus_ACTION_STATUS_SKIPPED, "workflow %q is inactive", wf.GetKey()), nil
	}
	if o.status != harkv1.ActionStatus_ACTION_STATUS_SUCCESS {
		return &o, nil
	}
	return e.resolveRecipients(tx, ev.GetEnvironment(), &o)
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// readMapping checks the mapped values' shapes (DESIGN §4) and fills the
// outcome; it returns what is wrong as a *MappingError.
func (o *outcome) readMapping(cancel any) error {
	var msg string
	if o.recipients, o.inline, o.objects, msg = readRecipients(o.rawRecipients); msg != "" {
		return &MappingError{Field: "recipients", Message: msg}
	}
	actor, inline, msg := readUser(o.rawActor, "actor")
	if msg != "" {
		return &MappingError{Field: "actor", Message: msg}
	}
	o.actor = actor
	if inline != nil {
		o.inline[actor] = *inline
	}
	switch t := o.rawTenant.(type) {
	case nil:
	case string:
		o.tenant = t
	case int, int64, float64:
		// Ids such as properties.account.id are often numbers.
		o.tenant = formatNumber(t)
	case map[string]any:
		id, ok := t["id"].(string)
		if n, isNumber := t["id"].(float64); isNumber {
			id, ok = formatNumber(n), true
		}
		if !ok || id == "" {
			return &MappingError{Field: "tenant", Message: "a tenant object needs a string `id`"}
		}
		o.tenant = id
		if len(t) > 1 {
			// An inline tenant (Knock's inline identify of a tenant): its
			// other keys are set on the tenant before the run.
			props := make(map[string]any, len(t)-1)
			for k, v := range t {
				if k != "id" {
					props[k] = v
				}
			}
			s, err := structpb.NewStruct(props)
			if err != nil {
				return &MappingError{Field: "tenant", Message: err.Error()}
			}
			o.inlineTenant = s
		}
	default:
		return &MappingError{Field: "tenant", Message: fmt.Sprintf("must be a tenant id or an object with `id`, not %s", typeName(t))}
	}
	switch d := o.rawData.(type) {
	case nil:
	case map[string]any:
		s, err := structpb.NewStruct(d)
		if err != nil {
			return &MappingError{Field: "data", Message: err.Error()}
		}
		o.data = s
	default:
		return &MappingError{Field: "data", Message: fmt.Sprintf("must be an object or null, not %s", typeName(d))}
	}
	key, err := readCancellationKey(cancel)
	o.cancellationKey = key
	return err
}

// readCancellationKey reads a mapped cancellation key: a string, a number
// (ids such as properties.comment.id are often numbers) or null (none).
func readCancellationKey(v any) (string, error) {
	switch c := v.(type) {
	case nil:
		return "", nil
	case string:
		return c, nil
	case int, int64, float64:
		return formatNumber(c), nil
	default:
		return "", &MappingError{Field: "cancellationKey", Message: fmt.Sprintf("must be a string, not %s", typeName(c))}
	}
}

// idText is a mapped id as text: a string as it is, a number in decimal
// (ids such as groupId or properties.project.id are often numbers), and
// anything else "".
func idText(v any) string {
	switch id := v.(type) {
	case string:
		return id
	case int, int64, float64:
		return formatNumber(id)
	}
	return ""
}

func formatNumber(n any) string {
	switch v := n.(type) {
	case int:
		return strconv.Itoa(v)
	case int64:
		return strconv.FormatInt(v, 10)
	case float64:
		if v == math.Trunc(v) && math.Abs(v) < 1<<53 {
			return strconv.FormatInt(int64(v), 10)
		}
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	return fmt.Sprint(n)
}

func typeName(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case int, int64, float64, uint, int32:
		return "a number"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	default:
		return fmt.Sprintf("a %T", v)
	}
}

// readRecipients reads a recipients value: a user id, an inline user object,
// an object reference `{"collection", "id"}`, or a list of these (at most
// MaxRecipients: the cap is on what the mapping names, before objects fan
// out to their subscribers, as in Knock). Ids and objects come out once
// each, in order.
func readRecipients(v any) ([]string, map[string]userPatch, []objectRef, string) {
	inline := map[string]userPatch{}
	var items []any
	switch r := v.(type) {
	case nil:
	case []any:
		items = r
	default:
		items = []any{r}
	}
	if len(items) > MaxRecipients {
		return nil, nil, nil, fmt.Sprintf("%d recipients; at most %d per run", len(items), MaxRecipients)
	}
	ids := make([]string, 0, len(items))
	seen := make(map[string]bool, len(items))
	var objects []objectRef
	for i, item := range items {
		if obj, ok := item.(map[string]any); ok {
			if _, isObject := obj["collection"]; isObject {
				ref, msg := readObjectRef(obj, fmt.Sprintf("recipient %d", i))
				if msg != "" {
					return nil, nil, nil, msg
				}
				if !slices.Contains(objects, ref) {
					objects = append(objects, ref)
				}
				continue
			}
		}
		id, patch, msg := readUser(item, fmt.Sprintf("recipient %d", i))
		if msg != "" {
			return nil, nil, nil, msg
		}
		if id == "" || seen[id] {
			continue
		}
		seen[id] = true
		ids = append(ids, id)
		if patch != nil {
			inline[id] = *patch
		}
	}
	return ids, inline, objects, ""
}

// readObjectRef reads an object recipient `{"collection": …, "id": …}`.
func readObjectRef(obj map[string]any, what string) (objectRef, string) {
	c, ok := obj["collection"].(string)
	if !ok || c == "" {
		return objectRef{}, fmt.Sprintf("%s: an object recipient needs a string `collection`", what)
	}
	id := idText(obj["id"])
	if id == "" {
		return objectRef{}, fmt.Sprintf("%s: an object recipient needs a string `id`", what)
	}
	return objectRef{c, id}, ""
}

// inlineFields are the user fields an inline user object may set; any other
// key but `id` is a custom property.
var inlineFields = map[string]func(*userPatch, *string){
	"name": func(p *userPatch, v *string) { p.name = v }, "email": func(p *userPatch, v *string) { p.email = v },
	"phone_number": func(p *userPatch, v *string) { p.phoneNumber = v }, "avatar": func(p *userPatch, v *string) { p.avatar = v },
	"locale": func(p *userPatch, v *string) { p.locale = v }, "timezone": func(p *userPatch, v *string) { p.timezone = v },
}

// readUser reads a user id or an inline user object (Knock's inline
// identify). Objects with `collection` are object recipients, which hark
// does not support yet.
func readUser(v any, what string) (string, *userPatch, string) {
	switch u := v.(type) {
	case nil:
		return "", nil, ""
	case string:
		return u, nil, ""
	case map[string]any:
		if _, ok := u["collection"]; ok {
			return "", nil, fmt.Sprintf("%s: must be a user id or a user object, not an object reference (with `collection`)", what)
		}
		id, ok := u["id"].(string)
		if !ok || id == "" {
			return "", nil, fmt.Sprintf("%s: a user object needs a string `id`", what)
		}
		if len(id) > maxUserIDLen {
			return "", nil, fmt.Sprintf("%s: the id is longer than %d bytes", what, maxUserIDLen)
		}
		p := &userPatch{properties: map[string]*structpb.Value{}}
		for k, val := range u {
			if k == "id" {
				continue
			}
			if set, ok := inlineFields[k]; ok {
				if s, isString := val.(string); isString {
					set(p, &s)
					continue
				}
			}
			pv, err := structpb.NewValue(val)
			if err != nil {
				return "", nil, fmt.Sprintf("%s: property %q: %v", what, k, err)
			}
			p.properties[k] = pv
		}
		return id, p, ""
	case []any:
		return "", nil, fmt.Sprintf("%s: a list inside the recipients list", what)
	default:
		return "", nil, fmt.Sprintf("%s: must be a user id or a user object, not %s", what, typeName(u))
	}
}

// resolveRecipients leaves out ids that are not identified users of the
// environment (inline objects will be), adds the subscribers of object
// recipients (at most MaxFanOut in all: past that the outcome is an ERROR,
// read from keys alone, so a huge object never stalls the commit), and
// skips the run when no recipient remains.
func (e *Engine) resolveRecipients(tx Tx, env string, o *outcome) (*outcome, error) {
	resolved := o.recipients[:0:0]
	seen := make(map[string]bool, len(o.recipients))
	for _, id := range o.recipients {
		seen[id] = true
		if _, inline := o.inline[id]; inline {
			resolved = append(resolved, id)
			continue
		}
		found, err := exists(tx.User(env, id))
		if err != nil {
			return nil, err
		}
		if found {
			resolved = append(resolved, id)
		} else {
			o.skipped = append(o.skipped, &harkv1.SkippedRecipient{Id: id, Reason: "not identified"})
		}
	}
	fanned := 0
	for _, ref := range o.objects {
		subs, truncated, err := e.subscribers(tx, env, ref.collection, ref.id, MaxFanOut-fanned)
		switch {
		case isNotFound(err):
			o.skipped = append(o.skipped, &harkv1.SkippedRecipient{Id: ref.collection + "/" + ref.id, Reason: "object not found"})
			continue
		case err != nil:
			return nil, err
		case truncated:
			return o.fail(harkv1.ActionStatus_ACTION_STATUS_ERROR, "mapping.recipients: the objects' subscribers are more than %d (at %s/%s); at most %d per run", MaxFanOut, ref.collection, ref.id, MaxFanOut), nil
		}
		fanned += len(subs)
		for _, id := range subs {
			if !seen[id] {
				seen[id] = true
				resolved = append(resolved, id)
			}
		}
	}
	o.recipients = resolved
	if len(resolved) == 0 {
		return o.fail(harkv1.ActionStatus_ACTION_STATUS_SKIPPED, "no identified recipients"), nil
	}
	return o, nil
}

// startRun identifies the inline users, sets an inline tenant and stores a
// run with its feed entry, inside tx. An inline user past the limits fails
// it with a *UserLimitError, a tenant the resource rules refuse with a
// *ValidationError, before anything is written.
func (e *Engine) startRun(tx Tx, env, workflow, triggerID, eventID string, o *outcome) (*harkv1.WorkflowRun, error) {
	merged := make([]*harkv1.User, 0, len(o.inline))
	for _, id := range slices.Sorted(maps.Keys(o.inline)) {
		u, err := e.mergeUser(tx, env, id, o.inline[id])
		if err != nil {
			return nil, err
		}
		merged = append(merged, u)
	}
	if o.inlineTenant != nil {
		// Set after the users are checked and before they are written, so
		// a refusal of either writes nothing.
		if _, err := e.setTenant(tx, env, o.tenant, TenantPatchFromTraits(o.inlineTenant), true); err != nil {
			return nil, err
		}
	}
	for _, u := range merged {
		if err := tx.PutUser(u); err != nil {
			return nil, err
		}
	}
	now := e.timestamp()
	run := &harkv1.WorkflowRun{
		Id:                newID("run_"),
		Environment:       env,
		WorkflowKey:       workflow,
		TriggerId:         triggerID,
		SourceEventId:     eventID,
		Recipients:        o.recipients,
		SkippedRecipients: o.skipped,
		Actor:             o.actor,
		Tenant:            o.tenant,
		Data:              o.data,
		CancellationKey:   o.cancellationKey,
		Status:            harkv1.WorkflowRunStatus_WORKFLOW_RUN_STATUS_ACTIVE,
		CreatedAt:         now,
		UpdatedAt:         now,
	}
	return run, e.putRunChange(tx, run, delivery.EventRunCreated)
}

// putRunChange stores a new or changed run at the next feed cursor, with a
// delivery of the change to each destination that takes it (the outbox).
// Callers hold e.runMu around the transaction that calls it, and notify the
// outbox after it commits.
func (e *Engine) putRunChange(tx Tx, run *harkv1.WorkflowRun, event delivery.EventType) error {
	expiresAt := run.GetCreatedAt().AsTime().Add(e.runRetention)
	// The feed first: deliveries carry the run as of this change, with its
	// cursor.
	cursor, err := tx.AppendRunFeed(run.GetEnvironment(), run.GetId(), expiresAt)
	if err != nil {
		return err
	}
	run.Cursor = formatCursor(cursor)
	if _, err := e.enqueueDeliveries(tx, run, event); err != nil {
		return err
	}
	return tx.PutWorkflowRun(run, expiresAt)
}

// runTriggers runs every trigger matching ev, in Knock's action order
// (creation order within one action type), and records each outcome as an
// action. One trigger's error does not stop the others. def, when not nil,
// is the event type's default action (identify, group, delete, alias),
// which runs at its rank, before the triggers of the same rank.
//
// mapped holds the outcomes mapEvent computed before the commit, by trigger;
// a trigger added or changed since is mapped here, in the event's
// expression environment, which envOf returns.
func (e *Engine) runTriggers(tx Tx, ev *harkv1.SourceEvent, envOf func() rules.Env, mapped map[*compiledTrigger]*outcome, def *defaultAction) (started bool, err error) {
	matched := e.triggers.match(ev.GetEnvironment(), ev.GetSourceId(), ev.GetType(), ev.GetName())
	for _, ct := range matched {
		if def != nil && ct.rank >= def.rank {
			if err := def.runOn(ev); err != nil {
				return started, err
			}
			def = nil
		}
		m, ok := mapped[ct]
		if !ok {
			m = mapEvent(ct, ev, envOf())
		}
		action := &harkv1.Action{
			Type:      ct.act.logType(),
			Status:    m.status,
			Reason:    m.reason,
			TriggerId: ct.t.GetId(),
		}
		if isWorkflowAction(ct.t.GetActionType()) {
			action.WorkflowKey = ct.t.GetWorkflowKey()
		}
		if m.conditionPassed {
			s, err := ct.act.apply(e, tx, ct, ev, m, action)
			if err != nil {
				return started, err
			}
			started = started || s
		}
		ev.Actions = append(ev.Actions, action)
	}
	if def != nil {
		return started, def.runOn(ev)
	}
	return started, nil
}

// defaultAction is an event type's built-in action (DESIGN §9), run among
// the triggers at the rank of the action type it is.
type defaultAction struct {
	rank int32
	run  func() (*harkv1.Action, error)
}

// runOn runs the default action and records it on ev.
func (d *defaultAction) runOn(ev *harkv1.SourceEvent) error {
	a, err := d.run()
	if err != nil {
		return err
	}
	ev.Actions = append(ev.Actions, a)
	return nil
}

func formatCursor(n uint64) string { return fmt.Sprintf("%016x", n) }

func parseCursor(s string) (uint64, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(s, 16, 64)
	if err != nil || len(s) != 16 {
		return 0, &ValidationError{Violations: []FieldViolation{{Field: "afterCursor", Description: "is not a cursor this server issued"}}}
	}
	return n, nil
}

// runSignal wakes run watchers after a commit that stored runs.
type runSignal struct {
	mu sync.Mutex
	ch chan struct{}
}

// wait returns a channel closed at the next notify. Take it before reading,
// so a commit between the read and the wait is not missed.
func (s *runSignal) wait() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch == nil {
		s.ch = make(chan struct{})
	}
	return s.ch
}

func (s *runSignal) notify() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch != nil {
		close(s.ch)
		s.ch = nil
	}
}

// ListWorkflowRuns returns a page of an environment's runs, newest first.
func (e *Engine) ListWorkflowRuns(ctx context.Context, req *harkv1.ListWorkflowRunsRequest) (*harkv1.ListWorkflowRunsResponse, error) {
	p, err := readPage(req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	filter := RunFilter{WorkflowKey: req.GetWorkflowKey(), TriggerID: req.GetTriggerId(), SourceEventID: req.GetSourceEventId()}
	resp := &harkv1.ListWorkflowRunsResponse{}
	err = e.store.View(ctx, func(tx Tx) error {
		if _, err := tx.Environment(req.GetEnvironment()); err != nil {
			return err
		}
		runs, last, err := tx.WorkflowRuns(req.GetEnvironment(), p.after, p.limit(), maxEventScan, filter)
		if err != nil {
			return err
		}
		resp.WorkflowRuns, resp.NextPageToken = finishPage(runs, p, (*harkv1.WorkflowRun).GetId)
		for _, r := range resp.WorkflowRuns {
			if err := withDeliveries(tx, r); err != nil {
				return err
			}
		}
		if resp.NextPageToken == "" && last != "" {
			resp.NextPageToken = encodePageToken(last)
		}
		return nil
	})
	return resp, err
}

// GetWorkflowRun returns one run.
func (e *Engine) GetWorkflowRun(ctx context.Context, env, id string) (*harkv1.WorkflowRun, error) {
	var run *harkv1.WorkflowRun
	err := e.store.View(ctx, func(tx Tx) (err error) {
		if _, err := tx.Environment(env); err != nil {
			return err
		}
		if run, err = tx.WorkflowRun(env, id); err != nil {
			return err
		}
		return withDeliveries(tx, run)
	})
	return run, err
}

// watchPage is how many feed entries one read of WatchWorkflowRuns takes.
const watchPage = 500

// WatchWorkflowRuns sends the runs stored after the request's cursor, then
// new runs and changes as they are committed, until ctx ends. Each sent run
// carries the cursor of its feed entry: a consumer that stores the cursor of
// the last run it handled resumes there, after a restart too, and sees every
// change at least once.
//
// ready is called once the request is checked, before the first run is
// sent; the server sends the response headers then.
func (e *Engine) WatchWorkflowRuns(ctx context.Context, req *harkv1.WatchWorkflowRunsRequest, ready func() error, send func(*harkv1.WorkflowRun) error) error {
	after, err := parseCursor(req.GetAfterCursor())
	if err != nil {
		return err
	}
	if _, err := e.getEnvironment(ctx, req.GetEnvironment()); err != nil {
		return err
	}
	if err := ready(); err != nil {
		return err
	}
	for {
		wake := e.runs.wait()
		var batch []*harkv1.WorkflowRun
		var entries []RunFeedEntry
		err := e.store.View(ctx, func(tx Tx) (err error) {
			batch = batch[:0]
			if entries, err = tx.RunFeed(req.GetEnvironment(), after, watchPage); err != nil {
				return err
			}
			for _, entry := range entries {
				run, err := tx.WorkflowRun(req.GetEnvironment(), entry.RunID)
				if isNotFound(err) {
					continue // expired
				}
				if err != nil {
					return err
				}
				if req.GetWorkflowKey() != "" && run.GetWorkflowKey() != req.GetWorkflowKey() {
					continue
				}
				run.Cursor = formatCursor(entry.Cursor)
				withRecipientStates(run)
				batch = append(batch, run)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, run := range batch {
			if err := send(run); err != nil {
				return err
			}
		}
		if len(entries) > 0 {
			after = entries[len(entries)-1].Cursor
		}
		if len(entries) == watchPage {
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-e.streamsEnd:
			return fmt.Errorf("%w: the server is shutting down; watch again from your last cursor", ErrUnavailable)
		case <-wake:
		}
	}
}

// TriggerWorkflow starts a run without a source event (Knock's trigger API).
// With an idempotency key, a repeat of the same request within 24 hours
// returns the first answer (replayed true) and starts nothing; the same key
// with other parameters is refused. Only successful calls are remembered.
func (e *Engine) TriggerWorkflow(ctx context.Context, req *harkv1.TriggerWorkflowRequest, idempotencyKey string) (resp *harkv1.TriggerWorkflowResponse, replayed bool, err error) {
	if len(idempotencyKey) > maxIdempotencyKeyLen {
		return nil, false, &ValidationError{Violations: []FieldViolation{{Field: "Idempotency-Key", Description: fmt.Sprintf("must be at most %d characters", maxIdempotencyKeyLen)}}}
	}
	raw, err := proto.MarshalOptions{Deterministic: true}.Marshal(req)
	if err != nil {
		return nil, false, fmt.Errorf("digest request: %w", err)
	}
	digest := sha256.Sum256(raw)

	o := &outcome{status: harkv1.ActionStatus_ACTION_STATUS_SUCCESS}
	recipients := make([]any, len(req.GetRecipients()))
	for i, r := range req.GetRecipients() {
		recipients[i] = r.AsInterface()
	}
	o.rawRecipients, o.rawActor, o.rawTenant = recipients, req.GetActor().AsInterface(), req.GetTenant().AsInterface()
	if req.GetData() != nil {
		o.rawData = req.GetData().AsMap()
	}
	for field, v := range map[string]any{"recipients": o.rawRecipients, "actor": o.rawActor, "tenant": o.rawTenant, "data": o.rawData} {
		if err := rules.CheckValue(v); err != nil {
			return nil, false, &ValidationError{Violations: []FieldViolation{{Field: field, Description: err.Error()}}}
		}
	}
	if err := o.readMapping(req.GetCancellationKey()); err != nil {
		var me *MappingError
		if !errors.As(err, &me) {
			return nil, false, err
		}
		return nil, false, &ValidationError{Violations: []FieldViolation{{Field: me.Field, Description: me.Message}}}
	}
	if len(o.recipients) == 0 && len(o.objects) == 0 {
		return nil, false, &ValidationError{Violations: []FieldViolation{{Field: "recipients", Description: "at least one recipient is required"}}}
	}

	var runID string
	e.runMu.Lock()
	defer e.runMu.Unlock()
	err = e.store.Update(ctx, func(tx Tx) error {
		replayed, runID = false, ""
		if _, err := tx.Environment(req.GetEnvironment()); err != nil {
			return err
		}
		if idempotencyKey != "" {
			seen, id, expiresAt, err := tx.TriggerRequest(req.GetEnvironment(), idempotencyKey)
			switch {
			case err == nil && e.now().Before(expiresAt):
				if string(seen) != string(digest[:]) {
					return &ValidationError{Violations: []FieldViolation{{Field: "Idempotency-Key", Description: "was already used with different parameters"}}}
				}
				replayed, runID = true, id
				return nil
			case err != nil && !isNotFound(err):
				return err
			}
		}
		wf, err := tx.Workflow(req.GetKey())
		if err != nil {
			return err
		}
		if !wf.GetActive() {
			return &PreconditionError{Message: fmt.Sprintf("workflow %q is inactive", wf.GetKey())}
		}
		attempt := *o
		attempt.recipients, attempt.skipped = slices.Clone(o.recipients), nil
		res, err := e.resolveRecipients(tx, req.GetEnvironment(), &attempt)
		if err != nil {
			return err
		}
		if res.status == harkv1.ActionStatus_ACTION_STATUS_ERROR {
			return &ValidationError{Violations: []FieldViolation{{Field: "recipients", Description: res.reason}}}
		}
		if res.status != harkv1.ActionStatus_ACTION_STATUS_SUCCESS {
			return &ValidationError{Violations: []FieldViolation{{Field: "recipients", Description: "no recipient is an identified user; identify them first or pass user objects"}}}
		}
		run, err := e.startRun(tx, req.GetEnvironment(), wf.GetKey(), "", "", res)
		var limit *UserLimitError
		if errors.As(err, &limit) {
			return &ValidationError{Violations: []FieldViolation{{Field: "recipients", Description: limit.Error()}}}
		}
		if err != nil {
			return err
		}
		runID = run.GetId()
		if idempotencyKey != "" {
			return tx.PutTriggerRequest(req.GetEnvironment(), idempotencyKey, digest[:], runID, e.now().Add(apiIdempotencyWindow))
		}
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	if !replayed {
		e.outbox.notify()
		e.metrics.RunStarted(false)
	}
	return &harkv1.TriggerWorkflowResponse{WorkflowRunId: runID}, replayed, nil
}

// TestTrigger runs a saved or unsaved trigger against a given event, or the
// latest logged event it matches, and reports what it would do. It writes
// nothing: inline users are reported as recipients without being stored.
func (e *Engine) TestTrigger(ctx context.Context, req *harkv1.TestTriggerRequest) (*harkv1.TestTriggerResponse, error) {
	resp := &harkv1.TestTriggerResponse{}
	err := e.store.View(ctx, func(tx Tx) error {
		if _, err := tx.Environment(req.GetEnvironment()); err != nil {
			return err
		}
		var t *harkv1.Trigger
		if req.GetTriggerId() != "" {
			saved, err := tx.Trigger(req.GetEnvironment(), req.GetTriggerId())
			if err != nil {
				return err
			}
			t = saved
		} else {
			if req.GetTrigger() == nil {
				return &ValidationError{Violations: []FieldViolation{{Field: "trigger", Description: "give triggerId or an unsaved trigger"}}}
			}
			t = proto.CloneOf(req.GetTrigger())
			t.Environment = req.GetEnvironment()
		}
		ct, err := e.checkTrigger(tx, t, nil)
		if err != nil {
			return err
		}
		ev, err := e.testEvent(tx, t, req.GetEvent(), req.GetSourceEventId())
		if err != nil {
			return err
		}
		resp.SourceEventId = ev.GetId()
		headers := testHeaders(ev.GetHeaders(), req.GetHeaders())
		o := mapEvent(ct, ev, eventEnv(ev, headers))
		if _, isTrigger := ct.act.(workflowsTrigger); isTrigger {
			if o, err = e.finish(tx, ct, ev, o); err != nil {
				return err
			}
			if once, tenant := onceKey(t, o); once && o.status == harkv1.ActionStatus_ACTION_STATUS_SUCCESS && t.GetId() != "" {
				if o, err = skipFired(tx, t, tenant, o); err != nil {
					return err
				}
			}
		}
		resp.ActionType = t.GetActionType()
		resp.ConditionResult = o.conditionResult
		resp.Status, resp.Reason = o.status, o.reason
		for dst, v := range map[**structpb.Value]any{&resp.Recipients: o.rawRecipients, &resp.Actor: o.rawActor, &resp.Tenant: o.rawTenant, &resp.Data: o.rawData} {
			if pv, err := structpb.NewValue(v); err == nil {
				*dst = pv
			}
		}
		if o.values != nil {
			if s, err := structpb.NewStruct(o.values); err == nil {
				resp.ActionValues = s
			}
		}
		resp.CancellationKey = o.cancellationKey
		if o.status == harkv1.ActionStatus_ACTION_STATUS_SUCCESS {
			resp.ResolvedRecipients = o.recipients
		}
		resp.SkippedRecipients = o.skipped
		return nil
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// testEvent is the event a test runs against: the given original event, read
// as the Segment common form, the logged event named by id, or the latest
// logged event of the trigger's source, type and name.
func (e *Engine) testEvent(tx Tx, t *harkv1.Trigger, given *structpb.Struct, id string) (*harkv1.SourceEvent, error) {
	if given != nil {
		ev := &harkv1.SourceEvent{
			Environment: t.GetEnvironment(), SourceId: t.GetSourceId(),
			Type: t.GetEventType(), Name: t.GetEvent(), Event: given, ReceivedAt: timestamppb.New(e.now()),
		}
		fields := given.GetFields()
		ev.UserId = fields["userId"].GetStringValue()
		if props := fields["properties"].GetStructValue(); props != nil {
			ev.Data = props
		}
		return ev, nil
	}
	if id != "" {
		ev, err := tx.SourceEvent(t.GetEnvironment(), id)
		if err != nil {
			return nil, err
		}
		ev.Actions = nil
		return ev, nil
	}
	filter := EventFilter{SourceID: t.GetSourceId(), Type: t.GetEventType(), Name: t.GetEvent()}
	evs, _, err := tx.SourceEvents(t.GetEnvironment(), "", 1, maxEventScan, filter)
	if err != nil {
		return nil, err
	}
	if len(evs) == 0 {
		return nil, &NotFoundError{Resource: "event", Message: "no logged event matches this trigger's source, type and name; pass one in `event`"}
	}
	ev := evs[0]
	ev.Actions = nil
	return ev, nil
}
