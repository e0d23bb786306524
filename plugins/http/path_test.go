package httpsource

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// pathBody is a decoded body to walk, with the shapes paths meet.
const pathBody = `{
	"type": "customer.created",
	"id": "evt_1",
	"data": {"object": {"customer": "cus_1", "items": [{"sku": "a"}, {"sku": "b"}]}},
	"a-b": {"": "empty key"},
	"quote\"d": 1,
	"n": null,
	"big": 12345678901234567890
}`

func decodePathBody(t *testing.T) any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(pathBody))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestParsePathAndLookup(t *testing.T) {
	t.Parallel()
	body := decodePathBody(t)
	headers := map[string]string{"x-github-event": "push", "content_type": "x"}
	tests := []struct {
		path      string
		canonical string
		want      any // nil with found false: absent
		found     bool
	}{
		{"body.type", "body.type", "customer.created", true},
		{"body.data.object.customer", "body.data.object.customer", "cus_1", true},
		{`body["data"]["object"].customer`, "body.data.object.customer", "cus_1", true},
		{"body.data.object.items[1].sku", "body.data.object.items[1].sku", "b", true},
		{"body.data.object.items[2].sku", "body.data.object.items[2].sku", nil, false},
		{"body.data.object.items.sku", "body.data.object.items.sku", nil, false},
		{"body.data[0]", "body.data[0]", nil, false},
		{`body["a-b"][""]`, `body["a-b"][""]`, "empty key", true},
		{`body["quote\"d"]`, `body["quote\"d"]`, json.Number("1"), true},
		{`body["\u0074ype"]`, "body.type", "customer.created", true},
		{"body.big", "body.big", json.Number("12345678901234567890"), true},
		{"body.n", "body.n", nil, true},
		{"body.missing.deeper", "body.missing.deeper", nil, false},
		{"body.type.length", "body.type.length", nil, false},
		{"body._x9", "body._x9", nil, false},
		// A dashed header name cannot be dotted: its canonical form is quoted.
		{`headers["x-github-event"]`, `headers["x-github-event"]`, "push", true},
		{"headers.content_type", "headers.content_type", "x", true},
		{`headers["x-missing"]`, `headers["x-missing"]`, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			t.Parallel()
			p, err := ParsePath(tt.path)
			if err != nil {
				t.Fatalf("ParsePath(%q): %v", tt.path, err)
			}
			if got := p.String(); got != tt.canonical {
				t.Errorf("String() = %q, want %q", got, tt.canonical)
			}
			again, err := ParsePath(p.String())
			if err != nil || !reflect.DeepEqual(again, p) {
				t.Errorf("ParsePath(String()) = %+v, %v; want %+v", again, err, p)
			}
			got, found := p.lookup(body, headers)
			if found != tt.found || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("lookup = %#v, %v; want %#v, %v", got, found, tt.want, tt.found)
			}
		})
	}
}

// TestParsePathErrors pins every refusal's message: it is what a user reads
// in the answer to a delivery when a path setting is wrong.
func TestParsePathErrors(t *testing.T) {
	t.Parallel()
	tests := []struct{ path, want string }{
		{"", `path "", column 1: the path is empty`},
		{"type", `path "type", column 1: a path starts with body or headers, not "type" (body.type names a field of the body)`},
		{"data.object", `path "data.object", column 1: a path starts with body or headers, not "data" (body.data names a field of the body)`},
		{".type", `path ".type", column 1: a path starts with body or headers`},
		{"body", `path "body", column 5: a body path names a field: body.name`},
		{"headers", `path "headers", column 8: a headers path names one header: headers["name"]`},
		{"body.", `path "body.", column 6: expected a name after "." (letters, digits and _, not starting with a digit); quote other names: ["a-b"]`},
		{"body..type", `path "body..type", column 6: expected a name after "." (letters, digits and _, not starting with a digit); quote other names: ["a-b"]`},
		{"body.1st", `path "body.1st", column 6: expected a name after "." (letters, digits and _, not starting with a digit); quote other names: ["a-b"]`},
		{"body.a-b", `path "body.a-b", column 7: unexpected '-': segments start with "." or "["`},
		{"body type", `path "body type", column 5: unexpected ' ': segments start with "." or "["`},
		{"body[", `path "body[", column 6: expected a quoted name or an index after "["`},
		{"body['type']", `path "body['type']", column 6: expected a quoted name (["name"]) or an index ([0]) after "["`},
		{`body["type`, `path "body[\"type", column 6: the quoted name has no closing quote`},
		{`body["type"`, `path "body[\"type\"", column 12: expected "]"`},
		{`body["ty\pe"]`, `path "body[\"ty\\pe\"]", column 6: the quoted name is not a valid JSON string`},
		{"body[01]", `path "body[01]", column 6: an index has no leading zeros`},
		{"body[99999999999]", `path "body[99999999999]", column 6: the index is larger than 2147483647`},
		{"body[-1]", `path "body[-1]", column 6: expected a quoted name (["name"]) or an index ([0]) after "["`},
		{"body[1", `path "body[1", column 7: expected "]"`},
		{`headers["X-GitHub-Event"]`, `path "headers[\"X-GitHub-Event\"]", column 8: header names are lowercase in paths: headers["x-github-event"]`},
		{`headers.x["y"]`, `path "headers.x[\"y\"]", column 10: a header is a string: nothing can follow its name`},
		{"headers[0]", `path "headers[0]", column 8: headers are named, not numbered: headers["name"]`},
		{`headers[""]`, `path "headers[\"\"]", column 8: a header name is not empty`},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			t.Parallel()
			p, err := ParsePath(tt.path)
			if err == nil {
				t.Fatalf("ParsePath(%q) = %v, want an error", tt.path, p)
			}
			if _, ok := err.(*PathError); !ok {
				t.Errorf("error %T is not a *PathError", err)
			}
			if err.Error() != tt.want {
				t.Errorf("error =\n%s\nwant\n%s", err, tt.want)
			}
		})
	}
}

// TestPresetPathsParse checks every preset's paths, parsed when the package
// loads: each is its own canonical form.
func TestPresetPathsParse(t *testing.T) {
	t.Parallel()
	for name, p := range presets {
		for _, list := range [][]Path{p.eventType, p.idempotencyKey, p.timestamp, p.userID} {
			for _, path := range list {
				if again, err := ParsePath(path.String()); err != nil || !reflect.DeepEqual(again, path) {
					t.Errorf("preset %s: path %s does not round-trip: %+v, %v", name, path, again, err)
				}
			}
		}
	}
}
