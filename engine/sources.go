package engine

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

const (
	// maxNameLen bounds human-readable names; they are shown, not parsed.
	maxNameLen = 200
	// maxSettingLen bounds one plugin setting value; settings are secrets and
	// switches, not documents.
	maxSettingLen = 4096

	// DefaultIdempotencyWindow is how long a processed idempotency key is
	// remembered unless the source environment says otherwise (Knock: 24h).
	DefaultIdempotencyWindow = 24 * time.Hour
	// MinIdempotencyWindow and MaxIdempotencyWindow bound the setting: below a
	// minute a retry storm outlives the ledger; above 30 days the ledger
	// outgrows the event log it protects.
	MinIdempotencyWindow = time.Minute
	MaxIdempotencyWindow = 30 * 24 * time.Hour

	// SecretMask replaces the value of a secret plugin setting in every
	// response. Writing the mask back leaves the secret unchanged, so a client
	// may send a setting map it read.
	SecretMask = "********"

	// IngestPath is where source environments receive deliveries; the token
	// follows it.
	IngestPath = "/integrations/receive/"
)

// CreateSource creates a source of an installed type with a configuration
// and token in every environment, in one commit.
func (e *Engine) CreateSource(ctx context.Context, req *harkv1.CreateSourceRequest) (*harkv1.Source, error) {
	var v validation
	name := strings.TrimSpace(req.GetName())
	switch {
	case name == "":
		v.add("name", "is required")
	case len(name) > maxNameLen:
		v.add("name", "must be at most %d characters", maxNameLen)
	}
	if req.GetType() == "" {
		v.add("type", "is required")
	} else if _, ok := e.types.SourceType(req.GetType()); !ok {
		v.add("type", "%q is not an installed source type (see GET /v1/source-types)", req.GetType())
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	src := &harkv1.Source{Id: newID("src_"), Name: name, Type: req.GetType(), CreatedAt: e.timestamp()}
	var out *harkv1.Source
	e.layoutMu.Lock()
	defer e.layoutMu.Unlock()
	err := e.store.Update(ctx, func(tx Tx) error {
		if err := tx.PutSource(src); err != nil {
			return err
		}
		if err := ForEach(tx.Environments, (*harkv1.Environment).GetSlug, func(env *harkv1.Environment) error {
			return e.addSourceEnvironment(tx, src.GetId(), env.GetSlug())
		}); err != nil {
			return err
		}
		var err error
		out, err = e.sourceView(tx, src)
		return err
	})
	return out, err
}

// GetSource returns a source with its environments.
func (e *Engine) GetSource(ctx context.Context, id string) (*harkv1.Source, error) {
	var out *harkv1.Source
	err := e.store.View(ctx, func(tx Tx) error {
		src, err := tx.Source(id)
		if err != nil {
			return err
		}
		out, err = e.sourceView(tx, src)
		return err
	})
	return out, err
}

// ListSources returns a page of sources, oldest first, with environments.
func (e *Engine) ListSources(ctx context.Context, req *harkv1.ListSourcesRequest) (*harkv1.ListSourcesResponse, error) {
	p, err := readPage(req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	resp := &harkv1.ListSourcesResponse{}
	err = e.store.View(ctx, func(tx Tx) error {
		srcs, err := tx.Sources(p.after, p.limit())
		if err != nil {
			return err
		}
		srcs, resp.NextPageToken = finishPage(srcs, p, (*harkv1.Source).GetId)
		for _, src := range srcs {
			view, err := e.sourceView(tx, src)
			if err != nil {
				return err
			}
			resp.Sources = append(resp.Sources, view)
		}
		return nil
	})
	return resp, err
}

// DeleteSource deletes a source, its configurations and tokens, and its
// triggers in every environment: they could never match again.
func (e *Engine) DeleteSource(ctx context.Context, id string) error {
	err := e.store.Update(ctx, func(tx Tx) error {
		if _, err := tx.Source(id); err != nil {
			return err
		}
		err := ForEach(tx.Environments, (*harkv1.Environment).GetSlug, func(env *harkv1.Environment) error {
			list := func(after string, limit int) ([]*harkv1.Trigger, error) {
				return tx.Triggers(env.GetSlug(), after, limit)
			}
			return ForEach(list, (*harkv1.Trigger).GetId, func(t *harkv1.Trigger) error {
				if t.GetSourceId() != id {
					return nil
				}
				return tx.DeleteTrigger(env.GetSlug(), t.GetId())
			})
		})
		if err != nil {
			return err
		}
		return tx.DeleteSource(id)
	})
	if err != nil {
		return err
	}
	e.refusals.forget(id)
	return nil
}

// GetSourceEnvironment returns a source's configuration in one environment.
func (e *Engine) GetSourceEnvironment(ctx context.Context, sourceID, env string) (*harkv1.SourceEnvironment, error) {
	var out *harkv1.SourceEnvironment
	err := e.store.View(ctx, func(tx Tx) error {
		se, err := e.loadSourceEnvironment(tx, sourceID, env)
		if err != nil {
			return err
		}
		out, err = e.sourceEnvironmentView(tx, se)
		return err
	})
	return out, err
}

// UpdateSourceEnvironment changes the settings the request gives.
func (e *Engine) UpdateSourceEnvironment(ctx context.Context, req *harkv1.UpdateSourceEnvironmentRequest) (*harkv1.SourceEnvironment, error) {
	var out *harkv1.SourceEnvironment
	err := e.store.Update(ctx, func(tx Tx) error {
		src, err := tx.Source(req.GetSourceId())
		if err != nil {
			return err
		}
		se, err := e.loadSourceEnvironment(tx, req.GetSourceId(), req.GetEnvironment())
		if err != nil {
			return err
		}
		if err := e.applySourceEnvironmentUpdate(se, src.GetType(), req); err != nil {
			return err
		}
		se.UpdatedAt = e.timestamp()
		if err := tx.PutSourceEnvironment(se); err != nil {
			return err
		}
		out, err = e.sourceEnvironmentView(tx, se)
		return err
	})
	return out, err
}

// applySourceEnvironmentUpdate validates the request and applies it to se.
func (e *Engine) applySourceEnvironmentUpdate(se *harkv1.SourceEnvironment, sourceType string, req *harkv1.UpdateSourceEnvironmentRequest) error {
	var v validation
	if req.IdentifyEnabled != nil {
		se.IdentifyEnabled = req.GetIdentifyEnabled()
	}
	if req.IdempotencyEnabled != nil {
		se.IdempotencyEnabled = req.GetIdempotencyEnabled()
	}
	if req.GroupEnabled != nil {
		se.GroupEnabled = req.GetGroupEnabled()
	}
	if req.DeleteEnabled != nil {
		se.DeleteEnabled = req.DeleteEnabled
	}
	if w := req.GetIdempotencyWindow(); w != nil {
		d := w.AsDuration()
		if err := w.CheckValid(); err != nil || d < MinIdempotencyWindow || d > MaxIdempotencyWindow {
			v.add("idempotencyWindow", "must be between %s and %s (%s to %s)",
				durationSeconds(MinIdempotencyWindow), durationSeconds(MaxIdempotencyWindow), HumanDuration(MinIdempotencyWindow), HumanDuration(MaxIdempotencyWindow))
		} else {
			se.IdempotencyWindow = durationpb.New(d)
		}
	}
	st, _ := e.types.SourceType(sourceType)
	for _, key := range slices.Sorted(maps.Keys(req.GetPluginSettings())) {
		value := req.GetPluginSettings()[key]
		setting := findSetting(st, key)
		switch {
		case setting == nil:
			v.add("pluginSettings."+key, "is not a setting of source type %q (it takes: %s)", sourceType, settingKeys(st))
		case len(value) > maxSettingLen:
			v.add("pluginSettings."+key, "must be at most %d bytes", maxSettingLen)
		case setting.GetSecret() && value == SecretMask:
			// The client sent back what it read: keep the secret.
		case value == "":
			delete(se.PluginSettings, key)
		default:
			if se.PluginSettings == nil {
				se.PluginSettings = map[string]string{}
			}
			se.PluginSettings[key] = value
		}
	}
	if missing := missingSettings(st, se); len(missing) > 0 {
		for _, key := range missing {
			v.add("pluginSettings."+key, "is required by source type %q", sourceType)
		}
	}
	for _, s := range st.GetSettings() {
		if se.GetPluginSettings()[s.GetKey()] != "" {
			continue
		}
		if c := heldCondition(s, se.GetPluginSettings()); c != nil {
			v.add("pluginSettings."+s.GetKey(), "is required by source type %q when %s is %q", sourceType, c.GetSetting(), se.GetPluginSettings()[c.GetSetting()])
		}
	}
	return v.err()
}

// heldCondition returns the first of s's RequiredWhen conditions that holds
// for settings, or nil. A condition on a setting that is not set never
// holds: that setting's own requirement speaks for it.
func heldCondition(s *harkv1.SourceTypeSetting, settings map[string]string) *harkv1.SourceTypeSettingCondition {
	for _, c := range s.GetRequiredWhen() {
		other := settings[c.GetSetting()]
		if other != "" && slices.Contains(c.GetValues(), other) != c.GetExcept() {
			return c
		}
	}
	return nil
}

// missingSettings lists the required settings of st that se does not set.
func missingSettings(st *harkv1.SourceType, se *harkv1.SourceEnvironment) []string {
	var out []string
	for _, s := range st.GetSettings() {
		if s.GetRequired() && se.GetPluginSettings()[s.GetKey()] == "" {
			out = append(out, s.GetKey())
		}
	}
	return out
}

// RotateSourceToken gives a source environment a new token; the old one stops
// resolving in the same commit.
func (e *Engine) RotateSourceToken(ctx context.Context, sourceID, env string) (*harkv1.SourceEnvironment, error) {
	var out *harkv1.SourceEnvironment
	err := e.store.Update(ctx, func(tx Tx) error {
		se, err := e.loadSourceEnvironment(tx, sourceID, env)
		if err != nil {
			return err
		}
		if err := tx.SetIngestToken(sourceID, env, newToken()); err != nil {
			return err
		}
		se.UpdatedAt = e.timestamp()
		if err := tx.PutSourceEnvironment(se); err != nil {
			return err
		}
		out, err = e.sourceEnvironmentView(tx, se)
		return err
	})
	return out, err
}

// ResolveIngestToken returns the source and source environment a webhook
// token belongs to, with plugin settings unmasked: it is for the ingest path,
// never for responses. An unknown token is a *NotFoundError that does not
// repeat the token.
//
// Known tokens are cached (see catalogCache); the source and configuration
// returned are shared and must not be changed.
func (e *Engine) ResolveIngestToken(ctx context.Context, token string) (*harkv1.Source, *harkv1.SourceEnvironment, error) {
	gen := e.catalog.generation()
	if v, ok := e.catalog.tokens.Load(token); ok {
		if c := v.(*cachedToken); c.gen == gen {
			return c.src, c.se, nil
		}
	}
	var (
		src *harkv1.Source
		se  *harkv1.SourceEnvironment
	)
	err := e.store.View(ctx, func(tx Tx) error {
		sourceID, env, err := tx.ResolveIngestToken(token)
		if err != nil {
			if isNotFound(err) {
				return ErrUnknownIngestToken
			}
			return err
		}
		if src, err = tx.Source(sourceID); err != nil {
			return err
		}
		se, err = tx.SourceEnvironment(sourceID, env)
		return err
	})
	if err != nil && !isNotFound(err) {
		// The sender did nothing wrong: let it retry (503), not drop (500).
		return nil, nil, fmt.Errorf("%w: resolve webhook token: %v", ErrUnavailable, err)
	}
	if err != nil {
		return nil, nil, err
	}
	e.catalog.tokens.Store(token, &cachedToken{gen: gen, src: src, se: se})
	return src, se, nil
}

// completeLayout gives every source a configuration in every environment
// where one is missing. On one node layoutMu keeps gaps from appearing; on
// a shared store a source created on one node while another creates an
// environment leaves one, which every node closes when it sees either
// change (repairLayout). Two nodes closing the same gap conflict in the
// store, and the second finds it closed.
func (e *Engine) completeLayout(ctx context.Context) error {
	e.layoutMu.Lock()
	defer e.layoutMu.Unlock()
	return e.store.Update(ctx, func(tx Tx) error {
		return ForEach(tx.Sources, (*harkv1.Source).GetId, func(src *harkv1.Source) error {
			return ForEach(tx.Environments, (*harkv1.Environment).GetSlug, func(env *harkv1.Environment) error {
				found, err := exists(tx.SourceEnvironment(src.GetId(), env.GetSlug()))
				if err != nil || found {
					return err
				}
				e.log.Warn("repair: adding a missing source environment", "source", src.GetId(), "environment", env.GetSlug())
				return e.addSourceEnvironment(tx, src.GetId(), env.GetSlug())
			})
		})
	})
}

// addSourceEnvironment stores a default configuration and a new token.
func (e *Engine) addSourceEnvironment(tx Tx, sourceID, env string) error {
	se := &harkv1.SourceEnvironment{
		SourceId:          sourceID,
		Environment:       env,
		IdempotencyWindow: durationpb.New(DefaultIdempotencyWindow),
		UpdatedAt:         e.timestamp(),
	}
	if err := tx.PutSourceEnvironment(se); err != nil {
		return err
	}
	return tx.SetIngestToken(sourceID, env, newToken())
}

// loadSourceEnvironment reads a source environment, naming what is missing:
// the environment, or the source in it.
func (e *Engine) loadSourceEnvironment(tx Tx, sourceID, env string) (*harkv1.SourceEnvironment, error) {
	if _, err := tx.Environment(env); err != nil {
		return nil, err
	}
	se, err := tx.SourceEnvironment(sourceID, env)
	if isNotFound(err) {
		return nil, &NotFoundError{Resource: "source", ID: sourceID}
	}
	return se, err
}

// sourceView returns src with its environments as clients see them.
func (e *Engine) sourceView(tx Tx, src *harkv1.Source) (*harkv1.Source, error) {
	out := proto.CloneOf(src)
	ses, err := tx.SourceEnvironments(src.GetId())
	if err != nil {
		return nil, err
	}
	for _, se := range ses {
		view, err := e.sourceEnvironmentView(tx, se)
		if err != nil {
			return nil, err
		}
		out.Environments = append(out.Environments, view)
	}
	return out, nil
}

// sourceEnvironmentView adds the ingest URL and masks secret settings. Which
// settings are secret is the source type's word; for a type that is no longer
// installed every setting is masked, to be safe.
func (e *Engine) sourceEnvironmentView(tx Tx, se *harkv1.SourceEnvironment) (*harkv1.SourceEnvironment, error) {
	token, err := tx.IngestToken(se.GetSourceId(), se.GetEnvironment())
	if err != nil {
		return nil, fmt.Errorf("read ingest token: %w", err)
	}
	out := proto.CloneOf(se)
	out.IngestUrl = e.publicURL + IngestPath + token
	src, err := tx.Source(se.GetSourceId())
	if err != nil {
		return nil, err
	}
	st, installed := e.types.SourceType(src.GetType())
	for key := range out.PluginSettings {
		if s := findSetting(st, key); !installed || s == nil || s.GetSecret() {
			out.PluginSettings[key] = SecretMask
		}
	}
	return out, nil
}

func findSetting(st *harkv1.SourceType, key string) *harkv1.SourceTypeSetting {
	for _, s := range st.GetSettings() {
		if s.GetKey() == key {
			return s
		}
	}
	return nil
}

func settingKeys(st *harkv1.SourceType) string {
	keys := make([]string, 0, len(st.GetSettings()))
	for _, s := range st.GetSettings() {
		keys = append(keys, s.GetKey())
	}
	if len(keys) == 0 {
		return "no settings"
	}
	return strings.Join(keys, ", ")
}
