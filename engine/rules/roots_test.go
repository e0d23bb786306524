package rules_test

import (
	"errors"
	"testing"

	"github.com/harkhq/hark/engine/rules"
)

// segmentRoots are the roots of a Segment source's events.
var segmentRoots = rules.NewRoots(rules.SegmentFields...)

// TestCorpusRootsAreKnown checks that every mapping of the corpus starts its
// paths from names a Segment event's environment provides, so saving none of
// them is refused. The one exception reads a top-level name on purpose to
// pin that a missing field is nil at run time (stored triggers keep
// running); saving it is refused, as TestCheckRoots pins for `nope`.
func TestCorpusRootsAreKnown(t *testing.T) {
	t.Parallel()
	for _, c := range mappingCorpus {
		if c.name == "missing top-level" {
			continue
		}
		p, err := rules.CompileValue(c.source)
		if err != nil {
			t.Fatalf("CompileValue(%q): %v", c.source, err)
		}
		if err := p.CheckRoots(segmentRoots); err != nil {
			t.Errorf("CheckRoots(%q) = %v, want nil", c.source, err)
		}
	}
}

func TestCheckRoots(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, source string
		condition    bool
		line, column int
		message      string // "" when the roots are known
	}{
		{name: "typo of properties", source: `propertes.plan == "pro"`, condition: true,
			line: 1, column: 1, message: "unknown name propertes; did you mean properties?"},
		{name: "typo of userId", source: `[usrId]`,
			line: 1, column: 2, message: "unknown name usrId; did you mean userId?"},
		{name: "case of userId", source: `userid`,
			line: 1, column: 1, message: "unknown name userid; did you mean userId?"},
		{name: "typo on line 2", source: "properties.plan == \"pro\" &&\n  trats.vip", condition: true,
			line: 2, column: 3, message: "unknown name trats; did you mean traits?"},
		{name: "typo inside a closure", source: `filter(properties.tags, # != usrId)`,
			line: 1, column: 30, message: "unknown name usrId; did you mean userId?"},
		{name: "typo inside an object", source: `{"id": userId, "email": contxt.traits.email}`,
			line: 1, column: 25, message: "unknown name contxt; did you mean context?"},
		{name: "first in source order", source: `{"a": bdy.x, "b": usrId}`,
			line: 1, column: 7, message: "unknown name bdy; did you mean body?"},
		{name: "no suggestion", source: `nope`,
			line: 1, column: 1, message: "unknown name nope; an expression starts with one of _metadata, action, anonymousId, body, category, channel, context, data, event, groupId, headers, integrations, messageId, name, originalTimestamp, previousId, projectId, properties, receivedAt, request_ip, rudderId, sentAt, timestamp, traits, type, userId, user_id, version, writeKey (another field of the event is body.nope)"},
		{name: "let variable shadows nothing", source: `let p = properties; p.plan`},
		{name: "let variable used in a closure", source: `let ids = properties.tags; map(ids, # + userId)`},
		{name: "let value reads the environment", source: `let x = usrId; x`,
			line: 1, column: 9, message: "unknown name usrId; did you mean userId?"},
		{name: "let variable out of its scope", source: `[(let v = 1; v), v]`,
			line: 1, column: 18, message: "unknown name v; an expression starts with one of _metadata, action, anonymousId, body, category, channel, context, data, event, groupId, headers, integrations, messageId, name, originalTimestamp, previousId, projectId, properties, receivedAt, request_ip, rudderId, sentAt, timestamp, traits, type, userId, user_id, version, writeKey (another field of the event is body.v)"},
		{name: "closure pointers", source: `reduce(properties.tags, #acc + #, "") + join(map(data.recipients, .id ?? ""), ",")`},
		{name: "functions and builtins", source: `upper(trim(string(now().Year()))) + toJSON(len(properties))`},
		{name: "method calls", source: `date(timestamp).Format("2006")`},
		{name: "object keys are not roots", source: `{id: userId, plan: traits.plan}`},
		{name: "member names are not roots", source: `body.usrId ?? properties.propertes`},
		{name: "headers and common form", source: `headers["x-request-id"] + user_id + string(data.x)`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			compile := rules.CompileValue
			if c.condition {
				compile = rules.CompileCondition
			}
			p, err := compile(c.source)
			if err != nil {
				t.Fatalf("compile %q: %v", c.source, err)
			}
			err = p.CheckRoots(segmentRoots)
			if c.message == "" {
				if err != nil {
					t.Fatalf("CheckRoots(%q) = %v, want nil", c.source, err)
				}
				return
			}
			var ce *rules.CompileError
			if !errors.As(err, &ce) {
				t.Fatalf("CheckRoots(%q) = %T %v, want a *rules.CompileError", c.source, err, err)
			}
			if ce.Line != c.line || ce.Column != c.column || ce.Message != c.message || ce.Source != c.source {
				t.Fatalf("CheckRoots(%q) = %d:%d %q, want %d:%d %q", c.source, ce.Line, ce.Column, ce.Message, c.line, c.column, c.message)
			}
			if ce.Snippet == "" {
				t.Fatalf("CheckRoots(%q): no snippet", c.source)
			}
		})
	}
}

// TestCheckRootsOfOtherSources checks that the roots are those given: a
// webhook source's events have top-level fields of their own.
func TestCheckRootsOfOtherSources(t *testing.T) {
	t.Parallel()
	p, err := rules.CompileCondition(`livemode && object == "event"`)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.CheckRoots(rules.NewRoots("livemode", "object")); err != nil {
		t.Fatalf("CheckRoots with the webhook's fields = %v, want nil", err)
	}
	if err := p.CheckRoots(rules.NewRoots()); err == nil {
		t.Fatalf("CheckRoots with hark's names only = nil, want an error for livemode")
	}
}
