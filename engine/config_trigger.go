package engine

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

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
	var am *harkv1.ActionMapping
	if proto.Size(t.GetActionMapping()) > 0 {
		am = proto.CloneOf(t.GetActionMapping())
	}
	return &harkv1.ConfigTrigger{
		Source:        sourceName,
		EventType:     cmp.Or(t.GetEventType(), defaultEventType),
		Event:         t.GetEvent(),
		WorkflowKey:   t.GetWorkflowKey(),
		Condition:     t.GetCondition(),
		Mapping:       m,
		Status:        status,
		Action:        configActionWord(t.GetActionType()),
		ActionMapping: am,
		Frequency:     configFrequencyWord(t.GetFrequency()),
	}
}

// The words of a document's action and frequency: the enum value names
// without their prefix, lower case, as the CLI's --action and --frequency
// take them. The defaults (workflows_trigger, every_time) are written as
// nothing, so a plain trigger reads as it did before action types existed
// and its export is unchanged.
const (
	actionWordPrefix    = "TRIGGER_ACTION_TYPE_"
	frequencyWordPrefix = "TRIGGER_FREQUENCY_"
)

func configActionWord(t harkv1.TriggerActionType) string {
	if t == harkv1.TriggerActionType_TRIGGER_ACTION_TYPE_WORKFLOWS_TRIGGER {
		return ""
	}
	return enumWord(t.String(), actionWordPrefix)
}

func configFrequencyWord(f harkv1.TriggerFrequency) string {
	if f == harkv1.TriggerFrequency_TRIGGER_FREQUENCY_EVERY_TIME {
		return ""
	}
	return enumWord(f.String(), frequencyWordPrefix)
}

// enumWord is an enum value's document word; "" for UNSPECIFIED.
func enumWord(name, prefix string) string {
	w := strings.ToLower(strings.TrimPrefix(name, prefix))
	if w == "unspecified" {
		return ""
	}
	return w
}

// parseEnumWord reads a document word into its enum value: "" is 0 (the
// default); a word that names no value, or UNSPECIFIED, is ok=false.
func parseEnumWord(word, prefix string, values map[string]int32) (int32, bool) {
	if word == "" {
		return 0, true
	}
	v, ok := values[prefix+strings.ToUpper(word)]
	return v, ok && v != 0 && word == strings.ToLower(word)
}

// enumWords lists an enum's document words, for an error message.
func enumWords(prefix string, values map[string]int32) string {
	var words []string
	for name, v := range values {
		if v != 0 {
			words = append(words, strings.ToLower(strings.TrimPrefix(name, prefix)))
		}
	}
	slices.SortFunc(words, func(a, b string) int {
		return int(values[prefix+strings.ToUpper(a)] - values[prefix+strings.ToUpper(b)])
	})
	return strings.Join(words, ", ")
}

// normalizeConfigTrigger fills in the defaults a document may leave out, so
// it compares equal to triggerToConfig of the trigger it describes; bad
// values are violations under path.
func normalizeConfigTrigger(v *validation, path string, c *harkv1.ConfigTrigger) {
	c.EventType = cmp.Or(c.GetEventType(), defaultEventType)
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
	at, ok := parseEnumWord(c.GetAction(), actionWordPrefix, harkv1.TriggerActionType_value)
	if !ok {
		v.add(path+".action", "%q is not an action type (one of %s)", c.GetAction(), enumWords(actionWordPrefix, harkv1.TriggerActionType_value))
	} else {
		c.Action = configActionWord(harkv1.TriggerActionType(at))
	}
	if f, ok := parseEnumWord(c.GetFrequency(), frequencyWordPrefix, harkv1.TriggerFrequency_value); !ok {
		v.add(path+".frequency", "%q is not a frequency (one of %s)", c.GetFrequency(), enumWords(frequencyWordPrefix, harkv1.TriggerFrequency_value))
	} else {
		c.Frequency = configFrequencyWord(harkv1.TriggerFrequency(f))
	}
	if proto.Size(c.GetActionMapping()) == 0 {
		c.ActionMapping = nil
	}
	// Which mapping fields the action reads, and that only the workflow
	// actions name a workflow, is checked by checkTrigger, as for the API.
	if ok && isWorkflowAction(harkv1.TriggerActionType(at)) && c.GetWorkflowKey() == "" {
		v.add(path+".workflowKey", "is required")
	}
}

// configActionType is the action type of a normalized c.
func configActionType(c *harkv1.ConfigTrigger) harkv1.TriggerActionType {
	at, _ := parseEnumWord(c.GetAction(), actionWordPrefix, harkv1.TriggerActionType_value)
	return harkv1.TriggerActionType(at)
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
	// A default word keeps the stored default (UNSPECIFIED or the explicit
	// value): both read the same, so neither is a change.
	if at := configActionType(c); at != 0 || configActionWord(t.GetActionType()) != "" {
		t.ActionType = at
	}
	t.ActionMapping = proto.CloneOf(c.GetActionMapping())
	f, _ := parseEnumWord(c.GetFrequency(), frequencyWordPrefix, harkv1.TriggerFrequency_value)
	if f != 0 || configFrequencyWord(t.GetFrequency()) != "" {
		t.Frequency = harkv1.TriggerFrequency(f)
	}
}

// triggerIdentity is how a trigger is matched across environments and
// documents: it has no name of its own, and its id is generated per
// environment, so it is what it listens to and what it does — its action
// type and, for the workflow actions, the workflow. A workflows_trigger is
// written as it was before action types existed (`seg track "Signed Up" →
// welcome`), the others with their action (`seg track "Signed Up" →
// tenants_set`, `seg track "Churned" → workflows_cancel welcome`). Two
// triggers of one environment with the same identity (two tenants_set
// actions on one event) cannot be told apart by a document; the document
// refuses to list one twice. c is normalized (normalizeConfigTrigger or
// triggerToConfig).
func triggerIdentity(c *harkv1.ConfigTrigger) string {
	does := strings.TrimSpace(c.GetAction() + " " + c.GetWorkflowKey())
	return fmt.Sprintf("%s %s %q → %s", c.GetSource(), c.GetEventType(), c.GetEvent(), does)
}
