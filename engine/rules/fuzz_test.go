package rules_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/harkhq/hark/engine/rules"
)

// FuzzCompileEval checks that any text is handled: compiling never panics
// and refuses with a *CompileError, and a program that compiles runs against
// a fixed event without panicking, to a value or a *RuntimeError. Crashers
// found by `go test -fuzz FuzzCompileEval` are kept in
// testdata/fuzz/FuzzCompileEval.
func FuzzCompileEval(f *testing.F) {
	for _, c := range mappingCorpus {
		f.Add(c.source)
	}
	for _, s := range []string{
		`properties.post.id == 42`,
		`properties.post.id ==`,
		"properties.post.id == 42 &&\n  properties.x ==",
		``, ` `, `"abc`, `@`, `properties.`, `{"a": properties.b`,
		`repeat("x", 100000000)`, `1..100000000`, `map(1..150000, # * 2)`,
		`properties.text + 1`, `-properties.text`, `upper(properties.post.id)`,
		`properties.tags[5]`, `properties.nope.call()`, `$env.userId`,
		`let x = properties.post; x.id`, `properties | keys()`, `sortBy(properties.tags, #)`,
		`now()`, `date("2026-01-02")`, `properties?.post?.id ?? 0`,
		`(-9223372036854775807)..9223372036854775807`, `1/0`, `int(1e300)`,
		"1" + strings.Repeat("+1", 999),
	} {
		f.Add(s)
	}
	// The expressions that stop at a bound, against the small event.
	for _, set := range [][]hostile{memoryHostile, workHostile, calibration} {
		for _, c := range set {
			f.Add(c.source)
		}
	}
	original, data := fixedEvent(f)
	env := rules.NewEnv(original, data, "actor1", fixedHeaders)

	f.Fuzz(func(t *testing.T, source string) {
		checkCompileError := func(err error) {
			t.Helper()
			var ce *rules.CompileError
			if !errors.As(err, &ce) {
				t.Fatalf("compile(%q) error %T %v, want *rules.CompileError", source, err, err)
			}
			if ce.Line < 1 || ce.Column < 1 || ce.Message == "" {
				t.Fatalf("compile(%q) = %+v, want line and column from 1 and a message", source, ce)
			}
			if strings.HasPrefix(ce.Message, "internal") {
				t.Fatalf("compile(%q) = %v: an expression that checks must compile bounded", source, ce)
			}
		}
		if p, err := rules.CompileValue(source); err != nil {
			checkCompileError(err)
		} else {
			if err := p.CheckRoots(segmentRoots); err != nil {
				// Refused roots are pointed at as compile errors are.
				checkCompileError(err)
			}
			if v, err := p.Eval(env); err != nil {
				var re *rules.RuntimeError
				if !errors.As(err, &re) || v != nil || strings.HasPrefix(re.Message, "internal") {
					t.Fatalf("Eval(%q) = %#v, %T %v; want a value or a *rules.RuntimeError", source, v, err, err)
				}
			}
		}
		if p, err := rules.CompileCondition(source); err != nil {
			checkCompileError(err)
		} else if ok, err := p.EvalBool(env); err != nil {
			var re *rules.RuntimeError
			if !errors.As(err, &re) || ok {
				t.Fatalf("EvalBool(%q) = %v, %T %v; want a bool or a *rules.RuntimeError", source, ok, err, err)
			}
		}
	})
}
