package rules_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/harkhq/hark/engine/rules"
)

// fixedEventJSON is the one event every corpus mapping runs against: a
// Segment track as it arrives, with the parts each generation of Knock
// mappings reads (properties, context, top-level traits, ids).
const fixedEventJSON = `{
  "type": "track",
  "event": "Comment Created",
  "userId": "actor1",
  "anonymousId": "anon-1",
  "messageId": "msg-1",
  "timestamp": "2026-01-02T03:04:05Z",
  "properties": {
    "post": {"id": 42, "title": "Hello"},
    "comment": {"id": 7, "body": "Nice post"},
    "recipients": ["u2", "u3", {"id": "u9", "email": "u9@example.org"}],
    "other": "u4",
    "tags": ["a", "b"],
    "amount": 129.5,
    "vip": true,
    "text": "str"
  },
  "context": {
    "library": {"name": "analytics.js", "version": "2.1.0"},
    "traits": {"email": "actor@example.org"}
  },
  "traits": {"plan": "team"}
}`

// fixedHeaders are the request headers of the fixed event, as a client
// sends them (mixed case).
var fixedHeaders = map[string]string{
	"Host":         "hark.example.com",
	"X-Request-Id": "req-1",
	"User-Agent":   "Segment.io/1.0",
}

// fixedEvent returns the fixed event decoded as JSON is (float64 numbers,
// []any lists, map[string]any objects), and its data (the properties).
func fixedEvent(t testing.TB) (original, data map[string]any) {
	t.Helper()
	if err := json.Unmarshal([]byte(fixedEventJSON), &original); err != nil {
		t.Fatalf("decode the fixed event: %v", err)
	}
	return original, original["properties"].(map[string]any)
}

// fixedEnv is the expression environment of the fixed event.
func fixedEnv(t testing.TB) rules.Env {
	t.Helper()
	original, data := fixedEvent(t)
	return rules.NewEnv(original, data, "actor1", fixedHeaders)
}

// mappingCorpus holds real mappings in every Knock style. Each must keep
// compiling and must keep mapping the fixed event to want: a change of the
// language, the patch or the environment that breaks one breaks stored
// triggers.
var mappingCorpus = []struct {
	name, source string
	want         any
}{
	// Knock's legacy Segment paths: the original event's top-level fields.
	{"properties.x", `properties.other`, "u4"},
	{"properties nested", `properties.post.title`, "Hello"},
	{"properties number", `properties.post.id`, 42.0},
	{"properties bool", `properties.vip`, true},
	{"properties list index", `properties.tags[0]`, "a"},
	{"properties bracket", `properties["comment"]["body"]`, "Nice post"},
	{"userId", `userId`, "actor1"},
	{"anonymousId", `anonymousId`, "anon-1"},
	{"event", `event`, "Comment Created"},
	{"messageId", `messageId`, "msg-1"},
	{"type", `type`, "track"},
	{"context.traits.email", `context.traits.email`, "actor@example.org"},
	{"context.library", `context.library.name`, "analytics.js"},
	{"traits.x", `traits.plan`, "team"},
	{"properties.recipients", `properties.recipients`, []any{"u2", "u3", map[string]any{"id": "u9", "email": "u9@example.org"}}},
	{"cancellation key number", `properties.comment.id`, 7.0},
	// Knock's common-format paths.
	{"data.x", `data.comment.body`, "Nice post"},
	{"data.recipients", `data.recipients[1]`, "u3"},
	{"user_id", `user_id`, "actor1"},
	// Knock's newer paths: the whole body and the request headers.
	{"body.x", `body.userId`, "actor1"},
	{"body.properties.x", `body.properties.post.title`, "Hello"},
	{"body.context", `body.context.library.name`, "analytics.js"},
	{"headers.x", `headers.host`, "hark.example.com"},
	{"headers bracket", `headers["x-request-id"]`, "req-1"},
	{"headers user agent", `headers["user-agent"]`, "Segment.io/1.0"},
	// Literals built from paths.
	{"object literal", `{"a": properties.post.title}`, map[string]any{"a": "Hello"}},
	{"object literal unquoted keys", `{a: userId, b: data.post.id}`, map[string]any{"a": "actor1", "b": 42.0}},
	{"done-when data", `{"comment": properties.comment.body, "post": data.post.title, "lib": body.context.library.name}`,
		map[string]any{"comment": "Nice post", "post": "Hello", "lib": "analytics.js"}},
	{"list literal", `[userId, properties.other]`, []any{"actor1", "u4"}},
	{"inline user object", `{"id": userId, "email": context.traits.email}`, map[string]any{"id": "actor1", "email": "actor@example.org"}},
	{"tenant object", `{"id": "acme"}`, map[string]any{"id": "acme"}},
	{"missing field in object", `{"x": properties.nope.deeper}`, map[string]any{"x": nil}},
	// A little computation, as mappings do.
	{"concatenation", `properties.post.title + " by " + userId`, "Hello by actor1"},
	{"arithmetic", `properties.amount * 100`, 12950.0},
	{"string of a number", `string(properties.comment.id)`, "7"},
	{"len", `len(properties.recipients)`, 3},
	{"default with ??", `properties.missing ?? "fallback"`, "fallback"},
	{"conditional", `properties.vip ? "vip" : "regular"`, "vip"},
	{"filter strings", `filter(properties.recipients, type(#) == "string")`, []any{"u2", "u3"}},
	// Nil-safe paths: a missing field anywhere along a path is nil.
	{"missing top-level", `nope`, nil},
	{"missing leaf", `properties.nope`, nil},
	{"missing middle", `properties.nope.deeper.still`, nil},
	{"missing under body", `body.properties.nope.deeper`, nil},
	{"missing under data", `data.nope.deeper`, nil},
	{"missing header", `headers.authorization`, nil},
	{"missing index", `properties.nope[0]`, nil},
	{"missing under context", `context.traits.nope.x`, nil},
}

func TestMappingCorpus(t *testing.T) {
	t.Parallel()
	env := fixedEnv(t)
	for _, c := range mappingCorpus {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			p, err := rules.CompileValue(c.source)
			if err != nil {
				t.Fatalf("CompileValue(%q): %v", c.source, err)
			}
			if p.Source() != c.source {
				t.Fatalf("Source() = %q, want %q", p.Source(), c.source)
			}
			got, err := p.Eval(env)
			if err != nil {
				t.Fatalf("Eval(%q): %v", c.source, err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("Eval(%q) = %#v, want %#v", c.source, got, c.want)
			}
		})
	}
}

// TestEvalDoesNotChangeTheEvent checks that running mappings leaves the
// event as it was: one event runs many triggers.
func TestEvalDoesNotChangeTheEvent(t *testing.T) {
	t.Parallel()
	original, data := fixedEvent(t)
	env := rules.NewEnv(original, data, "actor1", fixedHeaders)
	for _, c := range mappingCorpus {
		p, err := rules.CompileValue(c.source)
		if err != nil {
			t.Fatalf("CompileValue(%q): %v", c.source, err)
		}
		if _, err := p.Eval(env); err != nil {
			t.Fatalf("Eval(%q): %v", c.source, err)
		}
	}
	want, _ := fixedEvent(t)
	if !reflect.DeepEqual(original, want) {
		t.Fatalf("the event changed while mappings ran:\n got %#v\nwant %#v", original, want)
	}
	if _, ok := original["body"]; ok {
		t.Fatalf("NewEnv added `body` to the original event")
	}
}

func TestCompileErrors(t *testing.T) {
	t.Parallel()
	tooLong := strings.Repeat("a", rules.MaxSourceLen+1)
	cases := []struct {
		name, source string
		condition    bool // compile as a condition instead of a value
		line, column int
		message      string
		snippet      string
	}{
		{
			name: "incomplete comparison", source: `properties.post.id ==`,
			line: 1, column: 21, message: "unexpected token EOF",
			snippet: "properties.post.id ==\n                    ^",
		},
		{
			name: "incomplete comparison as condition", source: `properties.post.id ==`, condition: true,
			line: 1, column: 21, message: "unexpected token EOF",
			snippet: "properties.post.id ==\n                    ^",
		},
		{
			name: "error on line 2", source: "properties.post.id == 42 &&\n  properties.x ==",
			line: 2, column: 17, message: "unexpected token EOF",
			snippet: "  properties.x ==\n                ^",
		},
		{
			name: "unexpected identifier on line 2", source: "x\ny\nz ==",
			line: 2, column: 1, message: `unexpected token Identifier("y")`,
			snippet: "y\n^",
		},
		{
			name: "error on line 3", source: "1 ==\n2 ==\n3 +",
			line: 3, column: 3, message: "unexpected token EOF",
			snippet: "3 +\n  ^",
		},
		{
			name: "tab counts as one column", source: "\tproperties.x ==",
			line: 1, column: 16, message: "unexpected token EOF",
			snippet: " properties.x ==\n               ^",
		},
		{
			name: "columns count characters", source: `"日本" ==`,
			line: 1, column: 7, message: "unexpected token EOF",
			snippet: "\"日本\" ==\n      ^",
		},
		{
			name: "trailing dot", source: `properties.`,
			line: 1, column: 11, message: "unexpected end of expression",
			snippet: "properties.\n          ^",
		},
		{
			name: "unterminated string", source: `"abc`,
			line: 1, column: 5, message: "literal not terminated",
			snippet: "\"abc\n    ^",
		},
		{
			name: "javascript equality", source: `properties.post.id === 42`,
			line: 1, column: 22, message: `unexpected token Operator("=")`,
			snippet: "properties.post.id === 42\n                     ^",
		},
		{
			name: "assignment", source: `properties.post.id = 42`,
			line: 1, column: 20, message: `unexpected token Operator("=")`,
			snippet: "properties.post.id = 42\n                   ^",
		},
		{
			name: "unclosed object", source: `{"a": properties.b`,
			line: 1, column: 18, message: "unexpected token EOF",
			snippet: "{\"a\": properties.b\n                 ^",
		},
		{
			name: "unclosed list", source: `[userId, properties.other`,
			line: 1, column: 25, message: "unexpected token EOF",
			snippet: "[userId, properties.other\n                        ^",
		},
		{
			name: "unknown character", source: `@`,
			line: 1, column: 1, message: "unrecognized character: U+0040 '@'",
			snippet: "@\n^",
		},
		{
			name: "bad regexp", source: `properties.text matches '('`,
			line: 1, column: 17, message: "error parsing regexp: missing closing ): `(`",
			snippet: "properties.text matches '('\n                ^",
		},
		{
			name: "builtin with wrong argument count", source: `len(1, 2)`,
			line: 1, column: 1, message: "invalid number of arguments (expected 1, got 2)",
			snippet: "len(1, 2)\n^",
		},
		{
			name: "condition of a string literal", source: `"text"`, condition: true,
			line: 1, column: 1, message: "expected bool, but got string",
			snippet: "\"text\"\n^",
		},
		{
			name: "condition of a number", source: `42`, condition: true,
			line: 1, column: 1, message: "expected bool, but got int",
			snippet: "42\n^",
		},
		{
			name: "empty", source: ``,
			line: 1, column: 1, message: "the expression is empty",
		},
		{
			name: "blank", source: " \n\t ",
			line: 1, column: 1, message: "the expression is empty",
		},
		{
			name: "empty condition", source: ``, condition: true,
			line: 1, column: 1, message: "the expression is empty",
		},
		{
			name: "too long", source: tooLong,
			line: 1, column: 1, message: fmt.Sprintf("the expression is %d bytes; at most %d", rules.MaxSourceLen+1, rules.MaxSourceLen),
		},
		{
			name: "too many nodes", source: "1" + strings.Repeat("+1", rules.MaxNodes),
			line: 1, column: 2002, message: "compilation failed: expression exceeds maximum allowed nodes",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			compile := rules.CompileValue
			if c.condition {
				compile = rules.CompileCondition
			}
			p, err := compile(c.source)
			if err == nil {
				t.Fatalf("compile(%q) = %v, want a compile error", trgShort(c.source), p)
			}
			var ce *rules.CompileError
			if !errors.As(err, &ce) {
				t.Fatalf("compile(%q) error %T %v, want *rules.CompileError", trgShort(c.source), err, err)
			}
			if ce.Line != c.line || ce.Column != c.column || ce.Message != c.message {
				t.Fatalf("compile(%q) = %d:%d %q, want %d:%d %q", trgShort(c.source), ce.Line, ce.Column, ce.Message, c.line, c.column, c.message)
			}
			if c.snippet != "" && ce.Snippet != c.snippet {
				t.Fatalf("snippet =\n%s\nwant\n%s", ce.Snippet, c.snippet)
			}
			if ce.Source != c.source {
				t.Fatalf("CompileError.Source = %q, want the expression", ce.Source)
			}
			if want := fmt.Sprintf("%d:%d: %s", c.line, c.column, c.message); ce.Error() != want {
				t.Fatalf("Error() = %q, want %q", ce.Error(), want)
			}
		})
	}
}

// trgShort shortens an expression for a failure message.
func trgShort(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}

// TestCompileLimitsBoundary checks that the limits refuse only what is over
// them.
func TestCompileLimitsBoundary(t *testing.T) {
	t.Parallel()
	for name, source := range map[string]string{
		"MaxSourceLen bytes":  strings.Repeat("a", rules.MaxSourceLen),
		"MaxNodes-1 operands": "1" + strings.Repeat("+1", rules.MaxNodes/2-1),
	} {
		if _, err := rules.CompileValue(source); err != nil {
			t.Errorf("%s: CompileValue: %v, want it to compile", name, err)
		}
	}
}

func TestConditions(t *testing.T) {
	t.Parallel()
	env := fixedEnv(t)
	cases := []struct {
		name, source string
		want         bool
		wantErr      string // a *RuntimeError with this message
	}{
		{name: "true", source: `properties.post.id == 42`, want: true},
		{name: "false", source: `properties.post.id == 43`, want: false},
		{name: "float against int", source: `properties.amount == 129.5`, want: true},
		{name: "and", source: `event == "Comment Created" && userId == "actor1"`, want: true},
		{name: "or", source: `userId == "nobody" || properties.vip`, want: true},
		{name: "in list", source: `"u2" in properties.recipients`, want: true},
		{name: "not in list", source: `"u5" in properties.recipients`, want: false},
		{name: "bool field", source: `properties.vip`, want: true},
		{name: "headers", source: `headers["x-request-id"] == "req-1"`, want: true},
		{name: "body path", source: `body.context.library.name startsWith "analytics"`, want: true},
		{name: "data path", source: `data.comment.id == 7`, want: true},
		{name: "user_id", source: `user_id == userId`, want: true},
		// Nil-safe: a missing path compares as nil and a nil condition is false.
		{name: "missing path compared", source: `properties.nope.id == 42`, want: false},
		{name: "missing path alone", source: `properties.nope`, want: false},
		{name: "missing deep path alone", source: `body.nope.deeper.still`, want: false},
		{name: "missing path is nil", source: `properties.nope.deeper == nil`, want: true},
		{name: "missing header", source: `headers.authorization != nil`, want: false},
		// Not a boolean, or a type error: evaluation stops.
		{name: "string value", source: `properties.post.title`, wantErr: "invalid operation: bool(string) (at 1:1)"},
		{name: "number value", source: `properties.post.id`, wantErr: "invalid operation: bool(float64) (at 1:1)"},
		{name: "string plus int", source: `properties.text + 1 == 2`, wantErr: "invalid operation: string + int (at 1:17)"},
		{name: "string greater than int", source: `properties.text > 3`, wantErr: "invalid operation: string > int (at 1:17)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			p, err := rules.CompileCondition(c.source)
			if err != nil {
				t.Fatalf("CompileCondition(%q): %v", c.source, err)
			}
			got, err := p.EvalBool(env)
			if c.wantErr != "" {
				var re *rules.RuntimeError
				if !errors.As(err, &re) {
					t.Fatalf("EvalBool(%q) = %v, %v; want a *rules.RuntimeError", c.source, got, err)
				}
				if re.Message != c.wantErr || re.Error() != c.wantErr {
					t.Fatalf("EvalBool(%q) error %q, want %q", c.source, re.Message, c.wantErr)
				}
				if got {
					t.Fatalf("EvalBool(%q) = true with an error, want false", c.source)
				}
				return
			}
			if err != nil {
				t.Fatalf("EvalBool(%q): %v", c.source, err)
			}
			if got != c.want {
				t.Fatalf("EvalBool(%q) = %v, want %v", c.source, got, c.want)
			}
		})
	}
}

func TestRuntimeErrors(t *testing.T) {
	t.Parallel()
	env := fixedEnv(t)
	cases := []struct {
		name, source string
		want         string // the RuntimeError message
	}{
		{"string plus int", `properties.text + 1`, "invalid operation: string + int (at 1:17)"},
		{"string times int", `properties.comment.body * 2`, "invalid operation: string * int (at 1:25)"},
		{"negated string", `-properties.text`, "invalid operation: - string (at 1:1)"},
		{"string builtin on a number", `upper(properties.post.id)`, "interface conversion: interface {} is float64, not string (at 1:1)"},
		{"index out of range", `properties.tags[5]`, "index out of range: 5 (array length is 2) (at 1:16)"},
		{"int of a word", `int(properties.text)`, "invalid operation: int(str) (at 1:1)"},
		{"call of a missing function", `properties.nope.call()`, "invalid operation: cannot call nil (at 1:17)"},
		{"repeat over the bound", `repeat("x", 100000000)`, "the result would be longer than 32768 bytes (at 1:1)"},
		{"huge range", `1..100000000`, "memory budget exceeded (at 1:2)"},
		{"huge range inside len", `len(1..100000000)`, "memory budget exceeded (at 1:6)"},
		{"map over a range past the budget", `map(1..150000, # * 2)`, "memory budget exceeded (at 1:6)"},
		{"repeat of repeat", `repeat(repeat("x", 150000), 100)`, "the result would be longer than 32768 bytes (at 1:8)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			p, err := rules.CompileValue(c.source)
			if err != nil {
				t.Fatalf("CompileValue(%q): %v", c.source, err)
			}
			got, err := p.Eval(env)
			var re *rules.RuntimeError
			if !errors.As(err, &re) {
				t.Fatalf("Eval(%q) = %#v, %v; want a *rules.RuntimeError", c.source, got, err)
			}
			if got != nil {
				t.Fatalf("Eval(%q) = %#v with an error, want nil", c.source, got)
			}
			if re.Message != c.want {
				t.Fatalf("Eval(%q) error %q, want %q", c.source, re.Message, c.want)
			}
		})
	}
}

// TestStringAndListBounds checks that a run cannot build large text or
// lists: expr's memory budget counts elements, not bytes, so the text
// builders and `+` are bounded (rules.MaxStringBytes, rules.MaxListLen).
func TestStringAndListBounds(t *testing.T) {
	t.Parallel()
	env := fixedEnv(t)
	tooLong := fmt.Sprintf("the result would be longer than %d bytes", rules.MaxStringBytes)
	cases := []struct {
		name, source string
		want         any    // the value, when it runs
		err          string // else the RuntimeError message
	}{
		{"doubling in reduce", `len(reduce(1..24, #acc + #acc, "x"))`, nil, tooLong + " (at 1:24)"},
		{"doubling with let", `let s = repeat("x", 32768); len(s + s)`, nil, tooLong + " (at 1:35)"},
		{"path plus long text", `len(properties.post.title + repeat("x", 32765))`, nil, tooLong + " (at 1:27)"},
		{"repeat at the bound", `len(repeat("x", 32768))`, rules.MaxStringBytes, ""},
		{"repeat over the bound", `len(repeat("x", 32769))`, nil, tooLong + " (at 1:5)"},
		{"join", `len(join(map(1..1000, repeat("y", 100)), ""))`, nil, tooLong + " (at 1:5)"},
		{"toJSON", `len(toJSON(map(1..2000, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx")))`, nil, tooLong + " (at 1:5)"},
		{"string of a list", `len(string(split(repeat("abcdefgh,", 3600), ",")))`, nil, tooLong + " (at 1:5)"},
		{"replace", `len(replace(repeat("x", 20000), "x", "xx"))`, nil, tooLong + " (at 1:5)"},
		{"sprintf is not offered", `sprintf("%s", "x")`, nil, "sprintf is not available in hark expressions; build strings with + and string() (at 1:1)"},
		{"split past the list bound", `len(split(repeat("x", 20000), ""))`, nil, fmt.Sprintf("the list would have more than %d elements (at 1:5)", rules.MaxListLen)},
		{"split within the bound", `split("a,b,c", ",")`, []string{"a", "b", "c"}, ""},
		{"list plus list", `len(split(repeat(",", 5000), ",") + split(repeat(",", 5000), ","))`, nil, fmt.Sprintf("the list would have more than %d elements (at 1:35)", rules.MaxListLen)},
		// + keeps its meaning below the bounds.
		{"string plus string", `properties.text + properties.text`, "strstr", ""},
		{"number plus number", `1 + 2.5`, 3.5, ""},
		{"string plus number", `"a" + 1`, nil, "invalid operation: string + int (at 1:5)"},
		{"nil plus number", `properties.nope + 1`, nil, "invalid operation: <nil> + int (at 1:17)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			p, err := rules.CompileValue(c.source)
			if err != nil {
				t.Fatalf("CompileValue(%q): %v", c.source, err)
			}
			got, err := p.Eval(env)
			if c.err == "" {
				if err != nil || !reflect.DeepEqual(got, c.want) {
					t.Fatalf("Eval(%q) = %#v, %v; want %#v", c.source, got, err, c.want)
				}
				return
			}
			var re *rules.RuntimeError
			if !errors.As(err, &re) || re.Message != c.err || got != nil {
				t.Fatalf("Eval(%q) = %#v, %v; want a *rules.RuntimeError %q", c.source, got, err, c.err)
			}
		})
	}
}

func TestEvalBoolOfErrorsIsRuntimeError(t *testing.T) {
	t.Parallel()
	p, err := rules.CompileCondition(`len(1..100000000) > 0`)
	if err != nil {
		t.Fatal(err)
	}
	ok, err := p.EvalBool(fixedEnv(t))
	var re *rules.RuntimeError
	if ok || !errors.As(err, &re) || re.Message != "memory budget exceeded (at 1:6)" {
		t.Fatalf("EvalBool = %v, %v; want false and *RuntimeError \"memory budget exceeded (at 1:6)\"", ok, err)
	}
}

func TestNewEnv(t *testing.T) {
	t.Parallel()
	original := map[string]any{
		"userId":     "u1",
		"properties": map[string]any{"x": 1.0},
		"context":    map[string]any{"ip": "1.2.3.4"},
		"traits":     map[string]any{"name": "Ada"},
		"event":      "Signed Up",
		"messageId":  "m1",
		// Top-level fields with the reserved names: the reserved ones win.
		"data":    "original data",
		"user_id": "original user_id",
		"body":    "original body",
		"headers": "original headers",
	}
	data := map[string]any{"x": 2.0}
	env := rules.NewEnv(original, data, "common-u1", map[string]string{
		"X-Request-ID": "r1", "Content-Type": "application/json", "x-lower": "l",
	})

	eval := func(source string) any {
		t.Helper()
		p, err := rules.CompileValue(source)
		if err != nil {
			t.Fatalf("CompileValue(%q): %v", source, err)
		}
		v, err := p.Eval(env)
		if err != nil {
			t.Fatalf("Eval(%q): %v", source, err)
		}
		return v
	}
	for source, want := range map[string]any{
		// Top-level fields of the original event.
		`userId`:       "u1",
		`properties.x`: 1.0,
		`context.ip`:   "1.2.3.4",
		`traits.name`:  "Ada",
		`event`:        "Signed Up",
		`messageId`:    "m1",
		// Reserved names.
		`data.x`:                  2.0,
		`user_id`:                 "common-u1",
		`body.userId`:             "u1",
		`body.properties.x`:       1.0,
		`body.data`:               "original data",
		`headers["x-request-id"]`: "r1",
		`headers["content-type"]`: "application/json",
		`headers["x-lower"]`:      "l",
		`headers["X-Request-ID"]`: nil, // names are lowercase only
		`headers["Content-Type"]`: nil,
	} {
		if got := eval(source); !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %#v, want %#v", source, got, want)
		}
	}
	if got, want := len(env), len(original)+1; got != want {
		// Every original field plus the four reserved ones, which here
		// replace four original fields of the same name, and the event's
		// account of expression work (hidden: names with __ are refused).
		t.Errorf("len(env) = %d, want %d: %v", got, want, env)
	}
	if _, ok := env["headers"].(map[string]any); !ok {
		t.Errorf("env[headers] = %#v, want a map[string]any", env["headers"])
	}
	if original["data"] != "original data" || original["headers"] != "original headers" {
		t.Errorf("NewEnv changed the original event: %v", original)
	}
}

func TestNewEnvEmpty(t *testing.T) {
	t.Parallel()
	env := rules.NewEnv(nil, nil, "", nil)
	for _, source := range []string{`userId`, `properties.x`, `data.x`, `body.userId`, `headers.host`, `context.traits.email`} {
		p, err := rules.CompileValue(source)
		if err != nil {
			t.Fatalf("CompileValue(%q): %v", source, err)
		}
		if v, err := p.Eval(env); err != nil || v != nil {
			t.Errorf("Eval(%q) on an empty event = %#v, %v; want nil, nil", source, v, err)
		}
	}
	p, err := rules.CompileValue(`user_id`)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := p.Eval(env); err != nil || v != "" {
		t.Errorf("user_id on an event without a user = %#v, %v; want \"\"", v, err)
	}
}

// TestProgramsAreConcurrencySafe runs one program from many goroutines, as
// the ingest path does; run with -race.
func TestProgramsAreConcurrencySafe(t *testing.T) {
	t.Parallel()
	p, err := rules.CompileValue(`{"comment": properties.comment.body, "post": data.post.title, "lib": body.context.library.name, "n": len(1..100)}`)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"comment": "Nice post", "post": "Hello", "lib": "analytics.js", "n": 100}
	env := fixedEnv(t)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			for range 200 {
				got, err := p.Eval(env)
				if err != nil {
					errs <- err
					return
				}
				if !reflect.DeepEqual(got, want) {
					errs <- fmt.Errorf("Eval = %#v, want %#v", got, want)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestClosureDepth pins the compile-time bound on nested closures, which is
// what bounds the steps a run can take (expr has no step limit).
func TestClosureDepth(t *testing.T) {
	t.Parallel()
	if _, err := rules.CompileValue(`map(properties.teams, map(#.members, #.id))`); err != nil {
		t.Fatalf("two levels: %v", err)
	}
	_, err := rules.CompileValue(`map(1..3, map(1..3, map(1..3, #)))`)
	var ce *rules.CompileError
	if !errors.As(err, &ce) || ce.Message != "closures (map, filter, all, …) are nested 3 deep; at most 2" {
		t.Fatalf("three levels: %v, want a CompileError about nesting", err)
	}
}

// TestWorkBudget pins the budget of work that bounds a run's time: closure
// iterations and regular-expression work are counted, per run.
func TestWorkBudget(t *testing.T) {
	t.Parallel()
	env := fixedEnv(t)
	for _, c := range []struct{ name, source, err string }{
		{"nested sums", `let r = 1..8000; sum(r, sum(r, 1))`, fmt.Sprintf("the expression did more than %d steps of work", rules.MaxSteps)},
		{"regexp built at run time", `repeat("x", 30000) matches (repeat("x?", 300) + "y")`, fmt.Sprintf("the expression did more than %d steps of work", rules.MaxSteps)},
		{"pattern too long", `"x" matches repeat("x", 2000)`, fmt.Sprintf("the regular expression is 2000 bytes; at most %d", rules.MaxPatternBytes)},
	} {
		p, err := rules.CompileValue(c.source)
		if err != nil {
			t.Fatalf("%s: compile: %v", c.name, err)
		}
		_, err = p.Eval(env)
		var re *rules.RuntimeError
		if !errors.As(err, &re) || !strings.HasPrefix(re.Message, c.err) {
			t.Errorf("%s: Eval = %v, want a RuntimeError starting %q", c.name, err, c.err)
		}
	}
	// The budget is per run: a program that fits runs any number of times,
	// each time for another event.
	p, err := rules.CompileValue(`sum(1..5000, #)`)
	if err != nil {
		t.Fatal(err)
	}
	for range 100 {
		if _, err := p.Eval(fixedEnv(t)); err != nil {
			t.Fatalf("a run within the budget failed on repeat: %v", err)
		}
	}
	// But the runs of one event share its account: an event matched by
	// many triggers stops too, within MaxEventSteps in all.
	var last error
	runs := 0
	for ; runs < 1000 && last == nil; runs++ {
		_, last = p.Eval(env)
	}
	want := fmt.Sprintf("the event's expressions did more than %d steps of work in all", rules.MaxEventSteps)
	var re *rules.RuntimeError
	if !errors.As(last, &re) || !strings.HasPrefix(re.Message, want) || runs < 2 {
		t.Fatalf("after %d runs on one event: %v, want a RuntimeError starting %q", runs, last, want)
	}
}

// TestMissingFieldComparisons pins that ordering a missing value is false,
// as equality with it is, instead of an error.
func TestMissingFieldComparisons(t *testing.T) {
	t.Parallel()
	env := fixedEnv(t)
	for _, source := range []string{`properties.missing > 3`, `properties.missing <= 3`, `3 < properties.missing.deeper`, `properties.missing >= properties.other`} {
		p, err := rules.CompileCondition(source)
		if err != nil {
			t.Fatalf("compile %q: %v", source, err)
		}
		if ok, err := p.EvalBool(env); ok || err != nil {
			t.Errorf("%q = %v, %v; want false, nil", source, ok, err)
		}
	}
	p, err := rules.CompileCondition(`properties.post.id > 41 && properties.post.id <= 42`)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := p.EvalBool(env); !ok || err != nil {
		t.Errorf("present values compare as before: %v, %v", ok, err)
	}
	p, err = rules.CompileCondition(`properties.post.title > 1`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.EvalBool(env); err == nil {
		t.Error("ordering a string against a number must still be an error")
	}
}
