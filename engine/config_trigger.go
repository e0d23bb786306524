package engine

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// This file is the one place where a trigger and its configuration-as-code
// form (harkv1.ConfigTrigger) are converted into each other. A field added
// to Trigger is carried by configuration only once it is added here, in
// both functions: until then, applying a document leaves it as it is stored
// (configToTrigger writes onto the stored trigger, field by field), so a
// field a document cannot express is never taken for "absent, so delete".

// Trigger status words of the document, as Knock's dashboard says them.
const (
	configActive   = "active"
	configInactive = "inactive"
)

// triggerToConfig is t as a document lists it, its source named by name.
func triggerToConfig(t *harkv1.Trigger, sourceName string) *harkv1.ConfigTrigger {
	status := configActive
	if t.GetStatus() == harkv1.TriggerStatus_TRIGGER_STATUS_INACTIVE {
		status = configInactive
	}
	m := proto.CloneOf(t.GetMapping())
	if m == nil {
		m = &harkv1.TriggerMapping{}
	}
	return &harkv1.ConfigTrigger{
		Source:      sourceName,
		EventType:   cmpOr(t.GetEventType(), defaultEventType),
		Event:       t.GetEvent(),
		WorkflowKey: t.GetWorkflowKey(),
		Condition:   t.GetCondition(),
		Mapping:     m,
		Status:      status,
	}
}

// normalizeConfigTrigger fills in the defaults a document may leave out, so
// it compares equal to triggerToConfig of the trigger it describes; bad
// values are violations under path.
func normalizeConfigTrigger(v *validation, path string, c *harkv1.ConfigTrigger) {
	c.EventType = cmpOr(c.GetEventType(), defaultEventType)
	if c.Mapping == nil {
		c.Mapping = &harkv1.TriggerMapping{}
	}
	switch c.GetStatus() {
	case "":
		c.Status = configActive
	case configActive, configInactive:
	default:
		v.add(path+".status", "must be %q or %q, not %q", configActive, configInactive, c.GetStatus())
	}
	if c.GetSource() == "" {
		v.add(path+".source", "is required: the name of a source")
	}
	if c.GetWorkflowKey() == "" {
		v.add(path+".workflowKey", "is required")
	}
}

// configToTrigger writes the fields c sets onto t (a stored trigger, or a
// new one), with the source's id for its name. Fields of t that a document
// does not carry are left alone.
func configToTrigger(c *harkv1.ConfigTrigger, sourceID string, t *harkv1.Trigger) {
	t.SourceId = sourceID
	t.EventType = c.GetEventType()
	t.Event = c.GetEvent()
	t.WorkflowKey = c.GetWorkflowKey()
	t.Condition = c.GetCondition()
	t.Mapping = proto.CloneOf(c.GetMapping())
	t.Status = harkv1.TriggerStatus_TRIGGER_STATUS_ACTIVE
	if c.GetStatus() == configInactive {
		t.Status = harkv1.TriggerStatus_TRIGGER_STATUS_INACTIVE
	}
}

// triggerIdentity is how a trigger is matched across environments and
// documents: it has no name of its own, and its id is generated per
// environment, so it is what it listens to and what it starts. Two triggers
// of one environment with the same identity cannot be told apart by a
// document; the document refuses to list one twice.
func triggerIdentity(c *harkv1.ConfigTrigger) string {
	return fmt.Sprintf("%s %s %q → %s", c.GetSource(), c.GetEventType(), c.GetEvent(), c.GetWorkflowKey())
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
