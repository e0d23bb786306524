package rules

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/vm/runtime"
)

// expr's memory budget counts elements, not bytes: a short expression can
// still double a string with `let` or `reduce` until the process runs out
// of memory, or join a list of 100,000 references to one large string. So
// every operation that builds text — `+` and the builtins join, replace,
// repeat, toJSON, sprintf and string — is replaced by a version that refuses
// to build more than MaxStringBytes, and `+` on lists by one that refuses
// more than MaxListLen elements.
const (
	// MaxStringBytes bounds any string an expression builds: as large as a
	// whole event may be. Values passed through from the event are not
	// built and not limited by this.
	MaxStringBytes = 32 << 10
	// MaxListLen bounds lists built with `+` and split.
	MaxListLen = 10_000
	// MaxClosureDepth bounds how deeply map/filter/all/… nest. Each level
	// multiplies the steps a run can take, and expr has no step limit; two
	// levels cover flattening nested lists.
	MaxClosureDepth = 2
)

var errTooLong = fmt.Errorf("the result would be longer than %d bytes", MaxStringBytes)

// addName is the function `+` is rewritten to.
const addName = "__add"

// boundedAdd replaces `+` everywhere: a patch turns every binary + into a
// call of addName, which checks sizes and then adds as expr does.
type boundedAdd struct{}

func (boundedAdd) Visit(n *ast.Node) {
	if b, ok := (*n).(*ast.BinaryNode); ok && b.Operator == "+" {
		ast.Patch(n, &ast.CallNode{Callee: &ast.IdentifierNode{Value: addName}, Arguments: []ast.Node{b.Left, b.Right}})
	}
}

func add(args ...any) (any, error) {
	a, b := args[0], args[1]
	if sa, ok := a.(string); ok {
		if sb, ok := b.(string); ok {
			if len(sa)+len(sb) > MaxStringBytes {
				return nil, errTooLong
			}
			return sa + sb, nil
		}
	}
	if la, lb := listLen(a), listLen(b); la >= 0 && lb >= 0 && la+lb > MaxListLen {
		return nil, fmt.Errorf("the list would have more than %d elements", MaxListLen)
	}
	return runtime.Add(a, b), nil
}

func listLen(v any) int {
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Slice || rv.Kind() == reflect.Array {
		return rv.Len()
	}
	return -1
}

// limitedWriter fails once more than MaxStringBytes are written, so
// formatting stops early instead of building the whole text first.
type limitedWriter struct{ strings.Builder }

func (w *limitedWriter) Write(p []byte) (int, error) {
	if w.Len()+len(p) > MaxStringBytes {
		return 0, errTooLong
	}
	return w.Builder.Write(p)
}

func str(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return fmt.Sprint(v)
}

// boundedBuiltins are the text-building builtins, same names and meaning,
// with the size bound.
func boundedBuiltins() []expr.Option {
	return []expr.Option{
		expr.Function(addName, add),
		expr.Function(compareName, compare),
		expr.Function(stepName, step),
		expr.Function(matchesName, matches),
		expr.Function("join", func(args ...any) (any, error) {
			if len(args) < 1 || len(args) > 2 {
				return nil, errors.New("join(list[, separator]) takes one or two arguments")
			}
			sep := ""
			if len(args) == 2 {
				sep = str(args[1])
			}
			rv := reflect.ValueOf(args[0])
			if rv.Kind() != reflect.Slice && rv.Kind() != reflect.Array {
				return nil, fmt.Errorf("join needs a list, not %T", args[0])
			}
			var w limitedWriter
			for i := range rv.Len() {
				if i > 0 {
					if _, err := w.WriteString(sep); err != nil {
						return nil, err
					}
				}
				if _, err := w.WriteString(str(rv.Index(i).Interface())); err != nil {
					return nil, err
				}
			}
			return w.String(), nil
		}),
		expr.Function("replace", func(args ...any) (any, error) {
			if len(args) != 3 {
				return nil, errors.New("replace(string, old, new) takes three arguments")
			}
			s, old, repl := str(args[0]), str(args[1]), str(args[2])
			n := strings.Count(s, old)
			if len(s)+n*(len(repl)-len(old)) > MaxStringBytes {
				return nil, errTooLong
			}
			return strings.ReplaceAll(s, old, repl), nil
		}),
		expr.Function("repeat", func(args ...any) (any, error) {
			if len(args) != 2 {
				return nil, errors.New("repeat(string, count) takes two arguments")
			}
			s := str(args[0])
			n, ok := toInt(args[1])
			if !ok || n < 0 {
				return nil, errors.New("repeat needs a count of zero or more")
			}
			if n > 0 && len(s) > MaxStringBytes/n {
				return nil, errTooLong
			}
			return strings.Repeat(s, n), nil
		}),
		expr.Function("toJSON", func(args ...any) (any, error) {
			if len(args) != 1 {
				return nil, errors.New("toJSON(value) takes one argument")
			}
			// encoding/json builds the whole text before writing it: measure
			// first.
			if err := checkSize(args[0], MaxStringBytes); err != nil {
				return nil, errTooLong
			}
			var w limitedWriter
			enc := json.NewEncoder(&w)
			enc.SetIndent("", "  ")
			if err := enc.Encode(args[0]); err != nil {
				return nil, err
			}
			return strings.TrimSuffix(w.String(), "\n"), nil
		}),
		// fmt builds the whole text before writing it, and a width such as
		// %999999d makes a short format arbitrarily long, so sprintf is not
		// offered.
		expr.Function("sprintf", func(...any) (any, error) {
			return nil, errors.New("sprintf is not available in hark expressions; build strings with + and string()")
		}),
		expr.Function("split", func(args ...any) (any, error) {
			if len(args) < 2 || len(args) > 3 {
				return nil, errors.New("split(string, separator[, n]) takes two or three arguments")
			}
			s, sep := str(args[0]), str(args[1])
			n := -1
			if len(args) == 3 {
				var ok bool
				if n, ok = toInt(args[2]); !ok {
					return nil, errors.New("split needs a whole number as its third argument")
				}
			}
			if parts := strings.Count(s, sep) + 1; (n < 0 || n > MaxListLen) && parts > MaxListLen {
				return nil, fmt.Errorf("the list would have more than %d elements", MaxListLen)
			}
			return strings.SplitN(s, sep, n), nil
		}),
		expr.Function("string", func(args ...any) (any, error) {
			if len(args) != 1 {
				return nil, errors.New("string(value) takes one argument")
			}
			if s, ok := args[0].(string); ok {
				return s, nil
			}
			if err := checkSize(args[0], MaxStringBytes); err != nil {
				return nil, errTooLong
			}
			var w limitedWriter
			if _, err := fmt.Fprint(&w, args[0]); err != nil {
				return nil, err
			}
			return w.String(), nil
		}),
	}
}

// WriteString writes s within the bound (it shadows strings.Builder's).
func (w *limitedWriter) WriteString(s string) (int, error) {
	if w.Len()+len(s) > MaxStringBytes {
		return 0, errTooLong
	}
	return w.Builder.WriteString(s)
}

func toInt(v any) (int, bool) {
	switch n := v.(type) {
	case int:
		return n, true
	case int64:
		return int(n), true
	case float64:
		return int(n), n == float64(int(n))
	}
	return 0, false
}

// MaxValueBytes bounds the size of one mapped value (recipients, data, …)
// as stored: a run is a message for templates, and every consumer of the
// runs stream has to take it in one piece.
const MaxValueBytes = 256 << 10

// CheckValue reports whether an evaluated value can be stored: every number
// finite (JSON and protobuf's Value have no NaN or Infinity), every string
// valid UTF-8 (protobuf strings must be), and the whole
// at most MaxValueBytes (strings by length, other leaves counted as 8
// bytes, keys included). It stops at the first problem, so a huge value
// costs no more than the bound to check.
func CheckValue(v any) error {
	return checkSize(v, MaxValueBytes)
}

// checkSize is CheckValue with a bound of max bytes.
func checkSize(v any, max int) error {
	budget := max
	err := checkValue(reflect.ValueOf(v), &budget)
	if budget < 0 {
		return fmt.Errorf("the value is larger than %d bytes", max)
	}
	return err
}

func checkValue(v reflect.Value, budget *int) error {
	spend := func(n int) error {
		if *budget -= n; *budget < 0 {
			return errors.New("the value is too large")
		}
		return nil
	}
	if !v.IsValid() {
		return spend(4)
	}
	switch v.Kind() {
	case reflect.Interface, reflect.Pointer:
		if v.IsNil() {
			return spend(4)
		}
		return checkValue(v.Elem(), budget)
	case reflect.String:
		if !utf8.ValidString(v.String()) {
			// Slicing a string by bytes can cut a character in two.
			return errors.New("a string is not valid UTF-8")
		}
		return spend(len(v.String()) + 2)
	case reflect.Float32, reflect.Float64:
		if f := v.Float(); math.IsNaN(f) || math.IsInf(f, 0) {
			return errors.New("a number is not finite (NaN or Infinity, e.g. a division by zero)")
		}
		return spend(8)
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			if err := checkValue(v.Index(i), budget); err != nil {
				return err
			}
		}
		return spend(2)
	case reflect.Map:
		it := v.MapRange()
		for it.Next() {
			if err := checkValue(it.Key(), budget); err != nil {
				return err
			}
			if err := checkValue(it.Value(), budget); err != nil {
				return err
			}
		}
		return spend(2)
	default:
		return spend(8)
	}
}

// closureDepth refuses, at compile time, closures nested deeper than
// MaxClosureDepth. Patches visit children first, so when a predicate is
// visited the depths of the predicates inside it are known.
type closureDepth struct {
	depth map[*ast.PredicateNode]int
	err   error
}

func (c *closureDepth) Visit(n *ast.Node) {
	p, ok := (*n).(*ast.PredicateNode)
	if !ok || c.err != nil {
		return
	}
	inner := &innerDepth{of: c.depth}
	ast.Walk(&p.Node, inner)
	c.depth[p] = inner.max + 1
	if c.depth[p] > MaxClosureDepth {
		c.err = fmt.Errorf("closures (map, filter, all, …) are nested %d deep; at most %d", c.depth[p], MaxClosureDepth)
	}
}

// innerDepth finds the deepest predicate already measured in a subtree.
type innerDepth struct {
	of  map[*ast.PredicateNode]int
	max int
}

func (d *innerDepth) Visit(n *ast.Node) {
	if p, ok := (*n).(*ast.PredicateNode); ok {
		d.max = max(d.max, d.of[p])
	}
}

// expr has no step limit, and a run happens inside the ingest committer, so
// a slow expression would hold up every delivery. Two patches give runs a
// budget of work, counted on a per-run counter that Eval passes in the
// environment as stepsName:
//   - every closure body (map, filter, sum, all, …) costs one step per
//     element it runs for;
//   - `matches` costs its regular expression's work, which RE2 bounds by
//     pattern length × text length.
const (
	// MaxSteps bounds the work of one run: closure iterations plus regular
	// expression work in units of 64 pattern×text bytes. Ordinary mappings
	// take tens; a run at the limit takes tens of milliseconds.
	MaxSteps = 200_000
	// MaxPatternBytes bounds a regular expression built at run time.
	MaxPatternBytes = 1 << 10

	stepsName   = "__steps"
	stepName    = "__step"
	matchesName = "__matches"
)

// steps counts one run's work.
type steps struct{ n int }

var errSteps = fmt.Errorf("the expression did more than %d steps of work", MaxSteps)

func (s *steps) spend(n int) error {
	s.n += n
	if s.n > MaxSteps {
		return errSteps
	}
	return nil
}

// countedWork is the patch: closure bodies become __step(__steps, body), and
// `a matches b` becomes __matches(__steps, a, b) — unless b is a constant,
// which expr compiles (and checks) once at compile time; a constant pattern
// is only held to MaxPatternBytes.
type countedWork struct{ err error }

func (c *countedWork) Visit(n *ast.Node) {
	switch node := (*n).(type) {
	case *ast.PredicateNode:
		if call, ok := node.Node.(*ast.CallNode); ok && isIdent(call.Callee, stepName) {
			return // already counted
		}
		node.Node = &ast.CallNode{Callee: &ast.IdentifierNode{Value: stepName},
			Arguments: []ast.Node{&ast.IdentifierNode{Value: stepsName}, node.Node}}
	case *ast.BinaryNode:
		if lit, ok := node.Right.(*ast.StringNode); ok && node.Operator == "matches" {
			if len(lit.Value) > MaxPatternBytes && c.err == nil {
				c.err = fmt.Errorf("the regular expression is %d bytes; at most %d", len(lit.Value), MaxPatternBytes)
			}
			return
		}
		if node.Operator == "matches" {
			ast.Patch(n, &ast.CallNode{Callee: &ast.IdentifierNode{Value: matchesName},
				Arguments: []ast.Node{&ast.IdentifierNode{Value: stepsName}, node.Left, node.Right}})
		}
	}
}

func isIdent(n ast.Node, name string) bool {
	id, ok := n.(*ast.IdentifierNode)
	return ok && id.Value == name
}

func step(args ...any) (any, error) {
	s, ok := args[0].(*steps)
	if !ok {
		return nil, errors.New("internal: no step counter")
	}
	if err := s.spend(1); err != nil {
		return nil, err
	}
	return args[1], nil
}

// regexps caches compiled patterns; it stops growing at maxCachedRegexps so
// patterns built from event data cannot fill memory.
var regexps sync.Map

const maxCachedRegexps = 1024

var cachedRegexps atomic.Int64

func matches(args ...any) (any, error) {
	s, ok := args[0].(*steps)
	if !ok {
		return nil, errors.New("internal: no step counter")
	}
	text, ok1 := args[1].(string)
	pattern, ok2 := args[2].(string)
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("matches needs two strings, not %s and %s", typeOf(args[1]), typeOf(args[2]))
	}
	if len(pattern) > MaxPatternBytes {
		return nil, fmt.Errorf("the regular expression is %d bytes; at most %d", len(pattern), MaxPatternBytes)
	}
	if err := s.spend((len(text) + 1) * (len(pattern) + 1) / 64); err != nil {
		return nil, err
	}
	var re *regexp.Regexp
	if cached, ok := regexps.Load(pattern); ok {
		re = cached.(*regexp.Regexp)
	} else {
		var err error
		if re, err = regexp.Compile(pattern); err != nil {
			return nil, err
		}
		if cachedRegexps.Add(1) <= maxCachedRegexps {
			regexps.Store(pattern, re)
		}
	}
	return re.MatchString(text), nil
}

func typeOf(v any) string {
	if v == nil {
		return "nil"
	}
	return reflect.TypeOf(v).String()
}
