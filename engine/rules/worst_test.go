package rules_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/harkhq/hark/engine/rules"
)

// calibration are expressions that each spend the whole budget on one kind
// of operation, over the worst inputs found for it: BenchmarkWorstCase
// reports the time per step of each, which the weights of builtins.go keep
// at about a nanosecond or less.
var calibration = []hostile{
	{"loop", `let r = 1..3000; sum(r, sum(r, 1))`, nil},
	{"loop with a long body", `sum(1..100, ` + strings.Repeat("# * ", 200) + `1)`, nil},
	{"loop of paths", `let r = 1..1000; sum(r, sum(r, body.context.a.b.c.d == nil ? 1 : 0))`, nil},
	{"loop of literals", `let r = 1..300; sum(r, sum(r, len([#, #, #, #, #, #, #, #]) + len({"a": #, "b": #, "c": #, "d": #})))`, nil},
	{"loop of string literals", `let r = 1..1000; sum(r, sum(r, body.context["` + strings.Repeat("k", 4000) + `"] == nil ? 1 : 0))`, nil},
	{"upper of Unicode", `sum(1..3000, len(upper(body.context.u)))`, map[string]any{"u": strings.Repeat("é", 12_000)}},
	{"lower of Unicode", `sum(1..3000, len(lower(body.context.u)))`, map[string]any{"u": strings.Repeat("É", 12_000)}},
	{"len of Unicode", `sum(1..3000, len(body.context.u))`, map[string]any{"u": strings.Repeat("é", 12_000)}},
	{"regexp of classes", `sum(1..3000, body.context.blob matches "[a-q][^u-z]{13}x" ? 1 : 0)`, map[string]any{"blob": blob[:2000]}},
	{"regexp of optionals", `sum(1..3000, body.context.x matches "(x?){30}x{30}y" ? 1 : 0)`, map[string]any{"x": strings.Repeat("x", 200)}},
	{"regexp on short texts", `sum(1..3000, body.context.x matches "(x?){30}x{30}y" ? 1 : 0)`, map[string]any{"x": strings.Repeat("x", 100)}},
	{"regexp of many instructions", `sum(1..3000, body.context.x matches "(x?){200}x{200}y" ? 1 : 0)`, map[string]any{"x": strings.Repeat("x", 60)}},
	{"regexp built at run time", `sum(1..3000, "x" matches ("(x?){" + string(# % 50 + 1) + "}y") ? 1 : 0)`, nil},
	{"regexp large built at run time", `sum(1..3000, "x" matches (body.context.p + string(#)) ? 1 : 0)`, map[string]any{"p": strings.Repeat("[a-z]{100}", 3)}},
	{"regexp huge built at run time", `sum(1..3000, "x" matches (body.context.p + string(#)) ? 1 : 0)`, map[string]any{"p": strings.Repeat("[a-z]{1000}", 90)}},
	{"sortBy of strings", `sum(1..3000, len(sortBy(body.context.strs, #)))`, map[string]any{"strs": strs}},
	{"sort of strings", `sum(1..3000, len(sort(body.context.strs)))`, map[string]any{"strs": strs}},
	{"sort of numbers", `sum(1..3000, len(sort(body.context.distinct)))`, map[string]any{"distinct": reversed(distinct)}},
	{"fromJSON of objects", `sum(1..3000, len(fromJSON(body.context.json)))`, map[string]any{"json": "[" + strings.Repeat("{},", 2000) + "{}]"}},
	{"fromJSON of numbers", `sum(1..3000, len(fromJSON(body.context.json)))`, map[string]any{"json": "[" + strings.Repeat("1,", 3000) + "1]"}},
	{"fromJSON nested", `sum(1..3000, len(fromJSON(body.context.json)))`, map[string]any{"json": strings.Repeat("[", 3000) + strings.Repeat("]", 3000)}},
	{"toJSON of an object", `sum(1..3000, len(toJSON(body.context.wide)))`, map[string]any{"wide": wide}},
	{"toJSON of numbers", `sum(1..3000, len(toJSON(body.context.nums[:3000])))`, map[string]any{"nums": nums}},
	{"string of an object", `sum(1..3000, len(string(body.context.wide)))`, map[string]any{"wide": wide}},
	{"join of numbers", `sum(1..3000, len(join(body.context.nums[:3000], ",")))`, map[string]any{"nums": nums}},
	{"keys", `sum(1..3000, len(keys(body.context.wide)))`, map[string]any{"wide": wide}},
	{"values", `sum(1..3000, len(values(body.context.wide)))`, map[string]any{"wide": wide}},
	{"toPairs", `sum(1..3000, len(toPairs(body.context.wide)))`, map[string]any{"wide": wide}},
	{"fromPairs", `let p = toPairs(body.context.wide); sum(1..3000, len(fromPairs(p)))`, map[string]any{"wide": wide}},
	{"uniq", `sum(1..3000, len(uniq(body.context.distinct[:300])))`, map[string]any{"distinct": distinct}},
	{"uniq of objects", `sum(1..3000, len(uniq(body.context.list)))`, map[string]any{"list": objects(30)}},
	{"flatten", `sum(1..3000, len(flatten(body.context.nested)))`, map[string]any{"nested": nestedLists()}},
	{"concat", `sum(1..3000, len(concat(body.context.nums, body.context.nums)))`, map[string]any{"nums": nums}},
	{"reverse", `sum(1..3000, len(reverse(body.context.nums)))`, map[string]any{"nums": nums}},
	{"median", `sum(1..3000, median(body.context.distinct))`, map[string]any{"distinct": reversed(distinct)}},
	{"max", `sum(1..3000, max(body.context.nums))`, map[string]any{"nums": nums}},
	{"equal objects", `sum(1..3000, body.context.a == body.context.b ? 1 : 0)`, map[string]any{"a": wide, "b": wide}},
	{"equal objects of lists", `sum(1..3000, body.context.a == body.context.b ? 1 : 0)`, map[string]any{"a": map[string]any{"l": nums[:5000]}, "b": map[string]any{"l": nums[:5000]}}},
	{"equal lists", `sum(1..3000, body.context.a == body.context.b ? 1 : 0)`, map[string]any{"a": nums[:5000], "b": nums[:5000]}},
	{"in a list", `sum(1..3000, "x" in body.context.nums ? 1 : 0)`, map[string]any{"nums": nums}},
	{"in a list of objects", `sum(1..3000, body.context.o in body.context.list ? 1 : 0)`, map[string]any{"o": map[string]any{"a": 1.0, "b": 2.0}, "list": objects(300)}},
	{"trim with a Unicode cutset", `sum(1..3000, len(trim(body.context.u, body.context.cut)))`, map[string]any{"u": strings.Repeat("é", 5000), "cut": strings.Repeat("ü", 2000) + "é"}},
	{"contains", `sum(1..3000, body.context.a contains body.context.b ? 1 : 0)`, map[string]any{"a": strings.Repeat("a", 25_000), "b": strings.Repeat("a", 999) + "b"}},
	{"lastIndexOf", `sum(1..3000, lastIndexOf(body.context.a, body.context.b))`, map[string]any{"a": strings.Repeat("a", 25_000), "b": "b" + strings.Repeat("a", 999)}},
	{"split into runes", `sum(1..3000, len(splitAfter(body.context.u, "")))`, map[string]any{"u": strings.Repeat("é", 4000)}},
	{"split", `sum(1..3000, len(split(body.context.blob, "a")))`, map[string]any{"blob": blob}},
	{"replace", `sum(1..3000, len(replace(body.context.blob, "a", "bb")))`, map[string]any{"blob": blob[:20_000]}},
	{"date of long text", `sum(1..3000, date(body.context.d ?? "2026-01-02").Year())`, map[string]any{"d": nil}},
	{"date in a zone", `sum(1..3000, date("2026-01-02 03:04", "2006-01-02 15:04", "Europe/Paris").Hour())`, nil},
	{"int of long text", `sum(1..3000, int(body.context.n))`, map[string]any{"n": strings.Repeat("0", 25_000) + "1"}},
	{"method calls", `sum(1..500, now().Add(duration("1h")).Unix() > 0 ? 1 : 0)`, nil},
	{"regexp of a literal", `sum(1..3000, len(filter(body.context.strs, # matches "s{70}")))`, map[string]any{"strs": strs}},
	{"cheap builtins", `let r = 1..300; sum(r, sum(r, len(type(#)) + abs(-#) + bitand(#, 7) + int(float(#)) + (first([#]) ?? 0) + (get(body.context, "x") ?? 0)))`, nil},
	{"time format of digits", `sum(1..3000, len(now().Format(body.context.f)))`, map[string]any{"f": strings.Repeat("1", 16_000)}},
	{"groupBy of long keys", `sum(1..3000, len(groupBy(body.context.strs, # + #)))`, map[string]any{"strs": strs}},
	{"long computed keys", `sum(1..3000, body.context[body.context.blob] == nil ? 1 : 0)`, map[string]any{"blob": blob}},
	{"toBase64", `sum(1..3000, len(toBase64(body.context.blob[:20000])))`, map[string]any{"blob": blob}},
	{"string concatenation", `reduce(1..3000, len(#acc) > 30000 ? "" : #acc + body.context.blob[:1000], "")`, map[string]any{"blob": blob}},
	{"header prefix", `let p = repeat("h", 30000); let r = 1..300; sum(r, sum(r, hasPrefix(headers["x-big"], p) ? 1 : 0))`, nil},
}

func reversed(l []any) []any {
	out := make([]any, len(l))
	for i, v := range l {
		out[len(l)-1-i] = v
	}
	return out
}

func objects(n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = map[string]any{"a": 1.0, "b": float64(i + 3)}
	}
	return out
}

// nestedLists is 4,000 numbers in lists nested 4 deep.
func nestedLists() []any {
	var out []any
	for range 250 {
		out = append(out, []any{[]any{[]any{1.0, 2.0}, []any{3.0, 4.0}}, []any{[]any{5.0, 6.0}, []any{7.0, 8.0}}, []any{[]any{1.0, 2.0}, []any{3.0, 4.0}}, []any{[]any{5.0, 6.0}, []any{7.0, 8.0}}})
	}
	return out
}

// BenchmarkWorstCase runs the expressions that stop at a bound, and those
// that spend the budget on one kind of operation, over the largest events:
// ns/op is the CPU one evaluation can take, B/op what it allocates (an
// upper bound of its peak memory), steps/op what it was charged and
// ns/step the calibration of the weights.
func BenchmarkWorstCase(b *testing.B) {
	for _, set := range []struct {
		name  string
		cases []hostile
	}{{"memory", memoryHostile}, {"work", workHostile}, {"calibration", calibration}} {
		for _, c := range set.cases {
			b.Run(set.name+"/"+c.name, func(b *testing.B) {
				p, err := rules.CompileValue(c.source)
				if err != nil {
					b.Fatal(err)
				}
				env := bigEnv(b, c.ctx)
				var steps, bytes int
				b.ReportAllocs()
				for b.Loop() {
					_, steps, bytes, err = p.Usage(env)
					var re *rules.RuntimeError
					if err != nil && (!errors.As(err, &re) || !isBudgetError(re.Message)) {
						b.Fatalf("Eval: %v", err)
					}
				}
				b.ReportMetric(float64(steps), "steps/op")
				b.ReportMetric(float64(bytes), "charged-B/op")
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(max(steps, 1)), "ns/step")
			})
		}
	}
}

func isBudgetError(msg string) bool {
	for _, bound := range []string{"steps of work", "bytes of values", "longer than", "more than", "memory budget"} {
		if strings.Contains(msg, bound) {
			return true
		}
	}
	return false
}

var _ = json.Marshal
var _ = fmt.Sprint
