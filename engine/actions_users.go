package engine

import (
	"fmt"

	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// The user actions. An explicit users_identify or users_delete mapping runs
// whatever the source environment's identify toggle says: the toggles are
// for Segment's built-in handling of identify and delete calls (see
// segment_defaults.go), a mapping is the user's own configuration.

// usersIdentify upserts the user `id` (default: the event's userId) with
// `properties`, read as an inline user object is: name, email,
// phone_number, avatar, locale and timezone set the user's fields, any
// other key is a custom property.
var usersIdentify = &fieldAction{
	typ:  harkv1.TriggerActionType_TRIGGER_ACTION_TYPE_USERS_IDENTIFY,
	log:  harkv1.ActionType_ACTION_TYPE_IDENTIFY_USER,
	uses: []fieldUse{{f: fieldID, userID: true}, {f: fieldProperties}},
	read: func(v *fieldValues) (any, error) {
		id, err := readKey(v, fieldID)
		if err != nil {
			return nil, err
		}
		props, err := readProperties(v, fieldProperties)
		if err != nil {
			return nil, err
		}
		obj := map[string]any{"id": id}
		for k, val := range props.AsMap() {
			if k != "id" {
				obj[k] = val
			}
		}
		_, patch, msg := readUser(obj, "properties")
		if msg != "" {
			return nil, mappingError(fieldProperties, "%s", msg)
		}
		return identifyParams{id: id, patch: *patch}, nil
	},
	do: func(e *Engine, tx Tx, env string, params any, a *harkv1.Action) error {
		p := params.(identifyParams)
		a.UserId = p.id
		_, err := e.upsertUser(tx, env, p.id, p.patch)
		if msg, ok := actionLimit(err); ok {
			a.Status, a.Reason = harkv1.ActionStatus_ACTION_STATUS_ERROR, msg
			return nil
		}
		return err
	},
}

type identifyParams struct {
	id    string
	patch userPatch
}

// usersDelete deletes the user `id` (default: the event's userId) and
// their object subscriptions. A user that does not exist is SKIPPED.
var usersDelete = &fieldAction{
	typ:  harkv1.TriggerActionType_TRIGGER_ACTION_TYPE_USERS_DELETE,
	log:  harkv1.ActionType_ACTION_TYPE_DELETE_USER,
	uses: []fieldUse{{f: fieldID, userID: true}},
	read: func(v *fieldValues) (any, error) { return readKey(v, fieldID) },
	do: func(e *Engine, tx Tx, env string, params any, a *harkv1.Action) error {
		return e.deleteUserAction(tx, env, params.(string), a)
	},
}

// deleteUserAction deletes a user with their subscriptions inside tx,
// recording it on a: the users_delete action and Segment's delete call.
func (e *Engine) deleteUserAction(tx Tx, env, id string, a *harkv1.Action) error {
	a.UserId = id
	found, err := exists(tx.User(env, id))
	if err != nil {
		return err
	}
	if !found {
		a.Status, a.Reason = harkv1.ActionStatus_ACTION_STATUS_SKIPPED, fmt.Sprintf("user %q not found", id)
		return nil
	}
	if err := e.deleteUser(tx, env, id); err != nil {
		return err
	}
	a.Status = harkv1.ActionStatus_ACTION_STATUS_SUCCESS
	return nil
}
