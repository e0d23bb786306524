package rules_test

import (
	"reflect"
	"testing"

	"github.com/expr-lang/expr"

	"github.com/harkhq/hark/engine/rules"
)

// TestMeteredAgreesWithExpr checks that metering changes no result: every
// metered builtin and operator gives what expr itself gives, on the fixed
// event. (hark's own text builders differ from expr's on purpose and are
// pinned in TestStringAndListBounds.)
func TestMeteredAgreesWithExpr(t *testing.T) {
	t.Parallel()
	env := fixedEnv(t)
	for _, source := range []string{
		// Builtins.
		`len(properties.post.title)`, `len(properties.tags)`, `len(properties)`, `type(properties.amount)`,
		`abs(-3)`, `ceil(1.2)`, `floor(1.8)`, `round(1.5)`, `int("42")`, `float("1.5")`, `int(properties.amount)`,
		`trim("  a ")`, `trim("xxaxx", "x")`, `trim("éaé", "é")`, `trimPrefix("abc", "a")`, `trimSuffix("abc", "c")`, `trimPrefix(" a")`,
		`upper(properties.text)`, `lower("ABÉ")`, `splitAfter("a,b,c", ",")`, `splitAfter("a,b,c", ",", 2)`,
		`indexOf("abc", "b")`, `lastIndexOf("abcb", "b")`, `hasPrefix("abc", "ab")`, `hasSuffix("abc", "bc")`,
		`max(1, 2, 3)`, `min([3, 1, 2])`, `mean([1, 2, 3])`, `median([3, 1, 2, 4])`, `max([[1, 5], 2])`,
		`fromJSON("{\"a\": [1, 2.5, null, \"x\"]}")`, `toBase64("hello")`, `fromBase64("aGVsbG8=")`,
		`duration("1h30m").Minutes()`, `date("2026-01-02").Year()`, `date("2026-01-02 03:04", "2006-01-02 15:04").Minute()`,
		`date("2026-01-02 03:04", "2006-01-02 15:04", "Europe/Paris").UTC().Hour()`,
		`date(timezone("Asia/Tokyo"), "2026-01-02").UTC().Hour()`, `timezone("Europe/Paris").String()`,
		`now().Year() > 2000`, `now(timezone("UTC")).Location().String()`, `type(timezone("UTC"))`,
		`first(properties.tags)`, `last(properties.tags)`, `first([])`, `get(properties, "vip")`, `get(properties.tags, 1)`, `get(properties, "nope")`,
		`take(properties.tags, 1)`, `len(keys(properties))`, `len(values(properties))`, `len(toPairs(properties))`,
		`fromPairs([["a", 1], ["b", 2]])`, `reverse(properties.tags)`, `uniq([1, 2, 1, 3, 2])`, `concat(properties.tags, [1], [])`,
		`flatten([[1, [2]], 3])`, `sort([3, 1, 2])`, `sort(["b", "a"], "desc")`, `sort(properties.tags)`,
		`bitand(6, 3)`, `bitor(6, 3)`, `bitxor(6, 3)`, `bitnand(6, 3)`, `bitshl(1, 3)`, `bitshr(8, 2)`, `bitushr(-8, 60)`, `bitnot(5)`,
		// Closures.
		`map(properties.tags, # + "!")`, `filter(properties.recipients, type(#) == "string")`, `groupBy(properties.tags, #)`,
		`sortBy(properties.recipients[0:2], #, "desc")`, `reduce(1..4, #acc + #, 0)`, `reduce(1..4, #acc * #)`, `count(properties.tags, # == "a")`,
		`sum([1, 2, 3])`, `sum(1..4, # * 2)`, `count([true, false, true])`, `all(properties.tags, len(#) == 1)`, `any(properties.tags, # == "b")`,
		`none(properties.tags, # == "c")`, `one(properties.tags, # == "a")`, `find(properties.tags, # == "b")`, `findIndex(properties.tags, # == "b")`,
		`findLast(1..5, # < 3)`, `findLastIndex(1..5, # < 3)`, `let r = 1..3; map(r, map(r, # * 2))`,
		// Operators.
		`properties.tags == properties.tags`, `properties.post != properties.comment`, `properties.post == properties.post`, `userId == user_id`,
		`"a" in properties.tags`, `"x" in properties.tags`, `"post" in properties`, `2 in 1..3`, `2.0 in 1..3`, `2.5 in 1..3`, `properties.text in 1..3`, `5 in 3..1`,
		`properties.amount in 100..200`, `properties.text matches "^s"`, `properties.text matches properties.text`, `b"str" matches "s"`,
		`properties.text contains "t"`, `properties.text startsWith properties.text`, `properties.text endsWith "r"`, `properties.text endsWith properties.text[1:]`,
		`properties.recipients[1]`, `properties[properties.text]`, `properties.tags[len(properties.tags) - 1]`, `{(properties.text): 1}`,
		`properties.post.title + " " + userId`, `properties.amount * 2 + 1`, `-properties.amount`, `!properties.vip`, `properties.nope ?? "d"`,
		`properties.amount > 100 && properties.amount <= 129.5`, `"b" > "a"`, `now().Format("2006") > "2000"`, `properties.tags[0:1]`,
	} {
		p, err := rules.CompileValue(source)
		if err != nil {
			t.Errorf("CompileValue(%q): %v", source, err)
			continue
		}
		got, err := p.Eval(env)
		if err != nil {
			t.Errorf("Eval(%q): %v", source, err)
			continue
		}
		plain, err := expr.Compile(source, expr.Env(map[string]any{}), expr.AllowUndefinedVariables())
		if err != nil {
			t.Errorf("expr.Compile(%q): %v", source, err)
			continue
		}
		want, err := expr.Run(plain, map[string]any(env))
		if err != nil {
			t.Errorf("expr.Run(%q): %v", source, err)
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %#v; expr gives %#v", source, got, want)
		}
	}
}
