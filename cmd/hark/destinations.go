package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/harkhq/hark/engine/delivery"
	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

func newDestinationsCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "destinations",
		Aliases: []string{"destination"},
		Short:   "Manage destinations: where workflow runs are sent (a signed webhook, Knock, Segment)",
		Long: `A destination receives an environment's workflow run changes
(workflow_run.created, workflow_run.cancelled), optionally only those of some
workflows. Types:

  webhook   a POST to --url, signed per the Standard Webhooks spec with the
            signing secret shown on create (webhook-id, webhook-timestamp,
            webhook-signature headers)
  knock     Knock's workflow trigger and cancel API; --set api_key=sk_…
  segment   a track per recipient to Segment's HTTP tracking API;
            --set write_key=…

Each run change is written with the run as one delivery per destination and
sent at least once: receivers deduplicate by webhook-id. See hark deliveries.`,
	}
	cmd.AddCommand(destinationsList(g), destinationsGet(g), destinationsCreate(g), destinationsUpdate(g),
		destinationsDelete(g), destinationsStatus(g, false), destinationsStatus(g, true),
		destinationsRotateSecret(g), destinationsTest(g), destinationsReplay(g))
	ids := g.completeDestinations()
	for _, c := range cmd.Commands() {
		if c.Name() != "list" && c.Name() != "create" {
			c.ValidArgsFunction = firstArg(ids)
		}
	}
	return cmd
}

const destinationStatusPrefix = "DESTINATION_STATUS_"

// destinationTypes are the values of --type, for help and completion.
var destinationTypes = delivery.Types()

func destinationsList(g *globalOptions) *cobra.Command {
	var env string
	var limit int
	cmd := &cobra.Command{
		Use:   "list --env ENV",
		Short: "List destinations, oldest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.run(cmd, func(ctx context.Context, a *api) error {
				ds, next, err := a.listDestinations(ctx, env, limit)
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(&harkv1.ListDestinationsResponse{Destinations: ds, NextPageToken: next})
				}
				rows := make([][]string, len(ds))
				for i, d := range ds {
					rows[i] = []string{d.GetId(), d.GetName(), d.GetType(), destinationStatusText(d), destinationURL(d),
						workflowsText(d.GetWorkflowKeys()), fmtTime(d.GetCreatedAt())}
				}
				a.moreNote(next, len(ds))
				return table(a.out, []string{"ID", "NAME", "TYPE", "STATUS", "URL", "WORKFLOWS", "CREATED"}, rows)
			})
		},
	}
	envFlag(g, cmd, &env)
	cmd.Flags().IntVar(&limit, "limit", 100, pageLimitUsage)
	return cmd
}

// listDestinations reads up to limit destinations of env (0: all).
func (a *api) listDestinations(ctx context.Context, env string, limit int) ([]*harkv1.Destination, string, error) {
	return collect(limit, func(size int32, token string) ([]*harkv1.Destination, string, error) {
		res, err := a.destinations.ListDestinations(ctx, connect.NewRequest(&harkv1.ListDestinationsRequest{
			Environment: env, PageSize: size, PageToken: token,
		}))
		if err != nil {
			return nil, "", err
		}
		return res.Msg.GetDestinations(), res.Msg.GetNextPageToken(), nil
	})
}

// destinationStatusText is a destination's status in lower case; a disabled
// one says why in get's detail view.
func destinationStatusText(d *harkv1.Destination) string {
	return enumName(d.GetStatus(), destinationStatusPrefix)
}

// destinationURL is where a destination sends: its URL, or the API base its
// type defaults to when it has none.
func destinationURL(d *harkv1.Destination) string {
	if d.GetUrl() != "" {
		return d.GetUrl()
	}
	switch d.GetType() {
	case delivery.TypeKnock:
		return delivery.DefaultKnockURL + " (default)"
	case delivery.TypeSegment:
		return delivery.DefaultSegmentURL + " (default)"
	}
	return ""
}

// workflowsText shows a destination's workflow filter; empty sends every
// run.
func workflowsText(keys []string) string {
	if len(keys) == 0 {
		return "(all)"
	}
	return joinComma(keys)
}

func destinationsGet(g *globalOptions) *cobra.Command {
	var env string
	cmd := &cobra.Command{
		Use:   "get ID --env ENV",
		Short: "Show a destination (secret settings masked)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, func(ctx context.Context, a *api) error {
				res, err := a.destinations.GetDestination(ctx, connect.NewRequest(&harkv1.GetDestinationRequest{Environment: env, Id: args[0]}))
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(res.Msg.GetDestination())
				}
				return a.printDestination(res.Msg.GetDestination())
			})
		},
	}
	envFlag(g, cmd, &env)
	return cmd
}

// printDestination shows a destination; its signing secret, which only
// create and rotate-secret carry, is printed by them.
func (a *api) printDestination(d *harkv1.Destination) error {
	status := destinationStatusText(d)
	if d.GetDisabledReason() != "" {
		status += " (" + d.GetDisabledReason() + ")"
	}
	fs := []field{
		{"ID", d.GetId()},
		{"Environment", d.GetEnvironment()},
		{"Name", d.GetName()},
		{"Type", d.GetType()},
		{"URL", destinationURL(d)},
		{"Workflows", workflowsText(d.GetWorkflowKeys())},
		{"Status", status},
	}
	settings := d.GetSettings()
	for _, k := range slices.Sorted(maps.Keys(settings)) {
		fs = append(fs, field{"Setting " + k, settings[k]})
	}
	if d.GetPreviousSecretExpiresAt() != nil {
		fs = append(fs, field{"Previous secret signs until", fmtTime(d.GetPreviousSecretExpiresAt())})
	}
	fs = append(fs, field{"Created", fmtTime(d.GetCreatedAt())}, field{"Updated", fmtTime(d.GetUpdatedAt())})
	return fields(a.out, fs...)
}

// printSecret shows a signing secret with the warning that it is not shown
// again: the API never returns it after create and rotate-secret.
func (a *api) printSecret(d *harkv1.Destination, rotated bool) {
	if d.GetSigningSecret() == "" {
		return
	}
	fmt.Fprintf(a.out, "\nSigning secret: %s\n", d.GetSigningSecret())
	fmt.Fprintln(a.out, "The secret is shown only now: store it where your receiver verifies the webhook-signature header.")
	if rotated {
		fmt.Fprintf(a.out, "The previous secret keeps signing (both signatures are sent) until %s.\n", fmtTime(d.GetPreviousSecretExpiresAt()))
	}
}

func destinationsCreate(g *globalOptions) *cobra.Command {
	var (
		env, typ, name, url string
		workflows, set      []string
		paused              bool
	)
	cmd := &cobra.Command{
		Use:   "create --env ENV --type webhook|knock|segment --name NAME [--url URL] [--workflow KEY]... [--set key=value]... [--paused]",
		Short: "Create a destination; a webhook's signing secret is printed this once",
		Long: `Create a destination in an environment. A webhook destination needs --url
and gets a signing secret, printed this once (with -o json, in
signingSecret). Knock needs --set api_key=…, Segment --set write_key=…; their
--url defaults to the public API. --workflow (repeatable) keeps only the runs
of those workflows; without it every run is sent.`,
		Example: `  hark destinations create --env production --type webhook --name "My app" --url https://example.com/hooks/hark
  hark destinations create --env production --type knock --name Knock --set api_key=sk_live_… --workflow welcome
  hark destinations create --env production --type segment --name Segment --set write_key=…`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.run(cmd, func(ctx context.Context, a *api) error {
				settings, err := keyValues("set", set)
				if err != nil {
					return err
				}
				req := &harkv1.CreateDestinationRequest{
					Environment: env, Type: typ, Name: name, Url: url, WorkflowKeys: workflows, Settings: settings,
				}
				if paused {
					req.Status = harkv1.DestinationStatus_DESTINATION_STATUS_PAUSED
				}
				res, err := a.destinations.CreateDestination(ctx, connect.NewRequest(req))
				if err != nil {
					return err
				}
				d := res.Msg.GetDestination()
				if a.json {
					return a.printJSON(d)
				}
				if err := a.printDestination(d); err != nil {
					return err
				}
				a.printSecret(d, false)
				return nil
			})
		},
	}
	envFlag(g, cmd, &env)
	f := cmd.Flags()
	f.StringVar(&typ, "type", "", "destination type: "+strings.Join(destinationTypes, ", "))
	f.StringVar(&name, "name", "", "display name")
	f.StringVar(&url, "url", "", "where to send: the webhook's URL (required), or Knock's or Segment's API base")
	f.StringArrayVar(&workflows, "workflow", nil, "send only the runs of this workflow key; repeatable (default: every run)")
	f.StringArrayVar(&set, "set", nil, "setting key=value: api_key=… for knock, write_key=… for segment; repeatable")
	f.BoolVar(&paused, "paused", false, "create it paused: deliveries are kept but not sent until hark destinations resume")
	_ = cmd.MarkFlagRequired("type")
	_ = cmd.MarkFlagRequired("name")
	_ = cmd.RegisterFlagCompletionFunc("type", cobra.FixedCompletions(destinationTypes, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func destinationsUpdate(g *globalOptions) *cobra.Command {
	var (
		env, name, url string
		workflows, set []string
		allWorkflows   bool
	)
	cmd := &cobra.Command{
		Use:   "update ID --env ENV [--name NAME] [--url URL] [--workflow KEY]... [--all-workflows] [--set key=value]...",
		Short: "Change a destination: only the fields given",
		Long: `Change the fields of a destination whose flags are given and keep the
others. --workflow (repeatable) replaces the workflow keys; --all-workflows
sends every run again. --set merges settings: key= (empty) removes one,
and a secret sent back masked (********) keeps its value. --url '' restores
a knock or segment destination's default. The type cannot change; pause and
resume change the status.`,
		Example: `  hark destinations update dst_123 --env production --url https://example.com/hooks/v2
  hark destinations update dst_123 --env production --workflow welcome --workflow digest`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if allWorkflows && len(workflows) > 0 {
				return usageError{errors.New("give --workflow or --all-workflows, not both"), "usage: " + cmd.UseLine()}
			}
			return g.run(cmd, func(ctx context.Context, a *api) error {
				f := cmd.Flags()
				req := &harkv1.UpdateDestinationRequest{Environment: env, Id: args[0], WorkflowKeys: workflows}
				if f.Changed("name") {
					req.Name = &name
				}
				if f.Changed("url") {
					req.Url = &url
				}
				if allWorkflows {
					req.AllWorkflows = &allWorkflows
				}
				settings, err := keyValues("set", set)
				if err != nil {
					return err
				}
				req.Settings = settings
				if req.Name == nil && req.Url == nil && req.AllWorkflows == nil && len(workflows) == 0 && settings == nil {
					return usageError{errors.New("nothing to change: give the flags of the fields to change"), "usage: " + cmd.UseLine()}
				}
				res, err := a.destinations.UpdateDestination(ctx, connect.NewRequest(req))
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(res.Msg.GetDestination())
				}
				return a.printDestination(res.Msg.GetDestination())
			})
		},
	}
	envFlag(g, cmd, &env)
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "new display name")
	f.StringVar(&url, "url", "", "new URL")
	f.StringArrayVar(&workflows, "workflow", nil, "send only the runs of this workflow key; repeatable; replaces the keys")
	f.BoolVar(&allWorkflows, "all-workflows", false, "clear the workflow keys: send every run")
	f.StringArrayVar(&set, "set", nil, "setting key=value; key= removes it; repeatable")
	return cmd
}

func destinationsDelete(g *globalOptions) *cobra.Command {
	var env string
	cmd := &cobra.Command{
		Use:   "delete ID --env ENV",
		Short: "Delete a destination; its pending deliveries are not sent",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, func(ctx context.Context, a *api) error {
				res, err := a.destinations.DeleteDestination(ctx, connect.NewRequest(&harkv1.DeleteDestinationRequest{Environment: env, Id: args[0]}))
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(res.Msg)
				}
				_, err = fmt.Fprintf(a.out, "Deleted destination %s\n", args[0])
				return err
			})
		},
	}
	envFlag(g, cmd, &env)
	return cmd
}

// destinationsStatus is `destinations pause` or, with resume, `destinations
// resume`.
func destinationsStatus(g *globalOptions, resume bool) *cobra.Command {
	var env string
	use, short, status := "pause", "Pause a destination: deliveries are kept, and sent once it is resumed", harkv1.DestinationStatus_DESTINATION_STATUS_PAUSED
	if resume {
		use, short, status = "resume", "Resume a paused or disabled destination: its held deliveries are sent now", harkv1.DestinationStatus_DESTINATION_STATUS_ACTIVE
	}
	cmd := &cobra.Command{
		Use:   use + " ID --env ENV",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, func(ctx context.Context, a *api) error {
				res, err := a.destinations.UpdateDestination(ctx, connect.NewRequest(&harkv1.UpdateDestinationRequest{Environment: env, Id: args[0], Status: &status}))
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(res.Msg.GetDestination())
				}
				_, err = fmt.Fprintf(a.out, "Destination %s is %s\n", args[0], destinationStatusText(res.Msg.GetDestination()))
				return err
			})
		},
	}
	envFlag(g, cmd, &env)
	return cmd
}

func destinationsRotateSecret(g *globalOptions) *cobra.Command {
	var env string
	cmd := &cobra.Command{
		Use:   "rotate-secret ID --env ENV",
		Short: "Give a webhook destination a new signing secret, printed this once; the old one signs for 24 more hours",
		Long: `Give a webhook destination a new signing secret, printed this once (with
-o json, in signingSecret). For 24 hours every delivery carries a signature
with each secret, so a receiver can switch to the new one without losing a
delivery.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, func(ctx context.Context, a *api) error {
				res, err := a.destinations.RotateDestinationSecret(ctx, connect.NewRequest(&harkv1.RotateDestinationSecretRequest{Environment: env, Id: args[0]}))
				if err != nil {
					return err
				}
				d := res.Msg.GetDestination()
				if a.json {
					return a.printJSON(d)
				}
				fmt.Fprintf(a.out, "New signing secret of %s in %s.\n", d.GetId(), d.GetEnvironment())
				a.printSecret(d, true)
				return nil
			})
		},
	}
	envFlag(g, cmd, &env)
	return cmd
}

// pingFailedError is a test ping the receiver did not answer 2xx: the
// attempt was printed, and the command exits 1 so scripts can tell.
type pingFailedError struct{ id, reason string }

func (e *pingFailedError) Error() string {
	return fmt.Sprintf("destination %s did not accept the ping: %s", e.id, e.reason)
}

func destinationsTest(g *globalOptions) *cobra.Command {
	var env string
	cmd := &cobra.Command{
		Use:   "test ID --env ENV",
		Short: "Send a signed ping to a webhook destination now and show the attempt",
		Long: `Send a signed ping ({"type":"ping",...}) to a webhook destination now,
outside its deliveries and retries, and show the attempt: the status code,
how long it took, the error and the start of the answer. It exits 1 when the
receiver did not answer 2xx. Knock and Segment have no call without effects,
so they cannot be tested this way.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, func(ctx context.Context, a *api) error {
				res, err := a.destinations.TestDestination(ctx, connect.NewRequest(&harkv1.TestDestinationRequest{Environment: env, Id: args[0]}))
				if err != nil {
					return err
				}
				at := res.Msg.GetAttempt()
				if a.json {
					err = a.printJSON(at)
				} else {
					err = fields(a.out,
						field{"Started", fmtTime(at.GetStartedAt())},
						field{"Status code", statusCodeText(at.GetStatusCode())},
						field{"Duration", fmtAttemptDuration(at)},
						field{"Error", at.GetError()},
						field{"Answer", oneLine(at.GetResponseBody())},
					)
				}
				if err != nil {
					return err
				}
				if at.GetError() != "" {
					return &pingFailedError{id: args[0], reason: at.GetError()}
				}
				return nil
			})
		},
	}
	envFlag(g, cmd, &env)
	return cmd
}

func destinationsReplay(g *globalOptions) *cobra.Command {
	var env, since, until string
	cmd := &cobra.Command{
		Use:   "replay ID --env ENV --since TIME [--until TIME]",
		Short: "Send the run changes of a time range to a destination again, as new deliveries",
		Long: `Send every run change of a time range to one destination again: a new
delivery (with a new webhook-id) for each run created in [--since, --until),
and for each of those runs cancelled in it, subject to the destination's
workflow keys. For a receiver that lost data or was added late.

TIME is an RFC 3339 time (2026-01-02T15:04:05Z, or with an offset such as
+02:00), or a duration meaning that long ago: 90m is 90 minutes ago, 1h an
hour ago, 7d a week ago. --until defaults to now.`,
		Example: `  hark destinations replay dst_123 --env production --since 2h
  hark destinations replay dst_123 --env production --since 2026-01-02T00:00:00Z --until 2026-01-03T00:00:00Z`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			now := time.Now()
			from, err := parseWhen("since", since, now)
			if err != nil {
				return err
			}
			to := now
			if until != "" {
				if to, err = parseWhen("until", until, now); err != nil {
					return err
				}
			}
			if !from.Before(to) {
				return usageError{fmt.Errorf("--since (%s) must be before --until (%s)", from.Local().Format(time.RFC3339), to.Local().Format(time.RFC3339)), ""}
			}
			return g.run(cmd, func(ctx context.Context, a *api) error {
				res, err := a.deliveries.ReplayDeliveries(ctx, connect.NewRequest(&harkv1.ReplayDeliveriesRequest{
					Environment: env, DestinationId: args[0], Since: timestamppb.New(from), Until: timestamppb.New(to),
				}))
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(res.Msg)
				}
				_, err = fmt.Fprintf(a.out, "Queued %d deliveries to %s: the run changes from %s to %s (hark deliveries list --destination %s)\n",
					res.Msg.GetQueuedCount(), args[0], fmtTime(timestamppb.New(from)), fmtTime(timestamppb.New(to)), args[0])
				return err
			})
		},
	}
	envFlag(g, cmd, &env)
	cmd.Flags().StringVar(&since, "since", "", "start of the range: an RFC 3339 time, or a duration ago (1h = an hour ago)")
	cmd.Flags().StringVar(&until, "until", "", "end of the range, not included: an RFC 3339 time, or a duration ago (default now)")
	_ = cmd.MarkFlagRequired("since")
	return cmd
}

// parseWhen reads a --since or --until value: an RFC 3339 time, or a
// duration (parseDuration: days too) meaning that long before now, since
// "the last two hours" is what people usually replay.
func parseWhen(flag, s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if d, err := parseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	return time.Time{}, usageError{
		fmt.Errorf("--%s %q is neither an RFC 3339 time nor a duration", flag, s),
		"e.g. --" + flag + " 2026-01-02T15:04:05Z, or --" + flag + " 2h for two hours ago (units s, m, h, d)",
	}
}

// statusCodeText shows an attempt's HTTP status; 0 means the receiver gave
// none (the connection failed or timed out).
func statusCodeText(code int32) string {
	if code == 0 {
		return "none"
	}
	return fmt.Sprint(code)
}

// fmtAttemptDuration shows how long an attempt took, to the millisecond
// (to the microsecond below one): the nanoseconds are noise.
func fmtAttemptDuration(at *harkv1.DeliveryAttempt) string {
	d := at.GetDuration().AsDuration()
	if d >= time.Millisecond {
		d = d.Round(time.Millisecond)
	} else {
		d = d.Round(time.Microsecond)
	}
	return fmtDuration(d)
}

// completeDestinations completes destination ids of the command's --env,
// described by name and type.
func (g *globalOptions) completeDestinations() completionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		env, _ := cmd.Flags().GetString("env")
		return g.complete(func(ctx context.Context, a *api) ([]string, error) {
			ds, _, err := a.listDestinations(ctx, env, maxPage)
			var out []string
			for _, d := range ds {
				out = append(out, d.GetId()+"\t"+d.GetName()+" ("+d.GetType()+")")
			}
			return out, err
		})(cmd, args, toComplete)
	}
}

// firstArg completes only a command's first argument with complete.
func firstArg(complete completionFunc) completionFunc {
	return func(c *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return complete(c, args, toComplete)
	}
}
