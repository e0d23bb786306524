// Package rules compiles and runs the expressions of triggers: a condition
// that decides whether an event starts a workflow, and mappings that turn
// the event into the run's recipients, actor, tenant, data and cancellation
// key. Expressions are github.com/expr-lang/expr.
//
// Expressions compile when a trigger is saved and run for every matching
// event, so compile errors carry line, column and a snippet (CompileError),
// and runs are bounded: a node limit and a closure-nesting limit at compile
// time, a memory budget, bounded text building (limits.go) and a budget of
// work (MaxSteps) per run, since expr has no timeout. No function with side effects or I/O
// exists in the language.
//
// Every member access is nil-safe: a missing field anywhere along a path
// yields nil, never an error — the most common complaint about
// expression-based triggers. The language is changed only through the
// compile-time patch (nilSafe), never by rewriting stored expressions.
//
// Programs are safe for concurrent use.
package rules

import (
	"cmp"
	"errors"
	"fmt"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"
	"github.com/expr-lang/expr/vm/runtime"
)

// Limits on every expression.
const (
	// MaxNodes bounds an expression's size at compile time: mappings are a
	// few paths and an object literal, far below this.
	MaxNodes = 2000
	// MemoryBudget bounds what one run may allocate (in expr's units,
	// roughly one per element created). A mapping of 1,000 recipients fits;
	// `repeat("x", 1e9)` does not. Elements may be strings of up to
	// MaxStringBytes, so this also bounds bytes: 10,000 × 32 KiB.
	MemoryBudget = 10_000
	// MaxSourceLen bounds the text of one expression.
	MaxSourceLen = 8 << 10
)

// Program is a compiled expression.
type Program struct {
	source string
	prog   *vm.Program
}

// Source returns the expression's text.
func (p *Program) Source() string { return p.source }

// CompileError is an expression that does not compile. Line and Column
// count from 1; Snippet is the line with a caret under the column.
type CompileError struct {
	Source  string
	Line    int
	Column  int
	Message string
	Snippet string
}

func (e *CompileError) Error() string {
	return fmt.Sprintf("%d:%d: %s", e.Line, e.Column, e.Message)
}

// RuntimeError is an expression that stopped while running: a wrong type, a
// budget exceeded. The trigger's action becomes ERROR with its message.
type RuntimeError struct {
	Message string
}

func (e *RuntimeError) Error() string { return e.Message }

// nilSafe makes every member access optional (`a.b` behaves as `a?.b`): each
// access is wrapped in a chain, so nil anywhere along a path ends the path
// with nil.
type nilSafe struct{}

func (nilSafe) Visit(n *ast.Node) {
	switch node := (*n).(type) {
	case *ast.MemberNode:
		if !node.Optional {
			node.Optional = true
			ast.Patch(n, &ast.ChainNode{Node: node})
		}
	case *ast.BinaryNode:
		// An ordering comparison with a missing value is false, not an
		// error: `properties.count > 3` on an event without count does not
		// match, like `properties.plan == "pro"` on one without plan.
		if orderings[node.Operator] {
			ast.Patch(n, &ast.CallNode{Callee: &ast.IdentifierNode{Value: compareName},
				Arguments: []ast.Node{&ast.StringNode{Value: node.Operator}, node.Left, node.Right}})
		}
	}
}

var orderings = map[string]bool{"<": true, ">": true, "<=": true, ">=": true}

// compareName is the function ordering comparisons are rewritten to.
const compareName = "__compare"

// compare orders two values as expr does, except that nil on either side is
// false.
func compare(args ...any) (any, error) {
	op, a, b := args[0].(string), args[1], args[2]
	if a == nil || b == nil {
		return false, nil
	}
	switch op {
	case "<":
		return runtime.Less(a, b), nil
	case ">":
		return runtime.More(a, b), nil
	case "<=":
		return runtime.LessOrEqual(a, b), nil
	default:
		return runtime.MoreOrEqual(a, b), nil
	}
}

func options(extra ...expr.Option) []expr.Option {
	return append([]expr.Option{
		expr.Env(map[string]any{}),
		expr.AllowUndefinedVariables(),
		expr.Patch(nilSafe{}),
		expr.Patch(boundedAdd{}),
		expr.MaxNodes(MaxNodes),
		// now() and date() read the clock; they are not I/O and make
		// conditions like "within office hours" possible, so they stay.
	}, append(boundedBuiltins(), extra...)...)
}

// CompileCondition compiles a boolean expression. A condition whose value is
// nil (a missing field) is false.
func CompileCondition(source string) (*Program, error) {
	return compile(source, expr.AsBool())
}

// CompileValue compiles an expression of any type.
func CompileValue(source string) (*Program, error) {
	return compile(source)
}

func compile(source string, extra ...expr.Option) (*Program, error) {
	if len(source) > MaxSourceLen {
		return nil, &CompileError{Source: source, Line: 1, Column: 1,
			Message: fmt.Sprintf("the expression is %d bytes; at most %d", len(source), MaxSourceLen)}
	}
	if strings.TrimSpace(source) == "" {
		return nil, &CompileError{Source: source, Line: 1, Column: 1, Message: "the expression is empty"}
	}
	depth := &closureDepth{depth: map[*ast.PredicateNode]int{}}
	work := &countedWork{}
	prog, err := expr.Compile(source, append(options(extra...), expr.Patch(depth), expr.Patch(work))...)
	if err == nil {
		err = cmp.Or(depth.err, work.err)
	}
	if err != nil {
		return nil, compileError(source, err)
	}
	return &Program{source: source, prog: prog}, nil
}

func compileError(source string, err error) *CompileError {
	var fe *file.Error
	if errors.As(err, &fe) {
		line, col := fe.Line, fe.Column+1
		if line == 0 {
			line = 1
		}
		return &CompileError{Source: source, Line: line, Column: col, Message: fe.Message, Snippet: snippet(source, line, col)}
	}
	return &CompileError{Source: source, Line: 1, Column: 1, Message: err.Error(), Snippet: snippet(source, 1, 1)}
}

// snippet returns the line of source and, under it, a caret at column (both
// counted from 1, the column in characters).
func snippet(source string, line, column int) string {
	lines := strings.Split(source, "\n")
	if line < 1 || line > len(lines) {
		return ""
	}
	text := strings.ReplaceAll(lines[line-1], "\t", " ")
	return text + "\n" + strings.Repeat(" ", max(column-1, 0)) + "^"
}

// Eval runs the program against env with the memory budget.
func (p *Program) Eval(env Env) (any, error) {
	machine := vm.VM{MemoryBudget: MemoryBudget}
	// A fresh step counter per run, in a shallow copy of the environment:
	// the caller's env is shared by every trigger of the event.
	run := make(map[string]any, len(env)+1)
	for k, v := range env {
		run[k] = v
	}
	run[stepsName] = &steps{}
	out, err := machine.Run(p.prog, run)
	if err != nil {
		var fe *file.Error
		if errors.As(err, &fe) {
			return nil, &RuntimeError{Message: fmt.Sprintf("%s (at %d:%d)", fe.Message, max(fe.Line, 1), fe.Column+1)}
		}
		return nil, &RuntimeError{Message: err.Error()}
	}
	return out, nil
}

// EvalBool runs a condition. nil is false.
func (p *Program) EvalBool(env Env) (bool, error) {
	out, err := p.Eval(env)
	if err != nil {
		return false, err
	}
	switch v := out.(type) {
	case bool:
		return v, nil
	case nil:
		return false, nil
	default:
		return false, &RuntimeError{Message: fmt.Sprintf("the condition is a %T, not a boolean", out)}
	}
}

// Env is what expressions see.
type Env map[string]any

// NewEnv builds the environment of one event so that a mapping written for
// any generation of Knock's sources works unchanged (DESIGN §4):
//   - the original event's top-level fields (`properties.x`, `userId`,
//     `context.x`, `traits.x`, `event`, `messageId`): Knock's legacy Segment
//     paths;
//   - `data` (the event's data) and `user_id`: Knock's common-format paths;
//   - `body` (the whole original event) and `headers` (request headers, by
//     lowercase name): Knock's newer paths.
//
// The reserved names win over top-level fields of the same name.
func NewEnv(original, data map[string]any, userID string, headers map[string]string) Env {
	env := make(Env, len(original)+4)
	for k, v := range original {
		env[k] = v
	}
	env["body"] = original
	env["data"] = data
	env["user_id"] = userID
	h := make(map[string]any, len(headers))
	for k, v := range headers {
		h[strings.ToLower(k)] = v
	}
	env["headers"] = h
	return env
}
