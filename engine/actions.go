package engine

import (
	"errors"
	"fmt"
	"strings"

	"google.golang.org/protobuf/types/known/structpb"

	"github.com/harkhq/hark/engine/rules"
	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// The action model (DESIGN §9). A trigger is an action mapping: what events
// it matches, a condition, and one action type with its mapping. Each
// action type is one value of the action interface, defined in the file of
// its family (actions_users.go, actions_workflows.go, actions_resources.go);
// the ingest path only orders the matched triggers and calls them.
//
// An action runs in two steps, like triggers always did: mapEvent evaluates
// the expressions on the event alone, before the commit and on all cores;
// apply does what reads and writes state, inside the ingest commit. A
// mapped value of the wrong shape is an ERROR action naming the field; the
// event's other actions still run.

// action is one action type.
type action interface {
	// logType is the event-log type of its entries.
	logType() harkv1.ActionType
	// check validates, at save, which mapping fields the trigger gives.
	check(t *harkv1.Trigger, v *validation)
	// mapEvent fills o (whose condition passed) from the event's
	// expressions, without state, or fails it.
	mapEvent(ct *compiledTrigger, ev *harkv1.SourceEvent, env rules.Env, o *outcome) *outcome
	// apply does the action inside tx and records it on a. Outcomes the
	// sender caused are statuses on a; only storage failures are errors.
	// started says a workflow run was stored.
	apply(e *Engine, tx Tx, ct *compiledTrigger, ev *harkv1.SourceEvent, o *outcome, a *harkv1.Action) (started bool, err error)
}

// actions are the action types by trigger action type. UNSPECIFIED is
// workflows_trigger: triggers saved before action types existed start runs
// as they did.
var actions = map[harkv1.TriggerActionType]action{
	harkv1.TriggerActionType_TRIGGER_ACTION_TYPE_UNSPECIFIED:             workflowsTrigger{},
	harkv1.TriggerActionType_TRIGGER_ACTION_TYPE_WORKFLOWS_TRIGGER:       workflowsTrigger{},
	harkv1.TriggerActionType_TRIGGER_ACTION_TYPE_WORKFLOWS_CANCEL:        workflowsCancel{},
	harkv1.TriggerActionType_TRIGGER_ACTION_TYPE_USERS_IDENTIFY:          usersIdentify,
	harkv1.TriggerActionType_TRIGGER_ACTION_TYPE_USERS_DELETE:            usersDelete,
	harkv1.TriggerActionType_TRIGGER_ACTION_TYPE_OBJECTS_SET:             objectsSet,
	harkv1.TriggerActionType_TRIGGER_ACTION_TYPE_OBJECTS_DELETE:          objectsDelete,
	harkv1.TriggerActionType_TRIGGER_ACTION_TYPE_TENANTS_SET:             tenantsSet,
	harkv1.TriggerActionType_TRIGGER_ACTION_TYPE_TENANTS_DELETE:          tenantsDelete,
	harkv1.TriggerActionType_TRIGGER_ACTION_TYPE_OBJECTS_SUBSCRIBE:       objectsSubscribe,
	harkv1.TriggerActionType_TRIGGER_ACTION_TYPE_OBJECTS_UNSUBSCRIBE:     objectsUnsubscribe,
	harkv1.TriggerActionType_TRIGGER_ACTION_TYPE_AUDIENCES_ADD_MEMBER:    audiencesAddMember,
	harkv1.TriggerActionType_TRIGGER_ACTION_TYPE_AUDIENCES_REMOVE_MEMBER: audiencesRemoveMember,
}

// actionRank is where an action type runs among an event's actions:
// Knock's fixed order (users_identify → users_delete → objects_set →
// objects_delete → tenants_set → tenants_delete → objects_subscribe →
// objects_unsubscribe → audiences_add_member → audiences_remove_member →
// workflows_trigger → workflows_cancel), which is the enum's order.
func actionRank(t harkv1.TriggerActionType) int32 {
	if t == harkv1.TriggerActionType_TRIGGER_ACTION_TYPE_UNSPECIFIED {
		return int32(harkv1.TriggerActionType_TRIGGER_ACTION_TYPE_WORKFLOWS_TRIGGER)
	}
	return int32(t)
}

// actionName is an action type as users write it: `objects_set`.
func actionName(t harkv1.TriggerActionType) string {
	if t == harkv1.TriggerActionType_TRIGGER_ACTION_TYPE_UNSPECIFIED {
		t = harkv1.TriggerActionType_TRIGGER_ACTION_TYPE_WORKFLOWS_TRIGGER
	}
	return strings.ToLower(strings.TrimPrefix(t.String(), "TRIGGER_ACTION_TYPE_"))
}

// isWorkflowAction says whether an action type names a workflow and reads
// TriggerMapping (rather than ActionMapping).
func isWorkflowAction(t harkv1.TriggerActionType) bool {
	switch t {
	case harkv1.TriggerActionType_TRIGGER_ACTION_TYPE_UNSPECIFIED,
		harkv1.TriggerActionType_TRIGGER_ACTION_TYPE_WORKFLOWS_TRIGGER,
		harkv1.TriggerActionType_TRIGGER_ACTION_TYPE_WORKFLOWS_CANCEL:
		return true
	}
	return false
}

// actionField is one expression of an ActionMapping.
type actionField int

const (
	fieldCollection actionField = iota
	fieldID
	fieldProperties
	fieldRecipients
	fieldAudienceKey
	fieldUsers
	fieldTenant
	numActionFields
)

// name is the field as protojson and errors spell it.
func (f actionField) name() string {
	return [numActionFields]string{"collection", "id", "properties", "recipients", "audienceKey", "users", "tenant"}[f]
}

// source is the field's expression in m.
func (f actionField) source(m *harkv1.ActionMapping) string {
	switch f {
	case fieldCollection:
		return m.GetCollection()
	case fieldID:
		return m.GetId()
	case fieldProperties:
		return m.GetProperties()
	case fieldRecipients:
		return m.GetRecipients()
	case fieldAudienceKey:
		return m.GetAudienceKey()
	case fieldUsers:
		return m.GetUsers()
	case fieldTenant:
		return m.GetTenant()
	}
	return ""
}

// fieldUse is a field an action reads.
type fieldUse struct {
	f        actionField
	required bool // refused at save when empty
	userID   bool // empty: the event's userId, as Knock defaults it
}

// fieldValues are the values an action mapping yielded, by field.
type fieldValues [numActionFields]any

// skipError is a mapped value that makes the action not apply (an empty id):
// SKIPPED with the reason, not ERROR.
type skipError struct{ reason string }

func (e *skipError) Error() string { return e.reason }

// fieldAction is an action type that reads an ActionMapping: every action
// but the workflow ones. read checks the values' shapes and returns the
// action's parameters; do applies them.
type fieldAction struct {
	typ  harkv1.TriggerActionType
	log  harkv1.ActionType
	uses []fieldUse
	read func(v *fieldValues) (any, error)
	do   func(e *Engine, tx Tx, env string, params any, a *harkv1.Action) error
}

func (fa *fieldAction) logType() harkv1.ActionType { return fa.log }

func (fa *fieldAction) check(t *harkv1.Trigger, v *validation) {
	name := actionName(fa.typ)
	if t.GetWorkflowKey() != "" {
		v.add("workflowKey", "is only for workflows_trigger and workflows_cancel, not %s", name)
	}
	if m := t.GetMapping(); m.GetRecipients() != "" || m.GetActor() != "" || m.GetTenant() != "" || m.GetData() != "" || m.GetCancellationKey() != "" {
		v.add("mapping", "is only for workflows_trigger and workflows_cancel; %s reads actionMapping", name)
	}
	checkFrequencyUnset(t, v)
	am := t.GetActionMapping()
	for f := range numActionFields {
		use, ok := fa.use(f)
		src := f.source(am)
		switch {
		case !ok && src != "":
			v.add("actionMapping."+f.name(), "is not read by %s actions", name)
		case ok && use.required && src == "":
			v.add("actionMapping."+f.name(), "is required for %s actions", name)
		}
	}
}

func (fa *fieldAction) use(f actionField) (fieldUse, bool) {
	for _, u := range fa.uses {
		if u.f == f {
			return u, true
		}
	}
	return fieldUse{}, false
}

func (fa *fieldAction) mapEvent(ct *compiledTrigger, ev *harkv1.SourceEvent, env rules.Env, o *outcome) *outcome {
	var vals fieldValues
	o.values = map[string]any{}
	for _, u := range fa.uses {
		var val any
		switch p := ct.fields[u.f]; {
		case p != nil:
			v, err := p.Eval(env)
			if err == nil {
				err = rules.CheckValue(v)
			}
			if err != nil {
				return o.fail(harkv1.ActionStatus_ACTION_STATUS_ERROR, "%v", &MappingError{In: "actionMapping", Field: u.f.name(), Message: err.Error()})
			}
			val = v
		case u.userID:
			val = nilIfEmpty(ev.GetUserId())
		}
		vals[u.f] = val
		o.values[u.f.name()] = val
	}
	params, err := fa.read(&vals)
	var skip *skipError
	switch {
	case errors.As(err, &skip):
		return o.fail(harkv1.ActionStatus_ACTION_STATUS_SKIPPED, "%s", skip.reason)
	case err != nil:
		return o.fail(harkv1.ActionStatus_ACTION_STATUS_ERROR, "%v", err)
	}
	o.params = params
	return o
}

func (fa *fieldAction) apply(e *Engine, tx Tx, _ *compiledTrigger, ev *harkv1.SourceEvent, o *outcome, a *harkv1.Action) (bool, error) {
	if o.status != harkv1.ActionStatus_ACTION_STATUS_SUCCESS {
		return false, nil
	}
	return false, fa.do(e, tx, ev.GetEnvironment(), o.params, a)
}

// checkFrequencyUnset refuses a frequency on actions that start no runs.
func checkFrequencyUnset(t *harkv1.Trigger, v *validation) {
	if t.GetFrequency() != harkv1.TriggerFrequency_TRIGGER_FREQUENCY_UNSPECIFIED {
		v.add("frequency", "is only for workflows_trigger, not %s", actionName(t.GetActionType()))
	}
}

// Readers of mapped values. Each returns a *MappingError (In
// "actionMapping") naming the field when the value has the wrong shape.

func mappingError(f actionField, format string, args ...any) error {
	return &MappingError{In: "actionMapping", Field: f.name(), Message: fmt.Sprintf(format, args...)}
}

// readKey reads an id-like value: a string, or a number (ids such as
// properties.account.id are often numbers). Empty or null is a skip: the
// event does not say which resource.
func readKey(v *fieldValues, f actionField) (string, error) {
	switch k := v[f].(type) {
	case nil:
		return "", &skipError{fmt.Sprintf("actionMapping.%s yielded no value", f.name())}
	case string:
		if k == "" {
			return "", &skipError{fmt.Sprintf("actionMapping.%s yielded an empty string", f.name())}
		}
		if len(k) > maxUserIDLen {
			return "", mappingError(f, "is longer than %d bytes", maxUserIDLen)
		}
		return k, nil
	case int, int64, float64:
		return formatNumber(k), nil
	default:
		return "", mappingError(f, "must be a string, not %s", typeName(k))
	}
}

// readProperties reads an object of properties, or null.
func readProperties(v *fieldValues, f actionField) (*structpb.Struct, error) {
	switch p := v[f].(type) {
	case nil:
		return nil, nil
	case map[string]any:
		s, err := structpb.NewStruct(p)
		if err != nil {
			return nil, mappingError(f, "%v", err)
		}
		return s, nil
	default:
		return nil, mappingError(f, "must be an object or null, not %s", typeName(p))
	}
}

// readUsers reads users: a user id, an inline user object, or a list of
// these (at most MaxRecipients), as recipients are read.
func readUsers(v *fieldValues, f actionField) ([]string, map[string]userPatch, error) {
	ids, inline, objects, msg := readRecipients(v[f])
	if msg == "" && len(objects) > 0 {
		msg = "objects cannot be members or subscribers here; map to user ids or user objects"
	}
	if msg != "" {
		return nil, nil, mappingError(f, "%s", msg)
	}
	if len(ids) == 0 {
		return nil, nil, &skipError{fmt.Sprintf("actionMapping.%s yielded no users", f.name())}
	}
	return ids, inline, nil
}

// actionLimit is the message of an error that fails one action rather than
// the commit: a user past the property limits.
func actionLimit(err error) (string, bool) {
	var limit *UserLimitError
	if errors.As(err, &limit) {
		return limit.Error(), true
	}
	return "", false
}
