package rules

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"

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
	// MaxStringBytes bounds any string an expression builds; mapped values
	// end up in a run's data, which is meant for templates, not documents.
	MaxStringBytes = 256 << 10
	// MaxListLen bounds lists built with `+`.
	MaxListLen = 10_000
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
			var w limitedWriter
			enc := json.NewEncoder(&w)
			enc.SetIndent("", "  ")
			if err := enc.Encode(args[0]); err != nil {
				return nil, err
			}
			return strings.TrimSuffix(w.String(), "\n"), nil
		}),
		expr.Function("sprintf", func(args ...any) (any, error) {
			if len(args) < 1 {
				return nil, errors.New("sprintf(format, values...) needs a format")
			}
			var w limitedWriter
			if _, err := fmt.Fprintf(&w, str(args[0]), args[1:]...); err != nil {
				return nil, err
			}
			return w.String(), nil
		}),
		expr.Function("string", func(args ...any) (any, error) {
			if len(args) != 1 {
				return nil, errors.New("string(value) takes one argument")
			}
			if s, ok := args[0].(string); ok {
				return s, nil
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
