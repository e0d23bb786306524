package main

import (
	"context"
	"fmt"
	"strings"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

func newDeliveriesCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "deliveries",
		Aliases: []string{"delivery"},
		Short:   "Read and retry deliveries: run changes on their way to destinations, with every attempt",
		Long: `A delivery is one workflow run change on its way to one destination. It is
written with the change and is done once the receiver answers 2xx; until
then it is pending and retried on the schedule of hark serve
--delivery-retry-schedule, then failed (hark deliveries retry starts it
again). Its id is the webhook-id, the same on every attempt.`,
	}
	cmd.AddCommand(deliveriesList(g), deliveriesGet(g), deliveriesRetry(g))
	return cmd
}

const deliveryStatusPrefix = "DELIVERY_STATUS_"

// deliveryStatuses are the values of --status, for help and completion.
var deliveryStatuses = []string{"pending", "succeeded", "failed"}

func deliveriesList(g *globalOptions) *cobra.Command {
	var env, destination, run, status string
	var limit int
	cmd := &cobra.Command{
		Use:   "list --env ENV [--destination ID] [--run ID] [--status pending|succeeded|failed]",
		Short: "List deliveries, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.run(cmd, func(ctx context.Context, a *api) error {
				req := &harkv1.ListDeliveriesRequest{Environment: env, DestinationId: destination, WorkflowRunId: run}
				if status != "" {
					v, err := parseEnum("status", status, deliveryStatusPrefix, harkv1.DeliveryStatus_value)
					if err != nil {
						return err
					}
					req.Status = harkv1.DeliveryStatus(v)
				}
				ds, next, err := collect(limit, func(size int32, token string) ([]*harkv1.Delivery, string, error) {
					req.PageSize, req.PageToken = size, token
					res, err := a.deliveries.ListDeliveries(ctx, connect.NewRequest(req))
					if err != nil {
						return nil, "", err
					}
					return res.Msg.GetDeliveries(), res.Msg.GetNextPageToken(), nil
				})
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(&harkv1.ListDeliveriesResponse{Deliveries: ds, NextPageToken: next})
				}
				rows := make([][]string, len(ds))
				for i, d := range ds {
					rows[i] = []string{d.GetId(), fmtTime(d.GetCreatedAt()), d.GetDestinationId(), d.GetWorkflowRunId(), d.GetEventType(),
						enumName(d.GetStatus(), deliveryStatusPrefix), fmt.Sprint(d.GetAttemptCount()), nextAttemptText(d)}
				}
				a.moreNote(next, len(ds))
				return table(a.out, []string{"ID", "CREATED", "DESTINATION", "RUN", "EVENT", "STATUS", "ATTEMPTS", "NEXT ATTEMPT"}, rows)
			})
		},
	}
	envFlag(g, cmd, &env)
	f := cmd.Flags()
	f.StringVar(&destination, "destination", "", "only deliveries to this destination")
	f.StringVar(&run, "run", "", "only deliveries of this workflow run")
	f.StringVar(&status, "status", "", "only deliveries with this status: "+strings.Join(deliveryStatuses, ", "))
	f.IntVar(&limit, "limit", 50, pageLimitUsage)
	_ = cmd.RegisterFlagCompletionFunc("status", cobra.FixedCompletions(deliveryStatuses, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("destination", g.completeDestinations())
	return cmd
}

// nextAttemptText says when a delivery is tried next: a pending delivery
// without a time waits for its destination to be resumed.
func nextAttemptText(d *harkv1.Delivery) string {
	switch {
	case d.GetStatus() != harkv1.DeliveryStatus_DELIVERY_STATUS_PENDING:
		return ""
	case d.GetNextAttemptAt() == nil:
		return "held (destination not active)"
	}
	return fmtTime(d.GetNextAttemptAt())
}

func deliveriesGet(g *globalOptions) *cobra.Command {
	var env string
	cmd := &cobra.Command{
		Use:   "get ID --env ENV",
		Short: "Show a delivery and its attempts",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, func(ctx context.Context, a *api) error {
				res, err := a.deliveries.GetDelivery(ctx, connect.NewRequest(&harkv1.GetDeliveryRequest{Environment: env, Id: args[0]}))
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(res.Msg.GetDelivery())
				}
				return a.printDelivery(res.Msg.GetDelivery())
			})
		},
	}
	envFlag(g, cmd, &env)
	return cmd
}

// answerWidth is how much of a receiver's answer a row of the attempts
// table shows; -o json has all that was kept (1 KiB).
const answerWidth = 60

// printDelivery shows a delivery and a row per attempt, oldest first.
func (a *api) printDelivery(d *harkv1.Delivery) error {
	if err := fields(a.out,
		field{"ID", d.GetId()},
		field{"Environment", d.GetEnvironment()},
		field{"Destination", d.GetDestinationId()},
		field{"Run", d.GetWorkflowRunId()},
		field{"Event", d.GetEventType()},
		field{"Status", enumName(d.GetStatus(), deliveryStatusPrefix)},
		field{"Attempts", fmt.Sprint(d.GetAttemptCount())},
		field{"Next attempt", nextAttemptText(d)},
		field{"Created", fmtTime(d.GetCreatedAt())},
		field{"Updated", fmtTime(d.GetUpdatedAt())},
	); err != nil {
		return err
	}
	if len(d.GetAttempts()) == 0 {
		return nil
	}
	fmt.Fprintln(a.out)
	rows := make([][]string, len(d.GetAttempts()))
	for i, at := range d.GetAttempts() {
		rows[i] = []string{fmtTime(at.GetStartedAt()), statusCodeText(at.GetStatusCode()), fmtAttemptDuration(at),
			at.GetError(), prefix(oneLine(at.GetResponseBody()), answerWidth)}
	}
	return table(a.out, []string{"STARTED", "CODE", "DURATION", "ERROR", "ANSWER"}, rows)
}

// oneLine collapses every run of white space in s, newlines included, to
// one space: an HTML error page then reads as a line of text.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// prefix is the first n characters of s, with an ellipsis when it is cut.
func prefix(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}

func deliveriesRetry(g *globalOptions) *cobra.Command {
	var env string
	cmd := &cobra.Command{
		Use:   "retry ID --env ENV",
		Short: "Start a failed delivery's retry schedule again, with its first attempt now",
		Long: `Start a failed delivery's retry schedule again: its first attempt is due
now (or when its destination is resumed, if it is paused or disabled). The
delivery keeps its id, so the receiver sees the same webhook-id.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, func(ctx context.Context, a *api) error {
				res, err := a.deliveries.RetryDelivery(ctx, connect.NewRequest(&harkv1.RetryDeliveryRequest{Environment: env, Id: args[0]}))
				if err != nil {
					return err
				}
				d := res.Msg.GetDelivery()
				if a.json {
					return a.printJSON(d)
				}
				if d.GetNextAttemptAt() == nil {
					_, err = fmt.Fprintf(a.out, "Delivery %s is pending again, held until destination %s is resumed\n", d.GetId(), d.GetDestinationId())
				} else {
					_, err = fmt.Fprintf(a.out, "Delivery %s is pending again; next attempt at %s\n", d.GetId(), fmtTime(d.GetNextAttemptAt()))
				}
				return err
			})
		},
	}
	envFlag(g, cmd, &env)
	return cmd
}
