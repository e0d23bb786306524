package rules

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
)

// Roots are the names an expression may start a path with: what the
// environment of a kind of event provides at its top. Names outside them
// are typos (`propertes.plan`, `usrId`), which nil-safe paths would
// otherwise turn into a condition that is silently never true; so a trigger
// is refused when saved (Program.CheckRoots) instead.
//
// A Roots is immutable and safe for concurrent use.
type Roots struct {
	names map[string]bool
	list  []string // sorted, for suggestions and messages
}

// NewRoots returns the roots of an environment whose events carry the given
// top-level fields, besides the names NewEnv adds to every event (body,
// data, user_id, headers).
func NewRoots(fields ...string) Roots {
	r := Roots{names: map[string]bool{}}
	for _, n := range slices.Concat(envNames, fields) {
		if !r.names[n] {
			r.names[n] = true
			r.list = append(r.list, n)
		}
	}
	slices.Sort(r.list)
	return r
}

// envNames are the names NewEnvWith sets on every event.
var envNames = []string{"body", "data", "user_id", "headers"}

// SegmentFields are the top-level fields of an event of the Segment spec
// (common fields and those of each call type), with RudderStack's
// additions and the legacy `action` (read as `type`): what Knock's legacy
// Segment paths (`properties.x`, `userId`, `context.x`, `traits.x`) reach.
// A field outside the spec is still in the event; it is reached through
// `body`.
var SegmentFields = []string{
	// Common fields.
	"anonymousId", "channel", "context", "integrations", "messageId", "originalTimestamp",
	"receivedAt", "sentAt", "timestamp", "type", "userId", "version",
	// Per call type: track, page and screen, identify and group, alias.
	"event", "properties", "name", "category", "traits", "groupId", "previousId",
	// Added by Segment's and RudderStack's delivery, and the legacy type.
	"writeKey", "projectId", "_metadata", "rudderId", "request_ip", "action",
}

// Has reports whether name is one of the roots.
func (r Roots) Has(name string) bool { return r.names[name] }

// CheckRoots returns a *CompileError at the first identifier of p (in source
// order) that starts a path from outside roots, suggesting the nearest root
// by edit distance. Names bound inside the expression (`let` variables,
// closure pointers such as `#`) and functions are not roots.
//
// It is separate from compiling so stored triggers keep compiling (and
// running) as they did: only saving a trigger checks its roots.
func (p *Program) CheckRoots(roots Roots) error {
	for _, r := range p.roots {
		if roots.Has(r.name) {
			continue
		}
		msg := fmt.Sprintf("unknown name %s", r.name)
		if s := roots.suggest(r.name); s != "" {
			msg += fmt.Sprintf("; did you mean %s?", s)
		} else {
			msg += fmt.Sprintf("; an expression starts with one of %s (another field of the event is body.%s)",
				strings.Join(roots.list, ", "), r.name)
		}
		src := file.NewSource(p.source)
		return compileError(p.source, (&file.Error{Location: r.loc, Message: msg}).Bind(src))
	}
	return nil
}

// suggest returns the root nearest to name, ignoring case, if it is near
// enough to be a typo of it: one edit per three characters, at least one
// (`nope` is not a typo of `name`). Ties go to the first in alphabetical
// order.
func (r Roots) suggest(name string) string {
	best, bestDist := "", 1+max(1, len(name)/3)
	for _, n := range r.list {
		if d := editDistance(strings.ToLower(name), strings.ToLower(n)); d < bestDist {
			best, bestDist = n, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of a and b, in characters.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// root is an identifier an expression starts a path with, where it is
// written.
type root struct {
	name string
	loc  file.Location
}

// rootFinder collects the roots of an expression as written: it runs as a
// patch before any other that changes the tree (the patches add names of
// their own), and changes nothing. An identifier is a root unless it is
// called (a function), declared by an enclosing `let`, or reserved
// (reserved refuses those). Closure pointers (`#`, `#acc`, `.x`) are
// PointerNodes, not identifiers, so they are never roots.
type rootFinder struct {
	ids   []*ast.IdentifierNode
	bound map[*ast.IdentifierNode]bool // callees and let variables
	funcs func(string) bool
}

func (f *rootFinder) Visit(n *ast.Node) {
	switch node := (*n).(type) {
	case *ast.IdentifierNode:
		f.ids = append(f.ids, node)
	case *ast.CallNode:
		if id, ok := node.Callee.(*ast.IdentifierNode); ok {
			f.bound[id] = true
		}
	case *ast.VariableDeclaratorNode:
		// The variable is in scope in the expression after the
		// declaration, not in its own value.
		ast.Walk(&node.Expr, binder{name: node.Name, bound: f.bound})
	}
}

// roots returns what the finder saw, once per name at its first place.
func (f *rootFinder) roots() []root {
	var out []root
	seen := map[string]bool{}
	for _, id := range f.ids {
		name := id.Value
		if f.bound[id] || seen[name] || strings.HasPrefix(name, reservedPrefix) || name == "$env" || f.funcs(name) {
			continue
		}
		seen[name] = true
		out = append(out, root{name: name, loc: id.Location()})
	}
	slices.SortFunc(out, func(a, b root) int { return cmp.Compare(a.loc.From, b.loc.From) })
	return out
}

// binder marks the identifiers of one let variable as bound.
type binder struct {
	name  string
	bound map[*ast.IdentifierNode]bool
}

func (b binder) Visit(n *ast.Node) {
	if id, ok := (*n).(*ast.IdentifierNode); ok && id.Value == b.name {
		b.bound[id] = true
	}
}
