package rules_test

import (
	"errors"
	"fmt"

	"github.com/harkhq/hark/engine/rules"
)

// exampleEnv is the environment of a Segment track "Comment Created".
func exampleEnv() rules.Env {
	original := map[string]any{
		"type":   "track",
		"event":  "Comment Created",
		"userId": "actor1",
		"properties": map[string]any{
			"post":       map[string]any{"id": 42.0, "title": "Hello"},
			"comment":    map[string]any{"id": 7.0, "body": "Nice post"},
			"recipients": []any{"u2", "u3"},
		},
		"context": map[string]any{"library": map[string]any{"name": "analytics.js"}},
	}
	data := original["properties"].(map[string]any)
	return rules.NewEnv(original, data, "actor1", map[string]string{"X-Request-Id": "req-1"})
}

func ExampleCompileCondition() {
	cond, err := rules.CompileCondition(`properties.post.id == 42`)
	if err != nil {
		panic(err)
	}
	ok, err := cond.EvalBool(exampleEnv())
	fmt.Println(ok, err)

	// A missing field anywhere along a path is nil, so the condition is
	// false instead of an error.
	missing, _ := rules.CompileCondition(`properties.thread.parent.id == 42`)
	ok, err = missing.EvalBool(exampleEnv())
	fmt.Println(ok, err)
	// Output:
	// true <nil>
	// false <nil>
}

func ExampleCompileValue() {
	mapping, err := rules.CompileValue(`{"comment": properties.comment.body, "post": data.post.title, "lib": body.context.library.name, "request": headers["x-request-id"]}`)
	if err != nil {
		panic(err)
	}
	out, err := mapping.Eval(exampleEnv())
	fmt.Println(out, err)

	recipients, _ := rules.CompileValue(`properties.recipients`)
	out, err = recipients.Eval(exampleEnv())
	fmt.Println(out, err)
	// Output:
	// map[comment:Nice post lib:analytics.js post:Hello request:req-1] <nil>
	// [u2 u3] <nil>
}

func ExampleCompileError() {
	_, err := rules.CompileCondition(`properties.post.id ==`)
	var ce *rules.CompileError
	if errors.As(err, &ce) {
		fmt.Println(ce)
		fmt.Println(ce.Snippet)
	}
	// Output:
	// 1:21: unexpected token EOF
	// properties.post.id ==
	//                     ^
}

func ExampleRuntimeError() {
	p, _ := rules.CompileValue(`properties.comment.body + 1`)
	_, err := p.Eval(exampleEnv())
	var re *rules.RuntimeError
	fmt.Println(errors.As(err, &re), err)

	big, _ := rules.CompileValue(`repeat("x", 100000000)`)
	_, err = big.Eval(exampleEnv())
	fmt.Println(err)

	huge, _ := rules.CompileValue(`len(1..100000000)`)
	_, err = huge.Eval(exampleEnv())
	fmt.Println(err)
	// Output:
	// true invalid operation: string + int (at 1:25)
	// the result would be longer than 32768 bytes (at 1:1)
	// memory budget exceeded (at 1:6)
}

func ExampleNewEnv() {
	env := rules.NewEnv(
		map[string]any{"userId": "u1", "properties": map[string]any{"plan": "pro"}},
		map[string]any{"plan": "pro"},
		"u1",
		map[string]string{"X-Forwarded-For": "203.0.113.7"},
	)
	for _, source := range []string{`userId`, `user_id`, `properties.plan`, `data.plan`, `body.properties.plan`, `headers["x-forwarded-for"]`} {
		p, _ := rules.CompileValue(source)
		v, _ := p.Eval(env)
		fmt.Printf("%s = %v\n", source, v)
	}
	// Output:
	// userId = u1
	// user_id = u1
	// properties.plan = pro
	// data.plan = pro
	// body.properties.plan = pro
	// headers["x-forwarded-for"] = 203.0.113.7
}

func ExampleProgram_CheckRoots() {
	// A typo in the name a path starts from compiles (the path is nil-safe)
	// and would never match; saving the trigger checks its roots.
	cond, err := rules.CompileCondition(`propertes.plan == "pro"`)
	if err != nil {
		panic(err)
	}
	err = cond.CheckRoots(rules.NewRoots(rules.SegmentFields...))
	var ce *rules.CompileError
	if errors.As(err, &ce) {
		fmt.Println(ce)
		fmt.Println(ce.Snippet)
	}
	// Output:
	// 1:1: unknown name propertes; did you mean properties?
	// propertes.plan == "pro"
	// ^
}
