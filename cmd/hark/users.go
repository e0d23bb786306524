package main

import (
	"context"
	"encoding/json"
	"fmt"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/structpb"

	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

func newUsersCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "users",
		Aliases: []string{"user"},
		Short:   "Manage the users of an environment (recipients, actors)",
	}
	cmd.AddCommand(usersList(g), usersGet(g), usersIdentify(g), usersDelete(g))
	return cmd
}

var userHeader = []string{"ID", "NAME", "EMAIL", "PHONE", "UPDATED"}

func userRow(u *harkv1.User) []string {
	return []string{u.GetId(), u.GetName(), u.GetEmail(), u.GetPhoneNumber(), fmtTime(u.GetUpdatedAt())}
}

func usersList(g *globalOptions) *cobra.Command {
	var env string
	var limit int
	cmd := &cobra.Command{
		Use:   "list --env ENV",
		Short: "List users",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.run(cmd, func(ctx context.Context, a *api) error {
				us, next, err := collect(limit, func(size int32, token string) ([]*harkv1.User, string, error) {
					res, err := a.users.ListUsers(ctx, connect.NewRequest(&harkv1.ListUsersRequest{Environment: env, PageSize: size, PageToken: token}))
					if err != nil {
						return nil, "", err
					}
					return res.Msg.GetUsers(), res.Msg.GetNextPageToken(), nil
				})
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(&harkv1.ListUsersResponse{Users: us, NextPageToken: next})
				}
				rows := make([][]string, len(us))
				for i, u := range us {
					rows[i] = userRow(u)
				}
				a.moreNote(next, len(us))
				return table(a.out, userHeader, rows)
			})
		},
	}
	envFlag(g, cmd, &env)
	cmd.Flags().IntVar(&limit, "limit", 100, pageLimitUsage)
	return cmd
}

func usersGet(g *globalOptions) *cobra.Command {
	var env string
	cmd := &cobra.Command{
		Use:   "get ID --env ENV",
		Short: "Show a user",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, func(ctx context.Context, a *api) error {
				res, err := a.users.GetUser(ctx, connect.NewRequest(&harkv1.GetUserRequest{Environment: env, Id: args[0]}))
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(res.Msg.GetUser())
				}
				return a.printUser(res.Msg.GetUser())
			})
		},
	}
	envFlag(g, cmd, &env)
	return cmd
}

func (a *api) printUser(u *harkv1.User) error {
	if err := fields(a.out,
		field{"ID", u.GetId()},
		field{"Environment", u.GetEnvironment()},
		field{"Name", u.GetName()},
		field{"Email", u.GetEmail()},
		field{"Phone", u.GetPhoneNumber()},
		field{"Avatar", u.GetAvatar()},
		field{"Locale", u.GetLocale()},
		field{"Timezone", u.GetTimezone()},
		field{"Created", fmtTime(u.GetCreatedAt())},
		field{"Updated", fmtTime(u.GetUpdatedAt())},
	); err != nil {
		return err
	}
	if len(u.GetProperties().GetFields()) > 0 {
		fmt.Fprintf(a.out, "\nProperties:\n%s\n", indentedJSON(u.GetProperties()))
	}
	return nil
}

func usersIdentify(g *globalOptions) *cobra.Command {
	var (
		env                                          string
		name, email, phone, avatar, locale, timezone string
		set, setJSON                                 []string
	)
	cmd := &cobra.Command{
		Use:   "identify ID --env ENV [--name …] [--email …] [--phone …] [--set key=value]...",
		Short: "Create or update a user; fields not given stay as they are",
		Example: `  hark users identify u1 --env development --name "Ada Lovelace" --email ada@example.com
  hark users identify u1 --env development --set plan=pro --set-json 'seats=3'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, func(ctx context.Context, a *api) error {
				f := cmd.Flags()
				req := &harkv1.IdentifyUserRequest{Environment: env, Id: args[0]}
				for _, opt := range []struct {
					flag string
					v    string
					dst  **string
				}{
					{"name", name, &req.Name}, {"email", email, &req.Email}, {"phone", phone, &req.PhoneNumber},
					{"avatar", avatar, &req.Avatar}, {"locale", locale, &req.Locale}, {"timezone", timezone, &req.Timezone},
				} {
					if f.Changed(opt.flag) {
						*opt.dst = new(opt.v)
					}
				}
				props, err := userProperties(set, setJSON)
				if err != nil {
					return err
				}
				req.Properties = props
				res, err := a.users.IdentifyUser(ctx, connect.NewRequest(req))
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(res.Msg.GetUser())
				}
				return a.printUser(res.Msg.GetUser())
			})
		},
	}
	envFlag(g, cmd, &env)
	fl := cmd.Flags()
	fl.StringVar(&name, "name", "", "full name")
	fl.StringVar(&email, "email", "", "email address")
	fl.StringVar(&phone, "phone", "", "phone number")
	fl.StringVar(&avatar, "avatar", "", "avatar URL")
	fl.StringVar(&locale, "locale", "", "locale, e.g. en-GB")
	fl.StringVar(&timezone, "timezone", "", "time zone, e.g. Europe/London")
	fl.StringArrayVar(&set, "set", nil, "custom property key=value (a string); repeatable")
	fl.StringArrayVar(&setJSON, "set-json", nil, "custom property key=JSON (a number, bool, list, object…); repeatable")
	return cmd
}

// userProperties builds custom properties from --set (strings) and
// --set-json (JSON values).
func userProperties(set, setJSON []string) (*structpb.Struct, error) {
	strs, err := keyValues("set", set)
	if err != nil {
		return nil, err
	}
	raws, err := keyValues("set-json", setJSON)
	if err != nil {
		return nil, err
	}
	if len(strs) == 0 && len(raws) == 0 {
		return nil, nil
	}
	m := map[string]any{}
	for k, v := range strs {
		m[k] = v
	}
	for k, raw := range raws {
		var v any
		if err := json.Unmarshal([]byte(raw), &v); err != nil {
			return nil, usageError{fmt.Errorf("--set-json %s=%s: the value is not JSON: %w", k, raw, err), `quote strings: --set-json 'name="Ada"', or use --set name=Ada`}
		}
		m[k] = v
	}
	st, err := structpb.NewStruct(m)
	if err != nil {
		return nil, usageError{fmt.Errorf("properties: %w", err), ""}
	}
	return st, nil
}

func usersDelete(g *globalOptions) *cobra.Command {
	var env string
	cmd := &cobra.Command{
		Use:   "delete ID --env ENV",
		Short: "Delete a user with their subscriptions and audience memberships",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, func(ctx context.Context, a *api) error {
				res, err := a.users.DeleteUser(ctx, connect.NewRequest(&harkv1.DeleteUserRequest{Environment: env, Id: args[0]}))
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(res.Msg)
				}
				_, err = fmt.Fprintf(a.out, "Deleted user %s\n", args[0])
				return err
			})
		},
	}
	envFlag(g, cmd, &env)
	return cmd
}
