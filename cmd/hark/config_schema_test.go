package main

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/reflect/protoreflect"

	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// schemaPath is the published JSON Schema of configuration documents.
var schemaPath = filepath.Join("..", "..", "schema", "hark-config.v1.json")

var (
	schemaOnce     sync.Once
	compiledSchema *jsonschema.Schema
	schemaErr      error
)

func configSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	schemaOnce.Do(func() {
		c := jsonschema.NewCompiler()
		compiledSchema, schemaErr = c.Compile(schemaPath)
	})
	if schemaErr != nil {
		t.Fatalf("compile %s: %v", schemaPath, schemaErr)
	}
	return compiledSchema
}

// schemaCheck validates a YAML document against the schema, as an editor
// would.
func schemaCheck(t *testing.T, doc string) error {
	t.Helper()
	var v any
	if err := yaml.Unmarshal([]byte(doc), &v); err != nil {
		t.Fatalf("yaml: %v", err)
	}
	return configSchema(t).Validate(v)
}

// wantSchemaValid fails the test unless the exported document validates.
func wantSchemaValid(t *testing.T, doc string) {
	t.Helper()
	if err := schemaCheck(t, doc); err != nil {
		t.Fatalf("document does not validate against %s: %v\n%s", schemaPath, err, doc)
	}
}

// TestConfigSchemaMatchesProto keeps the hand-written schema and the
// Config* messages in step: every field of a document message is a
// property of its schema object under its JSON name, no property lacks a
// field, and every object refuses unknown properties, as hark apply does.
func TestConfigSchemaMatchesProto(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(schemaPath)
	if err != nil {
		t.Fatal(err)
	}
	var schema map[string]any
	if err := yaml.Unmarshal(raw, &schema); err != nil { // JSON is YAML
		t.Fatal(err)
	}
	defs, _ := schema["$defs"].(map[string]any)
	resolve := func(node map[string]any) map[string]any {
		if ref, ok := node["$ref"].(string); ok {
			def, _ := defs[strings.TrimPrefix(ref, "#/$defs/")].(map[string]any)
			return def
		}
		return node
	}
	var walk func(path string, node map[string]any, md protoreflect.MessageDescriptor)
	walk = func(path string, node map[string]any, md protoreflect.MessageDescriptor) {
		node = resolve(node)
		if node["additionalProperties"] != false {
			t.Errorf("%s: the schema allows unknown properties", path)
		}
		props, _ := node["properties"].(map[string]any)
		fields := md.Fields()
		for i := range fields.Len() {
			fd := fields.Get(i)
			prop, ok := props[fd.JSONName()].(map[string]any)
			if !ok {
				t.Errorf("%s: the schema lacks %s", path, fd.JSONName())
				continue
			}
			if fd.Kind() == protoreflect.MessageKind && !fd.IsMap() {
				if fd.IsList() {
					prop, _ = prop["items"].(map[string]any)
				}
				walk(path+"."+fd.JSONName(), prop, fd.Message())
			}
		}
		for name := range props {
			if fields.ByJSONName(name) == nil {
				t.Errorf("%s: the schema has %s, which %s lacks", path, name, md.FullName())
			}
		}
	}
	walk("document", schema, (&harkv1.ConfigDocument{}).ProtoReflect().Descriptor())
}

// TestConfigSchemaRefuses: the schema is not vacuous: what hark apply
// refuses for its shape, an editor flags too.
func TestConfigSchemaRefuses(t *testing.T) {
	t.Parallel()
	for name, doc := range map[string]string{
		"unknown key":   "apiVersion: hark/v1\nworkflows:\n  - key: a\n    titel: A\n",
		"wrong type":    "apiVersion: hark/v1\nsources:\n  - name: S\n    identifyEnabled: \"yes\"\n",
		"no version":    "workflows: []\n",
		"other version": "apiVersion: hark/v2\n",
		"bad status":    "apiVersion: hark/v1\ntriggers:\n  - source: S\n    workflowKey: w\n    status: on\n",
		"bad key":       "apiVersion: hark/v1\nworkflows:\n  - key: Not A Key\n",
		"no workflow":   "apiVersion: hark/v1\ntriggers:\n  - source: S\n    event: E\n",
		"bad mapping":   "apiVersion: hark/v1\ntriggers:\n  - source: S\n    workflowKey: w\n    mapping:\n      recipient: userId\n",
		"bad action":    "apiVersion: hark/v1\ntriggers:\n  - source: S\n    action: tenant_set\n",
		"field the action does not read": "apiVersion: hark/v1\ntriggers:\n  - source: S\n    action: tenants_set\n" +
			"    actionMapping:\n      id: userId\n      users: userId\n",
		"required field missing":               "apiVersion: hark/v1\ntriggers:\n  - source: S\n    action: objects_set\n    actionMapping:\n      id: userId\n",
		"workflow on an action":                "apiVersion: hark/v1\ntriggers:\n  - source: S\n    action: tenants_delete\n    workflowKey: w\n    actionMapping:\n      id: userId\n",
		"frequency on an action":               "apiVersion: hark/v1\ntriggers:\n  - source: S\n    action: users_delete\n    frequency: once_per_recipient\n",
		"action mapping on a workflow trigger": "apiVersion: hark/v1\ntriggers:\n  - source: S\n    workflowKey: w\n    actionMapping:\n      id: userId\n",
		"cancel without a key":                 "apiVersion: hark/v1\ntriggers:\n  - source: S\n    action: workflows_cancel\n    workflowKey: w\n",
		"bad frequency":                        "apiVersion: hark/v1\ntriggers:\n  - source: S\n    workflowKey: w\n    frequency: once\n",
		"delete toggle a string":               "apiVersion: hark/v1\nsources:\n  - name: S\n    deleteEnabled: \"off\"\n",
	} {
		if err := schemaCheck(t, doc); err == nil {
			t.Errorf("%s: the schema accepts\n%s", name, doc)
		}
	}
	for _, doc := range []string{"apiVersion: hark/v1\n", "apiVersion: hark/v1\nworkflows: []\ntriggers: []\n",
		"apiVersion: hark/v1\ntriggers:\n  - source: S\n    action: users_delete\n",
		"apiVersion: hark/v1\ntriggers:\n  - source: S\n    action: workflows_trigger\n    workflowKey: w\n    frequency: once_per_recipient\n",
		"apiVersion: hark/v1\ntriggers:\n  - source: S\n    action: workflows_cancel\n    workflowKey: w\n    mapping:\n      cancellationKey: userId\n",
		"apiVersion: hark/v1\ntriggers:\n  - source: S\n    action: audiences_add_member\n    actionMapping:\n      audienceKey: '\"beta\"'\n      tenant: userId\n",
		"apiVersion: hark/v1\nsources:\n  - name: S\n    groupEnabled: true\n    deleteEnabled: false\n"} {
		wantSchemaValid(t, doc)
	}
}

// TestConfigREADMEExample: the example documents of the README's
// "Configuration as code" and of hark export's help read as hark apply
// reads them and validate against the schema, so the example a user copies
// is a valid file.
func TestConfigREADMEExample(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(raw), "\n## Configuration as code\n")
	if !ok {
		t.Fatal("README has no Configuration as code section")
	}
	_, block, ok := strings.Cut(section, "```yaml\n")
	if !ok {
		t.Fatal("the section has no yaml example")
	}
	block, _, _ = strings.Cut(block, "```")
	f, err := decodeConfig("README.md", []byte(block))
	if err != nil {
		t.Fatalf("the README's example: %v", err)
	}
	wantSchemaValid(t, block)
	if ts := f.doc.GetTriggers(); len(ts) < 2 || ts[1].GetAction() != "tenants_set" {
		t.Fatalf("the README's example shows no action trigger: %v", ts)
	}

	// And the example of the CLI's help (indented by two spaces there).
	start := strings.Index(configLong, "  apiVersion:")
	end := strings.Index(configLong, "  destinations: []\n")
	if start < 0 || end < start {
		t.Fatal("the help has no example document")
	}
	var help strings.Builder
	for line := range strings.Lines(configLong[start : end+len("  destinations: []\n")]) {
		help.WriteString(strings.TrimPrefix(line, "  "))
	}
	if _, err := decodeConfig("help", []byte(help.String())); err != nil {
		t.Fatalf("the help's example: %v", err)
	}
	wantSchemaValid(t, help.String())
}
