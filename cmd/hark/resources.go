package main

import (
	"context"
	"fmt"
	"strings"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/structpb"

	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// Tenants, objects (with subscriptions) and audiences: Knock's recipient
// resources beside users. Properties are given as users' are, with --set
// (a string) and --set-json (any JSON value).

func newTenantsCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "tenants",
		Aliases: []string{"tenant"},
		Short:   "Manage the tenants of an environment (workspaces, accounts)",
	}
	cmd.AddCommand(tenantsList(g), tenantsGet(g), tenantsSet(g), tenantsDelete(g))
	return cmd
}

var tenantHeader = []string{"ID", "NAME", "UPDATED"}

func tenantRow(t *harkv1.Tenant) []string {
	return []string{t.GetId(), t.GetName(), fmtTime(t.GetUpdatedAt())}
}

func (a *api) printTenant(t *harkv1.Tenant) error {
	if err := fields(a.out,
		field{"ID", t.GetId()},
		field{"Environment", t.GetEnvironment()},
		field{"Name", t.GetName()},
		field{"Created", fmtTime(t.GetCreatedAt())},
		field{"Updated", fmtTime(t.GetUpdatedAt())},
	); err != nil {
		return err
	}
	printStruct(a, "Properties", t.GetProperties())
	printStruct(a, "Settings", t.GetSettings())
	return nil
}

// printStruct prints a non-empty Struct under a title.
func printStruct(a *api, title string, s *structpb.Struct) {
	if len(s.GetFields()) > 0 {
		fmt.Fprintf(a.out, "\n%s:\n%s\n", title, indentedJSON(s))
	}
}

func tenantsList(g *globalOptions) *cobra.Command {
	var env string
	var limit int
	cmd := &cobra.Command{
		Use:   "list --env ENV",
		Short: "List tenants",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.run(cmd, func(ctx context.Context, a *api) error {
				ts, next, err := collect(limit, func(size int32, token string) ([]*harkv1.Tenant, string, error) {
					res, err := a.tenants.ListTenants(ctx, connect.NewRequest(&harkv1.ListTenantsRequest{Environment: env, PageSize: size, PageToken: token}))
					if err != nil {
						return nil, "", err
					}
					return res.Msg.GetTenants(), res.Msg.GetNextPageToken(), nil
				})
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(&harkv1.ListTenantsResponse{Tenants: ts, NextPageToken: next})
				}
				rows := make([][]string, len(ts))
				for i, t := range ts {
					rows[i] = tenantRow(t)
				}
				a.moreNote(next, len(ts))
				return table(a.out, tenantHeader, rows)
			})
		},
	}
	envFlag(g, cmd, &env)
	cmd.Flags().IntVar(&limit, "limit", 100, pageLimitUsage)
	return cmd
}

func tenantsGet(g *globalOptions) *cobra.Command {
	var env string
	cmd := &cobra.Command{
		Use:   "get ID --env ENV",
		Short: "Show a tenant",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, func(ctx context.Context, a *api) error {
				res, err := a.tenants.GetTenant(ctx, connect.NewRequest(&harkv1.GetTenantRequest{Environment: env, Id: args[0]}))
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(res.Msg.GetTenant())
				}
				return a.printTenant(res.Msg.GetTenant())
			})
		},
	}
	envFlag(g, cmd, &env)
	return cmd
}

func tenantsSet(g *globalOptions) *cobra.Command {
	var (
		env, name, settings string
		set, setJSON        []string
	)
	cmd := &cobra.Command{
		Use:   "set ID --env ENV [--name …] [--set key=value]... [--settings JSON]",
		Short: "Create or update a tenant; properties merge, fields not given stay",
		Example: `  hark tenants set acme --env development --name "Acme Inc." --set plan=enterprise
  hark tenants set acme --env development --settings '{"branding":{"primary_color":"#ff0000"}}'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, func(ctx context.Context, a *api) error {
				req := &harkv1.SetTenantRequest{Environment: env, Id: args[0]}
				if cmd.Flags().Changed("name") {
					req.Name = &name
				}
				props, err := userProperties(set, setJSON)
				if err != nil {
					return err
				}
				req.Properties = props
				if settings != "" {
					raw, err := jsonArg("settings", settings)
					if err != nil {
						return err
					}
					req.Settings = &structpb.Struct{}
					if err := req.Settings.UnmarshalJSON(raw); err != nil {
						return usageError{fmt.Errorf("--settings: want a JSON object: %w", err), ""}
					}
				}
				res, err := a.tenants.SetTenant(ctx, connect.NewRequest(req))
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(res.Msg.GetTenant())
				}
				return a.printTenant(res.Msg.GetTenant())
			})
		},
	}
	envFlag(g, cmd, &env)
	fl := cmd.Flags()
	fl.StringVar(&name, "name", "", "display name")
	fl.StringArrayVar(&set, "set", nil, "custom property key=value (a string); repeatable")
	fl.StringArrayVar(&setJSON, "set-json", nil, "custom property key=JSON (a number, bool, list, object…); repeatable")
	fl.StringVar(&settings, "settings", "", "settings as a JSON object (replaces them), or @FILE")
	return cmd
}

func tenantsDelete(g *globalOptions) *cobra.Command {
	var env string
	cmd := &cobra.Command{
		Use:   "delete ID --env ENV",
		Short: "Delete a tenant",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, func(ctx context.Context, a *api) error {
				res, err := a.tenants.DeleteTenant(ctx, connect.NewRequest(&harkv1.DeleteTenantRequest{Environment: env, Id: args[0]}))
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(res.Msg)
				}
				_, err = fmt.Fprintf(a.out, "Deleted tenant %s\n", args[0])
				return err
			})
		},
	}
	envFlag(g, cmd, &env)
	return cmd
}

func newObjectsCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "objects",
		Aliases: []string{"object"},
		Short:   "Manage objects (by collection) and the users subscribed to them",
		Long: `Objects are non-user entities in collections (a project, a repository, an alert
topic). Users subscribe to an object; a run whose recipient is the object goes to
its subscribers. Deleting an object deletes its subscriptions; deleting a user
deletes theirs.`,
	}
	cmd.AddCommand(objectsList(g), objectsGet(g), objectsSet(g), objectsDelete(g),
		objectsSubscribe(g), objectsUnsubscribe(g), objectsSubscriptions(g))
	return cmd
}

var objectHeader = []string{"COLLECTION", "ID", "UPDATED"}

func (a *api) printObject(o *harkv1.Object) error {
	if err := fields(a.out,
		field{"Collection", o.GetCollection()},
		field{"ID", o.GetId()},
		field{"Environment", o.GetEnvironment()},
		field{"Created", fmtTime(o.GetCreatedAt())},
		field{"Updated", fmtTime(o.GetUpdatedAt())},
	); err != nil {
		return err
	}
	printStruct(a, "Properties", o.GetProperties())
	return nil
}

func objectsList(g *globalOptions) *cobra.Command {
	var env string
	var limit int
	cmd := &cobra.Command{
		Use:   "list COLLECTION --env ENV",
		Short: "List the objects of a collection",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, func(ctx context.Context, a *api) error {
				objs, next, err := collect(limit, func(size int32, token string) ([]*harkv1.Object, string, error) {
					res, err := a.objects.ListObjects(ctx, connect.NewRequest(&harkv1.ListObjectsRequest{Environment: env, Collection: args[0], PageSize: size, PageToken: token}))
					if err != nil {
						return nil, "", err
					}
					return res.Msg.GetObjects(), res.Msg.GetNextPageToken(), nil
				})
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(&harkv1.ListObjectsResponse{Objects: objs, NextPageToken: next})
				}
				rows := make([][]string, len(objs))
				for i, o := range objs {
					rows[i] = []string{o.GetCollection(), o.GetId(), fmtTime(o.GetUpdatedAt())}
				}
				a.moreNote(next, len(objs))
				return table(a.out, objectHeader, rows)
			})
		},
	}
	envFlag(g, cmd, &env)
	cmd.Flags().IntVar(&limit, "limit", 100, pageLimitUsage)
	return cmd
}

func objectsGet(g *globalOptions) *cobra.Command {
	var env string
	cmd := &cobra.Command{
		Use:   "get COLLECTION ID --env ENV",
		Short: "Show an object",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, func(ctx context.Context, a *api) error {
				res, err := a.objects.GetObject(ctx, connect.NewRequest(&harkv1.GetObjectRequest{Environment: env, Collection: args[0], Id: args[1]}))
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(res.Msg.GetObject())
				}
				return a.printObject(res.Msg.GetObject())
			})
		},
	}
	envFlag(g, cmd, &env)
	return cmd
}

func objectsSet(g *globalOptions) *cobra.Command {
	var (
		env          string
		set, setJSON []string
	)
	cmd := &cobra.Command{
		Use:     "set COLLECTION ID --env ENV [--set key=value]...",
		Short:   "Create or update an object; properties merge key by key",
		Example: `  hark objects set projects apollo --env development --set name=Apollo --set-json 'members=12'`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, func(ctx context.Context, a *api) error {
				props, err := userProperties(set, setJSON)
				if err != nil {
					return err
				}
				res, err := a.objects.SetObject(ctx, connect.NewRequest(&harkv1.SetObjectRequest{Environment: env, Collection: args[0], Id: args[1], Properties: props}))
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(res.Msg.GetObject())
				}
				return a.printObject(res.Msg.GetObject())
			})
		},
	}
	envFlag(g, cmd, &env)
	cmd.Flags().StringArrayVar(&set, "set", nil, "property key=value (a string); repeatable")
	cmd.Flags().StringArrayVar(&setJSON, "set-json", nil, "property key=JSON (a number, bool, list, object…); repeatable")
	return cmd
}

func objectsDelete(g *globalOptions) *cobra.Command {
	var env string
	cmd := &cobra.Command{
		Use:   "delete COLLECTION ID --env ENV",
		Short: "Delete an object and its subscriptions",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, func(ctx context.Context, a *api) error {
				res, err := a.objects.DeleteObject(ctx, connect.NewRequest(&harkv1.DeleteObjectRequest{Environment: env, Collection: args[0], Id: args[1]}))
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(res.Msg)
				}
				_, err = fmt.Fprintf(a.out, "Deleted object %s/%s\n", args[0], args[1])
				return err
			})
		},
	}
	envFlag(g, cmd, &env)
	return cmd
}

var subscriptionHeader = []string{"COLLECTION", "OBJECT", "RECIPIENT", "UPDATED"}

func subscriptionRow(s *harkv1.Subscription) []string {
	return []string{s.GetCollection(), s.GetObjectId(), s.GetRecipient(), fmtTime(s.GetUpdatedAt())}
}

func objectsSubscribe(g *globalOptions) *cobra.Command {
	var (
		env          string
		set, setJSON []string
	)
	cmd := &cobra.Command{
		Use:     "subscribe COLLECTION ID USER... --env ENV [--set key=value]...",
		Short:   "Subscribe identified users to an object (at most 1000 per call)",
		Example: `  hark objects subscribe projects apollo u1 u2 --env development --set role=watcher`,
		Args:    cobra.MinimumNArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, func(ctx context.Context, a *api) error {
				props, err := userProperties(set, setJSON)
				if err != nil {
					return err
				}
				res, err := a.objects.AddSubscriptions(ctx, connect.NewRequest(&harkv1.AddSubscriptionsRequest{
					Environment: env, Collection: args[0], Id: args[1], Recipients: args[2:], Properties: props,
				}))
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(res.Msg)
				}
				rows := make([][]string, len(res.Msg.GetSubscriptions()))
				for i, s := range res.Msg.GetSubscriptions() {
					rows[i] = subscriptionRow(s)
				}
				return table(a.out, subscriptionHeader, rows)
			})
		},
	}
	envFlag(g, cmd, &env)
	cmd.Flags().StringArrayVar(&set, "set", nil, "subscription property key=value (a string); repeatable")
	cmd.Flags().StringArrayVar(&setJSON, "set-json", nil, "subscription property key=JSON; repeatable")
	return cmd
}

func objectsUnsubscribe(g *globalOptions) *cobra.Command {
	var env string
	cmd := &cobra.Command{
		Use:   "unsubscribe COLLECTION ID USER... --env ENV",
		Short: "Unsubscribe users from an object; users not subscribed are ignored",
		Args:  cobra.MinimumNArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, func(ctx context.Context, a *api) error {
				res, err := a.objects.DeleteSubscriptions(ctx, connect.NewRequest(&harkv1.DeleteSubscriptionsRequest{
					Environment: env, Collection: args[0], Id: args[1], Recipients: args[2:],
				}))
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(res.Msg)
				}
				_, err = fmt.Fprintf(a.out, "Unsubscribed %s from %s/%s\n", strings.Join(args[2:], ", "), args[0], args[1])
				return err
			})
		},
	}
	envFlag(g, cmd, &env)
	return cmd
}

func objectsSubscriptions(g *globalOptions) *cobra.Command {
	var env, user string
	var limit int
	cmd := &cobra.Command{
		Use:   "subscriptions (COLLECTION ID | --user USER) --env ENV",
		Short: "List an object's subscribers, or with --user the objects a user is subscribed to",
		Example: `  hark objects subscriptions projects apollo --env development
  hark objects subscriptions --user u1 --env development`,
		Args: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("user") {
				return cobra.NoArgs(cmd, args)
			}
			return cobra.ExactArgs(2)(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, func(ctx context.Context, a *api) error {
				subs, next, err := collect(limit, func(size int32, token string) ([]*harkv1.Subscription, string, error) {
					if user != "" {
						res, err := a.objects.ListUserSubscriptions(ctx, connect.NewRequest(&harkv1.ListUserSubscriptionsRequest{Environment: env, UserId: user, PageSize: size, PageToken: token}))
						if err != nil {
							return nil, "", err
						}
						return res.Msg.GetSubscriptions(), res.Msg.GetNextPageToken(), nil
					}
					res, err := a.objects.ListSubscriptions(ctx, connect.NewRequest(&harkv1.ListSubscriptionsRequest{Environment: env, Collection: args[0], Id: args[1], PageSize: size, PageToken: token}))
					if err != nil {
						return nil, "", err
					}
					return res.Msg.GetSubscriptions(), res.Msg.GetNextPageToken(), nil
				})
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(&harkv1.ListSubscriptionsResponse{Subscriptions: subs, NextPageToken: next})
				}
				rows := make([][]string, len(subs))
				for i, s := range subs {
					rows[i] = subscriptionRow(s)
				}
				a.moreNote(next, len(subs))
				return table(a.out, subscriptionHeader, rows)
			})
		},
	}
	envFlag(g, cmd, &env)
	cmd.Flags().StringVar(&user, "user", "", "list this user's subscriptions instead of an object's")
	cmd.Flags().IntVar(&limit, "limit", 100, pageLimitUsage)
	return cmd
}

func newAudiencesCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "audiences",
		Aliases: []string{"audience"},
		Short:   "Manage audience members (static lists of users, optionally per tenant)",
		Long: `An audience is a named list of identified users, each optionally in a tenant.
It exists while it has members: adding the first one creates it.`,
	}
	cmd.AddCommand(audiencesList(g), audiencesAdd(g), audiencesRemove(g), audiencesMembers(g))
	return cmd
}

// memberRefs names users as members, all in tenant.
func memberRefs(users []string, tenant string) []*harkv1.AudienceMemberRef {
	out := make([]*harkv1.AudienceMemberRef, len(users))
	for i, u := range users {
		out[i] = &harkv1.AudienceMemberRef{UserId: u, Tenant: tenant}
	}
	return out
}

var memberHeader = []string{"AUDIENCE", "USER", "TENANT", "ADDED"}

func memberRow(m *harkv1.AudienceMember) []string {
	return []string{m.GetAudienceKey(), m.GetUserId(), m.GetTenant(), fmtTime(m.GetCreatedAt())}
}

func audiencesAdd(g *globalOptions) *cobra.Command {
	var env, tenant string
	cmd := &cobra.Command{
		Use:     "add KEY USER... --env ENV [--tenant TENANT]",
		Short:   "Add identified users to an audience (at most 1000 per call)",
		Example: `  hark audiences add beta-testers u1 u2 --env development --tenant acme`,
		Args:    cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, func(ctx context.Context, a *api) error {
				res, err := a.audiences.AddAudienceMembers(ctx, connect.NewRequest(&harkv1.AddAudienceMembersRequest{
					Environment: env, Key: args[0], Members: memberRefs(args[1:], tenant),
				}))
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(res.Msg)
				}
				rows := make([][]string, len(res.Msg.GetMembers()))
				for i, m := range res.Msg.GetMembers() {
					rows[i] = memberRow(m)
				}
				return table(a.out, memberHeader, rows)
			})
		},
	}
	envFlag(g, cmd, &env)
	cmd.Flags().StringVar(&tenant, "tenant", "", "the tenant of the memberships")
	return cmd
}

func audiencesRemove(g *globalOptions) *cobra.Command {
	var env, tenant string
	cmd := &cobra.Command{
		Use:   "remove KEY USER... --env ENV [--tenant TENANT]",
		Short: "Remove users from an audience (the memberships of --tenant, or those without one)",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, func(ctx context.Context, a *api) error {
				res, err := a.audiences.RemoveAudienceMembers(ctx, connect.NewRequest(&harkv1.RemoveAudienceMembersRequest{
					Environment: env, Key: args[0], Members: memberRefs(args[1:], tenant),
				}))
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(res.Msg)
				}
				_, err = fmt.Fprintf(a.out, "Removed %s from audience %s\n", strings.Join(args[1:], ", "), args[0])
				return err
			})
		},
	}
	envFlag(g, cmd, &env)
	cmd.Flags().StringVar(&tenant, "tenant", "", "the tenant of the memberships")
	return cmd
}

func audiencesList(g *globalOptions) *cobra.Command {
	var env string
	var limit int
	cmd := &cobra.Command{
		Use:   "list --env ENV",
		Short: "List the audiences that have members",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, func(ctx context.Context, a *api) error {
				keys, next, err := collect(limit, func(size int32, token string) ([]string, string, error) {
					res, err := a.audiences.ListAudiences(ctx, connect.NewRequest(&harkv1.ListAudiencesRequest{Environment: env, PageSize: size, PageToken: token}))
					if err != nil {
						return nil, "", err
					}
					return res.Msg.GetKeys(), res.Msg.GetNextPageToken(), nil
				})
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(&harkv1.ListAudiencesResponse{Keys: keys, NextPageToken: next})
				}
				rows := make([][]string, len(keys))
				for i, k := range keys {
					rows[i] = []string{k}
				}
				a.moreNote(next, len(keys))
				return table(a.out, []string{"AUDIENCE"}, rows)
			})
		},
	}
	envFlag(g, cmd, &env)
	cmd.Flags().IntVar(&limit, "limit", 100, pageLimitUsage)
	return cmd
}

func audiencesMembers(g *globalOptions) *cobra.Command {
	var env string
	var limit int
	cmd := &cobra.Command{
		Use:   "members KEY --env ENV",
		Short: "List an audience's members",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, func(ctx context.Context, a *api) error {
				ms, next, err := collect(limit, func(size int32, token string) ([]*harkv1.AudienceMember, string, error) {
					res, err := a.audiences.ListAudienceMembers(ctx, connect.NewRequest(&harkv1.ListAudienceMembersRequest{Environment: env, Key: args[0], PageSize: size, PageToken: token}))
					if err != nil {
						return nil, "", err
					}
					return res.Msg.GetMembers(), res.Msg.GetNextPageToken(), nil
				})
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(&harkv1.ListAudienceMembersResponse{Members: ms, NextPageToken: next})
				}
				rows := make([][]string, len(ms))
				for i, m := range ms {
					rows[i] = memberRow(m)
				}
				a.moreNote(next, len(ms))
				return table(a.out, memberHeader, rows)
			})
		},
	}
	envFlag(g, cmd, &env)
	cmd.Flags().IntVar(&limit, "limit", 100, pageLimitUsage)
	return cmd
}
