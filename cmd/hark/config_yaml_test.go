package main

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// TestConfigYAMLRoundTrip: values YAML would read as something else (true,
// 042, null, a leading space, a colon, several lines, a ${VAR}) are written
// so that they read back as the same strings, and writing is stable.
func TestConfigYAMLRoundTrip(t *testing.T) {
	t.Parallel()
	tricky := []string{"true", "no", "042", "1e3", "null", "~", " leading", "trailing ", "a: b", "- x", "#hash", "${X}",
		"line one\nline two", "ends with newline\n", `"quoted"`, "'single'", "[1, 2]", "{a: 1}", "@at", "tab\there", "ünïcode → ok"}
	doc := &harkv1.ConfigDocument{ApiVersion: "hark/v1"}
	for i, s := range tricky {
		doc.Workflows = append(doc.Workflows, &harkv1.ConfigWorkflow{Key: "w", Name: s, Description: s, Active: proto.Bool(i%2 == 0)})
		doc.Triggers = append(doc.Triggers, &harkv1.ConfigTrigger{Source: s, Event: s, WorkflowKey: "w", Condition: s,
			Mapping: &harkv1.TriggerMapping{Data: s}, Status: "active"})
		doc.Destinations = append(doc.Destinations, &harkv1.ConfigDestination{Name: s, WorkflowKeys: []string{s, "w"}, Settings: map[string]string{s: s}})
	}
	out, err := encodeConfig(doc, nil)
	if err != nil {
		t.Fatal(err)
	}
	f, err := decodeConfig("doc.yaml", out)
	if err != nil {
		t.Fatalf("decode what encode wrote: %v\n%s", err, out)
	}
	if !proto.Equal(doc, f.doc) {
		t.Fatalf("round trip:\n%s\nwant:\n%s\nyaml:\n%s", prototext.Format(f.doc), prototext.Format(doc), out)
	}
	again, err := encodeConfig(f.doc, nil)
	if err != nil || string(again) != string(out) {
		t.Fatalf("a second encoding differs (%v):\n%s\nfirst:\n%s", err, again, out)
	}
	if !strings.Contains(string(out), "|-\n") {
		t.Errorf("multi-line strings are not literal blocks:\n%s", out)
	}
}

// TestConfigEmptySections: an export writes the sections it covers even
// when empty, so applying it manages (and with --prune empties) them; a
// file's sections are the ones it lists.
func TestConfigEmptySections(t *testing.T) {
	t.Parallel()
	out, err := encodeConfig(&harkv1.ConfigDocument{ApiVersion: "hark/v1"}, []string{"triggers", "destinations"})
	if err != nil {
		t.Fatal(err)
	}
	if want := "apiVersion: hark/v1\ntriggers: []\ndestinations: []\n"; string(out) != want {
		t.Fatalf("encode = %q, want %q", out, want)
	}
	f, err := decodeConfig("doc.yaml", out)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(f.sections, ","); got != "triggers,destinations" {
		t.Fatalf("sections = %q", got)
	}
}
