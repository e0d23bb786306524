package main

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

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
		case harkv1.ActionType_ACTION_TYPE_CANCEL_WORKFLOW:
			b.WriteString("cancel " + act.GetWorkflowKey())
		default:
			b.WriteString(enumName(act.GetType(), "ACTION_TYPE_"))
		}
		switch {
		case act.GetCollection() != "":
			b.WriteString(" " + act.GetCollection() + "/" + act.GetObjectId())
		case act.GetAudienceKey() != "":
			b.WriteString(" " + act.GetAudienceKey())
		case act.GetTenantId() != "":
			b.WriteString(" " + act.GetTenantId())
		case act.GetUserId() != "" && act.GetType() != harkv1.ActionType_ACTION_TYPE_IDENTIFY_USER:
			b.WriteString(" " + act.GetUserId())
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
	if len(e.GetHeaders()) > 0 || e.GetHeadersDropped() > 0 {
		fmt.Fprintln(a.out, "\nHeaders:")
		for _, name := range slices.Sorted(maps.Keys(e.GetHeaders())) {
			fmt.Fprintf(a.out, "  %s: %s\n", name, cell(e.GetHeaders()[name]))
		}
		if n := e.GetHeadersDropped(); n > 0 {
			fmt.Fprintf(a.out, "  (%d more dropped: at most 8 KiB of headers are kept)\n", n)
		}
	}
	return nil
}

func eventsTail(g *globalOptions) *cobra.Command {
	var env, source string
	var refusals bool
	cmd := &cobra.Command{
		Use:   "tail --env ENV [--source ID] [--refusals=false]",
		Short: "Follow events as they are logged, until Ctrl-C",
		Long: `Follow events as they are logged, until Ctrl-C. It shows new events only;
hark events list shows the log. With -o json, each event is one line of JSON
({"sourceEvent":…}).

Deliveries the webhooks refuse (a bad signature, malformed JSON, too large,
the store unavailable) show too, as they are refused, as rows with the status
REFUSED, the HTTP status and the reason ({"refusedDelivery":…} with -o json);
--refusals=false leaves them out. hark sources refusals lists the ones kept.

When the connection is lost (hark serve restarts), tail says so on stderr and
reconnects with backoff (1s, doubling up to 30s). The live tail has no
cursor, so on reconnecting it reads the event log for what was logged in
the gap and prints those events first, each once; at most 1,000 of them.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.run(cmd, func(ctx context.Context, a *api) error {
				ctx, stop := signalContext(ctx)
				defer stop()
				fmt.Fprintf(a.errOut, "Following events in %s (Ctrl-C to stop)\n", env)
				if !a.json {
					fmt.Fprintln(a.out, streamRow(eventWidths, eventHeader))
				}
				t := newTail(a, env, source)
				first := true
				return follow(ctx, a.errOut, func(ctx context.Context, answered func()) error {
					stream, err := a.events.WatchSourceEvents(ctx, connect.NewRequest(&harkv1.WatchSourceEventsRequest{Environment: env, SourceId: source, IncludeRefusals: refusals}))
					if err != nil {
						return err
					}
					defer stream.Close()
					if len(stream.ResponseHeader()) > 0 {
						answered()
						// Subscribed: whatever the log gets from now on also
						// comes through the stream, so reading the log now
						// closes the gap.
						if err := t.catchUp(ctx, !first); err != nil {
							return err
						}
						first = false
					}
					for stream.Receive() {
						var err error
						if r := stream.Msg().GetRefusedDelivery(); r != nil {
							err = t.printRefusal(r)
						} else if ev := stream.Msg().GetSourceEvent(); ev != nil {
							err = t.print(ev)
						}
						if err != nil {
							return &fatalStreamError{err}
						}
					}
					return stream.Err()
				})
			})
		},
	}
	envFlag(g, cmd, &env)
	cmd.Flags().StringVar(&source, "source", "", "only events of this source")
	cmd.Flags().BoolVar(&refusals, "refusals", true, "show the deliveries the webhooks refuse, as they are refused")
	return cmd
}

// Bounds of the tail's catch-up after a reconnect.
const (
	// tailSlack is how far before the newest event it printed the tail
	// reads the log again: event ids and receive times are taken before an
	// event's batch commits, so the log's order can differ from the order
	// events reach the tail by the time a commit takes.
	tailSlack = time.Minute
	// maxCatchUp bounds the events printed from the log after a gap.
	maxCatchUp = 1000
	// seenPrune is the size of the tail's sets of ids above which the ids
	// older than the slack are forgotten.
	seenPrune = 10_000
)

// tail is the state of hark events tail across reconnects, so that each
// event is printed once: the events it has printed, and the events that were
// in the log when it started, which a catch-up must not take for missed
// ones.
type tail struct {
	a           *api
	env, source string
	printed     map[string]time.Time // event id → received at
	before      map[string]time.Time // in the log at the start: id → received at
	newest      time.Time            // the latest received-at of either; zero while the log has shown nothing
}

func newTail(a *api, env, source string) *tail {
	return &tail{a: a, env: env, source: source, printed: map[string]time.Time{}, before: map[string]time.Time{}}
}

// print prints ev unless it was printed before. An event of the stream is
// printed even when it is in before: the start's read of the log happens
// after the subscription, so it may list events that are on their way
// through the stream too.
func (t *tail) print(ev *harkv1.SourceEvent) error {
	if _, ok := t.printed[ev.GetId()]; ok {
		return nil
	}
	t.remember(t.printed, ev)
	if t.a.json {
		return t.a.printJSONLine(&harkv1.WatchSourceEventsResponse{Message: &harkv1.WatchSourceEventsResponse_SourceEvent{SourceEvent: ev}})
	}
	_, err := fmt.Fprintln(t.a.out, streamRow(eventWidths, eventRow(ev)))
	return err
}

// printRefusal prints a refused delivery as a row of the tail: no id (it
// was not stored), the HTTP status in the name's column, the reason and
// size in the actions'. Refusals are not caught up after a reconnect: the
// refused-delivery log (hark sources refusals) keeps them.
func (t *tail) printRefusal(r *harkv1.RefusedDelivery) error {
	if t.a.json {
		return t.a.printJSONLine(&harkv1.WatchSourceEventsResponse{Message: &harkv1.WatchSourceEventsResponse_RefusedDelivery{RefusedDelivery: r}})
	}
	ref := r.GetRefusal()
	row := []string{"(refused)", fmtTime(ref.GetTime()), r.GetSourceId(), "", fmt.Sprintf("HTTP %d", ref.GetStatusCode()), "", "REFUSED",
		fmt.Sprintf("%s (%d bytes)", ref.GetReason(), ref.GetSizeBytes())}
	_, err := fmt.Fprintln(t.a.out, streamRow(eventWidths, row))
	return err
}

// remember adds ev to set, moves newest on, and forgets, once set is
// large, the ids older than a catch-up reads.
func (t *tail) remember(set map[string]time.Time, ev *harkv1.SourceEvent) {
	at := ev.GetReceivedAt().AsTime()
	set[ev.GetId()] = at
	if at.After(t.newest) {
		t.newest = at
	}
	if len(set) > seenPrune {
		for id, at := range set {
			if at.Before(t.newest.Add(-tailSlack)) {
				delete(set, id)
			}
		}
	}
}

// catchUp reads the log's newest events, back to tailSlack before the
// newest event known, and prints, oldest first, those neither printed nor
// in the log at the start. At the start (print false) it only records what
// the log holds: the tail shows events logged from then on.
func (t *tail) catchUp(ctx context.Context, print bool) error {
	var cutoff time.Time
	if !t.newest.IsZero() {
		cutoff = t.newest.Add(-tailSlack)
	}
	var fresh []*harkv1.SourceEvent
	read, more := 0, false
	token := ""
pages:
	for {
		res, err := t.a.events.ListSourceEvents(ctx, connect.NewRequest(&harkv1.ListSourceEventsRequest{
			Environment: t.env, SourceId: t.source, PageSize: 100, PageToken: token,
		}))
		if err != nil {
			return fmt.Errorf("read the event log: %w", err)
		}
		for _, ev := range res.Msg.GetSourceEvents() {
			at := ev.GetReceivedAt().AsTime()
			if cutoff.IsZero() && !print {
				cutoff = at.Add(-tailSlack) // the newest event of the log at the start
			}
			if !cutoff.IsZero() && at.Before(cutoff) {
				break pages
			}
			if read++; read > maxCatchUp {
				more = true
				break pages
			}
			_, printed := t.printed[ev.GetId()]
			_, before := t.before[ev.GetId()]
			if !printed && !before {
				fresh = append(fresh, ev)
			}
		}
		if token = res.Msg.GetNextPageToken(); token == "" {
			break
		}
	}
	if !print {
		for _, ev := range fresh {
			t.remember(t.before, ev)
		}
		return nil
	}
	if more {
		fmt.Fprintf(t.a.errOut, "more than %d events were logged while disconnected; the older ones are not shown (hark events list shows the log)\n", maxCatchUp)
	}
	for _, ev := range slices.Backward(fresh) {
		if err := t.print(ev); err != nil {
			return &fatalStreamError{err}
		}
	}
	return nil
}

// eventWidths are the columns of `events tail`: ids are 30 characters,
// times 19.
var eventWidths = []int{30, 19, 30, 8, 14, 12, 10}

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
