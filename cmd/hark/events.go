package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

func newEventsCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "events",
		Aliases: []string{"event"},
		Short:   "Read the event log: what sources sent and what hark did with it",
	}
	cmd.AddCommand(eventsList(g), eventsGet(g), eventsTail(g), eventsTypes(g))
	return cmd
}

const eventStatusPrefix = "SOURCE_EVENT_STATUS_"

func eventsList(g *globalOptions) *cobra.Command {
	var (
		env, source, typ, name, status, user string
		limit                                int
	)
	cmd := &cobra.Command{
		Use:   "list --env ENV [--source ID] [--type T] [--name N] [--status S] [--user ID]",
		Short: "List logged events, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.run(cmd, func(ctx context.Context, a *api) error {
				req := &harkv1.ListSourceEventsRequest{Environment: env, SourceId: source, Type: typ, Name: name, UserId: user}
				if status != "" {
					v, err := parseEnum("status", status, eventStatusPrefix, harkv1.SourceEventStatus_value)
					if err != nil {
						return err
					}
					req.Status = harkv1.SourceEventStatus(v)
				}
				evs, next, err := collect(limit, func(size int32, token string) ([]*harkv1.SourceEvent, string, error) {
					req.PageSize, req.PageToken = size, token
					res, err := a.events.ListSourceEvents(ctx, connect.NewRequest(req))
					if err != nil {
						return nil, "", err
					}
					return res.Msg.GetSourceEvents(), res.Msg.GetNextPageToken(), nil
				})
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(&harkv1.ListSourceEventsResponse{SourceEvents: evs, NextPageToken: next})
				}
				rows := make([][]string, len(evs))
				for i, e := range evs {
					rows[i] = eventRow(e)
				}
				a.moreNote(next, len(evs))
				return table(a.out, eventHeader, rows)
			})
		},
	}
	envFlag(g, cmd, &env)
	f := cmd.Flags()
	f.StringVar(&source, "source", "", "only events of this source")
	f.StringVar(&typ, "type", "", "only events of this type (track, identify, …)")
	f.StringVar(&name, "name", "", "only events with this name (a track event's name)")
	f.StringVar(&status, "status", "", "only events with this status: processed, idempotent, skipped or failed")
	f.StringVar(&user, "user", "", "only events of this user id")
	f.IntVar(&limit, "limit", 50, pageLimitUsage)
	_ = cmd.RegisterFlagCompletionFunc("status", cobra.FixedCompletions([]string{"processed", "idempotent", "skipped", "failed"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

var eventHeader = []string{"ID", "RECEIVED", "SOURCE", "TYPE", "NAME", "USER", "STATUS", "ACTIONS"}

func eventRow(e *harkv1.SourceEvent) []string {
	user := e.GetUserId()
	if user == "" && e.GetAnonymousId() != "" {
		user = "anon:" + e.GetAnonymousId()
	}
	status := enumName(e.GetStatus(), eventStatusPrefix)
	if e.GetReason() != "" {
		status += " (" + e.GetReason() + ")"
	}
	return []string{e.GetId(), fmtTime(e.GetReceivedAt()), e.GetSourceId(), e.GetType(), e.GetName(), user, status, actionsText(e.GetActions())}
}

// actionsText sums up an event's actions on one line:
// "identify ada: success; welcome: success run_…".
func actionsText(actions []*harkv1.Action) string {
	parts := make([]string, 0, len(actions))
	for _, act := range actions {
		var b strings.Builder
		switch act.GetType() {
		case harkv1.ActionType_ACTION_TYPE_IDENTIFY_USER:
			b.WriteString("identify")
			if act.GetUserId() != "" {
				b.WriteString(" " + act.GetUserId())
			}
		case harkv1.ActionType_ACTION_TYPE_TRIGGER_WORKFLOW:
			b.WriteString(act.GetWorkflowKey())
		default:
			b.WriteString(enumName(act.GetType(), "ACTION_TYPE_"))
		}
		b.WriteString(": " + enumName(act.GetStatus(), "ACTION_STATUS_"))
		if act.GetWorkflowRunId() != "" {
			b.WriteString(" " + act.GetWorkflowRunId())
		}
		if act.GetReason() != "" {
			b.WriteString(" (" + act.GetReason() + ")")
		}
		parts = append(parts, b.String())
	}
	return strings.Join(parts, "; ")
}

func eventsGet(g *globalOptions) *cobra.Command {
	var env string
	cmd := &cobra.Command{
		Use:   "get ID --env ENV",
		Short: "Show a logged event: its fields, actions, data and the original event",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, func(ctx context.Context, a *api) error {
				res, err := a.events.GetSourceEvent(ctx, connect.NewRequest(&harkv1.GetSourceEventRequest{Environment: env, Id: args[0]}))
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(res.Msg.GetSourceEvent())
				}
				return a.printEvent(res.Msg.GetSourceEvent())
			})
		},
	}
	envFlag(g, cmd, &env)
	return cmd
}

func (a *api) printEvent(e *harkv1.SourceEvent) error {
	fs := []field{
		{"ID", e.GetId()},
		{"Environment", e.GetEnvironment()},
		{"Source", e.GetSourceId()},
		{"Received", fmtTime(e.GetReceivedAt())},
		{"Timestamp", fmtTime(e.GetTimestamp())},
		{"Type", e.GetType()},
		{"Name", e.GetName()},
		{"User", e.GetUserId()},
		{"Anonymous ID", e.GetAnonymousId()},
		{"Idempotency key", e.GetIdempotencyKey()},
		{"Status", enumName(e.GetStatus(), eventStatusPrefix)},
	}
	if e.GetReason() != "" {
		fs = append(fs, field{"Reason", e.GetReason()})
	}
	if e.GetOriginalEventId() != "" {
		fs = append(fs, field{"Original event", e.GetOriginalEventId()})
	}
	if err := fields(a.out, fs...); err != nil {
		return err
	}
	if len(e.GetActions()) > 0 {
		fmt.Fprintln(a.out, "\nActions:")
		rows := make([][]string, len(e.GetActions()))
		for i, act := range e.GetActions() {
			rows[i] = []string{
				enumName(act.GetType(), "ACTION_TYPE_"), enumName(act.GetStatus(), "ACTION_STATUS_"),
				act.GetUserId(), act.GetTriggerId(), act.GetWorkflowKey(), act.GetWorkflowRunId(), act.GetReason(),
			}
		}
		if err := table(a.out, []string{"TYPE", "STATUS", "USER", "TRIGGER", "WORKFLOW", "RUN", "REASON"}, rows); err != nil {
			return err
		}
	}
	if e.GetData() != nil {
		fmt.Fprintf(a.out, "\nData:\n%s\n", indentedJSON(e.GetData()))
	}
	if e.GetTraits() != nil {
		fmt.Fprintf(a.out, "\nTraits:\n%s\n", indentedJSON(e.GetTraits()))
	}
	if e.GetEvent() != nil {
		fmt.Fprintf(a.out, "\nOriginal event:\n%s\n", indentedJSON(e.GetEvent()))
	}
	return nil
}

func eventsTail(g *globalOptions) *cobra.Command {
	var env, source string
	cmd := &cobra.Command{
		Use:   "tail --env ENV [--source ID]",
		Short: "Follow events as they are logged, until Ctrl-C",
		Long: `Follow events as they are logged, until Ctrl-C. It shows new events only;
hark events list shows the log. With -o json, each event is one line of JSON.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.run(cmd, func(ctx context.Context, a *api) error {
				ctx, stop := signalContext(ctx)
				defer stop()
				stream, err := a.events.WatchSourceEvents(ctx, connect.NewRequest(&harkv1.WatchSourceEventsRequest{Environment: env, SourceId: source}))
				if err != nil {
					return err
				}
				defer stream.Close()
				fmt.Fprintf(cmd.ErrOrStderr(), "Following events in %s (Ctrl-C to stop)\n", env)
				if !a.json {
					fmt.Fprintln(a.out, streamRow(eventWidths, eventHeader))
				}
				for stream.Receive() {
					if a.json {
						err = a.printJSONLine(stream.Msg())
					} else {
						_, err = fmt.Fprintln(a.out, streamRow(eventWidths, eventRow(stream.Msg().GetSourceEvent())))
					}
					if err != nil {
						return err
					}
				}
				return streamEnd(ctx, stream.Err())
			})
		},
	}
	envFlag(g, cmd, &env)
	cmd.Flags().StringVar(&source, "source", "", "only events of this source")
	return cmd
}

// eventWidths are the columns of `events tail`: ids are 30 characters,
// times 19.
var eventWidths = []int{30, 19, 30, 8, 14, 12, 10}

// streamEnd is the result of a stream: ending it with Ctrl-C is success.
func streamEnd(ctx context.Context, err error) error {
	if ctx.Err() != nil && (err == nil || errors.Is(err, context.Canceled) || connect.CodeOf(err) == connect.CodeCanceled) {
		return nil
	}
	if err == nil {
		return errors.New("the server ended the stream")
	}
	return err
}

func eventsTypes(g *globalOptions) *cobra.Command {
	var env, source string
	var limit int
	cmd := &cobra.Command{
		Use:   "types --env ENV --source ID",
		Short: "List the unique events a source has sent in an environment",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.run(cmd, func(ctx context.Context, a *api) error {
				types, next, err := collect(limit, func(size int32, token string) ([]*harkv1.EventType, string, error) {
					res, err := a.events.ListEventTypes(ctx, connect.NewRequest(&harkv1.ListEventTypesRequest{Environment: env, SourceId: source, PageSize: size, PageToken: token}))
					if err != nil {
						return nil, "", err
					}
					return res.Msg.GetEventTypes(), res.Msg.GetNextPageToken(), nil
				})
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(&harkv1.ListEventTypesResponse{EventTypes: types, NextPageToken: next})
				}
				rows := make([][]string, len(types))
				for i, t := range types {
					rows[i] = []string{t.GetType(), t.GetName(), fmt.Sprint(t.GetCount()), fmtTime(t.GetFirstReceivedAt()), fmtTime(t.GetLastReceivedAt())}
				}
				a.moreNote(next, len(types))
				return table(a.out, []string{"TYPE", "NAME", "COUNT", "FIRST RECEIVED", "LAST RECEIVED"}, rows)
			})
		},
	}
	envFlag(g, cmd, &env)
	cmd.Flags().StringVar(&source, "source", "", "source id")
	_ = cmd.MarkFlagRequired("source")
	cmd.Flags().IntVar(&limit, "limit", 100, pageLimitUsage)
	return cmd
}
