package main

import (
	"context"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

func newEnvCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "env",
		Aliases: []string{"envs", "environments"},
		Short:   "List and create environments",
		Long: `Environments scope sources' webhook URLs and settings, triggers, users,
events and runs. development and production exist from the first start.`,
	}
	var limit int
	list := &cobra.Command{
		Use:   "list",
		Short: "List environments",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.run(cmd, func(ctx context.Context, a *api) error {
				envs, next, err := collect(limit, func(size int32, token string) ([]*harkv1.Environment, string, error) {
					res, err := a.envs.ListEnvironments(ctx, connect.NewRequest(&harkv1.ListEnvironmentsRequest{PageSize: size, PageToken: token}))
					if err != nil {
						return nil, "", err
					}
					return res.Msg.GetEnvironments(), res.Msg.GetNextPageToken(), nil
				})
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(&harkv1.ListEnvironmentsResponse{Environments: envs, NextPageToken: next})
				}
				rows := make([][]string, len(envs))
				for i, e := range envs {
					rows[i] = []string{e.GetSlug(), e.GetName(), fmtTime(e.GetCreatedAt())}
				}
				a.moreNote(next, len(envs))
				return table(a.out, []string{"SLUG", "NAME", "CREATED"}, rows)
			})
		},
	}
	list.Flags().IntVar(&limit, "limit", 100, pageLimitUsage)

	var name string
	create := &cobra.Command{
		Use:   "create SLUG [--name NAME]",
		Short: "Create an environment (every source gets a webhook URL in it)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, func(ctx context.Context, a *api) error {
				res, err := a.envs.CreateEnvironment(ctx, connect.NewRequest(&harkv1.CreateEnvironmentRequest{Slug: args[0], Name: name}))
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(res.Msg.GetEnvironment())
				}
				e := res.Msg.GetEnvironment()
				return table(a.out, []string{"SLUG", "NAME", "CREATED"}, [][]string{{e.GetSlug(), e.GetName(), fmtTime(e.GetCreatedAt())}})
			})
		},
	}
	create.Flags().StringVar(&name, "name", "", "display name (default: the slug)")
	cmd.AddCommand(list, create)
	return cmd
}

// envFlag adds --env to a per-environment command, completed from the
// server's environments.
func envFlag(g *globalOptions, cmd *cobra.Command, p *string) {
	cmd.Flags().StringVar(p, "env", envOr("HARK_ENV", "development"), "environment (HARK_ENV)")
	_ = cmd.RegisterFlagCompletionFunc("env", g.complete(func(ctx context.Context, a *api) ([]string, error) {
		res, err := a.envs.ListEnvironments(ctx, connect.NewRequest(&harkv1.ListEnvironmentsRequest{PageSize: maxPage}))
		var out []string
		for _, e := range res.Msg.GetEnvironments() {
			out = append(out, e.GetSlug()+"\t"+e.GetName())
		}
		return out, err
	}))
}
