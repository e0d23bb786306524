package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

func newTriggersCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "triggers",
		Aliases: []string{"trigger"},
		Short:   "Manage source-event triggers (action mappings): what matching events do",
		Long: `A trigger (an action mapping) runs one action when a source sends a
matching event in an environment: by default it starts a workflow
(workflows_trigger); --action picks another of Knock's actions:
users_identify, users_delete, objects_set, objects_delete, tenants_set,
tenants_delete, objects_subscribe, objects_unsubscribe, audiences_add_member,
audiences_remove_member, workflows_trigger, workflows_cancel. An event's
actions run in that order (creation order within one action).

Its condition and mapping are expr expressions over the event:
properties.x, userId, traits.x, context.x, event, messageId (Segment's
fields), data.x and user_id (the common form), body.x and headers.x. The
workflow actions take --recipients, --actor, --tenant, --data and
--cancellation-key; the others take --map FIELD=EXPR for their fields:
  users_identify           id (default userId), properties
  users_delete             id (default userId)
  objects_set              collection, id, properties
  objects_delete           collection, id
  tenants_set              id, properties
  tenants_delete           id
  objects_subscribe        collection, id, recipients (default userId), properties
  objects_unsubscribe      collection, id, recipients (default userId)
  audiences_add_member     audience_key, users (default userId), tenant
  audiences_remove_member  audience_key, users (default userId), tenant`,
	}
	cmd.AddCommand(triggersList(g), triggersGet(g), triggersCreate(g), triggersUpdate(g), triggersDelete(g),
		triggersStatus(g, true), triggersStatus(g, false), triggersTest(g))
	return cmd
}

const triggerStatusPrefix = "TRIGGER_STATUS_"

// triggerFlags are the fields of a trigger on the command line.
type triggerFlags struct {
	workflow, source, eventType, event, condition string
	recipients, actor, tenant, data, cancellation string
	action, frequency                             string
	actionMapping                                 []string // --map field=expr
}

func (t *triggerFlags) bind(cmd *cobra.Command) { t.bindWithType(cmd, "track") }

// bindWithType binds the flags with defaultType as --type's default; update
// has none, since only the flags given change the trigger.
func (t *triggerFlags) bindWithType(cmd *cobra.Command, defaultType string) {
	f := cmd.Flags()
	f.StringVar(&t.workflow, "workflow", "", "key of the workflow to start")
	f.StringVar(&t.source, "source", "", "source id")
	f.StringVar(&t.event, "event", "", "event name, e.g. \"Signed Up\" (for identify triggers, may be empty)")
	f.StringVar(&t.eventType, "type", defaultType, "event type: track, identify, page, …")
	f.StringVar(&t.condition, "condition", "", "expression that must be true to start the run, e.g. 'properties.plan == \"pro\"'")
	f.StringVar(&t.recipients, "recipients", "", "expression for the recipients (default userId)")
	f.StringVar(&t.actor, "actor", "", "expression for the actor")
	f.StringVar(&t.tenant, "tenant", "", "expression for the tenant")
	f.StringVar(&t.data, "data", "", "expression for the run data (default the event's data, i.e. properties)")
	f.StringVar(&t.cancellation, "cancellation-key", "", "expression for the cancellation key (workflows_cancel: required)")
	f.StringVar(&t.action, "action", "", "action type: workflows_trigger (default), workflows_cancel, users_identify, users_delete, objects_set, objects_delete, tenants_set, tenants_delete, objects_subscribe, objects_unsubscribe, audiences_add_member, audiences_remove_member")
	f.StringVar(&t.frequency, "frequency", "", "workflows_trigger only: every_time (default), once_per_recipient or once_per_recipient_per_tenant")
	f.StringArrayVar(&t.actionMapping, "map", nil, "action mapping field=expression for the non-workflow actions, e.g. --map collection='\"projects\"' --map id=properties.project.id; repeatable")
}

const (
	actionTypePrefix = "TRIGGER_ACTION_TYPE_"
	frequencyPrefix  = "TRIGGER_FREQUENCY_"
)

// actionType reads --action.
func (t *triggerFlags) actionType() (harkv1.TriggerActionType, error) {
	if t.action == "" {
		return harkv1.TriggerActionType_TRIGGER_ACTION_TYPE_UNSPECIFIED, nil
	}
	v, err := parseEnum("action", t.action, actionTypePrefix, harkv1.TriggerActionType_value)
	return harkv1.TriggerActionType(v), err
}

// frequencyValue reads --frequency.
func (t *triggerFlags) frequencyValue() (harkv1.TriggerFrequency, error) {
	if t.frequency == "" {
		return harkv1.TriggerFrequency_TRIGGER_FREQUENCY_UNSPECIFIED, nil
	}
	v, err := parseEnum("frequency", t.frequency, frequencyPrefix, harkv1.TriggerFrequency_value)
	return harkv1.TriggerFrequency(v), err
}

// actionMappingFields are the fields --map sets, by name (snake_case or
// lowerCamelCase).
var actionMappingFields = map[string]func(*harkv1.ActionMapping) *string{
	"collection":   func(m *harkv1.ActionMapping) *string { return &m.Collection },
	"id":           func(m *harkv1.ActionMapping) *string { return &m.Id },
	"properties":   func(m *harkv1.ActionMapping) *string { return &m.Properties },
	"recipients":   func(m *harkv1.ActionMapping) *string { return &m.Recipients },
	"audience_key": func(m *harkv1.ActionMapping) *string { return &m.AudienceKey },
	"audienceKey":  func(m *harkv1.ActionMapping) *string { return &m.AudienceKey },
	"users":        func(m *harkv1.ActionMapping) *string { return &m.Users },
	"tenant":       func(m *harkv1.ActionMapping) *string { return &m.Tenant },
}

// applyActionMapping sets the --map fields on m.
func (t *triggerFlags) applyActionMapping(m *harkv1.ActionMapping) error {
	kvs, err := keyValues("map", t.actionMapping)
	if err != nil {
		return err
	}
	for k, v := range kvs {
		field, ok := actionMappingFields[k]
		if !ok {
			return usageError{fmt.Errorf("--map %s: not an action mapping field", k), "fields: collection, id, properties, recipients, audience_key, users, tenant"}
		}
		*field(m) = v
	}
	return nil
}

func (t *triggerFlags) mapping() *harkv1.TriggerMapping {
	return &harkv1.TriggerMapping{
		Recipients: t.recipients, Actor: t.actor, Tenant: t.tenant, Data: t.data, CancellationKey: t.cancellation,
	}
}

func triggersList(g *globalOptions) *cobra.Command {
	var env, source, event, workflow string
	var limit int
	cmd := &cobra.Command{
		Use:   "list --env ENV [--source ID] [--event NAME] [--workflow KEY]",
		Short: "List triggers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.run(cmd, func(ctx context.Context, a *api) error {
				ts, next, err := collect(limit, func(size int32, token string) ([]*harkv1.Trigger, string, error) {
					res, err := a.triggers.ListTriggers(ctx, connect.NewRequest(&harkv1.ListTriggersRequest{
						Environment: env, SourceId: source, Event: event, WorkflowKey: workflow, PageSize: size, PageToken: token,
					}))
					if err != nil {
						return nil, "", err
					}
					return res.Msg.GetTriggers(), res.Msg.GetNextPageToken(), nil
				})
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(&harkv1.ListTriggersResponse{Triggers: ts, NextPageToken: next})
				}
				rows := make([][]string, len(ts))
				for i, t := range ts {
					rows[i] = []string{t.GetId(), orDefault(enumName(t.GetActionType(), actionTypePrefix), "workflows_trigger"), t.GetWorkflowKey(),
						t.GetSourceId(), t.GetEventType(), t.GetEvent(), enumName(t.GetStatus(), triggerStatusPrefix), t.GetCondition()}
				}
				a.moreNote(next, len(ts))
				return table(a.out, []string{"ID", "ACTION", "WORKFLOW", "SOURCE", "TYPE", "EVENT", "STATUS", "CONDITION"}, rows)
			})
		},
	}
	envFlag(g, cmd, &env)
	f := cmd.Flags()
	f.StringVar(&source, "source", "", "only triggers of this source")
	f.StringVar(&event, "event", "", "only triggers on this event name")
	f.StringVar(&workflow, "workflow", "", "only triggers of this workflow")
	f.IntVar(&limit, "limit", 100, pageLimitUsage)
	return cmd
}

func triggersGet(g *globalOptions) *cobra.Command {
	var env string
	cmd := &cobra.Command{
		Use:   "get ID --env ENV",
		Short: "Show a trigger",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, func(ctx context.Context, a *api) error {
				res, err := a.triggers.GetTrigger(ctx, connect.NewRequest(&harkv1.GetTriggerRequest{Environment: env, Id: args[0]}))
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(res.Msg.GetTrigger())
				}
				return a.printTrigger(res.Msg.GetTrigger())
			})
		},
	}
	envFlag(g, cmd, &env)
	return cmd
}

func (a *api) printTrigger(t *harkv1.Trigger) error {
	m := t.GetMapping()
	return fields(a.out,
		field{"ID", t.GetId()},
		field{"Environment", t.GetEnvironment()},
		field{"Status", enumName(t.GetStatus(), triggerStatusPrefix)},
		field{"Action", orDefault(enumName(t.GetActionType(), actionTypePrefix), "workflows_trigger")},
		field{"Workflow", t.GetWorkflowKey()},
		field{"Source", t.GetSourceId()},
		field{"Event type", t.GetEventType()},
		field{"Event", t.GetEvent()},
		field{"Condition", t.GetCondition()},
		field{"Recipients", orDefault(m.GetRecipients(), "(default: userId)")},
		field{"Actor", m.GetActor()},
		field{"Tenant", m.GetTenant()},
		field{"Data", orDefault(m.GetData(), "(default: the event's data)")},
		field{"Cancellation key", m.GetCancellationKey()},
		field{"Frequency", enumName(t.GetFrequency(), frequencyPrefix)},
		field{"Action mapping", actionMappingText(t.GetActionMapping())},
		field{"Created", fmtTime(t.GetCreatedAt())},
		field{"Updated", fmtTime(t.GetUpdatedAt())},
	)
}

// actionMappingText shows the fields an action mapping sets: "id=userId, …".
func actionMappingText(m *harkv1.ActionMapping) string {
	var parts []string
	for _, f := range []struct{ name, v string }{
		{"collection", m.GetCollection()}, {"id", m.GetId()}, {"properties", m.GetProperties()}, {"recipients", m.GetRecipients()},
		{"audience_key", m.GetAudienceKey()}, {"users", m.GetUsers()}, {"tenant", m.GetTenant()},
	} {
		if f.v != "" {
			parts = append(parts, f.name+"="+f.v)
		}
	}
	return strings.Join(parts, ", ")
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func triggersCreate(g *globalOptions) *cobra.Command {
	var env string
	var tf triggerFlags
	var inactive bool
	cmd := &cobra.Command{
		Use:   "create --env ENV --source ID --event NAME [--action TYPE] [--workflow KEY] [--type track] [--condition EXPR] [--recipients EXPR] [--actor EXPR] [--tenant EXPR] [--data EXPR] [--cancellation-key EXPR] [--frequency F] [--map FIELD=EXPR]...",
		Short: "Create a trigger (action mapping); its expressions are checked when it is saved",
		Long: `Create a trigger. Without --action it starts --workflow (workflows_trigger);
workflows_cancel cancels --workflow's runs with the mapped --cancellation-key;
the other actions take their fields with --map (see hark triggers --help).`,
		Example: `  hark triggers create --env development --workflow welcome --source src_123 --event "Signed Up"
  hark triggers create --env development --workflow new-comment --source src_123 --event "Comment Posted" \
      --condition 'properties.post.author != userId' \
      --recipients 'properties.post.author' --actor 'userId' --data '{"comment": properties.text}'
  hark triggers create --env development --source src_123 --event "Project Joined" --action objects_subscribe \
      --map collection='"projects"' --map id=properties.project.id
  hark triggers create --env development --workflow welcome --source src_123 --event "Signed Up" --frequency once_per_recipient`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			actionType, err := tf.actionType()
			if err != nil {
				return err
			}
			frequency, err := tf.frequencyValue()
			if err != nil {
				return err
			}
			am := &harkv1.ActionMapping{}
			if err := tf.applyActionMapping(am); err != nil {
				return err
			}
			return g.run(cmd, func(ctx context.Context, a *api) error {
				req := &harkv1.CreateTriggerRequest{
					Environment: env, WorkflowKey: tf.workflow, SourceId: tf.source, EventType: tf.eventType,
					Event: tf.event, Condition: tf.condition, Mapping: tf.mapping(),
					ActionType: actionType, Frequency: frequency,
				}
				if len(tf.actionMapping) > 0 {
					req.ActionMapping = am
				}
				if inactive {
					req.Status = harkv1.TriggerStatus_TRIGGER_STATUS_INACTIVE
				}
				res, err := a.triggers.CreateTrigger(ctx, connect.NewRequest(req))
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(res.Msg.GetTrigger())
				}
				return a.printTrigger(res.Msg.GetTrigger())
			})
		},
	}
	envFlag(g, cmd, &env)
	tf.bind(cmd)
	cmd.Flags().BoolVar(&inactive, "inactive", false, "create it inactive (see hark triggers activate)")
	_ = cmd.MarkFlagRequired("source")
	return cmd
}

// mappingFlags are the flags of triggerFlags that set a mapping field.
var mappingFlags = []string{"recipients", "actor", "tenant", "data", "cancellation-key"}

func triggersUpdate(g *globalOptions) *cobra.Command {
	var env string
	var tf triggerFlags
	var active, inactive bool
	cmd := &cobra.Command{
		Use:   "update ID --env ENV [--action TYPE] [--workflow KEY] [--source ID] [--event NAME] [--type T] [--condition EXPR] [--recipients EXPR] [--actor EXPR] [--tenant EXPR] [--data EXPR] [--cancellation-key EXPR] [--frequency F] [--map FIELD=EXPR]... [--active|--inactive]",
		Short: "Change a trigger: only the fields given; its expressions are checked when it is saved",
		Long: `Change the fields of a trigger whose flags are given and keep the others.
--condition '' removes the condition; a mapping flag given as '' goes back to
its default (recipients: userId; data: the event's data). The mapping is
read and written back whole (the API replaces it whole), so a change made
to another mapping field in between is overwritten. --map FIELD=EXPR
changes one action mapping field the same way (FIELD= clears it).`,
		Example: `  hark triggers update trg_123 --env development --condition 'properties.plan != "free"'
  hark triggers update trg_123 --env development --recipients 'properties.team' --inactive`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if active && inactive {
				return usageError{errors.New("give --active or --inactive, not both"), "usage: " + cmd.UseLine()}
			}
			return g.run(cmd, func(ctx context.Context, a *api) error {
				f := cmd.Flags()
				req := &harkv1.UpdateTriggerRequest{Environment: env, Id: args[0]}
				changed := false
				for _, opt := range []struct {
					flag string
					v    string
					dst  **string
				}{
					{"workflow", tf.workflow, &req.WorkflowKey}, {"source", tf.source, &req.SourceId},
					{"type", tf.eventType, &req.EventType}, {"event", tf.event, &req.Event}, {"condition", tf.condition, &req.Condition},
				} {
					if f.Changed(opt.flag) {
						*opt.dst, changed = new(opt.v), true
					}
				}
				if f.Changed("action") {
					t, err := tf.actionType()
					if err != nil {
						return err
					}
					req.ActionType, changed = &t, true
				}
				if f.Changed("frequency") {
					fr, err := tf.frequencyValue()
					if err != nil {
						return err
					}
					req.Frequency, changed = &fr, true
				}
				if f.Changed("map") {
					cur, err := a.triggers.GetTrigger(ctx, connect.NewRequest(&harkv1.GetTriggerRequest{Environment: env, Id: args[0]}))
					if err != nil {
						return err
					}
					am := proto.CloneOf(cur.Msg.GetTrigger().GetActionMapping())
					if am == nil {
						am = &harkv1.ActionMapping{}
					}
					if err := tf.applyActionMapping(am); err != nil {
						return err
					}
					req.ActionMapping, changed = am, true
				}
				switch {
				case active:
					req.Status, changed = new(harkv1.TriggerStatus_TRIGGER_STATUS_ACTIVE), true
				case inactive:
					req.Status, changed = new(harkv1.TriggerStatus_TRIGGER_STATUS_INACTIVE), true
				}
				if slices.ContainsFunc(mappingFlags, f.Changed) {
					cur, err := a.triggers.GetTrigger(ctx, connect.NewRequest(&harkv1.GetTriggerRequest{Environment: env, Id: args[0]}))
					if err != nil {
						return err
					}
					m := proto.CloneOf(cur.Msg.GetTrigger().GetMapping())
					if m == nil {
						m = &harkv1.TriggerMapping{}
					}
					for _, opt := range []struct {
						flag string
						v    string
						dst  *string
					}{
						{"recipients", tf.recipients, &m.Recipients}, {"actor", tf.actor, &m.Actor}, {"tenant", tf.tenant, &m.Tenant},
						{"data", tf.data, &m.Data}, {"cancellation-key", tf.cancellation, &m.CancellationKey},
					} {
						if f.Changed(opt.flag) {
							*opt.dst = opt.v
						}
					}
					req.Mapping, changed = m, true
				}
				if !changed {
					return usageError{errors.New("nothing to change: give the flags of the fields to change"), "usage: " + cmd.UseLine()}
				}
				res, err := a.triggers.UpdateTrigger(ctx, connect.NewRequest(req))
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(res.Msg.GetTrigger())
				}
				return a.printTrigger(res.Msg.GetTrigger())
			})
		},
	}
	envFlag(g, cmd, &env)
	tf.bindWithType(cmd, "")
	cmd.Flags().BoolVar(&active, "active", false, "activate the trigger")
	cmd.Flags().BoolVar(&inactive, "inactive", false, "deactivate the trigger")
	return cmd
}

func triggersDelete(g *globalOptions) *cobra.Command {
	var env string
	cmd := &cobra.Command{
		Use:   "delete ID --env ENV",
		Short: "Delete a trigger",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, func(ctx context.Context, a *api) error {
				res, err := a.triggers.DeleteTrigger(ctx, connect.NewRequest(&harkv1.DeleteTriggerRequest{Environment: env, Id: args[0]}))
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(res.Msg)
				}
				_, err = fmt.Fprintf(a.out, "Deleted trigger %s\n", args[0])
				return err
			})
		},
	}
	envFlag(g, cmd, &env)
	return cmd
}

// triggersStatus is `triggers activate` (active) or `triggers deactivate`.
func triggersStatus(g *globalOptions, active bool) *cobra.Command {
	var env string
	use, short, status := "activate", "Activate a trigger: matching events start runs again", harkv1.TriggerStatus_TRIGGER_STATUS_ACTIVE
	if !active {
		use, short, status = "deactivate", "Deactivate a trigger: matching events are logged with the action skipped", harkv1.TriggerStatus_TRIGGER_STATUS_INACTIVE
	}
	cmd := &cobra.Command{
		Use:   use + " ID --env ENV",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, func(ctx context.Context, a *api) error {
				res, err := a.triggers.UpdateTrigger(ctx, connect.NewRequest(&harkv1.UpdateTriggerRequest{Environment: env, Id: args[0], Status: &status}))
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(res.Msg.GetTrigger())
				}
				_, err = fmt.Fprintf(a.out, "Trigger %s is %s\n", args[0], enumName(res.Msg.GetTrigger().GetStatus(), triggerStatusPrefix))
				return err
			})
		},
	}
	envFlag(g, cmd, &env)
	return cmd
}

func triggersTest(g *globalOptions) *cobra.Command {
	var env, eventFile, eventID string
	var tf triggerFlags
	var headers []string
	cmd := &cobra.Command{
		Use:   "test [ID] --env ENV [--event-file FILE] | test --env ENV --workflow KEY --source ID --event NAME [--condition …] [--recipients …] …",
		Short: "Run a saved or unsaved trigger against an event, changing nothing",
		Long: `Run a trigger against an event and show what it would do: the condition's
result, the mapped recipients, actor, tenant and data, and which recipients
would be left out. Nothing is stored and no run starts.

Test a saved trigger by its ID, or an unsaved one given with the flags of
hark triggers create. The event is the original event (as the source sends
it, e.g. a Segment track call) in --event-file, the logged event --event-id,
or else the latest logged event of the trigger's source, type and name. A
logged event brings the request headers it was received with (secrets
redacted); --header lays values over them.`,
		Example: `  hark triggers test trg_123 --env development
  hark triggers test --env development --workflow welcome --source src_123 --event "Signed Up" \
      --recipients 'properties.recipients' --event-file signed-up.json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, func(ctx context.Context, a *api) error {
				req := &harkv1.TestTriggerRequest{Environment: env}
				if len(args) == 1 {
					req.TriggerId = args[0]
				} else {
					if tf.source == "" {
						return usageError{fmt.Errorf("give a saved trigger's ID, or an unsaved trigger with at least --source (and --workflow or --action)"), "see 'hark triggers test --help'"}
					}
					actionType, err := tf.actionType()
					if err != nil {
						return err
					}
					frequency, err := tf.frequencyValue()
					if err != nil {
						return err
					}
					req.Trigger = &harkv1.Trigger{
						WorkflowKey: tf.workflow, SourceId: tf.source, EventType: tf.eventType, Event: tf.event,
						Condition: tf.condition, Mapping: tf.mapping(), Status: harkv1.TriggerStatus_TRIGGER_STATUS_ACTIVE,
						ActionType: actionType, Frequency: frequency,
					}
					if len(tf.actionMapping) > 0 {
						req.Trigger.ActionMapping = &harkv1.ActionMapping{}
						if err := tf.applyActionMapping(req.Trigger.ActionMapping); err != nil {
							return err
						}
					}
				}
				if eventFile != "" {
					ev, err := readEventFile(eventFile)
					if err != nil {
						return err
					}
					req.Event = ev
				}
				req.SourceEventId = eventID
				hs, err := keyValues("header", headers)
				if err != nil {
					return err
				}
				req.Headers = hs
				res, err := a.triggers.TestTrigger(ctx, connect.NewRequest(req))
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(res.Msg)
				}
				return a.printTest(res.Msg)
			})
		},
	}
	envFlag(g, cmd, &env)
	tf.bind(cmd)
	cmd.Flags().StringVar(&eventFile, "event-file", "", "JSON file with the original event to test against (default: the latest logged matching event)")
	cmd.Flags().StringVar(&eventID, "event-id", "", "logged event to test against, with its logged headers")
	cmd.Flags().StringArrayVar(&headers, "header", nil, "request header name=value the expressions see as headers (over a logged event's); repeatable")
	cmd.MarkFlagsMutuallyExclusive("event-file", "event-id")
	return cmd
}

// readEventFile reads one original event, a JSON object.
func readEventFile(path string) (*structpb.Struct, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--event-file: %w", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil || m == nil {
		return nil, usageError{fmt.Errorf("--event-file %s must hold one JSON event object: %s", path, jsonErrorText(err)), ""}
	}
	st, err := structpb.NewStruct(m)
	if err != nil {
		return nil, fmt.Errorf("--event-file %s: %w", path, err)
	}
	return st, nil
}

// isWorkflowActionType says whether a trigger of that action type starts
// or cancels runs (and so has recipients, not action values, to show).
func isWorkflowActionType(t harkv1.TriggerActionType) bool {
	switch t {
	case harkv1.TriggerActionType_TRIGGER_ACTION_TYPE_UNSPECIFIED, harkv1.TriggerActionType_TRIGGER_ACTION_TYPE_WORKFLOWS_TRIGGER,
		harkv1.TriggerActionType_TRIGGER_ACTION_TYPE_WORKFLOWS_CANCEL:
		return true
	}
	return false
}

func (a *api) printTest(r *harkv1.TestTriggerResponse) error {
	skipped := ""
	for i, s := range r.GetSkippedRecipients() {
		if i > 0 {
			skipped += ", "
		}
		skipped += s.GetId() + " (" + s.GetReason() + ")"
	}
	status := enumName(r.GetStatus(), "ACTION_STATUS_")
	if r.GetReason() != "" {
		status += " (" + r.GetReason() + ")"
	}
	event := r.GetSourceEventId()
	if event == "" {
		event = "(from --event-file)"
	}
	if !isWorkflowActionType(r.GetActionType()) {
		fs := []field{
			{"Event", event},
			{"Action", enumName(r.GetActionType(), actionTypePrefix)},
			{"Condition", fmt.Sprint(r.GetConditionResult())},
			{"Result", status},
		}
		vals := r.GetActionValues().GetFields()
		for _, k := range slices.Sorted(maps.Keys(vals)) {
			fs = append(fs, field{"Mapped " + k, compactJSON(vals[k])})
		}
		return fields(a.out, fs...)
	}
	return fields(a.out,
		field{"Event", event},
		field{"Condition", fmt.Sprint(r.GetConditionResult())},
		field{"Result", status},
		field{"Recipients", compactJSON(r.GetRecipients())},
		field{"Resolved recipients", joinComma(r.GetResolvedRecipients())},
		field{"Skipped recipients", skipped},
		field{"Actor", compactJSON(r.GetActor())},
		field{"Tenant", compactJSON(r.GetTenant())},
		field{"Data", compactJSON(r.GetData())},
		field{"Cancellation key", r.GetCancellationKey()},
	)
}
