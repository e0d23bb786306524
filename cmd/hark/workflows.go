package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/structpb"

	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

func newWorkflowsCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "workflows",
		Aliases: []string{"workflow"},
		Short:   "Manage workflows, the notifications triggers start, and trigger them by API",
	}
	cmd.AddCommand(workflowsList(g), workflowsGet(g), workflowsCreate(g), workflowsDelete(g), workflowsTrigger(g), workflowsCancel(g))
	return cmd
}

func workflowsList(g *globalOptions) *cobra.Command {
	var limit int
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List workflows",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.run(cmd, func(ctx context.Context, a *api) error {
				wfs, next, err := collect(limit, func(size int32, token string) ([]*harkv1.Workflow, string, error) {
					res, err := a.workflows.ListWorkflows(ctx, connect.NewRequest(&harkv1.ListWorkflowsRequest{PageSize: size, PageToken: token}))
					if err != nil {
						return nil, "", err
					}
					return res.Msg.GetWorkflows(), res.Msg.GetNextPageToken(), nil
				})
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(&harkv1.ListWorkflowsResponse{Workflows: wfs, NextPageToken: next})
				}
				rows := make([][]string, len(wfs))
				for i, w := range wfs {
					rows[i] = workflowRow(w)
				}
				a.moreNote(next, len(wfs))
				return table(a.out, workflowHeader, rows)
			})
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 100, pageLimitUsage)
	return cmd
}

var workflowHeader = []string{"KEY", "NAME", "ACTIVE", "DESCRIPTION", "CREATED"}

func workflowRow(w *harkv1.Workflow) []string {
	return []string{w.GetKey(), w.GetName(), yesNo(w.GetActive()), w.GetDescription(), fmtTime(w.GetCreatedAt())}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func workflowsGet(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "get KEY",
		Short: "Show a workflow",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, func(ctx context.Context, a *api) error {
				res, err := a.workflows.GetWorkflow(ctx, connect.NewRequest(&harkv1.GetWorkflowRequest{Key: args[0]}))
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(res.Msg.GetWorkflow())
				}
				return table(a.out, workflowHeader, [][]string{workflowRow(res.Msg.GetWorkflow())})
			})
		},
	}
}

func workflowsCreate(g *globalOptions) *cobra.Command {
	var name, description string
	var inactive bool
	cmd := &cobra.Command{
		Use:     "create KEY [--name NAME] [--description TEXT] [--inactive]",
		Short:   "Create a workflow",
		Example: `  hark workflows create welcome --name "Welcome email"`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, func(ctx context.Context, a *api) error {
				req := &harkv1.CreateWorkflowRequest{Key: args[0], Name: name, Description: description}
				if inactive {
					req.Active = new(false)
				}
				res, err := a.workflows.CreateWorkflow(ctx, connect.NewRequest(req))
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(res.Msg.GetWorkflow())
				}
				return table(a.out, workflowHeader, [][]string{workflowRow(res.Msg.GetWorkflow())})
			})
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "display name (default: the key)")
	cmd.Flags().StringVar(&description, "description", "", "what the workflow sends")
	cmd.Flags().BoolVar(&inactive, "inactive", false, "create it inactive: triggers skip it until it is activated")
	return cmd
}

func workflowsDelete(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "delete KEY",
		Short: "Delete a workflow",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, func(ctx context.Context, a *api) error {
				res, err := a.workflows.DeleteWorkflow(ctx, connect.NewRequest(&harkv1.DeleteWorkflowRequest{Key: args[0]}))
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(res.Msg)
				}
				_, err = fmt.Fprintf(a.out, "Deleted workflow %s\n", args[0])
				return err
			})
		},
	}
}

func workflowsTrigger(g *globalOptions) *cobra.Command {
	var (
		env, data, actor, tenant, cancellationKey, idempotencyKey string
		recipients                                                []string
	)
	cmd := &cobra.Command{
		Use:   "trigger KEY --env ENV --recipients ID[,ID…] [--data JSON] [--actor ID] [--tenant ID] [--cancellation-key K] [--idempotency-key K]",
		Short: "Start a workflow run by API, without a source event",
		Long: `Start a workflow run by API, without a source event. Recipients are ids of
users identified in the environment (see hark users identify). --actor and
--tenant take an id, or a JSON object with an "id" to identify inline.
--data is a JSON object, or @FILE to read it from a file. --idempotency-key
makes a retry within 24 hours return the first run instead of starting
another.`,
		Example: `  hark workflows trigger welcome --env development --recipients u1,u2 --data '{"plan":"pro"}'`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, func(ctx context.Context, a *api) error {
				req := &harkv1.TriggerWorkflowRequest{Environment: env, Key: args[0], CancellationKey: cancellationKey}
				for _, r := range recipients {
					req.Recipients = append(req.Recipients, structpb.NewStringValue(r))
				}
				var err error
				if actor != "" {
					if req.Actor, err = recipientValue("actor", actor); err != nil {
						return err
					}
				}
				if tenant != "" {
					if req.Tenant, err = recipientValue("tenant", tenant); err != nil {
						return err
					}
				}
				if data != "" {
					if req.Data, err = jsonObject("data", data); err != nil {
						return err
					}
				}
				creq := connect.NewRequest(req)
				if idempotencyKey != "" {
					creq.Header().Set("Idempotency-Key", idempotencyKey)
				}
				res, err := a.workflows.TriggerWorkflow(ctx, creq)
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(res.Msg)
				}
				if res.Header().Get("Idempotent-Replayed") == "true" {
					_, err = fmt.Fprintf(a.out, "Already started with this idempotency key: run %s\n", res.Msg.GetWorkflowRunId())
					return err
				}
				_, err = fmt.Fprintf(a.out, "Started run %s\n", res.Msg.GetWorkflowRunId())
				return err
			})
		},
	}
	envFlag(g, cmd, &env)
	f := cmd.Flags()
	f.StringSliceVar(&recipients, "recipients", nil, "user ids, comma-separated or repeated")
	f.StringVar(&data, "data", "", "run data: a JSON object, or @FILE")
	f.StringVar(&actor, "actor", "", "actor: a user id, or a JSON user object with an id")
	f.StringVar(&tenant, "tenant", "", "tenant: an id, or a JSON object with an id")
	f.StringVar(&cancellationKey, "cancellation-key", "", "key to cancel the run by later")
	f.StringVar(&idempotencyKey, "idempotency-key", "", "Idempotency-Key: a retry with it returns the first run")
	_ = cmd.MarkFlagRequired("recipients")
	return cmd
}

func workflowsCancel(g *globalOptions) *cobra.Command {
	var env, cancellationKey string
	var recipients []string
	cmd := &cobra.Command{
		Use:   "cancel KEY --env ENV --cancellation-key K [--recipients ID[,ID…]]",
		Short: "Cancel the active runs of a workflow started with a cancellation key",
		Long: `Cancel the active runs of a workflow that were started with the cancellation
key. With --recipients, the runs stop for those recipients only and go on for
their others (Knock's semantics); a run is cancelled once every recipient is.
Prints, per run changed, the recipients cancelled and the run's status.`,
		Example: `  hark workflows cancel new-comment --env development --cancellation-key post-1 --recipients u2`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, func(ctx context.Context, a *api) error {
				res, err := a.workflows.CancelWorkflow(ctx, connect.NewRequest(&harkv1.CancelWorkflowRequest{
					Environment: env, Key: args[0], CancellationKey: cancellationKey, Recipients: recipients,
				}))
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(res.Msg)
				}
				if len(res.Msg.GetCancellations()) == 0 {
					_, err = fmt.Fprintln(a.out, "No active run matched: nothing cancelled")
					return err
				}
				rows := make([][]string, len(res.Msg.GetCancellations()))
				for i, c := range res.Msg.GetCancellations() {
					rows[i] = []string{c.GetWorkflowRunId(), strings.Join(c.GetRecipients(), ","), enumName(c.GetStatus(), runStatusPrefix)}
				}
				return table(a.out, []string{"RUN", "CANCELLED FOR", "RUN STATUS"}, rows)
			})
		},
	}
	envFlag(g, cmd, &env)
	f := cmd.Flags()
	f.StringVar(&cancellationKey, "cancellation-key", "", "the key the runs were started with")
	f.StringSliceVar(&recipients, "recipients", nil, "cancel for these user ids only, comma-separated or repeated")
	_ = cmd.MarkFlagRequired("cancellation-key")
	return cmd
}

// recipientValue reads a user reference: a JSON object (an inline user,
// {"id":…,"email":…}) when it looks like one, else a user id.
func recipientValue(flag, s string) (*structpb.Value, error) {
	if !strings.HasPrefix(strings.TrimSpace(s), "{") {
		return structpb.NewStringValue(s), nil
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, usageError{fmt.Errorf("--%s %q: %w", flag, s, err), ""}
	}
	v, err := structpb.NewValue(m)
	if err != nil {
		return nil, usageError{fmt.Errorf("--%s: %w", flag, err), ""}
	}
	return v, nil
}
