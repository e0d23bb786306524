package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"
	"google.golang.org/genproto/googleapis/rpc/errdetails"

	"github.com/harkhq/hark/engine"
	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// Configuration as code: hark export, hark apply, hark promote. The server
// validates, plans and applies (ConfigService); the CLI reads and writes
// the YAML (config_yaml.go), resolves ${VAR} placeholders, prints plans,
// asks, and maps every error back to a file line.

const configLong = `The document lists an environment's workflows, sources (with their settings
in that environment), triggers and destinations, matched by name or key —
never by id — so one file applies to any environment:

  apiVersion: hark/v1
  workflows:
    - key: welcome
      name: Welcome
      active: true
  sources:
    - name: Segment
      type: segment
      identifyEnabled: true
      settings:
        shared_secret: ${SEGMENT_SHARED_SECRET}
  triggers:
    - source: Segment
      event: Signed Up
      workflowKey: welcome
      condition: properties.plan == "pro"
    - source: Segment
      event: Signed Up
      action: tenants_set
      actionMapping:
        id: properties.company.id
  destinations: []

Triggers are matched by (source, eventType, event, action, workflowKey);
action (default workflows_trigger), actionMapping and frequency (default
every_time) are written as triggers create's --action, --map and
--frequency take them, and left out at their defaults. Secret
settings read ${VAR}, resolved from the environment at apply; "********"
keeps the current secret. Workflows and sources are never deleted by apply;
--prune deletes the triggers and destinations the file lacks, in the sections
it lists. The JSON Schema is schema/hark-config.v1.json in hark's repository.`

func newExportCommand(g *globalOptions) *cobra.Command {
	var env string
	var only []string
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Write an environment's configuration as a YAML document",
		Long: `Write an environment's configuration as one YAML document (apiVersion: hark/v1),
in a stable order: exporting unchanged state gives the same bytes. -o FILE
writes it to FILE (-o json prints the document as JSON).

` + configLong,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dest := g.output
			g.output = "table"
			if dest == "json" {
				g.output = "json"
			}
			return g.run(cmd, func(ctx context.Context, a *api) error {
				res, err := a.config.ExportConfig(ctx, connect.NewRequest(&harkv1.ExportConfigRequest{Environment: env, Only: only}))
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(res.Msg.GetDocument())
				}
				sections := only
				if len(sections) == 0 {
					sections = engine.ConfigSections
				}
				out, err := encodeConfig(res.Msg.GetDocument(), sections)
				if err != nil {
					return err
				}
				if dest == "table" || dest == "yaml" || dest == "-" {
					_, err = a.out.Write(out)
					return err
				}
				if err := os.WriteFile(dest, out, 0o600); err != nil {
					return fmt.Errorf("write the document: %w", err)
				}
				fmt.Fprintf(a.errOut, "wrote %s\n", dest)
				return nil
			})
		},
	}
	envFlag(g, cmd, &env)
	cmd.Flags().StringSliceVar(&only, "only", nil, "sections to export: workflows, sources, triggers, destinations (default all)")
	return cmd
}

// applyOptions are the flags apply and promote share.
type applyOptions struct {
	prune, dryRun, yes bool
}

func (o *applyOptions) bind(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&o.prune, "prune", false, "delete the triggers and destinations the document lacks")
	cmd.Flags().BoolVar(&o.dryRun, "dry-run", false, "print the plan and stop")
	cmd.Flags().BoolVarP(&o.yes, "yes", "y", false, "apply without asking")
}

func newApplyCommand(g *globalOptions) *cobra.Command {
	var (
		env, file string
		opts      applyOptions
	)
	cmd := &cobra.Command{
		Use:   "apply -f FILE",
		Short: "Apply a YAML document to an environment, after showing the plan",
		Long: `Apply a YAML document to an environment: hark checks the whole document
(every expression compiled, every reference resolved), prints the plan —
create, update, delete, with the expressions that change — asks (unless
--yes), and applies it in one transaction: all of it or nothing. Applying the
same file again changes nothing. -f - reads stdin.

` + configLong,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return usageError{errors.New("-f FILE is required"), "usage: " + cmd.UseLine()}
			}
			f, err := readConfigFile(file)
			if err != nil {
				return err
			}
			if len(f.sections) == 0 {
				return fileErrors{{file: f.name, msg: "lists none of workflows, sources, triggers, destinations"}}
			}
			if err := f.resolveSecrets(os.LookupEnv); err != nil {
				return err
			}
			return g.run(cmd, func(ctx context.Context, a *api) error {
				return a.applyDocument(ctx, cmd, f, env, opts)
			})
		},
	}
	envFlag(g, cmd, &env)
	cmd.Flags().StringVarP(&file, "file", "f", "", "the YAML document to apply (- for stdin)")
	opts.bind(cmd)
	return cmd
}

func newPromoteCommand(g *globalOptions) *cobra.Command {
	var (
		from, to string
		only     []string
		opts     applyOptions
	)
	cmd := &cobra.Command{
		Use:   "promote --from ENV --to ENV",
		Short: "Copy one environment's configuration to another (export, then apply)",
		Long: `Copy one environment's configuration to another: export --from, then apply
it --to, with the plan shown and a question unless --yes. Secret settings are
not copied: the target keeps its own (an environment's secrets are its own).
--only limits what is copied, e.g. --only triggers,destinations.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if from == "" || to == "" {
				return usageError{errors.New("--from and --to are required"), "usage: " + cmd.UseLine()}
			}
			if from == to {
				return usageError{fmt.Errorf("--from and --to are both %q", from), ""}
			}
			return g.run(cmd, func(ctx context.Context, a *api) error {
				res, err := a.config.ExportConfig(ctx, connect.NewRequest(&harkv1.ExportConfigRequest{Environment: from, Only: only}))
				if err != nil {
					return fmt.Errorf("export %s: %w", from, err)
				}
				doc := res.Msg.GetDocument()
				maskSecrets(doc)
				sections := only
				if len(sections) == 0 {
					sections = engine.ConfigSections
				}
				// Errors are reported against the document as exported,
				// so a user can see what was refused.
				data, err := encodeConfig(doc, sections)
				if err != nil {
					return err
				}
				f, err := decodeConfig("export of "+from, data)
				if err != nil {
					return err
				}
				return a.applyDocument(ctx, cmd, f, to, opts)
			})
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "environment to copy from")
	cmd.Flags().StringVar(&to, "to", "", "environment to copy to")
	cmd.Flags().StringSliceVar(&only, "only", nil, "sections to copy: workflows, sources, triggers, destinations (default all)")
	opts.bind(cmd)
	return cmd
}

// applyDocument plans f in env, prints the plan, asks, and applies.
func (a *api) applyDocument(ctx context.Context, cmd *cobra.Command, f *configFile, env string, opts applyOptions) error {
	client := a.config
	plan, err := client.PlanConfig(ctx, connect.NewRequest(&harkv1.PlanConfigRequest{
		Environment: env, Document: f.doc, Prune: opts.prune, Only: f.sections,
	}))
	if err != nil {
		return f.explain(err)
	}
	changes := plan.Msg.GetChanges()
	if a.json && (opts.dryRun || len(changes) == 0) {
		return a.printJSON(plan.Msg)
	}
	if !a.json {
		printPlan(a.out, env, changes)
	}
	if opts.dryRun || len(changes) == 0 {
		return nil
	}
	if !opts.yes {
		if err := confirm(cmd.InOrStdin(), a.errOut, env); err != nil {
			return err
		}
	}
	res, err := client.ApplyConfig(ctx, connect.NewRequest(&harkv1.ApplyConfigRequest{
		Environment: env, Document: f.doc, Prune: opts.prune, Only: f.sections,
	}))
	if err != nil {
		return f.explain(err)
	}
	if a.json {
		return a.printJSON(res.Msg)
	}
	fmt.Fprintf(a.out, "Applied %s to %s.\n", countChanges(res.Msg.GetChanges()), env)
	for _, c := range res.Msg.GetChanges() {
		if s := c.GetSigningSecret(); s != "" {
			fmt.Fprintf(a.out, "Signing secret of the new destination %s (shown this once): %s\n", c.GetName(), s)
		}
	}
	return nil
}

// confirm asks on in whether to apply; only "yes" (or "y") goes on. A
// stdin that is not a terminal cannot answer: that is an error, so a
// script without --yes fails instead of hanging or applying unasked.
func confirm(in io.Reader, out io.Writer, env string) error {
	if !isTerminal(in) {
		return usageError{errors.New("not applied: stdin is not a terminal, so hark cannot ask"), "pass --yes to apply without asking, or --dry-run to see the plan only"}
	}
	fmt.Fprintf(out, "Apply these changes to %s? Type yes to go on: ", env)
	answer, err := bufio.NewReader(in).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(answer)) {
	case "yes", "y":
		return nil
	case "":
		if err != nil {
			return usageError{errors.New("not applied: no answer on stdin"), "pass --yes to apply without asking"}
		}
	}
	return errors.New("not applied")
}

var actionSigns = map[harkv1.ConfigChangeAction]string{
	harkv1.ConfigChangeAction_CONFIG_CHANGE_ACTION_CREATE: "+ create",
	harkv1.ConfigChangeAction_CONFIG_CHANGE_ACTION_UPDATE: "~ update",
	harkv1.ConfigChangeAction_CONFIG_CHANGE_ACTION_DELETE: "- delete",
}

// printPlan writes the changes for a person: one line per object, then its
// fields; a field whose value spans lines (an expression) as a diff.
func printPlan(w io.Writer, env string, changes []*harkv1.ConfigChange) {
	if len(changes) == 0 {
		fmt.Fprintf(w, "No changes: %s already matches the document.\n", env)
		return
	}
	fmt.Fprintf(w, "Plan for %s:\n", env)
	for _, c := range changes {
		fmt.Fprintf(w, "  %s %s %s\n", actionSigns[c.GetAction()], c.GetKind(), c.GetName())
		for _, f := range c.GetFields() {
			before, after := f.GetBefore(), f.GetAfter()
			switch {
			case c.GetAction() == harkv1.ConfigChangeAction_CONFIG_CHANGE_ACTION_CREATE && !strings.Contains(after, "\n"):
				fmt.Fprintf(w, "      %s: %s\n", f.GetField(), after)
			case !strings.Contains(before+after, "\n"):
				fmt.Fprintf(w, "      %s: %s → %s\n", f.GetField(), shown(before), shown(after))
			default:
				fmt.Fprintf(w, "      %s:\n", f.GetField())
				for l := range strings.SplitSeq(before, "\n") {
					if before != "" {
						fmt.Fprintf(w, "        - %s\n", l)
					}
				}
				for l := range strings.SplitSeq(after, "\n") {
					if after != "" {
						fmt.Fprintf(w, "        + %s\n", l)
					}
				}
			}
		}
	}
	fmt.Fprintf(w, "%s.\n", countChanges(changes))
}

func shown(v string) string {
	if v == "" {
		return "(none)"
	}
	return v
}

func countChanges(changes []*harkv1.ConfigChange) string {
	var n [4]int
	for _, c := range changes {
		n[c.GetAction()]++
	}
	return fmt.Sprintf("%d to create, %d to update, %d to delete", n[1], n[2], n[3])
}

// explain maps a server error about the document to the file's lines:
// each field violation and the expression error get the line of their
// field; other errors pass through.
func (f *configFile) explain(err error) error {
	var cerr *connect.Error
	if !errors.As(err, &cerr) || cerr.Code() != connect.CodeInvalidArgument {
		return err
	}
	var errs fileErrors
	if x := expressionDetail(cerr); x != nil {
		p, _ := f.line(x.GetField())
		line := p.line
		if p.block {
			line += int(x.GetLine())
		} else if x.GetLine() > 1 {
			line += int(x.GetLine()) - 1
		}
		msg := fmt.Sprintf("%d:%d: %s", x.GetLine(), x.GetColumn(), x.GetMessage())
		if s := x.GetSnippet(); s != "" {
			msg += "\n      " + strings.ReplaceAll(s, "\n", "\n      ")
		}
		errs = append(errs, fileError{file: f.name, line: line, field: x.GetField(), msg: msg})
	}
	for _, d := range cerr.Details() {
		v, derr := d.Value()
		br, ok := v.(*errdetails.BadRequest)
		if derr != nil || !ok {
			continue
		}
		for _, fv := range br.GetFieldViolations() {
			if len(errs) == 1 && errs[0].field == fv.GetField() && expressionDetail(cerr) != nil {
				continue // the expression error, said above
			}
			p, _ := f.line(fv.GetField())
			errs = append(errs, fileError{file: f.name, line: p.line, field: fv.GetField(), msg: fv.GetDescription()})
		}
	}
	if len(errs) == 0 {
		return err
	}
	return fmt.Errorf("%w\nnothing was applied", errs)
}
