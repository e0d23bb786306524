package httpsource

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// The path language names one value of a delivery: a field of the JSON body
// or a request header. It is a strict subset of the expression language of
// hark's triggers, so a path that works here works unchanged in a mapping
// (`body.data.object.customer`, `headers["x-github-event"]`).
//
// Grammar (ASCII; no spaces inside a path, spaces around it are ignored):
//
//	path    = root segment { segment }
//	root    = "body" | "headers"
//	segment = "." name | "[" string "]" | "[" index "]"
//	name    = ( letter | "_" ) { letter | digit | "_" }
//	string  = a JSON string literal, in double quotes
//	index   = "0" | ( "1" … "9" ) { digit }
//
// A body path walks the JSON body: a name or string selects an object's
// field, an index an array's element. A headers path has exactly one
// segment, a name or string, in lowercase: the header map has lowercase
// names, as in trigger expressions (`headers["x-github-event"]`, not
// `headers["X-GitHub-Event"]`), and holds each header's first value.
// Dashes cannot appear in a dotted name (`headers.x-github-event` would be
// a subtraction in an expression): quote such names.

// Path is a parsed path. The zero Path is not valid; get one from ParsePath.
type Path struct {
	headers bool // the root: headers, else body
	segs    []segment
}

// segment is one step of a path: an object field, or an array element when
// isIndex.
type segment struct {
	name    string
	index   int
	isIndex bool
}

// maxIndex bounds an index segment, so that it fits an int everywhere and a
// typo of many digits is a clear error rather than an overflow.
const maxIndex = 1<<31 - 1

// PathError is a path that does not follow the grammar.
type PathError struct {
	// Path is the text that was parsed.
	Path string
	// Column is where the problem is, from 1, counted in bytes.
	Column int
	// Reason says what is wrong.
	Reason string
}

func (e *PathError) Error() string {
	return fmt.Sprintf("path %q, column %d: %s", e.Path, e.Column, e.Reason)
}

// ParsePath parses a path of the grammar above. Its error is a *PathError.
func ParsePath(s string) (Path, error) {
	fail := func(at int, format string, args ...any) (Path, error) {
		return Path{}, &PathError{Path: s, Column: at + 1, Reason: fmt.Sprintf(format, args...)}
	}
	i := nameEnd(s, 0)
	var p Path
	switch root := s[:i]; root {
	case "body":
	case "headers":
		p.headers = true
	case "":
		if s == "" {
			return fail(0, "the path is empty")
		}
		return fail(0, "a path starts with body or headers")
	default:
		return fail(0, "a path starts with body or headers, not %q (body.%s names a field of the body)", root, root)
	}
	for i < len(s) {
		start := i
		var seg segment
		switch s[i] {
		case '.':
			end := nameEnd(s, i+1)
			if end == i+1 {
				return fail(i+1, `expected a name after "." (letters, digits and _, not starting with a digit); quote other names: ["a-b"]`)
			}
			seg.name, i = s[i+1:end], end
		case '[':
			if i+1 >= len(s) {
				return fail(i+1, `expected a quoted name or an index after "["`)
			}
			switch c := s[i+1]; {
			case c == '"':
				end := stringEnd(s, i+1)
				if end < 0 {
					return fail(i+1, "the quoted name has no closing quote")
				}
				if err := json.Unmarshal([]byte(s[i+1:end]), &seg.name); err != nil {
					return fail(i+1, "the quoted name is not a valid JSON string")
				}
				i = end
			case c >= '0' && c <= '9':
				end := i + 1
				for end < len(s) && s[end] >= '0' && s[end] <= '9' {
					end++
				}
				digits := s[i+1 : end]
				n, err := strconv.Atoi(digits)
				switch {
				case len(digits) > 1 && digits[0] == '0':
					return fail(i+1, "an index has no leading zeros")
				case err != nil || n > maxIndex:
					return fail(i+1, "the index is larger than %d", maxIndex)
				}
				seg.index, seg.isIndex, i = n, true, end
			default:
				return fail(i+1, `expected a quoted name (["name"]) or an index ([0]) after "["`)
			}
			if i >= len(s) || s[i] != ']' {
				return fail(i, `expected "]"`)
			}
			i++
		default:
			return fail(i, `unexpected %q: segments start with "." or "["`, s[i])
		}
		if p.headers {
			switch {
			case len(p.segs) > 0:
				return fail(start, "a header is a string: nothing can follow its name")
			case seg.isIndex:
				return fail(start, `headers are named, not numbered: headers["name"]`)
			case seg.name == "":
				return fail(start, "a header name is not empty")
			case strings.ToLower(seg.name) != seg.name:
				return fail(start, "header names are lowercase in paths: headers[%s]", quote(strings.ToLower(seg.name)))
			}
		}
		p.segs = append(p.segs, seg)
	}
	if len(p.segs) == 0 {
		if p.headers {
			return fail(len(s), `a headers path names one header: headers["name"]`)
		}
		return fail(len(s), "a body path names a field: body.name")
	}
	return p, nil
}

// mustParsePath parses a path written in this package; a preset's path
// that does not parse is a bug caught by the package's tests.
func mustParsePath(s string) Path {
	p, err := ParsePath(s)
	if err != nil {
		panic(err)
	}
	return p
}

// String returns the path in canonical form: dotted names where the grammar
// allows them, quoted names elsewhere. ParsePath(p.String()) is p.
func (p Path) String() string {
	var b strings.Builder
	if p.headers {
		b.WriteString("headers")
	} else {
		b.WriteString("body")
	}
	for _, seg := range p.segs {
		switch {
		case seg.isIndex:
			b.WriteString("[" + strconv.Itoa(seg.index) + "]")
		case seg.name != "" && nameEnd(seg.name, 0) == len(seg.name):
			b.WriteString("." + seg.name)
		default:
			b.WriteString("[" + quote(seg.name) + "]")
		}
	}
	return b.String()
}

// IsHeader reports whether the path names a header rather than a field of
// the body.
func (p Path) IsHeader() bool { return p.headers }

// lookup returns the value the path names in a decoded body (decoded with
// json.Decoder.UseNumber) or the lowercase header map, and whether it is
// there. A header's value is a string.
func (p Path) lookup(body any, headers map[string]string) (any, bool) {
	if p.headers {
		if v, ok := headers[p.segs[0].name]; ok {
			return v, true
		}
		return nil, false
	}
	v := body
	for _, seg := range p.segs {
		switch node := v.(type) {
		case map[string]any:
			if seg.isIndex {
				return nil, false
			}
			var ok bool
			if v, ok = node[seg.name]; !ok {
				return nil, false
			}
		case []any:
			if !seg.isIndex || seg.index >= len(node) {
				return nil, false
			}
			v = node[seg.index]
		default:
			return nil, false
		}
	}
	return v, true
}

// nameEnd returns the end of the name that starts at s[i] (i itself when
// none does).
func nameEnd(s string, i int) int {
	j := i
	for j < len(s) {
		c := s[j]
		letter := c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
		if !letter && (j == i || c < '0' || c > '9') {
			break
		}
		j++
	}
	return j
}

// stringEnd returns the index just past the JSON string literal that starts
// with the quote at s[i], or -1 when it is not closed.
func stringEnd(s string, i int) int {
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return -1
}

// quote writes s as a JSON string literal, without HTML escaping.
func quote(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a Go string always encodes
	return strings.TrimSuffix(b.String(), "\n")
}
