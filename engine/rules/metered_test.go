package rules

import (
	"testing"

	"github.com/expr-lang/expr/builtin"
)

// TestEveryBuiltinIsMetered checks that every builtin expr offers is
// bounded one way: a closure charged per element, one of hark's text
// builders, a metered version of expr's own, or a builtin of constant cost. A builtin added by an
// upgrade of expr fails here until it has a cost.
func TestEveryBuiltinIsMetered(t *testing.T) {
	t.Parallel()
	for _, f := range builtin.Builtins {
		_, isMetered := metered[f.Name]
		_, isText := textBuilders[f.Name]
		ways := 0
		for _, ok := range []bool{predicates[f.Name], isMetered, isText, constantBuiltins[f.Name]} {
			if ok {
				ways++
			}
		}
		if ways != 1 {
			t.Errorf("builtin %s is bounded %d ways (closure %v, metered %v, text builder %v, constant %v); want exactly one",
				f.Name, ways, predicates[f.Name], isMetered, isText, constantBuiltins[f.Name])
		}
	}
	for name := range metered {
		if _, ok := builtin.Index[name]; !ok {
			t.Errorf("metered %s is not a builtin of expr", name)
		}
	}
	for name := range textBuilders {
		if _, ok := builtin.Index[name]; !ok && name != "sprintf" {
			t.Errorf("text builder %s is not a builtin of expr", name)
		}
	}
}
