package rules

import (
	"fmt"
	"regexp"
	"regexp/syntax"
	"sync"
	"sync/atomic"

	"github.com/expr-lang/expr/vm/runtime"
)

// Regular expressions: a constant pattern is compiled once, when the
// expression compiles; one built at run time is compiled at a charge; every
// match is charged by its text's length times its program's size.

// pattern is a compiled regular expression and its size in instructions,
// which bounds what matching costs per byte.
type pattern struct {
	re    *regexp.Regexp
	insts int
	// literal: the whole pattern is a literal, found by a string search.
	literal bool
}

// patterns caches compiled patterns; it stops growing at maxCachedPatterns
// so patterns built from event data cannot fill memory.
var (
	patterns       sync.Map
	cachedPatterns atomic.Int64
)

const maxCachedPatterns = 1024

// compilePattern compiles a pattern of at most MaxPatternBytes.
func compilePattern(source string) (*pattern, error) {
	if len(source) > MaxPatternBytes {
		return nil, fmt.Errorf("the regular expression is %d bytes; at most %d", len(source), MaxPatternBytes)
	}
	if p, ok := patterns.Load(source); ok {
		return p.(*pattern), nil
	}
	parsed, err := syntax.Parse(source, syntax.Perl)
	if err != nil {
		return nil, err
	}
	re, err := regexp.Compile(source)
	if err != nil {
		return nil, err
	}
	_, complete := re.LiteralPrefix()
	p := &pattern{re: re, insts: progSize(parsed), literal: complete}
	if cachedPatterns.Add(1) <= maxCachedPatterns {
		patterns.Store(source, p)
	}
	return p, nil
}

// progSize bounds the instructions Go compiles a parsed pattern to (its
// Simplify writes x{n} as n copies of x), plus the two every program has.
func progSize(re *syntax.Regexp) int {
	return 2 + instructions(re)
}

func instructions(re *syntax.Regexp) int {
	sub := func() int {
		if len(re.Sub) == 0 {
			return 0
		}
		return instructions(re.Sub[0])
	}
	switch re.Op {
	case syntax.OpLiteral:
		return max(len(re.Rune), 1)
	case syntax.OpCapture:
		return 2 + sub()
	case syntax.OpStar, syntax.OpPlus, syntax.OpQuest:
		return 1 + sub()
	case syntax.OpRepeat:
		count := re.Max
		if count < 0 {
			count = re.Min + 1
		}
		return min(mul(max(count, 1), 1+sub()), maxCharge)
	case syntax.OpConcat, syntax.OpAlternate:
		n := len(re.Sub)
		for _, s := range re.Sub {
			n = min(n+instructions(s), maxCharge)
		}
		return n
	}
	return 1
}

func matches(args ...any) (any, error) {
	b, err := budgetOf(args)
	if err != nil {
		return nil, err
	}
	text, pat := arg(args, 1), arg(args, 2)
	if runtime.IsNil(text) || runtime.IsNil(pat) {
		return false, nil
	}
	p, ok := pat.(*pattern)
	if !ok {
		source, isString := pat.(string)
		if !isString {
			return nil, fmt.Errorf("matches needs two strings, not %s and %s", typeOf(text), typeOf(pat))
		}
		if p, err = b.pattern(source); err != nil {
			return nil, err
		}
	}
	n := textLen(text)
	// Every match takes a matcher from a pool and sets it up; then Go backtracks over small programs and texts, remembering every
	// (instruction, position) it visited; else it runs an NFA, several
	// times slower per instruction and byte.
	weight := reMatchSteps
	if cells := mul(n+1, p.insts); p.insts <= 500 && cells <= 256<<10 {
		weight = reTrackSteps
	}
	steps := mul(mul(n+1, p.insts), weight)
	if p.literal {
		steps = scanSteps * (n + 1)
	}
	steps += reCallSteps
	if err := b.spend(steps, 0); err != nil {
		return nil, err
	}
	switch t := text.(type) {
	case string:
		return p.re.MatchString(t), nil
	case []byte:
		return p.re.Match(t), nil
	}
	return nil, fmt.Errorf("matches needs two strings, not %s and string", typeOf(text))
}

// pattern compiles a pattern built at run time, charging its parse and its
// compilation the first time this run uses it (whether or not the cache
// holds it, so a run costs the same in every process).
func (b *budget) pattern(source string) (*pattern, error) {
	if p, ok := b.patterns[source]; ok {
		return p, nil
	}
	if len(source) > MaxPatternBytes {
		return nil, fmt.Errorf("the regular expression is %d bytes; at most %d", len(source), MaxPatternBytes)
	}
	if err := b.spend(mul(reParseSteps, len(source)+1), 0); err != nil {
		return nil, err
	}
	parsed, err := syntax.Parse(source, syntax.Perl)
	if err != nil {
		return nil, err
	}
	insts := progSize(parsed)
	if err := b.spend(mul(reCompileSteps, insts), mul(reCompileBytes, insts)); err != nil {
		return nil, err
	}
	p, err := compilePattern(source)
	if err != nil {
		return nil, err
	}
	if b.patterns == nil {
		b.patterns = make(map[string]*pattern)
	}
	b.patterns[source] = p
	return p, nil
}
