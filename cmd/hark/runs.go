package main

import (
	"context"
	"fmt"
	"strings"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

func newRunsCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "runs",
		Aliases: []string{"run"},
		Short:   "Read workflow runs, the output of hark",
	}
	cmd.AddCommand(runsList(g), runsGet(g), runsWatch(g))
	return cmd
}

const runStatusPrefix = "WORKFLOW_RUN_STATUS_"

var runHeader = []string{"ID", "CREATED", "WORKFLOW", "RECIPIENTS", "STATUS", "TRIGGER", "EVENT"}

func runRow(r *harkv1.WorkflowRun) []string {
	trigger := r.GetTriggerId()
	if trigger == "" {
		trigger = "(api)"
	}
	return []string{r.GetId(), fmtTime(r.GetCreatedAt()), r.GetWorkflowKey(), recipientsCell(r),
		enumName(r.GetStatus(), runStatusPrefix), trigger, r.GetSourceEventId()}
}

// recipientsCell lists a run's recipients, marking those the run was
// cancelled for while it goes on for others: "u1,u2 (cancelled)".
func recipientsCell(r *harkv1.WorkflowRun) string {
	if r.GetStatus() != harkv1.WorkflowRunStatus_WORKFLOW_RUN_STATUS_ACTIVE || len(r.GetRecipientStates()) == 0 {
		return strings.Join(r.GetRecipients(), ",")
	}
	cells := make([]string, len(r.GetRecipientStates()))
	for i, st := range r.GetRecipientStates() {
		cells[i] = st.GetId()
		if st.GetStatus() == harkv1.WorkflowRunStatus_WORKFLOW_RUN_STATUS_CANCELLED {
			cells[i] += " (cancelled)"
		}
	}
	return strings.Join(cells, ",")
}

func runsList(g *globalOptions) *cobra.Command {
	var env, workflow, trigger, event string
	var limit int
	cmd := &cobra.Command{
		Use:   "list --env ENV [--workflow KEY] [--trigger ID] [--event ID]",
		Short: "List workflow runs, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.run(cmd, func(ctx context.Context, a *api) error {
				runs, next, err := collect(limit, func(size int32, token string) ([]*harkv1.WorkflowRun, string, error) {
					res, err := a.runs.ListWorkflowRuns(ctx, connect.NewRequest(&harkv1.ListWorkflowRunsRequest{
						Environment: env, WorkflowKey: workflow, TriggerId: trigger, SourceEventId: event, PageSize: size, PageToken: token,
					}))
					if err != nil {
						return nil, "", err
					}
					return res.Msg.GetWorkflowRuns(), res.Msg.GetNextPageToken(), nil
				})
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(&harkv1.ListWorkflowRunsResponse{WorkflowRuns: runs, NextPageToken: next})
				}
				rows := make([][]string, len(runs))
				for i, r := range runs {
					rows[i] = runRow(r)
				}
				a.moreNote(next, len(runs))
				return table(a.out, runHeader, rows)
			})
		},
	}
	envFlag(g, cmd, &env)
	f := cmd.Flags()
	f.StringVar(&workflow, "workflow", "", "only runs of this workflow")
	f.StringVar(&trigger, "trigger", "", "only runs started by this trigger")
	f.StringVar(&event, "event", "", "only runs started by this source event")
	f.IntVar(&limit, "limit", 50, pageLimitUsage)
	return cmd
}

func runsGet(g *globalOptions) *cobra.Command {
	var env string
	cmd := &cobra.Command{
		Use:   "get ID --env ENV",
		Short: "Show a workflow run",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, func(ctx context.Context, a *api) error {
				res, err := a.runs.GetWorkflowRun(ctx, connect.NewRequest(&harkv1.GetWorkflowRunRequest{Environment: env, Id: args[0]}))
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(res.Msg.GetWorkflowRun())
				}
				return a.printRun(res.Msg.GetWorkflowRun())
			})
		},
	}
	envFlag(g, cmd, &env)
	return cmd
}

func (a *api) printRun(r *harkv1.WorkflowRun) error {
	var skipped []string
	for _, s := range r.GetSkippedRecipients() {
		skipped = append(skipped, s.GetId()+" ("+s.GetReason()+")")
	}
	if err := fields(a.out,
		field{"ID", r.GetId()},
		field{"Environment", r.GetEnvironment()},
		field{"Workflow", r.GetWorkflowKey()},
		field{"Status", enumName(r.GetStatus(), runStatusPrefix)},
		field{"Recipients", joinComma(r.GetRecipients())},
		field{"Skipped recipients", joinComma(skipped)},
		field{"Actor", r.GetActor()},
		field{"Tenant", r.GetTenant()},
		field{"Cancellation key", r.GetCancellationKey()},
		field{"Trigger", orDefault(r.GetTriggerId(), "(triggered by API)")},
		field{"Source event", r.GetSourceEventId()},
		field{"Cursor", r.GetCursor()},
		field{"Created", fmtTime(r.GetCreatedAt())},
		field{"Updated", fmtTime(r.GetUpdatedAt())},
	); err != nil {
		return err
	}
	if states := r.GetRecipientStates(); len(states) > 0 {
		rows := make([][]string, len(states))
		for i, st := range states {
			rows[i] = []string{st.GetId(), enumName(st.GetStatus(), runStatusPrefix), fmtTime(st.GetCancelledAt()), st.GetCancelReason()}
		}
		fmt.Fprintln(a.out, "\nRecipients:")
		if err := table(a.out, []string{"RECIPIENT", "STATUS", "CANCELLED", "BY"}, rows); err != nil {
			return err
		}
	}
	if r.GetData() != nil {
		fmt.Fprintf(a.out, "\nData:\n%s\n", indentedJSON(r.GetData()))
	}
	return nil
}

// runWidths are the columns of `runs watch`: cursors are 16 characters,
// ids 30, times 19.
var runWidths = []int{16, 30, 19, 12, 14, 9, 30}

func runsWatch(g *globalOptions) *cobra.Command {
	var env, from, workflow string
	cmd := &cobra.Command{
		Use:   "watch --env ENV [--from CURSOR] [--workflow KEY]",
		Short: "Stream runs: the stored ones after a cursor, then new ones, until Ctrl-C",
		Long: `Stream workflow runs: those stored after --from (all stored runs without
it), then new runs and changes as they happen, until Ctrl-C. Delivery is
at-least-once; each run carries its cursor, so a consumer resumes with
--from <the last cursor it handled>. With -o json each run is one line of JSON.

When the connection is lost (hark serve restarts), watch says so on stderr
and reconnects with backoff (1s, doubling up to 30s), resuming after the
last cursor it printed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.run(cmd, func(ctx context.Context, a *api) error {
				ctx, stop := signalContext(ctx)
				defer stop()
				fmt.Fprintf(a.errOut, "Watching runs in %s (Ctrl-C to stop)\n", env)
				if !a.json {
					fmt.Fprintln(a.out, streamRow(runWidths, append([]string{"CURSOR"}, runHeader...)))
				}
				// After a lost connection the stream resumes after the last
				// cursor printed, so no run is printed twice or skipped.
				cursor := from
				return follow(ctx, a.errOut, func(ctx context.Context, answered func()) error {
					stream, err := a.runs.WatchWorkflowRuns(ctx, connect.NewRequest(&harkv1.WatchWorkflowRunsRequest{Environment: env, AfterCursor: cursor, WorkflowKey: workflow}))
					if err != nil {
						return err
					}
					defer stream.Close()
					if len(stream.ResponseHeader()) > 0 {
						answered()
					}
					for stream.Receive() {
						r := stream.Msg().GetWorkflowRun()
						if a.json {
							err = a.printJSONLine(stream.Msg())
						} else {
							_, err = fmt.Fprintln(a.out, streamRow(runWidths, append([]string{r.GetCursor()}, runRow(r)...)))
						}
						if err != nil {
							return &fatalStreamError{err}
						}
						cursor = r.GetCursor()
					}
					return stream.Err()
				})
			})
		},
	}
	envFlag(g, cmd, &env)
	cmd.Flags().StringVar(&from, "from", "", "start after this cursor (default: the oldest stored run)")
	cmd.Flags().StringVar(&workflow, "workflow", "", "only runs of this workflow")
	return cmd
}
