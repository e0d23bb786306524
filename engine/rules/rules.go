// Package rules compiles and runs the expressions of triggers: a condition
// that decides whether an event starts a workflow, and mappings that turn
// the event into the run's recipients, actor, tenant, data and cancellation
// key. Expressions are github.com/expr-lang/expr.
//
// Expressions compile when a trigger is saved and run for every matching
// event, so compile errors carry line, column and a snippet (CompileError),
// and runs are bounded (limits.go): a node limit and a closure-nesting
// limit at compile time; at run time a budget of work (MaxSteps) and of
// bytes built (MaxRunBytes) that every operation charges by the size of
// what it touches and builds, bounded strings and lists, and expr's own
// element budget — expr has no timeout. No function with side effects or
// I/O exists in the language.
//
// A program compiles in two passes. The first checks the expression as
// written, with the patches that change the language (nil-safe paths,
// comparisons with nil), so compile errors are expr's own. The second
// (meter.go) rewrites the checked tree so every run creates its budget
// first and every costly operation charges it; it is checked again and
// compiled without expr's optimizer, whose rewrites (merging closures over
// the same list) would undo the charges.
//
// Every member access is nil-safe: a missing field anywhere along a path
// yields nil, never an error — the most common complaint about
// expression-based triggers. The language is changed only through the
// compile-time patch (nilSafe), never by rewriting stored expressions.
//
// Programs are safe for concurrent use.
package rules

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/checker"
	"github.com/expr-lang/expr/compiler"
	"github.com/expr-lang/expr/conf"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"
)

// Program is a compiled expression.
type Program struct {
	source string
	prog   *vm.Program
	roots  []root // as written, in source order (CheckRoots)
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
		if name, ok := orderings[node.Operator]; ok {
			ast.Patch(n, &ast.CallNode{Callee: &ast.IdentifierNode{Value: name},
				Arguments: []ast.Node{steps(node.Location()), node.Left, node.Right}})
		}
	}
}

// orderings are the functions ordering comparisons are rewritten to.
var orderings = map[string]string{"<": "__lt", ">": "__gt", "<=": "__le", ">=": "__ge"}

// boundedAdd replaces `+` everywhere: a patch turns every binary + into a
// call of addName, which refuses strings over MaxStringBytes and lists over
// MaxListLen, charges the budget, and then adds as expr does.
type boundedAdd struct{}

func (boundedAdd) Visit(n *ast.Node) {
	if b, ok := (*n).(*ast.BinaryNode); ok && b.Operator == "+" {
		ast.Patch(n, &ast.CallNode{Callee: &ast.IdentifierNode{Value: addName},
			Arguments: []ast.Node{steps(b.Location()), b.Left, b.Right}})
	}
}

// functions are what the patches call, made once.
var functions = boundedFunctions()

// options are the configuration of both passes. Patches run in order;
// reserved and the root finder see the expression as written.
func options(names *reserved, finder *rootFinder, depth *closureDepth, extra ...expr.Option) []expr.Option {
	opts := []expr.Option{
		expr.Env(map[string]any{}),
		expr.AllowUndefinedVariables(),
		expr.Patch(names),
		expr.Patch(finder),
		expr.Patch(nilSafe{}),
		expr.Patch(boundedAdd{}),
		expr.Patch(depth),
		expr.MaxNodes(MaxNodes),
		// now() and date() read the clock; they are not I/O and make
		// conditions like "within office hours" possible, so they stay.
	}
	opts = append(opts, functions...)
	return append(opts, extra...)
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
	names := &reserved{}
	depth := &closureDepth{depth: map[*ast.PredicateNode]int{}}
	finder := &rootFinder{bound: map[*ast.IdentifierNode]bool{}}
	config := conf.CreateNew()
	for _, opt := range options(names, finder, depth, extra...) {
		opt(config)
	}
	finder.funcs = func(name string) bool {
		_, fn := config.Functions[name]
		_, bi := config.Builtins[name]
		return fn || bi
	}
	config.Check()
	// The first pass: the expression as written.
	tree, err := checker.ParseCheck(source, config)
	if names.err != nil {
		err = names.err.Bind(tree.Source)
	} else if err == nil {
		err = depth.err
	}
	if err != nil {
		return nil, compileError(source, err)
	}
	// The second: charges, checked again so the new nodes have types.
	m := &meter{}
	ast.Walk(&tree.Node, m)
	if fe, ok := m.err.(*file.Error); ok {
		m.err = fe.Bind(tree.Source)
	}
	if m.err != nil {
		return nil, compileError(source, m.err)
	}
	tree.Node = finish(tree.Node)
	if _, err := checker.Check(tree, config); err != nil {
		return nil, internalError(source, "check", err)
	}
	prog, err := compiler.Compile(tree, config)
	if err != nil {
		// expr's compiler refuses some expressions its checker lets
		// through: then the expression as written does not compile either,
		// and that is the error to show.
		if plain, perr := checker.ParseCheck(source, config); perr == nil {
			if _, perr = compiler.Compile(plain, config); perr != nil {
				return nil, compileError(source, perr)
			}
		}
		return nil, internalError(source, "compile", err)
	}
	return &Program{source: source, prog: prog, roots: finder.roots()}, nil
}

// internalError is a bounded program that does not check or compile
// although the expression did: our bug, said so.
func internalError(source, step string, err error) *CompileError {
	return &CompileError{Source: source, Line: 1, Column: 1, Snippet: snippet(source, 1, 1),
		Message: fmt.Sprintf("internal: the bounded expression does not %s: %v", step, err)}
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

// Eval runs the program against env within the bounds. env is not
// changed: the run's budget is a variable of the program, so one env serves
// every trigger of an event, concurrently too.
func (p *Program) Eval(env Env) (any, error) {
	out, _, err := p.run(env)
	return out, err
}

// run is Eval, also returning the run's budget (nil when the run stopped
// before it made one).
func (p *Program) run(env Env) (any, *budget, error) {
	machine := vms.Get().(*vm.VM)
	defer vms.Put(machine)
	clear(machine.Variables) // a run that stops early must not find the last one's budget
	out, err := machine.Run(p.prog, map[string]any(env))
	// The budget is the program's first variable (finish declares it).
	var b *budget
	if len(machine.Variables) > 0 {
		b, _ = machine.Variables[0].(*budget)
	}
	if err != nil {
		var fe *file.Error
		if errors.As(err, &fe) {
			return nil, b, &RuntimeError{Message: shorten(fe.Message, MaxErrorBytes-20) +
				fmt.Sprintf(" (at %d:%d)", max(fe.Line, 1), fe.Column+1)}
		}
		return nil, b, &RuntimeError{Message: shorten(err.Error(), MaxErrorBytes)}
	}
	return out, b, nil
}

// vms are expr machines kept between runs: a machine's stack and scopes are
// reused (vm.VM.Run resets them), which saved most of a run's allocations.
var vms = sync.Pool{New: func() any { return &vm.VM{MemoryBudget: MemoryBudget} }}

// shorten cuts s to at most n bytes, on a character boundary, marking the
// cut: an error that quotes a large field need not carry all of it.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const mark = "…"
	cut := n - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
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
	return NewEnvWith(original, data, userID, NewHeaders(headers))
}

// Headers are request headers as expressions see them, by lowercase name.
// One value serves every event of a delivery: it is only read.
type Headers map[string]any

// NewHeaders builds Headers from header values.
func NewHeaders(headers map[string]string) Headers {
	h := make(Headers, len(headers))
	for k, v := range headers {
		h[strings.ToLower(k)] = v
	}
	return h
}

// NewEnvWith is NewEnv with the headers built already (NewHeaders), so a
// delivery's events share them.
func NewEnvWith(original, data map[string]any, userID string, headers Headers) Env {
	env := make(Env, len(original)+5)
	for k, v := range original {
		env[k] = v
	}
	env["body"] = original
	env["data"] = data
	env["user_id"] = userID
	env["headers"] = map[string]any(headers)
	env[accountName] = &account{}
	return env
}
