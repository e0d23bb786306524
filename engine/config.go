package engine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/harkhq/hark/engine/delivery"
	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// Configuration as code (DESIGN §12): an environment's configuration as one
// document (harkv1.ConfigDocument), exported in a stable order, planned and
// applied atomically.
//
// Matching. Objects are matched by what people name them, never by ids:
// workflows by key, sources and destinations by name, triggers by (source
// name, event type, event, action, workflow key) — triggers have no name,
// and that tuple is what a person means by "the Signed Up trigger of
// welcome" or "the tenants_set of Signed Up" (see triggerIdentity). The
// action is part of it because an action mapping other than the workflow
// ones (tenants_set, objects_subscribe, ...) names no workflow: without it,
// every such action on one event would be the same trigger. Its mapping is
// not part of it: a changed actionMapping is an update, shown field by
// field in the plan. Changing one of the identity's fields in a document is
// therefore a new trigger (and, with prune, the deletion of the old one).
//
// Trigger words. A document says a trigger's action type and frequency as
// the CLI's --action and --frequency do (`tenants_set`,
// `once_per_recipient`), and leaves the defaults (workflows_trigger,
// every_time) out, so a plain trigger's export is what it was before
// action types existed. Which mapping fields an action reads is checked as
// CreateTrigger checks it, and refused under the trigger's path.
//
// Scope. Workflows and sources are account-level: applying creates and
// updates them (a source's settings are the environment's) and never
// deletes them, even with prune — deleting a source from one environment's
// file would delete it, and its triggers, everywhere. Prune deletes the
// environment's own objects the document lacks: triggers and destinations.
// The environment must exist.
//
// Secrets. Secret settings (a source type's or a destination type's) are
// exported as ${VAR} placeholders named after the object and key; the CLI
// resolves them from its environment before sending the document, and a
// value of SecretMask keeps the secret as it is. A webhook destination's
// signing secret is never part of a document: a destination created by
// apply gets a new one, returned this once in its change (never by a plan).
//
// Atomicity. Apply checks and writes everything in one store transaction,
// with the same checks as the resource APIs (triggers are compiled and
// their roots checked as CreateTrigger does), and refreshes the trigger
// registry and the catalog cache only after the commit. Plan runs the very
// same transaction and discards it, so a plan and an apply can never
// disagree on what is valid.

// ConfigAPIVersion is the version a document must declare.
const ConfigAPIVersion = "hark/v1"

// The sections of a document, in document order.
const (
	SectionWorkflows    = "workflows"
	SectionSources      = "sources"
	SectionTriggers     = "triggers"
	SectionDestinations = "destinations"
)

// ConfigSections lists the sections in document order.
var ConfigSections = []string{SectionWorkflows, SectionSources, SectionTriggers, SectionDestinations}

// errPlanned ends a plan's transaction without committing it.
var errPlanned = errors.New("plan only")

// sectionSet reads the `only` field: which sections a request manages.
func sectionSet(only []string) (map[string]bool, error) {
	set := map[string]bool{}
	if len(only) == 0 {
		for _, s := range ConfigSections {
			set[s] = true
		}
		return set, nil
	}
	var v validation
	for i, s := range only {
		if !slices.Contains(ConfigSections, s) {
			v.add(fmt.Sprintf("only[%d]", i), "%q is not a section (one of %s)", s, strings.Join(ConfigSections, ", "))
		}
		set[s] = true
	}
	return set, v.err()
}

// ExportConfig returns an environment's configuration as a document: each
// section sorted by what its objects are matched by, map keys sorted by
// their encoders, so exporting unchanged state gives the same document.
func (e *Engine) ExportConfig(ctx context.Context, req *harkv1.ExportConfigRequest) (*harkv1.ConfigDocument, error) {
	sections, err := sectionSet(req.GetOnly())
	if err != nil {
		return nil, err
	}
	env := req.GetEnvironment()
	doc := &harkv1.ConfigDocument{ApiVersion: ConfigAPIVersion}
	err = e.store.View(ctx, func(tx Tx) error {
		doc.Workflows, doc.Sources, doc.Triggers, doc.Destinations = nil, nil, nil, nil
		if _, err := tx.Environment(env); err != nil {
			return err
		}
		names := map[string]string{} // source id → name
		err := ForEach(tx.Sources, (*harkv1.Source).GetId, func(src *harkv1.Source) error {
			names[src.GetId()] = src.GetName()
			if !sections[SectionSources] {
				return nil
			}
			se, err := tx.SourceEnvironment(src.GetId(), env)
			if err != nil {
				return err
			}
			c := sourceToConfig(src, se)
			secret := e.sourceSecret(src.GetType())
			for k := range c.Settings {
				if secret(k) {
					c.Settings[k] = placeholder(src.GetName(), k)
				}
			}
			doc.Sources = append(doc.Sources, c)
			return nil
		})
		if err != nil {
			return err
		}
		if sections[SectionWorkflows] {
			err := ForEach(tx.Workflows, (*harkv1.Workflow).GetKey, func(wf *harkv1.Workflow) error {
				doc.Workflows = append(doc.Workflows, workflowToConfig(wf))
				return nil
			})
			if err != nil {
				return err
			}
		}
		if sections[SectionTriggers] {
			list := func(after string, limit int) ([]*harkv1.Trigger, error) { return tx.Triggers(env, after, limit) }
			err := ForEach(list, (*harkv1.Trigger).GetId, func(t *harkv1.Trigger) error {
				doc.Triggers = append(doc.Triggers, triggerToConfig(t, names[t.GetSourceId()]))
				return nil
			})
			if err != nil {
				return err
			}
		}
		if sections[SectionDestinations] {
			list := func(after string, limit int) ([]*harkv1.Destination, error) {
				return tx.Destinations(env, after, limit)
			}
			err := ForEach(list, (*harkv1.Destination).GetId, func(d *harkv1.Destination) error {
				c := destinationToConfig(d)
				secret := destinationSecret(d.GetType())
				for k := range c.Settings {
					if secret(k) {
						c.Settings[k] = placeholder(d.GetName(), k)
					}
				}
				doc.Destinations = append(doc.Destinations, c)
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// Stable sorts: objects of one identity (which a document cannot tell
	// apart) keep their creation order.
	slices.SortStableFunc(doc.Sources, func(a, b *harkv1.ConfigSource) int { return cmp.Compare(a.GetName(), b.GetName()) })
	slices.SortStableFunc(doc.Triggers, func(a, b *harkv1.ConfigTrigger) int {
		return cmp.Or(cmp.Compare(a.GetSource(), b.GetSource()), cmp.Compare(a.GetEventType(), b.GetEventType()),
			cmp.Compare(a.GetEvent(), b.GetEvent()), cmp.Compare(a.GetAction(), b.GetAction()),
			cmp.Compare(a.GetWorkflowKey(), b.GetWorkflowKey()))
	})
	slices.SortStableFunc(doc.Destinations, func(a, b *harkv1.ConfigDestination) int { return cmp.Compare(a.GetName(), b.GetName()) })
	return doc, nil
}

// placeholder is the ${VAR} an exported secret reads as: the object's name
// and the setting's key, upper case, anything else an underscore
// ("Segment prod", "shared_secret" → ${SEGMENT_PROD_SHARED_SECRET}).
func placeholder(object, key string) string {
	var b strings.Builder
	under := false
	for _, r := range strings.ToUpper(object + "_" + key) {
		if (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
			under = false
		} else if !under && b.Len() > 0 {
			b.WriteByte('_')
			under = true
		}
	}
	name := strings.TrimRight(b.String(), "_")
	if name == "" || (name[0] >= '0' && name[0] <= '9') {
		name = "HARK_" + name
	}
	return "${" + name + "}"
}

// sourceSecret says which settings of a source type are secret; for a
// type that is not installed, every one (as sourceEnvironmentView masks).
func (e *Engine) sourceSecret(typ string) func(string) bool {
	st, installed := e.types.SourceType(typ)
	return func(key string) bool {
		s := findSetting(st, key)
		return !installed || s == nil || s.GetSecret()
	}
}

func destinationSecret(typ string) func(string) bool {
	specs, _ := delivery.TypeSettings(typ)
	return func(key string) bool {
		return slices.ContainsFunc(specs, func(s delivery.Setting) bool { return s.Key == key && s.Secret })
	}
}

func workflowToConfig(wf *harkv1.Workflow) *harkv1.ConfigWorkflow {
	return &harkv1.ConfigWorkflow{Key: wf.GetKey(), Name: wf.GetName(), Description: wf.GetDescription(), Active: proto.Bool(wf.GetActive())}
}

// sourceToConfig is a source and its configuration in one environment as a
// document lists them, secrets in the clear: the caller replaces them.
func sourceToConfig(src *harkv1.Source, se *harkv1.SourceEnvironment) *harkv1.ConfigSource {
	window := DefaultIdempotencyWindow
	if w := se.GetIdempotencyWindow(); w != nil {
		window = w.AsDuration()
	}
	settings := maps.Clone(se.GetPluginSettings())
	if settings == nil {
		settings = map[string]string{}
	}
	return &harkv1.ConfigSource{
		Name: src.GetName(), Type: src.GetType(),
		IdentifyEnabled: se.GetIdentifyEnabled(), IdempotencyEnabled: se.GetIdempotencyEnabled(),
		IdempotencyWindow: HumanDuration(window), Settings: settings,
		GroupEnabled: se.GetGroupEnabled(), DeleteEnabled: optionalBool(se.DeleteEnabled),
	}
}

// optionalBool is a copy of b, nil when b is: a document must not share
// the stored message's memory.
func optionalBool(b *bool) *bool {
	if b == nil {
		return nil
	}
	return proto.Bool(*b)
}

// destinationToConfig is a destination as a document lists it, secrets in
// the clear: the caller replaces them.
func destinationToConfig(d *harkv1.Destination) *harkv1.ConfigDestination {
	settings := maps.Clone(d.GetSettings())
	if settings == nil {
		settings = map[string]string{}
	}
	return &harkv1.ConfigDestination{
		Name: d.GetName(), Type: d.GetType(), Url: d.GetUrl(), WorkflowKeys: slices.Clone(d.GetWorkflowKeys()),
		Settings: settings, Status: destinationStatusWord(d.GetStatus()),
	}
}

var destinationStatusWords = map[harkv1.DestinationStatus]string{
	harkv1.DestinationStatus_DESTINATION_STATUS_ACTIVE:   "active",
	harkv1.DestinationStatus_DESTINATION_STATUS_PAUSED:   "paused",
	harkv1.DestinationStatus_DESTINATION_STATUS_DISABLED: "disabled",
}

func destinationStatusWord(s harkv1.DestinationStatus) string {
	if w, ok := destinationStatusWords[s]; ok {
		return w
	}
	return "active"
}

// parseConfigDuration reads a document's duration: Go's form ("36h",
// "90m") or whole days ("7d").
func parseConfigDuration(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days < 0 {
			return 0, fmt.Errorf("%q is not a duration (e.g. 24h, 30m, 7d)", s)
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration (e.g. 24h, 30m, 7d)", s)
	}
	return d, nil
}

// PlanConfig returns the changes ApplyConfig would make with the same
// request, after the same checks. It changes nothing.
func (e *Engine) PlanConfig(ctx context.Context, req *harkv1.PlanConfigRequest) ([]*harkv1.ConfigChange, error) {
	return e.configure(ctx, req.GetEnvironment(), req.GetDocument(), req.GetPrune(), req.GetOnly(), false)
}

// ApplyConfig makes a document's changes in one transaction, or none.
func (e *Engine) ApplyConfig(ctx context.Context, req *harkv1.ApplyConfigRequest) ([]*harkv1.ConfigChange, error) {
	return e.configure(ctx, req.GetEnvironment(), req.GetDocument(), req.GetPrune(), req.GetOnly(), true)
}

// configure plans a document in one transaction and commits it when
// commit is set; then it brings the in-memory state up to the commit.
func (e *Engine) configure(ctx context.Context, env string, doc *harkv1.ConfigDocument, prune bool, only []string, commit bool) ([]*harkv1.ConfigChange, error) {
	sections, err := sectionSet(only)
	if err != nil {
		return nil, err
	}
	if doc == nil {
		doc = &harkv1.ConfigDocument{}
	}
	// Creating a source changes the layout (see CreateSource).
	e.layoutMu.Lock()
	defer e.layoutMu.Unlock()
	var r *configRun
	fn := func(tx Tx) error {
		r = &configRun{e: e, tx: tx, env: env, doc: doc, prune: prune, sections: sections}
		if err := r.run(); err != nil {
			return err
		}
		if !commit {
			return errPlanned
		}
		return nil
	}
	if commit {
		err = e.store.Update(ctx, fn)
	} else if err = e.store.Update(ctx, fn); errors.Is(err, errPlanned) {
		err = nil
	}
	if err != nil {
		return nil, err
	}
	if !commit {
		return r.result(), nil
	}
	for c, secret := range r.secrets {
		c.SigningSecret = secret
	}
	for _, id := range r.resume {
		if err := e.releaseHeld(ctx, env, id); err != nil {
			return nil, fmt.Errorf("resume the held deliveries: %w", err)
		}
	}
	return r.result(), nil
}

// configRun is one plan or apply inside its transaction.
type configRun struct {
	e        *Engine
	tx       Tx
	env      string
	doc      *harkv1.ConfigDocument
	prune    bool
	sections map[string]bool

	v          validation
	expression *ExpressionError // the first expression that does not compile

	changes, deletes []*harkv1.ConfigChange
	secrets          map[*harkv1.ConfigChange]string // new webhook destinations' signing secrets
	resume           []string                        // destinations made ACTIVE again

	sourcesByName map[string][]*harkv1.Source
	sourceNames   map[string]string // id → name
}

func (r *configRun) result() []*harkv1.ConfigChange {
	return append(slices.Clip(r.changes), r.deletes...)
}

func (r *configRun) run() error {
	if _, err := r.tx.Environment(r.env); err != nil {
		return err
	}
	if got := r.doc.GetApiVersion(); got != ConfigAPIVersion {
		r.v.add("apiVersion", "must be %q, not %q", ConfigAPIVersion, got)
	}
	given := map[string]int{
		SectionWorkflows: len(r.doc.GetWorkflows()), SectionSources: len(r.doc.GetSources()),
		SectionTriggers: len(r.doc.GetTriggers()), SectionDestinations: len(r.doc.GetDestinations()),
	}
	for _, s := range ConfigSections {
		if given[s] > 0 && !r.sections[s] {
			r.v.add(s, "is given, but the request manages only %s", strings.Join(slices.Sorted(maps.Keys(r.sections)), ", "))
		}
	}
	if err := r.loadSources(); err != nil {
		return err
	}
	steps := []struct {
		section string
		fn      func() error
	}{
		{SectionWorkflows, r.workflows}, {SectionSources, r.sources},
		{SectionTriggers, r.triggers}, {SectionDestinations, r.destinations},
	}
	for _, s := range steps {
		if !r.sections[s.section] {
			continue
		}
		if err := s.fn(); err != nil {
			return err
		}
	}
	switch {
	case len(r.v.violations) > 0:
		if x := r.expression; x != nil {
			r.v.add(x.Field, "%s", x.CompileError.Error())
		}
		return r.v.err()
	case r.expression != nil:
		return r.expression
	}
	return nil
}

// nested files the errors of one object's checks under its path: field
// violations and expression errors are collected, anything else ends the
// run.
func (r *configRun) nested(path string, err error, rename func(string) string) error {
	var (
		ve *ValidationError
		xe *ExpressionError
	)
	switch {
	case err == nil:
	case errors.As(err, &ve):
		for _, f := range ve.Violations {
			field := f.Field
			if rename != nil {
				field = rename(field)
			}
			r.v.add(path+"."+field, "%s", f.Description)
		}
	case errors.As(err, &xe):
		if r.expression == nil {
			r.expression = &ExpressionError{Field: path + "." + xe.Field, CompileError: xe.CompileError}
		}
	default:
		return err
	}
	return nil
}

func (r *configRun) record(action harkv1.ConfigChangeAction, kind, name, path string, fields []*harkv1.ConfigFieldChange) *harkv1.ConfigChange {
	c := &harkv1.ConfigChange{Action: action, Kind: kind, Name: name, Path: path, Fields: fields}
	if action == harkv1.ConfigChangeAction_CONFIG_CHANGE_ACTION_DELETE {
		r.deletes = append(r.deletes, c)
	} else {
		r.changes = append(r.changes, c)
	}
	return c
}

// createOrUpdate is the action for an object that exists or not.
func createOrUpdate(exists bool) harkv1.ConfigChangeAction {
	if exists {
		return harkv1.ConfigChangeAction_CONFIG_CHANGE_ACTION_UPDATE
	}
	return harkv1.ConfigChangeAction_CONFIG_CHANGE_ACTION_CREATE
}

func (r *configRun) workflows() error {
	seen := map[string]int{}
	for i, w := range r.doc.GetWorkflows() {
		path := fmt.Sprintf("workflows[%d]", i)
		if !workflowKeyPattern.MatchString(w.GetKey()) {
			r.v.add(path+".key", "must be 1-128 lowercase letters, digits, '-' or '_', starting with a letter or digit")
			continue
		}
		if j, dup := seen[w.GetKey()]; dup {
			r.v.add(path+".key", "workflow %q is listed twice (also workflows[%d])", w.GetKey(), j)
			continue
		}
		seen[w.GetKey()] = i
		var text validation
		checkWorkflowText(&text, w.GetName(), w.GetDescription())
		if err := r.nested(path, text.err(), nil); err != nil {
			return err
		}
		want := &harkv1.ConfigWorkflow{Key: w.GetKey(), Name: cmp.Or(w.GetName(), w.GetKey()), Description: w.GetDescription(), Active: proto.Bool(w.Active == nil || w.GetActive())}
		stored, err := r.tx.Workflow(w.GetKey())
		found, err := exists(stored, err)
		if err != nil {
			return err
		}
		before := &harkv1.ConfigWorkflow{}
		wf := &harkv1.Workflow{Key: w.GetKey(), CreatedAt: r.e.timestamp()}
		if found {
			before, wf = workflowToConfig(stored), stored
		}
		fields := diffConfig(before, want, nil)
		if len(fields) == 0 {
			continue
		}
		wf.Name, wf.Description, wf.Active, wf.UpdatedAt = want.GetName(), want.GetDescription(), want.GetActive(), r.e.timestamp()
		if err := r.tx.PutWorkflow(wf); err != nil {
			return err
		}
		r.record(createOrUpdate(found), "workflow", w.GetKey(), path, fields)
	}
	return nil
}

// loadSources indexes hark's sources by name, for sources and triggers.
func (r *configRun) loadSources() error {
	r.sourcesByName, r.sourceNames = map[string][]*harkv1.Source{}, map[string]string{}
	return ForEach(r.tx.Sources, (*harkv1.Source).GetId, func(src *harkv1.Source) error {
		r.sourcesByName[src.GetName()] = append(r.sourcesByName[src.GetName()], src)
		r.sourceNames[src.GetId()] = src.GetName()
		return nil
	})
}

// sourceID resolves a source name; it adds a violation at field and
// returns "" when no single source has it.
func (r *configRun) sourceID(field, name string) string {
	switch list := r.sourcesByName[name]; len(list) {
	case 0:
		r.v.add(field, "no source is named %q, in the file or in hark", name)
		return ""
	case 1:
		return list[0].GetId()
	default:
		r.v.add(field, "%d sources in hark are named %q; rename all but one (hark sources update)", len(list), name)
		return ""
	}
}

func (r *configRun) sources() error {
	seen := map[string]int{}
	for i, s := range r.doc.GetSources() {
		path := fmt.Sprintf("sources[%d]", i)
		name := strings.TrimSpace(s.GetName())
		switch {
		case name == "":
			r.v.add(path+".name", "is required")
			continue
		case len(name) > maxNameLen:
			r.v.add(path+".name", "must be at most %d characters", maxNameLen)
			continue
		}
		if j, dup := seen[name]; dup {
			r.v.add(path+".name", "source %q is listed twice (also sources[%d])", name, j)
			continue
		}
		seen[name] = i
		var src *harkv1.Source
		created := false
		switch list := r.sourcesByName[name]; len(list) {
		case 0:
			if s.GetType() == "" {
				r.v.add(path+".type", "is required for a new source")
				continue
			}
			if _, ok := r.e.types.SourceType(s.GetType()); !ok {
				r.v.add(path+".type", "%q is not an installed source type (see hark sources types)", s.GetType())
				continue
			}
			src = &harkv1.Source{Id: newID("src_"), Name: name, Type: s.GetType(), CreatedAt: r.e.timestamp()}
			if err := r.tx.PutSource(src); err != nil {
				return err
			}
			err := ForEach(r.tx.Environments, (*harkv1.Environment).GetSlug, func(env *harkv1.Environment) error {
				return r.e.addSourceEnvironment(r.tx, src.GetId(), env.GetSlug())
			})
			if err != nil {
				return err
			}
			r.sourcesByName[name] = []*harkv1.Source{src}
			r.sourceNames[src.GetId()] = name
			created = true
		case 1:
			src = list[0]
			if s.GetType() != "" && s.GetType() != src.GetType() {
				r.v.add(path+".type", "source %q is of type %q; a source's type cannot change", name, src.GetType())
				continue
			}
		default:
			r.v.add(path+".name", "%d sources in hark are named %q; rename all but one (hark sources update)", len(list), name)
			continue
		}
		se, err := r.tx.SourceEnvironment(src.GetId(), r.env)
		if err != nil {
			return err
		}
		req := &harkv1.UpdateSourceEnvironmentRequest{
			IdentifyEnabled: proto.Bool(s.GetIdentifyEnabled()), IdempotencyEnabled: proto.Bool(s.GetIdempotencyEnabled()),
			GroupEnabled: proto.Bool(s.GetGroupEnabled()), DeleteEnabled: s.DeleteEnabled,
			PluginSettings: map[string]string{},
		}
		window := DefaultIdempotencyWindow
		if w := s.GetIdempotencyWindow(); w != "" {
			if window, err = parseConfigDuration(w); err != nil {
				r.v.add(path+".idempotencyWindow", "%s", err.Error())
				continue
			}
		}
		req.IdempotencyWindow = durationpb.New(window)
		for k := range se.GetPluginSettings() {
			req.PluginSettings[k] = "" // a setting the document lacks is removed
		}
		maps.Copy(req.PluginSettings, s.GetSettings())
		next := proto.CloneOf(se)
		if s.DeleteEnabled == nil {
			next.DeleteEnabled = nil // left out: follows identifyEnabled again
		}
		err = r.e.applySourceEnvironmentUpdate(next, src.GetType(), req)
		rename := func(f string) string {
			if k, ok := strings.CutPrefix(f, "pluginSettings."); ok {
				return "settings." + k
			}
			return f
		}
		if err := r.nested(path, err, rename); err != nil {
			return err
		}
		before := &harkv1.ConfigSource{}
		if !created {
			before = sourceToConfig(src, se)
		}
		fields := diffConfig(before, sourceToConfig(src, next), r.e.sourceSecret(src.GetType()))
		if len(fields) == 0 {
			continue
		}
		next.UpdatedAt = r.e.timestamp()
		if err := r.tx.PutSourceEnvironment(next); err != nil {
			return err
		}
		r.record(createOrUpdate(!created), "source", name, path, fields)
	}
	return nil
}

func (r *configRun) triggers() error {
	stored := map[string][]*harkv1.Trigger{} // by identity, creation order
	var order []string
	list := func(after string, limit int) ([]*harkv1.Trigger, error) { return r.tx.Triggers(r.env, after, limit) }
	err := ForEach(list, (*harkv1.Trigger).GetId, func(t *harkv1.Trigger) error {
		id := triggerIdentity(triggerToConfig(t, r.sourceNames[t.GetSourceId()]))
		if _, ok := stored[id]; !ok {
			order = append(order, id)
		}
		stored[id] = append(stored[id], t)
		return nil
	})
	if err != nil {
		return err
	}
	seen := map[string]int{}
	for i, c := range r.doc.GetTriggers() {
		path := fmt.Sprintf("triggers[%d]", i)
		c = proto.CloneOf(c)
		before := len(r.v.violations)
		normalizeConfigTrigger(&r.v, path, c)
		if len(r.v.violations) > before {
			continue
		}
		identity := triggerIdentity(c)
		if j, dup := seen[identity]; dup {
			r.v.add(path, "trigger %s is listed twice (also triggers[%d])", identity, j)
			continue
		}
		seen[identity] = i
		sourceID := r.sourceID(path+".source", c.GetSource())
		if sourceID == "" {
			continue
		}
		if isWorkflowAction(configActionType(c)) {
			if found, err := exists(r.tx.Workflow(c.GetWorkflowKey())); err != nil {
				return err
			} else if !found {
				r.v.add(path+".workflowKey", "no workflow has the key %q, in the file or in hark", c.GetWorkflowKey())
				continue
			}
		}
		matches := stored[identity]
		if len(matches) > 1 {
			r.v.add(path, "the environment has %d triggers %s, which a file cannot tell apart; delete all but one", len(matches), identity)
			continue
		}
		prev := &harkv1.ConfigTrigger{}
		t := &harkv1.Trigger{Id: newID("trg_"), Environment: r.env, CreatedAt: r.e.timestamp()}
		found := len(matches) == 1
		if found {
			prev, t = triggerToConfig(matches[0], c.GetSource()), proto.CloneOf(matches[0])
			delete(stored, identity)
		}
		configToTrigger(c, sourceID, t)
		fields := diffConfig(prev, triggerToConfig(t, c.GetSource()), nil)
		if len(fields) == 0 {
			continue
		}
		// As UpdateTrigger: only the expressions that change have their
		// roots checked, so a trigger saved before the check still applies.
		var fresh func(string) bool
		if found {
			fresh = func(field string) bool {
				return slices.ContainsFunc(fields, func(f *harkv1.ConfigFieldChange) bool { return f.GetField() == field })
			}
		}
		t.UpdatedAt = r.e.timestamp()
		err := r.e.saveTrigger(r.tx, t, fresh)
		if err := r.nested(path, err, triggerFieldName); err != nil {
			return err
		}
		r.record(createOrUpdate(found), "trigger", identity, path, fields)
	}
	if !r.prune {
		return nil
	}
	for _, identity := range order {
		for _, t := range stored[identity] {
			if err := r.tx.DeleteTrigger(r.env, t.GetId()); err != nil {
				return err
			}
			r.record(harkv1.ConfigChangeAction_CONFIG_CHANGE_ACTION_DELETE, "trigger", identity, "", nil)
		}
	}
	return nil
}

// triggerFieldName is a trigger's field as a document names it, for the
// violations of checkTrigger (which names the Trigger's fields).
func triggerFieldName(f string) string {
	if f == "actionType" {
		return "action"
	}
	return f
}

func (r *configRun) destinations() error {
	all, err := r.tx.Destinations(r.env, "", maxDestinations)
	if err != nil {
		return err
	}
	byName := map[string][]*harkv1.Destination{}
	for _, d := range all {
		byName[d.GetName()] = append(byName[d.GetName()], d)
	}
	count := len(all)
	seen := map[string]int{}
	for i, c := range r.doc.GetDestinations() {
		path := fmt.Sprintf("destinations[%d]", i)
		name := strings.TrimSpace(c.GetName())
		if name == "" {
			r.v.add(path+".name", "is required")
			continue
		}
		if j, dup := seen[name]; dup {
			r.v.add(path+".name", "destination %q is listed twice (also destinations[%d])", name, j)
			continue
		}
		seen[name] = i
		status := cmp.Or(c.GetStatus(), "active")
		var want harkv1.DestinationStatus
		for s, w := range destinationStatusWords {
			if w == status {
				want = s
			}
		}
		if want == harkv1.DestinationStatus_DESTINATION_STATUS_UNSPECIFIED {
			r.v.add(path+".status", "must be active or paused, not %q", status)
			continue
		}
		matches := byName[name]
		if len(matches) > 1 {
			r.v.add(path+".name", "the environment has %d destinations named %q; rename all but one", len(matches), name)
			continue
		}
		found := len(matches) == 1
		var (
			d       *harkv1.Destination
			secrets delivery.Secrets
			prev    = &harkv1.ConfigDestination{}
		)
		if found {
			stored, s, err := r.tx.Destination(r.env, matches[0].GetId())
			if err != nil {
				return err
			}
			if c.GetType() != "" && c.GetType() != stored.GetType() {
				r.v.add(path+".type", "destination %q is of type %q; a destination's type cannot change", name, stored.GetType())
				continue
			}
			d, secrets, prev = cloneDestination(stored), s, destinationToConfig(stored)
			delete(byName, name)
		} else {
			d = &harkv1.Destination{Id: newID("dst_"), Environment: r.env, Name: name, Type: c.GetType(), CreatedAt: r.e.timestamp()}
			if d.GetType() == delivery.TypeWebhook {
				secrets.Current = delivery.NewSecret()
			}
			count++
		}
		was := d.GetStatus()
		switch {
		case want == harkv1.DestinationStatus_DESTINATION_STATUS_DISABLED && was != want:
			r.v.add(path+".status", "must be active or paused: hark disables a destination itself when its receiver answers 410")
			continue
		case want == harkv1.DestinationStatus_DESTINATION_STATUS_ACTIVE:
			d.DisabledReason = ""
		}
		d.Status = want
		d.Name, d.Url, d.WorkflowKeys = name, c.GetUrl(), slices.Clone(c.GetWorkflowKeys())
		settings := map[string]string{}
		for k, v := range c.GetSettings() {
			if v == SecretMask {
				if old, ok := d.GetSettings()[k]; ok {
					settings[k] = old
				}
				continue
			}
			settings[k] = v
		}
		d.Settings = settings
		fields := diffConfig(prev, destinationToConfig(d), destinationSecret(d.GetType()))
		if len(fields) == 0 {
			continue
		}
		if err := r.nested(path, r.e.checkDestination(r.tx, d), nil); err != nil {
			return err
		}
		d.UpdatedAt = r.e.timestamp()
		if err := r.tx.PutDestination(d, secrets); err != nil {
			return err
		}
		if found && was != want && want == harkv1.DestinationStatus_DESTINATION_STATUS_ACTIVE {
			r.resume = append(r.resume, d.GetId())
		}
		c := r.record(createOrUpdate(found), "destination", name, path, fields)
		if !found && secrets.Current != "" {
			if r.secrets == nil {
				r.secrets = map[*harkv1.ConfigChange]string{}
			}
			r.secrets[c] = secrets.Current
		}
	}
	if r.prune {
		for _, d := range all {
			if _, left := byName[d.GetName()]; !left {
				continue
			}
			if err := r.e.deleteDestinationTx(r.tx, r.env, d.GetId()); err != nil {
				return err
			}
			count--
			r.record(harkv1.ConfigChangeAction_CONFIG_CHANGE_ACTION_DELETE, "destination", d.GetName(), "", nil)
		}
	}
	if count > maxDestinations {
		r.v.add(SectionDestinations, "environment %q would have %d destinations, more than the %d it may have", r.env, count, maxDestinations)
	}
	return nil
}

// deleteDestinationTx deletes a destination inside tx, failing its held
// deliveries as DeleteDestination does; unlike it, all in this one
// transaction (a destination with too many held deliveries for one commit
// makes the apply fail with ErrTooLarge: delete it with hark destinations
// delete first).
func (e *Engine) deleteDestinationTx(tx Tx, env, id string) error {
	for after := ""; ; {
		if deleted, err := e.deleteDestinationChunk(tx, env, id, &after); err != nil || deleted {
			return err
		}
	}
}
