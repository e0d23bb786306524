package rules

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"regexp/syntax"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/builtin"
	"github.com/expr-lang/expr/conf"
	"github.com/expr-lang/expr/vm/runtime"
)

// What operations cost, in steps. A step is calibrated to be at most about
// a nanosecond of CPU on the development machine (2 shared cores): each
// weight is the slowest time per unit measured for its operation, over the
// worst inputs found (BenchmarkWorstCase/calibration reports ns/step), so a
// run within MaxSteps takes a few milliseconds at most. Bytes are what Go
// allocates for what an operation builds, measured the same way.
const (
	// nodeSteps is one node of an expression run once; a metered call
	// counts its callee, budget and arguments as nodes.
	nodeSteps = 10
	// memberSteps is what a member access (a.b, a[b]) costs besides its
	// node: a map lookup through reflection.
	memberSteps = 30
	// operatorSteps and operatorBytes: an operator expr runs itself
	// (arithmetic, == against a literal, not, ??), by type switches,
	// boxing its result.
	operatorSteps = 90
	operatorBytes = 16
	// callSteps and callBytes: a call of a function (a metered builtin,
	// an operator hark rewrote): expr passes its arguments in a new list.
	// builtinSteps: a builtin of constant cost, which expr calls directly;
	// closureSteps: setting up a closure's scope.
	callSteps    = 250
	callBytes    = 48
	builtinSteps = 60
	closureSteps = 100
	// methodSteps and methodBytes: a method call (t.Format, d.Hours),
	// which expr fetches and calls through reflection.
	methodSteps = 2500
	methodBytes = 256
	// loopSteps is one iteration of a closure besides its body, and
	// loopBytes what it boxes (its element, its result).
	loopSteps = 90
	loopBytes = 16

	// Text. hashBytesPerStep: hashing or comparing memory;
	// copyBytesPerStep: copying it (repeat, +); scanSteps per byte: loops
	// over text (search, parse, base64, runes); caseSteps per byte: upper
	// and lower, Unicode case mapping; splitPartSteps: each part split
	// builds; joinElemSteps: each element join writes; base64Steps per
	// byte of toBase64 and fromBase64 (which copy their text twice);
	// trimCutsetBytesPerStep: trim with a non-ASCII cutset looks every
	// character up in the cutset.
	hashBytesPerStep       = 16
	copyBytesPerStep       = 1
	scanSteps              = 3
	caseSteps              = 21
	splitPartSteps         = 40
	joinElemSteps          = 100
	base64Steps            = 5
	trimCutsetBytesPerStep = 64

	// fromJSONSteps per byte of text; fromJSONBytes of values per byte
	// (`[{},{},…]` builds a map per 3 bytes).
	fromJSONSteps = 140
	fromJSONBytes = 48
	// Encoding to text (toJSON, string, join): per string byte, per scalar,
	// per list element, per map entry (sorted, reflected).
	encodeByteSteps  = 30
	encodeValueSteps = 700
	encodeElemSteps  = 50
	encodeEntrySteps = 1000

	// Times. dateCallSteps and dateCallBytes: one date call; dateSteps per
	// byte of the texts it parses (up to 7 layouts); formatSteps per byte
	// of a layout (a "1" is a month); zoneSteps and zoneBytes: loading a
	// time zone, which reads the zone database.
	dateCallSteps = 3000
	dateCallBytes = 1 << 10
	dateSteps     = 25
	formatSteps   = 40
	zoneSteps     = 40_000
	zoneBytes     = 48 << 10

	// Equality: a map entry (reflect.DeepEqual), a list element compared
	// by expr, one inside reflect.DeepEqual (which boxes what it reads),
	// a scalar.
	equalEntrySteps    = 1200
	equalElemSteps     = 60
	equalDeepElemSteps = 220
	equalDeepElemBytes = 96
	equalValueSteps    = 10

	// Lists. elemSteps: touching one element (in, uniq, +); copyElemSteps:
	// copying one through reflection (reverse, concat); flattenSteps: one
	// element of flatten, which copies each level's list into the next;
	// aggregateSteps: one number max, min, mean or median reads;
	// compareSteps: one comparison of a sort.
	elemSteps      = 20
	copyElemSteps  = 90
	flattenSteps   = 200
	aggregateSteps = 30
	compareSteps   = 8

	// Maps. keysSteps, valuesSteps, toPairsSteps: one entry of keys,
	// values and toPairs (values and toPairs look every key up again);
	// pairSteps and pairBytes: one entry fromPairs builds (a map[any]any);
	// groupSteps and groupBytes: one element groupBy files under its key
	// (a lookup, a store, a list per new key).
	keysSteps    = 300
	valuesSteps  = 600
	toPairsSteps = 700
	pairSteps    = 500
	pairBytes    = 192
	groupSteps   = 800
	groupBytes   = 200

	// Regular expressions: a match's setup, parsing per pattern byte, compiling per
	// instruction, matching per text byte per instruction — Go backtracks
	// over small programs and texts (reTrackSteps) and else runs an NFA
	// that keeps up to one thread per instruction (reMatchSteps).
	reCallSteps    = 600
	reParseSteps   = 2000
	reCompileSteps = 300
	reCompileBytes = 64
	reMatchSteps   = 26
	reTrackSteps   = 6
)

// errTooLong is a string result over MaxStringBytes.
var errTooLong = fmt.Errorf("the result would be longer than %d bytes", MaxStringBytes)

// errTooMany is a list result over MaxListLen.
var errTooMany = fmt.Errorf("the list would have more than %d elements", MaxListLen)

// meteredFunc is the metered version of a builtin: it charges b, then runs
// expr's own implementation on args.
type meteredFunc func(b *budget, args []any) (any, error)

// metered holds a metered version of every builtin that is not a closure
// (predicates) or one of hark's text builders (textBuilders). meter
// rewrites a call of builtin f into a call of __f; a builtin missing here
// is refused at compile time, and TestEveryBuiltinIsMetered lists them all.
var metered = meteredBuiltins()

func meteredBuiltins() map[string]meteredFunc {
	metered := map[string]meteredFunc{}
	for name, cost := range map[string]func(b *budget, args []any) error{
		// A scan of the text.
		"len": func(b *budget, args []any) error { return b.spend(scanSteps*textLen(arg(args, 0)), 0) },
		// Parsing: an error quotes the text (up to 4 bytes a byte).
		"int":      parseCost,
		"float":    parseCost,
		"duration": parseCost,
		"trim":     trimCost,
		"trimPrefix": func(b *budget, args []any) error {
			return b.spend(textLen(arg(args, 1))/hashBytesPerStep, 0)
		},
		"trimSuffix": func(b *budget, args []any) error {
			return b.spend(textLen(arg(args, 1))/hashBytesPerStep, 0)
		},
		"hasPrefix": func(b *budget, args []any) error {
			return b.spend(textLen(arg(args, 1))/hashBytesPerStep, 0)
		},
		"hasSuffix": func(b *budget, args []any) error {
			return b.spend(textLen(arg(args, 1))/hashBytesPerStep, 0)
		},
		"indexOf": func(b *budget, args []any) error {
			return b.spend(scanSteps*(textLen(arg(args, 0))+textLen(arg(args, 1))), 0)
		},
		"lastIndexOf": func(b *budget, args []any) error {
			return b.spend(scanSteps*(textLen(arg(args, 0))+textLen(arg(args, 1))), 0)
		},
		"upper": caseCost,
		"lower": caseCost,
		"splitAfter": func(b *budget, args []any) error {
			return splitCost(b, args)
		},
		"toBase64": func(b *budget, args []any) error {
			n := textLen(arg(args, 0))
			out := base64.StdEncoding.EncodedLen(n)
			if out > MaxStringBytes {
				return errTooLong
			}
			return b.spend(base64Steps*n, n+2*out)
		},
		"fromBase64": func(b *budget, args []any) error {
			n := textLen(arg(args, 0))
			out := base64.StdEncoding.DecodedLen(n)
			if out > MaxStringBytes {
				return errTooLong
			}
			return b.spend(base64Steps*n, n+2*out)
		},
		"fromJSON": func(b *budget, args []any) error {
			n := textLen(arg(args, 0))
			return b.spend(mul(fromJSONSteps, n), mul(fromJSONBytes, n))
		},
		"date":     dateCost,
		"timezone": zoneCost,
		"get": func(b *budget, args []any) error {
			return b.spend(textLen(arg(args, 1))/hashBytesPerStep, 0)
		},
		"max":    aggregateCost,
		"min":    aggregateCost,
		"mean":   aggregateCost,
		"median": medianCost,
		// What keys, values and toPairs allocate per entry was measured.
		"keys": func(b *budget, args []any) error {
			n := mapLen(arg(args, 0))
			return b.spend(mul(keysSteps, n), mul(48, n))
		},
		"values": func(b *budget, args []any) error {
			n := mapLen(arg(args, 0))
			return b.spend(mul(valuesSteps, n), mul(64, n))
		},
		"toPairs": func(b *budget, args []any) error {
			n := mapLen(arg(args, 0))
			return b.spend(mul(toPairsSteps, n), mul(80, n))
		},
		"fromPairs": func(b *budget, args []any) error {
			n := max(listLen(arg(args, 0)), 0)
			keys := sizeOf(arg(args, 0), MaxRunBytes)
			return b.spend(mul(pairSteps, n)+keys/hashBytesPerStep, mul(pairBytes, n))
		},
		"reverse": func(b *budget, args []any) error {
			n := max(listLen(arg(args, 0)), 0)
			return b.spend(mul(copyElemSteps, n), mul(elemBytes, n))
		},
		"uniq": func(b *budget, args []any) error {
			// Every element is compared with every one kept: n²/2
			// comparisons, each costing what an element does on average.
			n := max(listLen(arg(args, 0)), 0)
			steps, bytes := elementsEqualCost(arg(args, 0))
			pairs := mul(n, n+1) / 2
			return b.spend(mul(pairs, elemSteps+steps/max(n, 1)), mul(elemBytes, n)+mul(pairs, bytes/max(n, 1)))
		},
		"concat": func(b *budget, args []any) error {
			n := 0
			for _, a := range args {
				n += max(listLen(a), 0)
			}
			// append doubles: up to twice the elements are allocated.
			return b.spend(mul(copyElemSteps, n), mul(7*elemBytes/2, n))
		},
		"flatten": func(b *budget, args []any) error {
			n := countElems(arg(args, 0), MaxRunBytes/elemBytes)
			return b.spend(mul(flattenSteps, n), mul(4*elemBytes, n))
		},
		"sort": func(b *budget, args []any) error {
			n := max(listLen(arg(args, 0)), 0)
			text := sizeOf(arg(args, 0), MaxSteps)
			return b.spend(mul(mul(n, log2(n)), compareSteps)+mul(log2(n), text/hashBytesPerStep), mul(elemBytes, n))
		},
	} {
		f := builtin.Builtins[builtin.Index[name]]
		metered[name] = func(b *budget, args []any) (any, error) {
			if err := cost(b, args); err != nil {
				return nil, err
			}
			out, err := callBuiltin(f, args)
			// A text a builtin builds is held to MaxStringBytes like one
			// + builds (upper can grow a text by half).
			if s, ok := out.(string); ok && len(s) > MaxStringBytes && buildsText[name] {
				return nil, errTooLong
			}
			return out, err
		}
	}
	// Zones by name come from a cache, so a run does not read the zone
	// database for every call (the charge is the same either way).
	metered["timezone"] = func(b *budget, args []any) (any, error) {
		if err := zoneCost(b, args); err != nil {
			return nil, err
		}
		if name, ok := arg(args, 0).(string); ok && len(args) == 1 {
			return loadZone(name)
		}
		return callBuiltin(builtin.Builtins[builtin.Index["timezone"]], args)
	}
	return metered
}

// zoneCost is loading a zone by name, cached or not.
func zoneCost(b *budget, args []any) error {
	return b.spend(zoneSteps+textLen(arg(args, 0)), zoneBytes)
}

// buildsText are the builtins whose text result is new, not a part of
// their argument.
var buildsText = map[string]bool{"upper": true, "lower": true, "toBase64": true, "fromBase64": true}

// constantBuiltins take constant time and build nothing large, whatever
// their arguments: they stay expr's own (no metered call, which costs more
// than they do), and the fixed cost of the program counts them
// (builtinSteps).
var constantBuiltins = map[string]bool{
	"type": true, "abs": true, "ceil": true, "floor": true, "round": true,
	"first": true, "last": true, "take": true, "now": true,
	"bitand": true, "bitor": true, "bitxor": true, "bitnand": true,
	"bitshl": true, "bitshr": true, "bitushr": true, "bitnot": true,
}

// arg is args[i], or nil when there are fewer.
func arg(args []any, i int) any {
	if i < len(args) {
		return args[i]
	}
	return nil
}

// parseCost bounds int, float and duration of a text: a scan, and an error
// that quotes the text (up to 4 bytes a byte, twice).
func parseCost(b *budget, args []any) error {
	n := textLen(arg(args, 0))
	return b.spend(scanSteps*n, 6*n)
}

// caseCost bounds upper and lower, whose result is as long as their text
// (half as long again, for some Unicode letters).
func caseCost(b *budget, args []any) error {
	n := textLen(arg(args, 0))
	if n > MaxStringBytes {
		return errTooLong
	}
	return b.spend(caseSteps*n, n+n/2)
}

// trimCost bounds trim: a scan from both ends, and with a non-ASCII cutset
// a look-up of every character in the cutset.
func trimCost(b *budget, args []any) error {
	n, cut := textLen(arg(args, 0)), arg(args, 1)
	steps := scanSteps * (n + textLen(cut))
	if s, ok := cut.(string); ok && !isASCII(s) {
		steps += mul(n, len(s)) / trimCutsetBytesPerStep
	}
	return b.spend(steps, 0)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// splitCost bounds split and splitAfter: the parts they would build are
// counted (a scan) and refused over MaxListLen before any is built.
func splitCost(b *budget, args []any) error {
	s, ok1 := arg(args, 0).(string)
	sep, ok2 := arg(args, 1).(string)
	if !ok1 || !ok2 {
		return nil // the builtin's own error
	}
	if err := b.spend(scanSteps*len(s), 0); err != nil {
		return err
	}
	parts := strings.Count(s, sep) + 1
	if len(args) == 3 {
		if n, ok := toInt(args[2]); ok && n >= 0 {
			parts = min(parts, n)
		}
	}
	if parts > MaxListLen {
		return errTooMany
	}
	return b.spend(mul(splitPartSteps, parts), mul(elemBytes, parts))
}

// dateCost bounds date: the texts it parses, and a zone it loads by name
// (its third argument, after an optional leading zone).
func dateCost(b *budget, args []any) error {
	n, zone := 0, 0
	for i, a := range args {
		n += textLen(a)
		if i == 2 || (i == 3 && isLocation(args[0])) {
			zone = 1
		}
	}
	return b.spend(dateCallSteps+mul(dateSteps, n)+zone*zoneSteps, dateCallBytes+6*n+zone*zoneBytes)
}

func isLocation(v any) bool {
	_, ok := v.(*time.Location)
	return ok
}

// aggregateCost charges max, min, mean and median by the numbers they read
// (lists nest); median also sorts them.
func aggregateCost(b *budget, args []any) error {
	n := 0
	for _, a := range args {
		n += countElems(a, MaxSteps/elemSteps)
	}
	return b.spend(mul(aggregateSteps, n), mul(2*scalarBytes, n))
}

func medianCost(b *budget, args []any) error {
	if err := aggregateCost(b, args); err != nil {
		return err
	}
	n := 0
	for _, a := range args {
		n += countElems(a, MaxSteps/elemSteps)
	}
	return b.spend(mul(mul(n, log2(n)), compareSteps), mul(2*scalarBytes, n))
}

// countElems counts the elements of v and of the lists in it, at most
// limit.
func countElems(v any, limit int) int {
	n := 0
	countInto(reflect.ValueOf(v), &n, limit, 0)
	return n
}

func countInto(v reflect.Value, n *int, limit, depth int) {
	for v.Kind() == reflect.Interface || v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return
		}
		v = v.Elem()
	}
	if v.Kind() != reflect.Slice && v.Kind() != reflect.Array {
		return
	}
	if depth > builtin.MaxDepth {
		return // the builtin refuses it
	}
	for i := range v.Len() {
		*n++
		if *n > limit {
			return
		}
		countInto(v.Index(i), n, limit, depth+1)
	}
}

func mapLen(v any) int {
	if m, ok := v.(map[string]any); ok {
		return len(m)
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Map {
		return rv.Len()
	}
	return 0
}

// callBuiltin runs expr's own implementation of a builtin, dereferencing
// pointer arguments as expr's compiler does for builtins.
func callBuiltin(f *builtin.Function, args []any) (any, error) {
	for i, a := range args {
		if a == nil || (f.Deref != nil && !f.Deref(i, reflect.TypeOf(a))) {
			continue
		}
		if rv := reflect.ValueOf(a); rv.Kind() == reflect.Pointer {
			if rv.IsNil() {
				args[i] = nil
			} else {
				args[i] = rv.Elem().Interface()
			}
		}
	}
	switch {
	case f.Fast != nil:
		return f.Fast(arg(args, 0)), nil
	case f.Safe != nil:
		out, _, err := f.Safe(args...)
		return out, err
	default:
		return f.Func(args...)
	}
}

// equalCost is what comparing v with another value for equality costs at
// most, in steps and in bytes, counting at most limit steps. expr compares
// lists element by element; anything else, and everything inside it, goes
// through reflect.DeepEqual, which is slower and boxes what it reads.
func equalCost(v any, limit int) (steps, bytes int) {
	c := equality{limit: limit}
	c.add(v, false)
	return c.steps, c.bytes
}

type equality struct{ steps, bytes, limit int }

func (c *equality) add(v any, deep bool) {
	if c.steps > c.limit {
		return
	}
	switch x := v.(type) {
	case string:
		c.steps += equalValueSteps + len(x)/hashBytesPerStep
	case map[string]any:
		for k, e := range x {
			c.steps += equalEntrySteps + len(k)/hashBytesPerStep
			c.bytes += entryBytes
			c.add(e, true)
			if c.steps > c.limit {
				return
			}
		}
	case []any:
		for _, e := range x {
			if deep {
				c.steps += equalDeepElemSteps
				c.bytes += equalDeepElemBytes
			} else {
				c.steps += equalElemSteps
			}
			c.add(e, deep)
			if c.steps > c.limit {
				return
			}
		}
	default:
		if isScalar(v) {
			c.steps += equalValueSteps
			return
		}
		// Anything else is as costly as a map of its size.
		size := sizeOf(v, c.limit)
		c.steps += size * equalEntrySteps / entryBytes
		c.bytes += size
	}
}

// elementsEqualCost is what comparing each element of a list once costs,
// all together.
func elementsEqualCost(list any) (steps, bytes int) {
	rv := reflect.ValueOf(list)
	if rv.Kind() != reflect.Slice && rv.Kind() != reflect.Array {
		return 0, 0
	}
	for i := range rv.Len() {
		s, b := equalCost(rv.Index(i).Interface(), MaxSteps)
		steps, bytes = steps+s, bytes+b
		if steps > MaxSteps {
			break
		}
	}
	return steps, bytes
}

// Operators and closures.

// each charges a closure's elements in advance: __each(__steps, list, cost).
func each(args ...any) (any, error) {
	b, err := budgetOf(args)
	if err != nil {
		return nil, err
	}
	per, ok := arg(args, 2).(*loopCost)
	if !ok {
		return nil, errNoBudget
	}
	list := arg(args, 1)
	// A closure runs over a list, and over the bytes of a string too.
	n := max(listLen(list), textLen(list), 0)
	steps := mul(n, per.steps)
	if per.sort {
		steps += mul(mul(n, log2(n)), compareSteps)
	}
	if err := b.spend(steps, mul(n, per.bytes)); err != nil {
		return nil, err
	}
	return list, nil
}

// sortKey charges a sortBy key by the comparisons a text key takes part in
// (about 2·log₂n, n at most a few ten thousand).
func sortKey(args ...any) (any, error) {
	b, err := budgetOf(args)
	if err != nil {
		return nil, err
	}
	key := arg(args, 1)
	return key, b.spend(2*textLen(key), 0)
}

// groupKey charges a groupBy key by hashing it twice (look up, store).
func groupKey(args ...any) (any, error) {
	b, err := budgetOf(args)
	if err != nil {
		return nil, err
	}
	key := arg(args, 1)
	steps := 0
	if !isScalar(key) {
		steps = 2 * sizeOf(key, MaxSteps) / hashBytesPerStep
	}
	return key, b.spend(steps, 0)
}

// key charges a map key or index computed at run time: hashing it.
func key(args ...any) (any, error) {
	b, err := budgetOf(args)
	if err != nil {
		return nil, err
	}
	k := arg(args, 1)
	return k, b.spend(textLen(k)/hashBytesPerStep, 0)
}

// methodArg charges an argument of a method by its length: the only
// methods are those of times, and Format writes up to two bytes per byte
// of its layout.
func methodArg(args ...any) (any, error) {
	b, err := budgetOf(args)
	if err != nil {
		return nil, err
	}
	a := arg(args, 1)
	n := textLen(a)
	// Format grows its buffer to twice the layout and copies it.
	return a, b.spend(mul(formatSteps, n), 8*n)
}

func newBudget(args ...any) (any, error) {
	s, _ := arg(args, 0).(int)
	by, _ := arg(args, 1).(int)
	b := &budget{}
	return b, b.spend(s, by)
}

func add(args ...any) (any, error) {
	b, err := budgetOf(args)
	if err != nil {
		return nil, err
	}
	x, y := arg(args, 1), arg(args, 2)
	if sx, ok := x.(string); ok {
		if sy, ok := y.(string); ok {
			n := len(sx) + len(sy)
			if n > MaxStringBytes {
				return nil, errTooLong
			}
			if err := b.spend(n/copyBytesPerStep, n); err != nil {
				return nil, err
			}
			return sx + sy, nil
		}
	}
	if lx, ly := listLen(x), listLen(y); lx >= 0 && ly >= 0 {
		if lx+ly > MaxListLen {
			return nil, errTooMany
		}
		if err := b.spend(mul(elemSteps, lx+ly), mul(elemBytes, lx+ly)); err != nil {
			return nil, err
		}
	}
	return runtime.Add(x, y), nil
}

// compare orders two values as expr does, except that nil on either side is
// false; texts cost what comparing them touches.
func compare(op func(a, b any) bool) func(args ...any) (any, error) {
	return func(args ...any) (any, error) {
		b, err := budgetOf(args)
		if err != nil {
			return nil, err
		}
		x, y := arg(args, 1), arg(args, 2)
		if x == nil || y == nil {
			return false, nil
		}
		if err := b.spend(min(textLen(x), textLen(y))/hashBytesPerStep, 0); err != nil {
			return nil, err
		}
		return op(x, y), nil
	}
}

func equal(args ...any) (any, error) {
	b, err := budgetOf(args)
	if err != nil {
		return nil, err
	}
	x, y := arg(args, 1), arg(args, 2)
	if !isScalar(x) && !isScalar(y) {
		sx, bx := equalCost(x, MaxSteps)
		sy, by := equalCost(y, sx)
		if err := b.spend(min(sx, sy), min(bx, by)); err != nil {
			return nil, err
		}
	}
	return runtime.Equal(x, y), nil
}

func in(args ...any) (any, error) {
	b, err := budgetOf(args)
	if err != nil {
		return nil, err
	}
	needle, list := arg(args, 1), arg(args, 2)
	steps, bytes := textLen(needle)/hashBytesPerStep, 0
	if n := listLen(list); n > 0 {
		s, by := equalCost(needle, MaxSteps)
		steps, bytes = mul(n, elemSteps+s), mul(n, by)
	}
	if err := b.spend(steps, bytes); err != nil {
		return nil, err
	}
	return runtime.In(needle, list), nil
}

// inRange is `x in a..b` without building the range: x is one of its
// integers. A range whose size overflows is empty, as expr builds it.
func inRange(args ...any) (any, error) {
	lo, hi := runtime.ToInt(arg(args, 1)), runtime.ToInt(arg(args, 2))
	if size := hi - lo + 1; size <= 0 {
		return false, nil
	}
	switch x := arg(args, 0).(type) {
	case float32, float64:
		f := runtime.ToFloat64(x)
		return f == float64(int(f)) && int(f) >= lo && int(f) <= hi, nil
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		v := runtime.ToInt(x)
		return v >= lo && v <= hi, nil
	}
	return false, nil
}

func contains(args ...any) (any, error) {
	b, err := budgetOf(args)
	if err != nil {
		return nil, err
	}
	x, y := arg(args, 1), arg(args, 2)
	if runtime.IsNil(x) || runtime.IsNil(y) {
		return false, nil
	}
	if err := b.spend(scanSteps*(textLen(x)+textLen(y)), 0); err != nil {
		return nil, err
	}
	return strings.Contains(x.(string), y.(string)), nil
}

func affix(has func(s, affix string) bool) func(args ...any) (any, error) {
	return func(args ...any) (any, error) {
		b, err := budgetOf(args)
		if err != nil {
			return nil, err
		}
		x, y := arg(args, 1), arg(args, 2)
		if runtime.IsNil(x) || runtime.IsNil(y) {
			return false, nil
		}
		if err := b.spend(textLen(y)/hashBytesPerStep, 0); err != nil {
			return nil, err
		}
		return has(x.(string), y.(string)), nil
	}
}

// Regular expressions.

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

// Time zones.

var (
	zones       sync.Map
	cachedZones atomic.Int64
)

const maxCachedZones = 1024

// loadZone is time.LoadLocation through a cache of the zones found.
func loadZone(name string) (*time.Location, error) {
	if z, ok := zones.Load(name); ok {
		return z.(*time.Location), nil
	}
	z, err := time.LoadLocation(name)
	if err != nil {
		return nil, err
	}
	if cachedZones.Add(1) <= maxCachedZones {
		zones.Store(name, z)
	}
	return z, nil
}

// Hark's text builders: join, replace, repeat, toJSON, string and split
// replace expr's builtins of the same names (sprintf refuses), so they
// refuse to build more than MaxStringBytes or MaxListLen, and charge the
// budget. meter passes the budget as their first argument.

type textBuilder func(b *budget, args []any) (any, error)

var textBuilders = map[string]textBuilder{
	"join":    join,
	"replace": replace,
	"repeat":  repeat,
	"toJSON":  toJSON,
	"string":  toString,
	"split":   split,
	"sprintf": func(*budget, []any) (any, error) {
		// fmt builds the whole text before writing it, and a width such
		// as %999999d makes a short format arbitrarily long.
		return nil, errors.New("sprintf is not available in hark expressions; build strings with + and string()")
	},
}

// limitedWriter fails once more than MaxStringBytes are written, so
// formatting stops early instead of building the whole text first.
type limitedWriter struct{ strings.Builder }

func (w *limitedWriter) Write(p []byte) (int, error) {
	if w.Len()+len(p) > MaxStringBytes {
		return 0, errTooLong
	}
	return w.Builder.Write(p)
}

// WriteString writes s within the bound (it shadows strings.Builder's).
func (w *limitedWriter) WriteString(s string) (int, error) {
	if w.Len()+len(s) > MaxStringBytes {
		return 0, errTooLong
	}
	return w.Builder.WriteString(s)
}

func str(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return fmt.Sprint(v)
}

func join(b *budget, args []any) (any, error) {
	if len(args) < 1 || len(args) > 2 {
		return nil, errors.New("join(list[, separator]) takes one or two arguments")
	}
	sep := ""
	if len(args) == 2 {
		sep = str(args[1])
	}
	rv := reflect.ValueOf(args[0])
	if rv.Kind() != reflect.Slice && rv.Kind() != reflect.Array {
		return nil, fmt.Errorf("join needs a list, not %T", args[0])
	}
	var w limitedWriter
	for i := range rv.Len() {
		e := rv.Index(i).Interface()
		text, ok := e.(string)
		if !ok {
			// Formatting a value costs what encoding it does, and builds
			// the whole text before it is written: measure first.
			size, steps := textSize(e, MaxStringBytes)
			if w.Len()+size > MaxStringBytes {
				return nil, errTooLong
			}
			if err := b.spend(steps, size); err != nil {
				return nil, err
			}
			text = fmt.Sprint(e)
		}
		n := len(text)
		if i > 0 {
			n += len(sep)
			if _, err := w.WriteString(sep); err != nil {
				return nil, err
			}
		}
		if _, err := w.WriteString(text); err != nil {
			return nil, err
		}
		// The builder doubles as it grows.
		if err := b.spend(joinElemSteps+n/copyBytesPerStep, elemBytes+2*n); err != nil {
			return nil, err
		}
	}
	return w.String(), nil
}

func replace(b *budget, args []any) (any, error) {
	if len(args) != 3 {
		return nil, errors.New("replace(string, old, new) takes three arguments")
	}
	s, old, repl := str(args[0]), str(args[1]), str(args[2])
	if err := b.spend(scanSteps*len(s), 0); err != nil {
		return nil, err
	}
	n := strings.Count(s, old)
	size := len(s) + n*(len(repl)-len(old))
	if size > MaxStringBytes {
		return nil, errTooLong
	}
	if err := b.spend(size/copyBytesPerStep+mul(n, elemSteps), size); err != nil {
		return nil, err
	}
	return strings.ReplaceAll(s, old, repl), nil
}

func repeat(b *budget, args []any) (any, error) {
	if len(args) != 2 {
		return nil, errors.New("repeat(string, count) takes two arguments")
	}
	s := str(args[0])
	n, ok := toInt(args[1])
	if !ok || n < 0 {
		return nil, errors.New("repeat needs a count of zero or more")
	}
	if n > 0 && len(s) > MaxStringBytes/n {
		return nil, errTooLong
	}
	if err := b.spend(len(s)*n/copyBytesPerStep+n, len(s)*n); err != nil {
		return nil, err
	}
	return strings.Repeat(s, n), nil
}

func toJSON(b *budget, args []any) (any, error) {
	if len(args) != 1 {
		return nil, errors.New("toJSON(value) takes one argument")
	}
	// encoding/json builds the whole text before writing it: measure
	// first, indentation included.
	size, steps := textSize(args[0], MaxStringBytes)
	if size > MaxStringBytes {
		return nil, errTooLong
	}
	// The encoder's buffer, the indented copy and the string.
	if err := b.spend(steps, 4*size); err != nil {
		return nil, err
	}
	var w limitedWriter
	enc := json.NewEncoder(&w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(args[0]); err != nil {
		return nil, err
	}
	return strings.TrimSuffix(w.String(), "\n"), nil
}

func toString(b *budget, args []any) (any, error) {
	if len(args) != 1 {
		return nil, errors.New("string(value) takes one argument")
	}
	if s, ok := args[0].(string); ok {
		return s, nil
	}
	size, steps := textSize(args[0], MaxStringBytes)
	if size > MaxStringBytes {
		return nil, errTooLong
	}
	if err := b.spend(steps, 3*size); err != nil {
		return nil, err
	}
	var w limitedWriter
	if _, err := fmt.Fprint(&w, args[0]); err != nil {
		return nil, err
	}
	return w.String(), nil
}

func split(b *budget, args []any) (any, error) {
	if len(args) < 2 || len(args) > 3 {
		return nil, errors.New("split(string, separator[, n]) takes two or three arguments")
	}
	s, sep := str(args[0]), str(args[1])
	n := -1
	if len(args) == 3 {
		var ok bool
		if n, ok = toInt(args[2]); !ok {
			return nil, errors.New("split needs a whole number as its third argument")
		}
	}
	if err := splitCost(b, []any{s, sep, n}); err != nil {
		return nil, err
	}
	return strings.SplitN(s, sep, n), nil
}

// textSize is the length of the text toJSON writes for v (string's is no
// longer: fmt writes no indentation, and numbers at most as long), and the
// steps encoding it takes, counting at most limit bytes.
func textSize(v any, limit int) (size, steps int) {
	size = jsonSize(v, limit)
	steps = encodeCost(v, MaxSteps)
	return size, steps
}

// encodeCost is the steps encoding v to text takes, counting at most limit.
func encodeCost(v any, limit int) int {
	n := 0
	encodeInto(v, &n, limit)
	return n
}

func encodeInto(v any, n *int, limit int) {
	if *n > limit {
		return
	}
	switch x := v.(type) {
	case string:
		*n += encodeElemSteps + encodeByteSteps*len(x)
	case map[string]any:
		for k, e := range x {
			*n += encodeEntrySteps + encodeByteSteps*len(k)
			encodeInto(e, n, limit)
			if *n > limit {
				return
			}
		}
	case []any:
		for _, e := range x {
			*n += encodeElemSteps
			encodeInto(e, n, limit)
			if *n > limit {
				return
			}
		}
	default:
		if isScalar(v) {
			*n += encodeValueSteps
			return
		}
		// Anything else: reflected and formatted like a map of its size.
		*n += encodeValueSteps + sizeOf(v, limit)*encodeEntrySteps/entryBytes
	}
}

func toInt(v any) (int, bool) {
	switch n := v.(type) {
	case int:
		return n, true
	case int64:
		return int(n), true
	case float64:
		return int(n), n == float64(int(n))
	}
	return 0, false
}

func typeOf(v any) string {
	if v == nil {
		return "nil"
	}
	return reflect.TypeOf(v).String()
}

// resultType gives a metered builtin the result type of the builtin it
// meters, so the compiler treats its result as it did the builtin's. Its
// arguments were checked against the builtin before the patch.
func resultType(f *builtin.Function) func(args []reflect.Type) (reflect.Type, error) {
	if f.Validate != nil {
		return func(args []reflect.Type) (reflect.Type, error) { return f.Validate(args[1:]) }
	}
	var out reflect.Type
	for _, t := range f.Types {
		if t.NumOut() == 0 || (out != nil && t.Out(0) != out) {
			out = nil
			break
		}
		out = t.Out(0)
	}
	if out == nil {
		out = reflect.TypeOf(new(any)).Elem()
	}
	return func([]reflect.Type) (reflect.Type, error) { return out, nil }
}

// same is the type of a function that returns its argument (after the
// budget): __each, __key and the other charges keep their operand's type.
func same(args []reflect.Type) (reflect.Type, error) {
	if len(args) < 2 || args[1] == nil {
		return reflect.TypeOf(new(any)).Elem(), nil
	}
	return args[1], nil
}

var (
	boolType   = reflect.TypeOf(true)
	budgetType = reflect.TypeOf(&budget{})
)

func returns(t reflect.Type) func([]reflect.Type) (reflect.Type, error) {
	return func([]reflect.Type) (reflect.Type, error) { return t, nil }
}

// function registers an internal function with a result type.
func function(name string, fn func(args ...any) (any, error), validate func([]reflect.Type) (reflect.Type, error)) expr.Option {
	return func(c *conf.Config) {
		c.Functions[name] = &builtin.Function{Name: name, Func: fn, Validate: validate}
	}
}

// boundedFunctions are every function the patches call: hark's text
// builders under their own names, the metered builtins, operators and
// charges under reserved ones.
func boundedFunctions() []expr.Option {
	opts := []expr.Option{
		expr.Function(addName, add),
		expr.Function("__lt", compare(runtime.Less)),
		expr.Function("__gt", compare(runtime.More)),
		expr.Function("__le", compare(runtime.LessOrEqual)),
		expr.Function("__ge", compare(runtime.MoreOrEqual)),
		function(budgetName, newBudget, returns(budgetType)),
		function(eachName, each, same),
		function(sortKeyName, sortKey, same),
		function(groupKeyName, groupKey, same),
		function(keyName, key, same),
		function(argName, methodArg, same),
		function(eqName, equal, returns(boolType)),
		function(inName, in, returns(boolType)),
		function(inRangeName, inRange, returns(boolType)),
		function(matchesName, matches, returns(boolType)),
		function("__contains", contains, returns(boolType)),
		function("__startsWith", affix(strings.HasPrefix), returns(boolType)),
		function("__endsWith", affix(strings.HasSuffix), returns(boolType)),
	}
	for name, f := range textBuilders {
		opts = append(opts, expr.Function(name, func(args ...any) (any, error) {
			b, err := budgetOf(args)
			if err != nil {
				return nil, err
			}
			return f(b, args[1:])
		}))
	}
	for name, f := range metered {
		orig := builtin.Builtins[builtin.Index[name]]
		opts = append(opts, function(reservedPrefix+name, func(args ...any) (any, error) {
			b, err := budgetOf(args)
			if err != nil {
				return nil, err
			}
			return f(b, args[1:])
		}, resultType(orig)))
	}
	return opts
}
