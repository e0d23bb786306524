package engine_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/harkhq/hark/engine"
	"github.com/harkhq/hark/engine/badgerstore"
	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// withRequired is a source type with a required setting.
var withRequired = &harkv1.SourceType{Type: "needs-key", Settings: []*harkv1.SourceTypeSetting{
	{Key: "api_key", Secret: true, Required: true},
	{Key: "region"},
}}

// oneSourceType stands in for the plugin host with one source type: what is
// tested is the engine's handling of what a plugin describes.
type oneSourceType struct{ st *harkv1.SourceType }

func (o oneSourceType) SourceType(name string) (*harkv1.SourceType, bool) {
	return o.st, name == o.st.GetType()
}
func (o oneSourceType) SourceTypes() []*harkv1.SourceType { return []*harkv1.SourceType{o.st} }

// newEngine starts an engine on a Badger store in a temporary directory,
// with the one source type st and no plugin behind it (noTranslator), and
// returns the store too, for tests that write what the engine would not.
func newEngine(t *testing.T, st *harkv1.SourceType) (*engine.Engine, *badgerstore.Store) {
	t.Helper()
	store, err := badgerstore.Open(badgerstore.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	e, err := engine.New(context.Background(), engine.Config{Store: store, SourceTypes: oneSourceType{st}, Translator: noTranslator{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e, store
}

// TestRequiredSettings: a source environment cannot be updated into a
// state without a required setting, and its webhook answers 503 with the
// reason until the setting is set (Segment retries 503s, so nothing sent
// meanwhile is lost). Setting.Required used to be documented and ignored.
func TestRequiredSettings(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e, _ := newEngine(t, withRequired)
	src, err := e.CreateSource(ctx, &harkv1.CreateSourceRequest{Name: "s", Type: "needs-key"})
	if err != nil {
		t.Fatal(err)
	}
	update := func(settings map[string]string) error {
		_, err := e.UpdateSourceEnvironment(ctx, &harkv1.UpdateSourceEnvironmentRequest{
			SourceId: src.GetId(), Environment: "development", PluginSettings: settings,
		})
		return err
	}
	var v *engine.ValidationError
	if err := update(map[string]string{"region": "eu"}); !errors.As(err, &v) ||
		!slices.ContainsFunc(v.Violations, func(f engine.FieldViolation) bool { return f.Field == "pluginSettings.api_key" }) {
		t.Fatalf("update without the required setting: %v, want a violation of pluginSettings.api_key", err)
	}
	token := tokenOf(t, src, "development")
	var notReady *engine.NotReadyError
	if _, err := e.Receive(ctx, token, engine.Delivery{Body: []byte(`{}`)}); !errors.As(err, &notReady) || !errors.Is(err, engine.ErrUnavailable) {
		t.Fatalf("delivery before the setting is set: %v, want a NotReadyError (503)", err)
	}
	if err := update(map[string]string{"api_key": "k", "region": "eu"}); err != nil {
		t.Fatalf("update with the required setting: %v", err)
	}
	if err := update(map[string]string{"api_key": ""}); !errors.As(err, &v) {
		t.Fatalf("removing the required setting: %v, want a violation", err)
	}
	// Once set, the delivery goes on to the plugin.
	if _, err := e.Receive(ctx, token, engine.Delivery{Body: []byte(`{}`)}); !errors.Is(err, errNoPlugin) {
		t.Fatalf("delivery with the setting set: %v, want it handed to the translator", err)
	}
}

var errNoPlugin = errors.New("the test has no plugin")

// noTranslator fails every call: the test checks only that a delivery got
// that far.
type noTranslator struct{}

func (noTranslator) Translate(context.Context, string, []engine.Delivery) ([]engine.Translation, error) {
	return nil, errNoPlugin
}

func tokenOf(t *testing.T, src *harkv1.Source, env string) string {
	t.Helper()
	for _, se := range src.GetEnvironments() {
		if se.GetEnvironment() == env {
			u := se.GetIngestUrl()
			return u[len(u)-43:]
		}
	}
	t.Fatalf("source has no %s environment", env)
	return ""
}

// TestRequiredWhenSettings: a setting required by a condition on another
// one (the http source's signing_secret unless preset is none) refuses to
// save while the condition holds and it is unset, naming why; once the
// condition no longer holds, or the setting is given, the update saves.
func TestRequiredWhenSettings(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := &harkv1.SourceType{Type: "verifies", Settings: []*harkv1.SourceTypeSetting{
		{Key: "mode", Required: true},
		{Key: "secret", Secret: true, RequiredWhen: []*harkv1.SourceTypeSettingCondition{{Setting: "mode", Values: []string{"none"}, Except: true}}},
		{Key: "header", RequiredWhen: []*harkv1.SourceTypeSettingCondition{{Setting: "mode", Values: []string{"custom"}}}},
	}}
	e, _ := newEngine(t, st)
	src, err := e.CreateSource(ctx, &harkv1.CreateSourceRequest{Name: "s", Type: "verifies"})
	if err != nil {
		t.Fatal(err)
	}
	update := func(settings map[string]string) error {
		_, err := e.UpdateSourceEnvironment(ctx, &harkv1.UpdateSourceEnvironmentRequest{
			SourceId: src.GetId(), Environment: "development", PluginSettings: settings,
		})
		return err
	}
	violations := func(err error) map[string]string {
		var v *engine.ValidationError
		if !errors.As(err, &v) {
			t.Fatalf("update: %v, want a validation error", err)
		}
		out := map[string]string{}
		for _, f := range v.Violations {
			out[f.Field] = f.Description
		}
		return out
	}
	if got := violations(update(map[string]string{"mode": "signed"})); len(got) != 1 ||
		got["pluginSettings.secret"] != `is required by source type "verifies" when mode is "signed"` {
		t.Fatalf("mode signed without a secret: %v, want only pluginSettings.secret, saying why", got)
	}
	if got := violations(update(map[string]string{"mode": "custom", "secret": "s"})); len(got) != 1 || got["pluginSettings.header"] == "" {
		t.Fatalf("mode custom without a header: %v, want only pluginSettings.header", got)
	}
	// The mode alone is missing: only its own requirement is said.
	if got := violations(update(map[string]string{"secret": "s"})); len(got) != 1 || got["pluginSettings.mode"] == "" {
		t.Fatalf("no mode: %v, want only pluginSettings.mode", got)
	}
	for _, ok := range []map[string]string{{"mode": "none"}, {"mode": "signed", "secret": "s"}, {"mode": "custom", "header": "X-Sig"}} {
		if err := update(ok); err != nil {
			t.Fatalf("update %v: %v", ok, err)
		}
	}
	// Removing the secret a verifying mode needs is refused too.
	if got := violations(update(map[string]string{"secret": ""})); got["pluginSettings.secret"] == "" {
		t.Fatalf("removing the secret of mode custom: %v, want pluginSettings.secret", got)
	}
}
