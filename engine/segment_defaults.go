package engine

import (
	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// Segment's call types get their natural default actions (DESIGN §9), each
// behind a toggle of the source environment and each an entry in the event
// log whatever the toggle says, so a setup that drops them is visible:
//
//   - identify → identify the user (identify_enabled, off by default);
//   - delete (Segment's user-deletion request) → delete the user and their
//     subscriptions (delete_enabled; when never set it follows
//     identify_enabled, since a deletion request for a user hark keeps must
//     be honoured);
//   - group → set the tenant `groupId` with the group's traits as its
//     properties (group_enabled, off by default, like identify);
//   - alias → logged as SKIPPED: hark does not merge users, and neither
//     does Knock.
//
// A default runs among the event's triggers at the rank of the action it
// is (identify as users_identify, delete as users_delete, group as
// tenants_set), before the triggers of that same type.

// defaultAction returns the default action of ev's type, or nil.
func (e *Engine) defaultAction(tx Tx, se *harkv1.SourceEnvironment, ev *harkv1.SourceEvent, raw EventJSON) *defaultAction {
	switch ev.GetType() {
	case "identify":
		return &defaultAction{rank: actionRank(harkv1.TriggerActionType_TRIGGER_ACTION_TYPE_USERS_IDENTIFY), run: func() (*harkv1.Action, error) {
			return e.identify(tx, se, ev, raw)
		}}
	case "delete":
		return &defaultAction{rank: actionRank(harkv1.TriggerActionType_TRIGGER_ACTION_TYPE_USERS_DELETE), run: func() (*harkv1.Action, error) {
			return e.segmentDelete(tx, se, ev)
		}}
	case "group":
		return &defaultAction{rank: actionRank(harkv1.TriggerActionType_TRIGGER_ACTION_TYPE_TENANTS_SET), run: func() (*harkv1.Action, error) {
			return e.segmentGroup(tx, se, ev, raw)
		}}
	case "alias":
		return &defaultAction{rank: 0, run: func() (*harkv1.Action, error) {
			return &harkv1.Action{Type: harkv1.ActionType_ACTION_TYPE_ALIAS_USER, UserId: ev.GetUserId(),
				Status: harkv1.ActionStatus_ACTION_STATUS_SKIPPED, Reason: "hark does not merge users"}, nil
		}}
	}
	return nil
}

// DeleteEnabled is whether a source environment handles Segment delete
// calls: as set, or, when never set, as identify is.
func DeleteEnabled(se *harkv1.SourceEnvironment) bool {
	if se.DeleteEnabled != nil {
		return se.GetDeleteEnabled()
	}
	return se.GetIdentifyEnabled()
}

// segmentDelete deletes the user of a Segment delete call with their
// subscriptions.
func (e *Engine) segmentDelete(tx Tx, se *harkv1.SourceEnvironment, ev *harkv1.SourceEvent) (*harkv1.Action, error) {
	a := &harkv1.Action{Type: harkv1.ActionType_ACTION_TYPE_DELETE_USER, UserId: ev.GetUserId()}
	switch {
	case !DeleteEnabled(se):
		a.Status, a.Reason = harkv1.ActionStatus_ACTION_STATUS_SKIPPED, "delete handling is off"
	case ev.GetUserId() == "":
		a.Status, a.Reason = harkv1.ActionStatus_ACTION_STATUS_SKIPPED, "the delete has no userId"
	default:
		if err := e.deleteUserAction(tx, ev.GetEnvironment(), ev.GetUserId(), a); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// segmentGroup sets the tenant of a Segment group call: id groupId,
// properties the group's traits (merged into the stored ones).
func (e *Engine) segmentGroup(tx Tx, se *harkv1.SourceEnvironment, ev *harkv1.SourceEvent, raw EventJSON) (*harkv1.Action, error) {
	a := &harkv1.Action{Type: harkv1.ActionType_ACTION_TYPE_SET_TENANT}
	groupID := idText(decodeObject(raw.Event)["groupId"])
	a.TenantId = groupID
	switch {
	case !se.GetGroupEnabled():
		a.Status, a.Reason = harkv1.ActionStatus_ACTION_STATUS_SKIPPED, "group handling is off"
	case groupID == "":
		a.Status, a.Reason = harkv1.ActionStatus_ACTION_STATUS_SKIPPED, "the group has no groupId"
	default:
		traits, err := StructFromJSON(raw.Traits)
		if err != nil {
			return nil, err
		}
		if err := e.resourceAction(a, func() error { return e.setTenantAction(tx, ev.GetEnvironment(), groupID, traits) }); err != nil {
			return nil, err
		}
	}
	return a, nil
}
