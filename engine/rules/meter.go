package rules

import (
	"fmt"
	"strings"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/builtin"
	"github.com/expr-lang/expr/file"
)

// Names the patches insert. Expressions may not use names that start with
// reservedPrefix (reserved), so an expression cannot reach the run's budget
// or call a metered function with costs of its own.
const (
	reservedPrefix = "__"
	stepsName      = "__steps"   // the run's *budget, a variable of the program
	budgetName     = "__budget"  // makes it
	accountName    = "__account" // the event's account, in the Env (NewEnv)
	eachName       = "__each"    // charges a closure for every element
	sortKeyName    = "__sortKey"
	groupKeyName   = "__groupKey"
	keyName        = "__key" // charges a key computed at run time
	argName        = "__arg" // charges an argument of a method
	eqName         = "__eq"
	inName         = "__in"
	inRangeName    = "__inRange"
	matchesName    = "__matches"
	addName        = "__add"
)

// reserved refuses, before any other patch runs, names that start with
// reservedPrefix: identifiers, functions and variables.
type reserved struct{ err *file.Error }

func (r *reserved) Visit(n *ast.Node) {
	if r.err != nil {
		return
	}
	var name string
	switch node := (*n).(type) {
	case *ast.IdentifierNode:
		name = node.Value
	case *ast.VariableDeclaratorNode:
		name = node.Name
	}
	switch {
	case strings.HasPrefix(name, reservedPrefix):
		r.err = &file.Error{Location: (*n).Location(),
			Message: fmt.Sprintf("the name %s is reserved: names that start with %s are hark's own", name, reservedPrefix)}
	case name == "$env":
		// The whole environment would show what the bounds keep in it.
		r.err = &file.Error{Location: (*n).Location(),
			Message: "$env is reserved in hark expressions: name the fields (body.x, properties.x, headers[\"x\"])"}
	}
}

// predicates are the builtins that run a closure (or, for count and sum
// without one, a loop) over a list: their cost is the list's length times
// the cost of one iteration.
var predicates = map[string]bool{
	"all": true, "none": true, "any": true, "one": true, "filter": true, "map": true,
	"find": true, "findIndex": true, "findLast": true, "findLastIndex": true,
	"count": true, "sum": true, "groupBy": true, "sortBy": true, "reduce": true,
}

// loopCost is what one element of a closure costs; __each charges it times
// the length of the list before the closure runs. Charging in advance costs
// find, any and the other builtins that can stop early the whole list: a
// bound, not an account.
type loopCost struct {
	steps, bytes int
	sort         bool // sortBy: also n·log₂n comparisons
}

// meter is the patch that makes a checked program charge its budget. It
// runs after the expression has been type-checked as written (so compile
// errors are expr's own), and rewrites:
//   - every builtin call f(…) into __f(__steps, …), a metered version that
//     charges what f touches and builds before calling expr's own f
//     (except the builtins of constant cost, which the fixed cost counts);
//   - calls of hark's text builders (join, toJSON, …) to pass the budget;
//   - the list argument of every closure into __each(__steps, list, cost);
//   - ==, in, matches, contains and, with a computed operand, startsWith
//     and endsWith into metered calls;
//   - keys computed at run time, and the arguments of methods (a time's
//     Format), into calls that charge their length.
//
// Walk visits children before their parents, so a node's operands are
// already metered when it is.
type meter struct{ err error }

func (m *meter) Visit(n *ast.Node) {
	switch node := (*n).(type) {
	case *ast.BuiltinNode:
		if predicates[node.Name] {
			m.closure(node)
			return
		}
		if constantBuiltins[node.Name] {
			// expr checks a builtin's arguments only where it checks the
			// call around it: inside the arguments of a call of a missing
			// function, type() would take another call's argument.
			if err := arity(node); err != nil {
				m.fail(err)
			}
			return
		}
		if _, ok := metered[node.Name]; !ok {
			m.fail(fmt.Errorf("internal: the builtin %s has no cost", node.Name)) // TestEveryBuiltinIsMetered
			return
		}
		*n = call(reservedPrefix+node.Name, node.Location(), append([]ast.Node{steps(node.Location())}, node.Arguments...)...)
	case *ast.CallNode:
		m.call(node)
	case *ast.BinaryNode:
		m.binary(n, node)
	case *ast.MemberNode:
		if !isLiteral(node.Property) {
			node.Property = call(keyName, node.Property.Location(), steps(node.Property.Location()), node.Property)
		}
	case *ast.PairNode:
		if !isLiteral(node.Key) {
			node.Key = call(keyName, node.Key.Location(), steps(node.Key.Location()), node.Key)
		}
	}
}

func (m *meter) fail(err error) {
	if m.err == nil {
		m.err = err
	}
}

// closure charges a closure's iterations in advance: its list becomes
// __each(__steps, list, cost of one element).
func (m *meter) closure(node *ast.BuiltinNode) {
	per := &loopCost{steps: loopSteps, bytes: loopBytes}
	var body *ast.PredicateNode
	if len(node.Arguments) > 1 {
		body, _ = node.Arguments[1].(*ast.PredicateNode)
	}
	if body != nil {
		s, b := staticCost(body.Node)
		per.steps += s
		per.bytes += b
	}
	switch node.Name {
	case "map", "filter":
		per.bytes += elemBytes
	case "groupBy":
		// A lookup, a store and the element appended to its key's list.
		per.steps += groupSteps
		per.bytes += groupBytes
		if body != nil {
			body.Node = call(groupKeyName, body.Node.Location(), steps(body.Node.Location()), body.Node)
		}
	case "sortBy":
		// The elements and their keys, copied into the sort.
		per.bytes += 4 * elemBytes
		per.sort = true
		if body != nil {
			body.Node = call(sortKeyName, body.Node.Location(), steps(body.Node.Location()), body.Node)
		}
	}
	list := node.Arguments[0]
	node.Arguments[0] = call(eachName, list.Location(), steps(list.Location()), list, &ast.ConstantNode{Value: per})
}

// call passes the budget to hark's own text builders and charges the
// arguments of any other call (a method) by their size.
func (m *meter) call(node *ast.CallNode) {
	if id, ok := node.Callee.(*ast.IdentifierNode); ok {
		if _, ok := textBuilders[id.Value]; ok {
			node.Arguments = append([]ast.Node{steps(node.Location())}, node.Arguments...)
			return
		}
		if strings.HasPrefix(id.Value, reservedPrefix) {
			return // inserted by a patch, already metered
		}
	}
	for i, arg := range node.Arguments {
		if !isLiteral(arg) {
			node.Arguments[i] = call(argName, arg.Location(), steps(arg.Location()), arg)
		}
	}
}

func (m *meter) binary(n *ast.Node, node *ast.BinaryNode) {
	loc := node.Location()
	switch node.Operator {
	case "==", "!=":
		// Against a literal, == costs at most the literal's length, which
		// the fixed cost counts.
		if isLiteral(node.Left) || isLiteral(node.Right) {
			return
		}
		var eq ast.Node = call(eqName, loc, steps(loc), node.Left, node.Right)
		if node.Operator == "!=" {
			eq = &ast.UnaryNode{Operator: "!", Node: eq}
			eq.SetLocation(loc)
		}
		*n = eq
	case "in":
		if r, ok := node.Right.(*ast.BinaryNode); ok && r.Operator == ".." {
			// Membership of a range needs no range.
			*n = call(inRangeName, loc, node.Left, r.Left, r.Right)
			return
		}
		*n = call(inName, loc, steps(loc), node.Left, node.Right)
	case "matches":
		pattern := node.Right
		if s, ok := pattern.(*ast.StringNode); ok {
			// A constant pattern is compiled (and checked) once, here.
			p, err := compilePattern(s.Value)
			if err != nil {
				m.fail(err)
				return
			}
			c := &ast.ConstantNode{Value: p}
			c.SetLocation(s.Location())
			pattern = c
		}
		*n = call(matchesName, loc, steps(loc), node.Left, pattern)
	case "contains":
		*n = call(reservedPrefix+node.Operator, loc, steps(loc), node.Left, node.Right)
	case "startsWith", "endsWith":
		// Against a literal these compare at most the literal.
		if isLiteral(node.Right) {
			return
		}
		*n = call(reservedPrefix+node.Operator, loc, steps(loc), node.Left, node.Right)
	}
}

// finish makes the program create its budget first, charged with the
// program's fixed cost, on the event's account: `let __steps =
// __budget(__account, steps, bytes); root`.
func finish(root ast.Node) ast.Node {
	s, b := staticCost(root)
	loc := root.Location()
	sn, bn := &ast.IntegerNode{Value: s}, &ast.IntegerNode{Value: b}
	sn.SetLocation(loc)
	bn.SetLocation(loc)
	acct := &ast.IdentifierNode{Value: accountName}
	acct.SetLocation(loc)
	let := &ast.VariableDeclaratorNode{Name: stepsName, Value: call(budgetName, loc, acct, sn, bn), Expr: root}
	let.SetLocation(loc)
	return let
}

// arity refuses a call of a one-argument builtin of constant cost (abs,
// type, …) with another number of arguments: expr compiles these to take
// exactly one value from the stack.
func arity(node *ast.BuiltinNode) error {
	f := builtin.Builtins[builtin.Index[node.Name]]
	if f.Fast == nil || len(node.Arguments) == 1 {
		return nil
	}
	return &file.Error{Location: node.Location(),
		Message: fmt.Sprintf("invalid number of arguments for %s (expected 1, got %d)", node.Name, len(node.Arguments))}
}

// isMethod reports whether a callee is a method, a.m (nil-safe paths wrap
// it in a chain).
func isMethod(callee ast.Node) bool {
	if c, ok := callee.(*ast.ChainNode); ok {
		callee = c.Node
	}
	_, ok := callee.(*ast.MemberNode)
	return ok
}

// call is a call of a function by name, at loc.
func call(name string, loc file.Location, args ...ast.Node) *ast.CallNode {
	callee := &ast.IdentifierNode{Value: name}
	callee.SetLocation(loc)
	c := &ast.CallNode{Callee: callee, Arguments: args}
	c.SetLocation(loc)
	return c
}

// steps is a reference to the run's budget.
func steps(loc file.Location) ast.Node {
	id := &ast.IdentifierNode{Value: stepsName}
	id.SetLocation(loc)
	return id
}

// isLiteral reports whether n is a constant whose cost the program's fixed
// cost already counts: a string, number, boolean or nil literal.
func isLiteral(n ast.Node) bool {
	switch n := n.(type) {
	case *ast.StringNode, *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.NilNode:
		return true
	case *ast.UnaryNode:
		return (n.Operator == "-" || n.Operator == "+") && isLiteral(n.Node)
	}
	return false
}

// staticCost is what running the nodes of n once costs, besides what the
// metered operations among them charge: nodeSteps per node, the length of
// every literal name and string (hashed or compared when used), and the
// lists and maps its literals build. The bodies of closures are not counted:
// __each charges them per element.
func staticCost(n ast.Node) (steps, bytes int) {
	var s static
	s.add(n)
	return s.steps, s.bytes
}

type static struct{ steps, bytes int }

func (s *static) add(n ast.Node) {
	if n == nil {
		return
	}
	s.steps += nodeSteps
	switch n := n.(type) {
	case *ast.PredicateNode:
		s.steps -= nodeSteps
	case *ast.StringNode:
		s.steps += len(n.Value) / hashBytesPerStep
	case *ast.IdentifierNode:
		s.steps += len(n.Value) / hashBytesPerStep
	case *ast.UnaryNode:
		s.steps += operatorSteps
		s.bytes += operatorBytes
		s.add(n.Node)
	case *ast.BinaryNode:
		s.steps += operatorSteps
		s.bytes += operatorBytes
		s.add(n.Left)
		s.add(n.Right)
	case *ast.ChainNode:
		s.add(n.Node)
	case *ast.MemberNode:
		// A fetch through reflection.
		s.steps += memberSteps
		s.add(n.Node)
		s.add(n.Property)
	case *ast.SliceNode:
		s.add(n.Node)
		s.add(n.From)
		s.add(n.To)
	case *ast.CallNode:
		// expr allocates the arguments of most calls made in a loop.
		s.steps += callSteps
		s.bytes += callBytes + elemBytes*len(n.Arguments)
		if isMethod(n.Callee) {
			// A method (of a time): fetched and called through
			// reflection.
			s.steps += methodSteps
			s.bytes += methodBytes
		}
		s.add(n.Callee)
		for _, a := range n.Arguments {
			s.add(a)
		}
	case *ast.BuiltinNode:
		if predicates[n.Name] {
			s.steps += closureSteps
		} else {
			s.steps += builtinSteps
		}
		for _, a := range n.Arguments {
			s.add(a)
		}
		s.add(n.Map)
	case *ast.VariableDeclaratorNode:
		s.add(n.Value)
		s.add(n.Expr)
	case *ast.SequenceNode:
		for _, e := range n.Nodes {
			s.add(e)
		}
	case *ast.ConditionalNode:
		s.add(n.Cond)
		s.add(n.Exp1)
		s.add(n.Exp2)
	case *ast.ArrayNode:
		s.bytes += elemBytes * (len(n.Nodes) + 1)
		for _, e := range n.Nodes {
			s.add(e)
		}
	case *ast.MapNode:
		s.bytes += entryBytes * (len(n.Pairs) + 1)
		for _, p := range n.Pairs {
			s.add(p)
		}
	case *ast.PairNode:
		s.add(n.Key)
		s.add(n.Value)
	}
}
