package engine

import (
	"errors"
	"maps"
	"slices"

	"google.golang.org/protobuf/types/known/structpb"

	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// The resource actions: objects, tenants, object subscriptions and
// audience members, each on the engine's in-transaction resource functions
// (resources.go), so an action and the API write the same records by the
// same rules. A value the resource rules refuse (a collection with a space,
// a subscriber who is not an identified user) is an ERROR action with the
// reason; nothing of that action is written.

// objectRef names an object: a `{"collection", "id"}` recipient, or the
// object an action sets.
type objectRef struct{ collection, id string }

type objectParams struct {
	ref   objectRef
	props *structpb.Struct
}

type subscribeParams struct {
	ref        objectRef
	recipients []string
	inline     map[string]userPatch
	props      *structpb.Struct
}

type audienceParams struct {
	key    string
	users  []string
	inline map[string]userPatch
	tenant string
}

func readObject(v *fieldValues) (objectRef, error) {
	c, err := readKey(v, fieldCollection)
	if err != nil {
		return objectRef{}, err
	}
	id, err := readKey(v, fieldID)
	return objectRef{c, id}, err
}

var objectsSet = &fieldAction{
	typ:  harkv1.TriggerActionType_TRIGGER_ACTION_TYPE_OBJECTS_SET,
	log:  harkv1.ActionType_ACTION_TYPE_SET_OBJECT,
	uses: []fieldUse{{f: fieldCollection, required: true}, {f: fieldID, required: true}, {f: fieldProperties}},
	read: func(v *fieldValues) (any, error) {
		ref, err := readObject(v)
		if err != nil {
			return nil, err
		}
		props, err := readProperties(v, fieldProperties)
		return objectParams{ref, props}, err
	},
	do: func(e *Engine, tx Tx, env string, params any, a *harkv1.Action) error {
		p := params.(objectParams)
		a.Collection, a.ObjectId = p.ref.collection, p.ref.id
		return e.resourceAction(a, func() error { return e.setObjectAction(tx, env, p) })
	},
}

var objectsDelete = &fieldAction{
	typ:  harkv1.TriggerActionType_TRIGGER_ACTION_TYPE_OBJECTS_DELETE,
	log:  harkv1.ActionType_ACTION_TYPE_DELETE_OBJECT,
	uses: []fieldUse{{f: fieldCollection, required: true}, {f: fieldID, required: true}},
	read: func(v *fieldValues) (any, error) { return readObject(v) },
	do: func(e *Engine, tx Tx, env string, params any, a *harkv1.Action) error {
		ref := params.(objectRef)
		a.Collection, a.ObjectId = ref.collection, ref.id
		return e.resourceAction(a, func() error { return e.deleteObjectAction(tx, env, ref) })
	},
}

var tenantsSet = &fieldAction{
	typ:  harkv1.TriggerActionType_TRIGGER_ACTION_TYPE_TENANTS_SET,
	log:  harkv1.ActionType_ACTION_TYPE_SET_TENANT,
	uses: []fieldUse{{f: fieldID, required: true}, {f: fieldProperties}},
	read: func(v *fieldValues) (any, error) {
		id, err := readKey(v, fieldID)
		if err != nil {
			return nil, err
		}
		props, err := readProperties(v, fieldProperties)
		return objectParams{objectRef{id: id}, props}, err
	},
	do: func(e *Engine, tx Tx, env string, params any, a *harkv1.Action) error {
		p := params.(objectParams)
		a.TenantId = p.ref.id
		return e.resourceAction(a, func() error { return e.setTenantAction(tx, env, p.ref.id, p.props) })
	},
}

var tenantsDelete = &fieldAction{
	typ:  harkv1.TriggerActionType_TRIGGER_ACTION_TYPE_TENANTS_DELETE,
	log:  harkv1.ActionType_ACTION_TYPE_DELETE_TENANT,
	uses: []fieldUse{{f: fieldID, required: true}},
	read: func(v *fieldValues) (any, error) { return readKey(v, fieldID) },
	do: func(e *Engine, tx Tx, env string, params any, a *harkv1.Action) error {
		a.TenantId = params.(string)
		return e.resourceAction(a, func() error { return e.deleteTenantAction(tx, env, a.TenantId) })
	},
}

func readSubscribe(v *fieldValues, withProps bool) (any, error) {
	ref, err := readObject(v)
	if err != nil {
		return nil, err
	}
	ids, inline, err := readUsers(v, fieldRecipients)
	if err != nil {
		return nil, err
	}
	p := subscribeParams{ref: ref, recipients: ids, inline: inline}
	if withProps {
		p.props, err = readProperties(v, fieldProperties)
	}
	return p, err
}

var objectsSubscribe = &fieldAction{
	typ: harkv1.TriggerActionType_TRIGGER_ACTION_TYPE_OBJECTS_SUBSCRIBE,
	log: harkv1.ActionType_ACTION_TYPE_SUBSCRIBE,
	uses: []fieldUse{{f: fieldCollection, required: true}, {f: fieldID, required: true},
		{f: fieldRecipients, userID: true}, {f: fieldProperties}},
	read: func(v *fieldValues) (any, error) { return readSubscribe(v, true) },
	do: func(e *Engine, tx Tx, env string, params any, a *harkv1.Action) error {
		p := params.(subscribeParams)
		a.Collection, a.ObjectId, a.Recipients = p.ref.collection, p.ref.id, p.recipients
		return e.resourceAction(a, func() error { return e.subscribeAction(tx, env, p) })
	},
}

var objectsUnsubscribe = &fieldAction{
	typ:  harkv1.TriggerActionType_TRIGGER_ACTION_TYPE_OBJECTS_UNSUBSCRIBE,
	log:  harkv1.ActionType_ACTION_TYPE_UNSUBSCRIBE,
	uses: []fieldUse{{f: fieldCollection, required: true}, {f: fieldID, required: true}, {f: fieldRecipients, userID: true}},
	read: func(v *fieldValues) (any, error) { return readSubscribe(v, false) },
	do: func(e *Engine, tx Tx, env string, params any, a *harkv1.Action) error {
		p := params.(subscribeParams)
		a.Collection, a.ObjectId, a.Recipients = p.ref.collection, p.ref.id, p.recipients
		return e.resourceAction(a, func() error { return e.unsubscribeAction(tx, env, p) })
	},
}

func readAudience(v *fieldValues) (any, error) {
	key, err := readKey(v, fieldAudienceKey)
	if err != nil {
		return nil, err
	}
	ids, inline, err := readUsers(v, fieldUsers)
	if err != nil {
		return nil, err
	}
	p := audienceParams{key: key, users: ids, inline: inline}
	switch t := v[fieldTenant].(type) {
	case nil:
	case map[string]any:
		if p.tenant, err = readKey(&fieldValues{fieldTenant: t["id"]}, fieldTenant); err != nil {
			return nil, mappingError(fieldTenant, "a tenant object needs a string `id`")
		}
	default:
		if p.tenant, err = readKey(v, fieldTenant); err != nil {
			return nil, err
		}
	}
	return p, nil
}

var audiencesAddMember = &fieldAction{
	typ:  harkv1.TriggerActionType_TRIGGER_ACTION_TYPE_AUDIENCES_ADD_MEMBER,
	log:  harkv1.ActionType_ACTION_TYPE_ADD_AUDIENCE_MEMBER,
	uses: []fieldUse{{f: fieldAudienceKey, required: true}, {f: fieldUsers, userID: true}, {f: fieldTenant}},
	read: readAudience,
	do: func(e *Engine, tx Tx, env string, params any, a *harkv1.Action) error {
		p := params.(audienceParams)
		a.AudienceKey, a.Recipients, a.TenantId = p.key, p.users, p.tenant
		return e.resourceAction(a, func() error { return e.addMembersAction(tx, env, p) })
	},
}

var audiencesRemoveMember = &fieldAction{
	typ:  harkv1.TriggerActionType_TRIGGER_ACTION_TYPE_AUDIENCES_REMOVE_MEMBER,
	log:  harkv1.ActionType_ACTION_TYPE_REMOVE_AUDIENCE_MEMBER,
	uses: []fieldUse{{f: fieldAudienceKey, required: true}, {f: fieldUsers, userID: true}, {f: fieldTenant}},
	read: readAudience,
	do: func(e *Engine, tx Tx, env string, params any, a *harkv1.Action) error {
		p := params.(audienceParams)
		a.AudienceKey, a.Recipients, a.TenantId = p.key, p.users, p.tenant
		return e.resourceAction(a, func() error { return e.removeMembersAction(tx, env, p) })
	},
}

// resourceAction runs a resource write for an action: a refusal by the
// resource rules (a *ValidationError) makes the action ERROR with its
// message, a missing resource (the object to delete or subscribe to) makes
// it SKIPPED; other errors fail the commit.
func (e *Engine) resourceAction(a *harkv1.Action, write func() error) error {
	err := write()
	var (
		ve *ValidationError
		nf *NotFoundError
	)
	switch {
	case errors.As(err, &ve):
		a.Status, a.Reason = harkv1.ActionStatus_ACTION_STATUS_ERROR, ve.Error()
		return nil
	case errors.As(err, &nf):
		a.Status, a.Reason = harkv1.ActionStatus_ACTION_STATUS_SKIPPED, nf.Error()
		return nil
	case err != nil:
		if msg, ok := actionLimit(err); ok {
			a.Status, a.Reason = harkv1.ActionStatus_ACTION_STATUS_ERROR, msg
			return nil
		}
		return err
	}
	a.Status = harkv1.ActionStatus_ACTION_STATUS_SUCCESS
	return nil
}

// The resource writes of the actions, on the engine's in-transaction
// resource functions. Inline user objects among subscribers or members are
// identified first, as Knock's inline identify does ("before completing
// the action"); a refusal of the action after that leaves them identified.

func (e *Engine) setObjectAction(tx Tx, env string, p objectParams) error {
	_, err := e.setObject(tx, env, p.ref.collection, p.ref.id, p.props, true)
	return err
}

func (e *Engine) deleteObjectAction(tx Tx, env string, ref objectRef) error {
	return e.deleteObject(tx, env, ref.collection, ref.id)
}

func (e *Engine) setTenantAction(tx Tx, env, id string, props *structpb.Struct) error {
	_, err := e.setTenant(tx, env, id, TenantPatchFromTraits(props), true)
	return err
}

func (e *Engine) deleteTenantAction(tx Tx, env, id string) error {
	return e.deleteTenant(tx, env, id)
}

func (e *Engine) subscribeAction(tx Tx, env string, p subscribeParams) error {
	if _, err := tx.Object(env, p.ref.collection, p.ref.id); err != nil {
		return err // before any inline identify: nothing is written
	}
	if err := e.identifyInline(tx, env, p.inline); err != nil {
		return err
	}
	_, err := e.subscribe(tx, env, p.ref.collection, p.ref.id, p.recipients, p.props)
	return err
}

func (e *Engine) unsubscribeAction(tx Tx, env string, p subscribeParams) error {
	return e.unsubscribe(tx, env, p.ref.collection, p.ref.id, p.recipients)
}

func (e *Engine) addMembersAction(tx Tx, env string, p audienceParams) error {
	if err := e.identifyInline(tx, env, p.inline); err != nil {
		return err
	}
	_, err := e.addAudienceMembers(tx, env, p.key, memberRefs(p))
	return err
}

func (e *Engine) removeMembersAction(tx Tx, env string, p audienceParams) error {
	return e.removeAudienceMembers(tx, env, p.key, memberRefs(p))
}

func memberRefs(p audienceParams) []*harkv1.AudienceMemberRef {
	refs := make([]*harkv1.AudienceMemberRef, len(p.users))
	for i, id := range p.users {
		refs[i] = &harkv1.AudienceMemberRef{UserId: id, Tenant: p.tenant}
	}
	return refs
}

// identifyInline upserts inline user objects, in id order; each is checked
// against the limits before any is written.
func (e *Engine) identifyInline(tx Tx, env string, inline map[string]userPatch) error {
	merged := make([]*harkv1.User, 0, len(inline))
	for _, id := range slices.Sorted(maps.Keys(inline)) {
		u, err := e.mergeUser(tx, env, id, inline[id])
		if err != nil {
			return err
		}
		merged = append(merged, u)
	}
	for _, u := range merged {
		if err := tx.PutUser(u); err != nil {
			return err
		}
	}
	return nil
}
