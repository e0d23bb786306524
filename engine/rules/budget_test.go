package rules_test

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/harkhq/hark/engine/rules"
)

// maxEventBytes is the largest event the server accepts (DESIGN §5), and
// maxHeaderBytes about the largest request header value: hostile
// expressions get the largest fields an event can carry.
const (
	maxEventBytes  = 32 << 10
	maxHeaderBytes = 60 << 10
)

// Fields of the largest events, each as large as fits in one event.
var (
	// blob is the 25 KB field.
	blob = strings.Repeat("abcdefghij", 2500)
	// nums is a list of 10,000 numbers (20 KB of JSON).
	nums = func() []any {
		l := make([]any, 10_000)
		for i := range l {
			l[i] = 1.0
		}
		return l
	}()
	// distinct is a list of 4,000 different numbers.
	distinct = func() []any {
		l := make([]any, 4_000)
		for i := range l {
			l[i] = float64(i)
		}
		return l
	}()
	// wide is an object of 1,000 keys (12 KB of JSON).
	wide = func() map[string]any {
		m := make(map[string]any, 1000)
		for i := range 1000 {
			m[fmt.Sprintf("k%04d", i)] = 1.0
		}
		return m
	}()
	// emptyObjects is 24 KB of JSON text, `[{},{},…]`: fromJSON builds
	// the most values per byte from it.
	emptyObjects = "[" + strings.Repeat("{},", 8000) + "{}]"
	// strs is a list of 300 strings of 80 bytes that differ only at the end.
	strs = func() []any {
		l := make([]any, 300)
		for i := range l {
			l[i] = strings.Repeat("s", 76) + fmt.Sprintf("%04d", 299-i)
		}
		return l
	}()
	// bigHeader is a request header value as long as the server accepts.
	bigHeader = strings.Repeat("h", maxHeaderBytes)
)

// bigEnv returns the environment of one Segment track whose context is
// context, after checking that the event fits in maxEventBytes, with one
// request header of maxHeaderBytes ("x-big").
func bigEnv(t testing.TB, context map[string]any) rules.Env {
	t.Helper()
	original := map[string]any{
		"type": "track", "event": "Big", "userId": "u1", "messageId": "m1",
		"properties": map[string]any{"plan": "pro"},
		"context":    context,
	}
	raw, err := json.Marshal(original)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) > maxEventBytes {
		t.Fatalf("the test event is %d bytes; an event is at most %d", len(raw), maxEventBytes)
	}
	// Decode it again, so values are what the engine sees (float64, []any,
	// map[string]any).
	if err := json.Unmarshal(raw, &original); err != nil {
		t.Fatal(err)
	}
	return rules.NewEnv(original, original["properties"].(map[string]any), "u1",
		map[string]string{"X-Big": bigHeader, "Content-Type": "application/json"})
}

// hostile is an expression that must stop at a bound, against an event
// whose context is ctx.
type hostile struct {
	name, source string
	ctx          map[string]any
}

func nested(open string, depth int, inner, closing string) string {
	return strings.Repeat(open, depth) + inner + strings.Repeat(closing, depth)
}

// memoryHostile are expressions that built hundreds of megabytes (or ran
// the server out of memory) before their values were bounded.
var memoryHostile = []hostile{
	{"toBase64 nested 30 deep (issue 12)", nested("toBase64(", 30, "body.context.blob", ")"), map[string]any{"blob": blob[:25_000]}},
	{"splitAfter in a closure", `map(1..300, splitAfter(body.context.blob, ""))`, map[string]any{"blob": blob}},
	{"upper in a closure", `map(1..4000, upper(body.context.blob))`, map[string]any{"blob": blob}},
	{"upper of a header in a closure", `map(1..2000, upper(headers["x-big"]))`, nil},
	{"string concatenation in a closure", `map(1..4000, body.context.blob + "x")`, map[string]any{"blob": blob}},
	{"repeat in a closure", `map(1..4000, repeat("x", 32768))`, nil},
	{"replace in a closure", `map(1..4000, replace(body.context.blob, "a", "b"))`, map[string]any{"blob": blob}},
	{"split and join in a closure", `map(1..3000, join(split(body.context.blob, "a"), "b"))`, map[string]any{"blob": blob}},
	{"toJSON in a closure", `map(1..4000, toJSON(body.context.blob))`, map[string]any{"blob": blob}},
	{"fromJSON in a closure", `map(1..200, fromJSON(body.context.json))`, map[string]any{"json": emptyObjects}},
	{"fromBase64 in a closure", `map(1..4000, fromBase64(body.context.b64))`, map[string]any{"b64": base64.StdEncoding.EncodeToString([]byte(blob[:18_000]))}},
	{"values in a closure", `map(1..4000, values(body.context.wide))`, map[string]any{"wide": wide}},
	{"toPairs in a closure", `map(1..2000, toPairs(body.context.wide))`, map[string]any{"wide": wide}},
	{"groupBy in a closure", `map(1..500, groupBy(body.context.nums, #))`, map[string]any{"nums": nums}},
	{"time format in a closure", `map(1..3000, now().Format(body.context.blob))`, map[string]any{"blob": blob}},
}

// maxRunAlloc is what one run that stops at a bound may have allocated: its
// budget of bytes with room for Go's own overhead.
const maxRunAlloc = 4*rules.MaxRunBytes + 1<<20

// TestMemoryBudget checks that expressions that build large values stop
// with a RuntimeError before they have allocated much more than
// MaxRunBytes. It measures the bytes allocated while each runs, so it does
// not run in parallel with other tests.
func TestMemoryBudget(t *testing.T) {
	for _, c := range memoryHostile {
		t.Run(c.name, func(t *testing.T) {
			p, err := rules.CompileValue(c.source)
			if err != nil {
				t.Fatalf("compile: %v", err)
			}
			env := bigEnv(t, c.ctx)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			v, err := p.Eval(env)
			runtime.ReadMemStats(&after)
			allocated := after.TotalAlloc - before.TotalAlloc
			var re *rules.RuntimeError
			if !errors.As(err, &re) || v != nil {
				t.Errorf("Eval = %T, %v after allocating %d MiB; want a *rules.RuntimeError", v, err, allocated>>20)
			}
			if allocated > maxRunAlloc {
				t.Errorf("the run allocated %d MiB; want at most %d MiB", allocated>>20, maxRunAlloc>>20)
			}
		})
	}
}

// workHostile are expressions whose runs took from tenths of a second to
// tens of seconds within the old bound of 200,000 closure steps.
var workHostile = []hostile{
	{"upper in nested sums (issue 12)", `let r = 1..400; sum(r, sum(r, len(upper(body.context.blob))))`, map[string]any{"blob": blob}},
	{"constant pattern in a closure (issue 12)", `sum(1..200, body.context.blob matches "[a-q][^u-z]{13}x" ? 1 : 0)`, map[string]any{"blob": blob}},
	{"len of a long string in nested sums", `let r = 1..300; sum(r, sum(r, len(body.context.blob)))`, map[string]any{"blob": blob}},
	{"in over a long list", `sum(1..3000, "x" in body.context.nums ? 1 : 0)`, map[string]any{"nums": nums}},
	{"sum without a predicate", `sum(1..3000, sum(body.context.nums))`, map[string]any{"nums": nums}},
	{"uniq of a long list", `len(uniq(body.context.distinct))`, map[string]any{"distinct": distinct}},
	{"equality of large objects", `sum(1..3000, body.context.a == body.context.b ? 1 : 0)`, map[string]any{"a": wide, "b": wide}},
	{"long computed keys", `sum(1..3000, body.context[body.context.blob] == nil ? 1 : 0)`, map[string]any{"blob": blob}},
	{"contains on a long string", `sum(1..3000, body.context.blob contains "jk" ? 1 : 0)`, map[string]any{"blob": blob}},
	{"large closure body", `let r = 1..300; sum(r, sum(r, ` + strings.Repeat("# * ", 400) + `1))`, nil},
	{"time format with a long layout", `sum(1..2000, len(now().Format(body.context.blob)))`, map[string]any{"blob": blob}},
	{"fromJSON in a closure", `sum(1..300, len(fromJSON(body.context.json)))`, map[string]any{"json": emptyObjects}},
	{"closure over the bytes of a header", `sum(1..100, count(headers["x-big"], # == 104))`, nil},
	{"timezone lookups in a closure", `len(map(1..3000, timezone("Europe/Paris")))`, nil},
	{"hasPrefix of a header in nested sums", `let p = repeat("h", 30000); let r = 1..300; sum(r, sum(r, hasPrefix(headers["x-big"], p) ? 1 : 0))`, nil},
}

// otherBound are the expressions of workHostile that stop at another bound
// first: a zone load is charged the bytes of an uncached one.
var otherBound = map[string]string{
	"timezone lookups in a closure": fmt.Sprintf("the expression built more than %d bytes of values", rules.MaxRunBytes),
}

// TestWorkBudgetCountsEveryOperation checks that the budget of work counts
// what operations touch, not only closure steps: each expression stops
// with the steps error.
func TestWorkBudgetCountsEveryOperation(t *testing.T) {
	t.Parallel()
	for _, c := range workHostile {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			want := cmp.Or(otherBound[c.name], fmt.Sprintf("the expression did more than %d steps of work", rules.MaxSteps))
			p, err := rules.CompileValue(c.source)
			if err != nil {
				t.Fatalf("compile: %v", err)
			}
			v, err := p.Eval(bigEnv(t, c.ctx))
			var re *rules.RuntimeError
			if !errors.As(err, &re) || !strings.HasPrefix(re.Message, want) {
				t.Fatalf("Eval = %T, %v; want a RuntimeError starting %q", v, err, want)
			}
		})
	}
}

// TestBudgetAllowsOrdinaryWork checks that the bounds leave room for what
// mappings do with the largest events.
func TestBudgetAllowsOrdinaryWork(t *testing.T) {
	t.Parallel()
	recipients := make([]any, 500)
	for i := range recipients {
		recipients[i] = map[string]any{"id": fmt.Sprintf("user-%04d", i), "email": fmt.Sprintf("user-%04d@example.org", i)}
	}
	small := `{"a": [1, 2, {"b": "c"}], "d": "` + strings.Repeat("e", 4000) + `"}`
	for _, c := range []struct {
		name, source string
		ctx          map[string]any
		want         any
	}{
		{"500 recipients mapped", `len(map(body.context.recipients, ({"id": #.id, "email": lower(#.email)})))`, map[string]any{"recipients": recipients}, 500},
		{"filter and count recipients", `count(body.context.recipients, #.id endsWith "7" && #.email contains "@example.org")`, map[string]any{"recipients": recipients}, 50},
		{"toJSON of a large field", `len(toJSON(body.context.blob))`, map[string]any{"blob": blob}, len(blob) + 2},
		{"upper of a large field", `len(upper(body.context.blob))`, map[string]any{"blob": blob}, len(blob)},
		{"fromJSON of an embedded document", `fromJSON(body.context.json).a[2].b`, map[string]any{"json": small}, "c"},
		{"a pattern over a large field", `body.context.blob matches "j$"`, map[string]any{"blob": blob}, true},
		{"sum of a list", `sum(body.context.nums)`, map[string]any{"nums": nums}, 10000.0},
		{"sort of a list", `len(sort(body.context.distinct))`, map[string]any{"distinct": distinct}, 4000},
		{"sortBy of strings", `sortBy(body.context.strs, #)[0][76:]`, map[string]any{"strs": strs}, "0000"},
		{"keys of an object", `len(keys(body.context.wide))`, map[string]any{"wide": wide}, 1000},
		{"split a field", `len(split(body.context.blob, "j"))`, map[string]any{"blob": blob}, 2501},
		{"nested closures", `let r = 1..100; sum(r, sum(r, # % 7))`, nil, 29700},
		{"a header", `len(headers["x-big"])`, nil, maxHeaderBytes},
		{"timezone", `date("2026-01-02 03:04:05", "2006-01-02 15:04:05", "Europe/Paris").Hour()`, nil, 3},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			p, err := rules.CompileValue(c.source)
			if err != nil {
				t.Fatalf("compile: %v", err)
			}
			got, err := p.Eval(bigEnv(t, c.ctx))
			if err != nil || fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Fatalf("Eval = %#v, %v; want %#v", got, err, c.want)
			}
		})
	}
}

// TestReservedNames checks that expressions cannot name what the bounds
// insert: the per-run budget and the metered functions.
func TestReservedNames(t *testing.T) {
	t.Parallel()
	for _, source := range []string{`__steps`, `__add(1, 2)`, `__step(nil, 1)`, `let __x = 1; __x`, `map(1..3, __each)`, `$env`, `keys($env)`, `$env["__account"]`} {
		_, err := rules.CompileValue(source)
		var ce *rules.CompileError
		if !errors.As(err, &ce) || !strings.Contains(ce.Message, "reserved") {
			t.Errorf("CompileValue(%q) = %v; want a CompileError saying the name is reserved", source, err)
		}
	}
}

// TestRuntimeErrorsAreShort checks that an error quoting its input does not
// carry a whole large field into the event log.
func TestRuntimeErrorsAreShort(t *testing.T) {
	t.Parallel()
	env := bigEnv(t, nil)
	for _, source := range []string{`int(headers["x-big"])`, `duration(headers["x-big"])`, `date(headers["x-big"])`, `float(headers["x-big"])`} {
		p, err := rules.CompileValue(source)
		if err != nil {
			t.Fatal(err)
		}
		_, err = p.Eval(env)
		var re *rules.RuntimeError
		if !errors.As(err, &re) || len(re.Message) > rules.MaxErrorBytes {
			n := 0
			if err != nil {
				n = len(err.Error())
			}
			t.Errorf("Eval(%q) = an error of %d bytes; want a *rules.RuntimeError of at most %d", source, n, rules.MaxErrorBytes)
		}
	}
}

// TestBuiltTextsAreBounded checks that a builtin cannot build a text over
// MaxStringBytes: upper makes some letters longer.
func TestBuiltTextsAreBounded(t *testing.T) {
	t.Parallel()
	want := fmt.Sprintf("the result would be longer than %d bytes", rules.MaxStringBytes)
	for _, c := range []struct{ source, field string }{
		{`len(upper(body.context.s))`, strings.Repeat("ɐ", 12_000)}, // 24 KB, 36 KB in capitals
		{`len(toBase64(body.context.s))`, strings.Repeat("x", 25_000)},
		{`len(upper(headers["x-big"]))`, ""},
	} {
		p, err := rules.CompileValue(c.source)
		if err != nil {
			t.Fatal(err)
		}
		v, err := p.Eval(bigEnv(t, map[string]any{"s": c.field}))
		var re *rules.RuntimeError
		if !errors.As(err, &re) || !strings.HasPrefix(re.Message, want) {
			t.Errorf("Eval(%q) = %v, %v; want %q", c.source, v, err, want)
		}
	}
}

// TestBuiltinArityInsideMissingCalls checks the arguments of builtins expr
// does not check: those inside a call of a missing function, where `type()`
// took another call's argument from the stack (a fuzz crasher).
func TestBuiltinArityInsideMissingCalls(t *testing.T) {
	t.Parallel()
	for _, source := range []string{`A(type())`, `let r=0..0;A(0%A00(0%A000(type())))`, `nope(abs(1, 2))`} {
		_, err := rules.CompileValue(source)
		var ce *rules.CompileError
		if !errors.As(err, &ce) || !strings.HasPrefix(ce.Message, "invalid number of arguments") {
			t.Errorf("CompileValue(%q) = %v; want a CompileError about the number of arguments", source, err)
		}
	}
}
