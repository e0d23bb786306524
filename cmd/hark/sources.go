package main

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/harkhq/hark/engine"
	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

func newSourcesCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "sources",
		Aliases: []string{"source"},
		Short:   "Manage sources: where events come from, and their webhook URLs",
	}
	cmd.AddCommand(
		sourcesList(g), sourcesGet(g), sourcesCreate(g), sourcesDelete(g),
		sourcesSettings(g), sourcesRotateToken(g), sourcesRefusals(g), sourcesTypes(g),
	)
	ids := g.completeSources()
	for _, c := range cmd.Commands() {
		switch c.Name() {
		case "get", "delete", "settings", "rotate-token", "refusals":
			c.ValidArgsFunction = func(c *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
				if len(args) > 0 {
					return nil, cobra.ShellCompDirectiveNoFileComp
				}
				return ids(c, args, toComplete)
			}
		}
	}
	return cmd
}

func sourcesList(g *globalOptions) *cobra.Command {
	var limit int
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List sources",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.run(cmd, func(ctx context.Context, a *api) error {
				srcs, next, err := a.listSources(ctx, limit)
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(&harkv1.ListSourcesResponse{Sources: srcs, NextPageToken: next})
				}
				rows := make([][]string, len(srcs))
				for i, s := range srcs {
					rows[i] = []string{s.GetId(), s.GetName(), s.GetType(), fmtTime(s.GetCreatedAt())}
				}
				a.moreNote(next, len(srcs))
				return table(a.out, []string{"ID", "NAME", "TYPE", "CREATED"}, rows)
			})
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 100, pageLimitUsage)
	return cmd
}

// listSources reads up to limit sources (0: all).
func (a *api) listSources(ctx context.Context, limit int) ([]*harkv1.Source, string, error) {
	return collect(limit, func(size int32, token string) ([]*harkv1.Source, string, error) {
		res, err := a.sources.ListSources(ctx, connect.NewRequest(&harkv1.ListSourcesRequest{PageSize: size, PageToken: token}))
		if err != nil {
			return nil, "", err
		}
		return res.Msg.GetSources(), res.Msg.GetNextPageToken(), nil
	})
}

func sourcesGet(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "get ID",
		Short: "Show a source and its webhook URL in every environment",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, func(ctx context.Context, a *api) error {
				res, err := a.sources.GetSource(ctx, connect.NewRequest(&harkv1.GetSourceRequest{Id: args[0]}))
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(res.Msg.GetSource())
				}
				return a.printSource(res.Msg.GetSource())
			})
		},
	}
}

func sourcesCreate(g *globalOptions) *cobra.Command {
	var typ, name string
	cmd := &cobra.Command{
		Use:   "create --type TYPE --name NAME",
		Short: "Create a source; prints its webhook URL in every environment",
		Example: `  hark sources create --type segment --name "Web app"
  hark sources types        # the installed types`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.run(cmd, func(ctx context.Context, a *api) error {
				res, err := a.sources.CreateSource(ctx, connect.NewRequest(&harkv1.CreateSourceRequest{Name: name, Type: typ}))
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(res.Msg.GetSource())
				}
				if err := a.printSource(res.Msg.GetSource()); err != nil {
					return err
				}
				fmt.Fprintf(a.out, "\nPoint the sender of each environment at its webhook URL. Settings: hark sources settings %s --env ENV\n", res.Msg.GetSource().GetId())
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&typ, "type", "", "source type, e.g. segment (see hark sources types)")
	cmd.Flags().StringVar(&name, "name", "", "display name")
	_ = cmd.MarkFlagRequired("type")
	_ = cmd.MarkFlagRequired("name")
	return cmd
}

// printSource shows a source and a row per environment.
func (a *api) printSource(s *harkv1.Source) error {
	if err := fields(a.out,
		field{"ID", s.GetId()},
		field{"Name", s.GetName()},
		field{"Type", s.GetType()},
		field{"Created", fmtTime(s.GetCreatedAt())},
	); err != nil {
		return err
	}
	fmt.Fprintln(a.out)
	rows := make([][]string, len(s.GetEnvironments()))
	for i, e := range s.GetEnvironments() {
		rows[i] = []string{e.GetEnvironment(), e.GetIngestUrl(), onOffText(e.GetIdentifyEnabled()), idempotencyText(e)}
	}
	return table(a.out, []string{"ENVIRONMENT", "WEBHOOK URL", "IDENTIFY", "IDEMPOTENCY"}, rows)
}

func idempotencyText(e *harkv1.SourceEnvironment) string {
	if !e.GetIdempotencyEnabled() {
		return "off"
	}
	if w := fmtDuration(e.GetIdempotencyWindow().AsDuration()); w != "" {
		return "on (" + w + ")"
	}
	return "on"
}

func sourcesDelete(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "delete ID",
		Short: "Delete a source, its settings and webhook URLs",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, func(ctx context.Context, a *api) error {
				res, err := a.sources.DeleteSource(ctx, connect.NewRequest(&harkv1.DeleteSourceRequest{Id: args[0]}))
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(res.Msg)
				}
				_, err = fmt.Fprintf(a.out, "Deleted source %s\n", args[0])
				return err
			})
		},
	}
}

func sourcesSettings(g *globalOptions) *cobra.Command {
	var (
		env                   string
		identify, idempotency bool
		group, deletes        bool
		window                string
		set                   []string
	)
	cmd := &cobra.Command{
		Use:   "settings ID --env ENV [--identify=on|off] [--group=on|off] [--delete=on|off] [--idempotency=on|off] [--window 24h] [--set key=value]...",
		Short: "Show or change a source's settings in one environment",
		Long: `Show a source's settings in one environment, or change those given:
identify handling (upsert users from identify calls), group handling (set
the tenant groupId from group calls), delete handling (delete the user and
their subscriptions on Segment's delete calls; unless set, it follows
identify), idempotency (drop
deliveries of a message id seen within the window) and the plugin's own
settings, such as Segment's shared_secret. Secret settings are write-only:
they come back masked. --set key= (empty) clears a setting.`,
		Example: `  hark sources settings src_123 --env development --identify=on --idempotency=on
  hark sources settings src_123 --env production --set shared_secret=s3cr3t --window 48h`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, func(ctx context.Context, a *api) error {
				f := cmd.Flags()
				req := &harkv1.UpdateSourceEnvironmentRequest{SourceId: args[0], Environment: env}
				changed := false
				if f.Changed("identify") {
					req.IdentifyEnabled, changed = &identify, true
				}
				if f.Changed("idempotency") {
					req.IdempotencyEnabled, changed = &idempotency, true
				}
				if f.Changed("group") {
					req.GroupEnabled, changed = &group, true
				}
				if f.Changed("delete") {
					req.DeleteEnabled, changed = &deletes, true
				}
				if f.Changed("window") {
					d, err := parseDuration(window)
					if err != nil {
						return usageError{fmt.Errorf("--window: %w", err), "e.g. --window 24h, --window 30m or --window 7d"}
					}
					req.IdempotencyWindow, changed = durationpb.New(d), true
				}
				settings, err := keyValues("set", set)
				if err != nil {
					return err
				}
				if settings != nil {
					req.PluginSettings, changed = settings, true
				}
				var se *harkv1.SourceEnvironment
				if changed {
					res, err := a.sources.UpdateSourceEnvironment(ctx, connect.NewRequest(req))
					if err != nil {
						return err
					}
					if a.json {
						return a.printJSON(res.Msg.GetSourceEnvironment())
					}
					se = res.Msg.GetSourceEnvironment()
				} else {
					res, err := a.sources.GetSourceEnvironment(ctx, connect.NewRequest(&harkv1.GetSourceEnvironmentRequest{SourceId: args[0], Environment: env}))
					if err != nil {
						return err
					}
					if a.json {
						return a.printJSON(res.Msg.GetSourceEnvironment())
					}
					se = res.Msg.GetSourceEnvironment()
				}
				return a.printSourceEnvironment(se)
			})
		},
	}
	envFlag(g, cmd, &env)
	f := cmd.Flags()
	onOffFlag(cmd, &identify, "identify", "upsert users from identify calls")
	onOffFlag(cmd, &group, "group", "set the tenant groupId with the traits of group calls")
	onOffFlag(cmd, &deletes, "delete", "delete the user and their subscriptions on delete calls (default: as --identify)")
	onOffFlag(cmd, &idempotency, "idempotency", "drop repeated deliveries of one message id within the window")
	f.StringVar(&window, "window", "", "idempotency window, 1m to 30d (default 24h)")
	f.StringArrayVar(&set, "set", nil, "plugin setting key=value, e.g. shared_secret=…; repeatable")
	return cmd
}

// printSourceEnvironment shows one source environment's settings.
func (a *api) printSourceEnvironment(se *harkv1.SourceEnvironment) error {
	fs := []field{
		{"Source", se.GetSourceId()},
		{"Environment", se.GetEnvironment()},
		{"Webhook URL", se.GetIngestUrl()},
		{"Identify", onOffText(se.GetIdentifyEnabled())},
		{"Group", onOffText(se.GetGroupEnabled())},
		{"Delete", onOffText(engine.DeleteEnabled(se))},
		{"Idempotency", onOffText(se.GetIdempotencyEnabled())},
		{"Window", fmtDuration(se.GetIdempotencyWindow().AsDuration())},
	}
	settings := se.GetPluginSettings()
	for _, k := range slices.Sorted(maps.Keys(settings)) {
		fs = append(fs, field{"Setting " + k, settings[k]})
	}
	fs = append(fs, field{"Updated", fmtTime(se.GetUpdatedAt())})
	return fields(a.out, fs...)
}

func sourcesRotateToken(g *globalOptions) *cobra.Command {
	var env string
	cmd := &cobra.Command{
		Use:   "rotate-token ID --env ENV",
		Short: "Give a source environment a new webhook URL; the old one stops working",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, func(ctx context.Context, a *api) error {
				res, err := a.sources.RotateSourceToken(ctx, connect.NewRequest(&harkv1.RotateSourceTokenRequest{SourceId: args[0], Environment: env}))
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(res.Msg.GetSourceEnvironment())
				}
				se := res.Msg.GetSourceEnvironment()
				_, err = fmt.Fprintf(a.out, "New webhook URL of %s in %s (the old one no longer works):\n%s\n", se.GetSourceId(), se.GetEnvironment(), se.GetIngestUrl())
				return err
			})
		},
	}
	envFlag(g, cmd, &env)
	return cmd
}

func sourcesRefusals(g *globalOptions) *cobra.Command {
	var (
		env   string
		limit int
	)
	cmd := &cobra.Command{
		Use:   "refusals ID --env ENV",
		Short: "List the deliveries a source environment's webhook refused, newest first",
		Long: "List the deliveries a source environment's webhook refused (400, 401, 408, 503), newest first:\n" +
			"when, the status, why and the size — never the body. The newest 1,000 per source environment\n" +
			"are kept, in memory, since hark started.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, func(ctx context.Context, a *api) error {
				res, err := a.sources.ListRefusals(ctx, connect.NewRequest(&harkv1.ListRefusalsRequest{SourceId: args[0], Environment: env, PageSize: int32(limit)}))
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(res.Msg)
				}
				rows := make([][]string, 0, len(res.Msg.GetRefusals()))
				for _, r := range res.Msg.GetRefusals() {
					rows = append(rows, []string{fmtTime(r.GetTime()), strconv.Itoa(int(r.GetStatusCode())), strconv.FormatInt(r.GetSizeBytes(), 10), r.GetReason()})
				}
				return table(a.out, []string{"TIME", "STATUS", "BYTES", "REASON"}, rows)
			})
		},
	}
	envFlag(g, cmd, &env)
	cmd.Flags().IntVar(&limit, "limit", 50, "how many to show (at most 1000)")
	return cmd
}

func sourcesTypes(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "types",
		Short: "List the installed source types (plugins)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.run(cmd, func(ctx context.Context, a *api) error {
				res, err := a.sources.ListSourceTypes(ctx, connect.NewRequest(&harkv1.ListSourceTypesRequest{}))
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(res.Msg)
				}
				var rows [][]string
				for _, t := range res.Msg.GetSourceTypes() {
					var settings []string
					for _, s := range t.GetSettings() {
						settings = append(settings, s.GetKey())
					}
					rows = append(rows, []string{
						t.GetType(), t.GetDisplayName(), t.GetVersion(),
						enumName(t.GetOrigin(), "SOURCE_TYPE_ORIGIN_"), enumName(t.GetHealth(), "SOURCE_TYPE_HEALTH_"),
						strings.Join(settings, ","),
					})
				}
				return table(a.out, []string{"TYPE", "NAME", "VERSION", "ORIGIN", "HEALTH", "SETTINGS"}, rows)
			})
		},
	}
}
