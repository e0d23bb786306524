package rules

import (
	"encoding/base64"
	"fmt"
	"reflect"
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
