package rules_test

import (
	"testing"

	"github.com/harkhq/hark/engine/rules"
)

// Benchmarks of ordinary expressions: what every matching event pays. The
// bounds on expressions must not make these noticeably slower.

func benchEval(b *testing.B, source string) {
	b.Helper()
	p, err := rules.CompileValue(source)
	if err != nil {
		b.Fatal(err)
	}
	env := fixedEnv(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Eval(env); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEvalCondition(b *testing.B) {
	p, err := rules.CompileCondition(`properties.post.id == 42 && event == "Comment Created"`)
	if err != nil {
		b.Fatal(err)
	}
	env := fixedEnv(b)
	b.ReportAllocs()
	for b.Loop() {
		if ok, err := p.EvalBool(env); err != nil || !ok {
			b.Fatal(ok, err)
		}
	}
}

func BenchmarkEvalPath(b *testing.B) { benchEval(b, `properties.post.title`) }

func BenchmarkEvalObject(b *testing.B) {
	benchEval(b, `{"comment": properties.comment.body, "post": data.post.title, "lib": body.context.library.name, "request": headers["x-request-id"]}`)
}

func BenchmarkEvalRecipients(b *testing.B) {
	benchEval(b, `[userId, {"id": properties.recipients[2].id, "email": properties.recipients[2].email}]`)
}

func BenchmarkEvalStrings(b *testing.B) {
	benchEval(b, `upper(properties.post.title) + " by " + userId + (properties.amount > 100 ? "!" : "")`)
}

func BenchmarkEvalClosure(b *testing.B) {
	benchEval(b, `map(filter(properties.recipients, type(#) == "string"), [#, "!"])`)
}

func BenchmarkEvalCorpus(b *testing.B) {
	env := fixedEnv(b)
	progs := make([]*rules.Program, 0, len(mappingCorpus))
	for _, c := range mappingCorpus {
		p, err := rules.CompileValue(c.source)
		if err != nil {
			b.Fatal(err)
		}
		progs = append(progs, p)
	}
	b.ReportAllocs()
	for b.Loop() {
		for _, p := range progs {
			if _, err := p.Eval(env); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkCompile(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := rules.CompileValue(`{"comment": properties.comment.body, "post": data.post.title, "n": len(filter(properties.recipients, type(#) == "string"))}`); err != nil {
			b.Fatal(err)
		}
	}
}
