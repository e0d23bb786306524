package rules

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"unicode/utf8"

	"github.com/expr-lang/expr/ast"
)

// The bounds on every expression, checked when it compiles.
const (
	// MaxSourceLen bounds the text of one expression.
	MaxSourceLen = 8 << 10
	// MaxNodes bounds an expression's size at compile time: mappings are a
	// few paths and an object literal, far below this.
	MaxNodes = 2000
	// MaxClosureDepth bounds how deeply map/filter/all/… nest. Each level
	// multiplies what a run can do; two levels cover flattening nested
	// lists.
	MaxClosureDepth = 2
	// MaxPatternBytes bounds a regular expression, constant or built at
	// run time.
	MaxPatternBytes = 1 << 10
)

// The bounds on every run. expr has no timeout, and its own memory budget
// (MemoryBudget) counts only the elements some operations create, not the
// bytes of what they create, so a short expression could build gigabytes
// (toBase64 nested 30 deep over a 25 KB field) or run for seconds inside
// the ingest path. Every run therefore has a budget of its own (budget.go):
// every operation whose cost depends on its operands charges the steps of
// work it is about to do and the bytes of values it is about to build, and
// the run stops with a RuntimeError at the first charge over a bound.
const (
	// MaxSteps bounds the work of one run, in steps of about a nanosecond
	// each on the development machine (the weights are in builtins.go): a
	// run stops within a few milliseconds of CPU. Ordinary mappings take a
	// few hundred steps; mapping 500 recipients to new objects takes under
	// 400,000.
	MaxSteps = 3_000_000
	// MaxRunBytes bounds the bytes of values one run builds, all values
	// together and counted when built (a value built and dropped still
	// counts): the memory a run may take. It leaves room for mapped
	// values of MaxValueBytes and for decoding a JSON text of about 40 KB.
	MaxRunBytes = 2 << 20
	// MaxEventSteps and MaxEventBytes bound all the runs of one event
	// together — every condition and mapping of every trigger it matches,
	// which share the event's Env — so that an event matched by many
	// triggers also stops within a few milliseconds of CPU.
	MaxEventSteps = 5_000_000
	MaxEventBytes = 4 * MaxRunBytes
	// MaxStringBytes bounds any one string an expression builds: as large
	// as a whole event may be. Values passed through from the event are
	// not built and not limited by this, and slices of them share it.
	MaxStringBytes = 32 << 10
	// MaxListLen bounds lists built with `+`, split and splitAfter.
	MaxListLen = 10_000
	// MemoryBudget is expr's own budget, in elements created by ranges,
	// list and map literals and the results of map, filter and sortBy,
	// counted before they are built: `1..100000000` stops at once. The
	// bytes of everything a run builds are bounded by MaxRunBytes.
	MemoryBudget = 10_000
	// MaxErrorBytes bounds the message of a RuntimeError: a message quoting
	// a large field goes to the event log shortened.
	MaxErrorBytes = 1 << 10
)

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
