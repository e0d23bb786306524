package rules

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"reflect"
	"strconv"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// A budget is one run's account: the steps of work it has done and the
// bytes of values it has built. expr has no timeout and its own memory
// budget counts only some of the elements a run creates, so the compile-time
// patch (meter.go) makes every program start with
//
//	let __steps = __budget(<the program's fixed cost>); …
//
// and every operation whose cost depends on the size of its operands — each
// builtin, the string and list operators, closures, keys computed at run
// time, method arguments — charges the budget with what it is about to
// touch and build before it does, so a run stops at the bound instead of
// after the harm. Charges only grow, so once a run is over a bound every
// later charge fails too.
//
// A budget belongs to one run of one program and is not safe for concurrent
// use; the run that created it is its only user.
type budget struct {
	steps int // work done, in steps (see MaxSteps)
	bytes int // bytes of values built (see MaxRunBytes)
	// account is the event's, shared by every run of one Env; nil when the
	// Env was not made by NewEnv.
	account *account
	// patterns are the regular expressions built at run time that this run
	// has paid to compile.
	patterns map[string]*pattern
}

// account totals the budgets of every run of one event (one Env), so that
// an event matched by many triggers is bounded as a whole (MaxEventSteps,
// MaxEventBytes). Runs of one event may run concurrently.
type account struct {
	steps, bytes atomic.Int64
}

var (
	errEventSteps = fmt.Errorf("the event's expressions did more than %d steps of work in all", MaxEventSteps)
	errEventBytes = fmt.Errorf("the event's expressions built more than %d bytes of values in all", MaxEventBytes)
)

var (
	errSteps = fmt.Errorf("the expression did more than %d steps of work", MaxSteps)
	errBytes = fmt.Errorf("the expression built more than %d bytes of values", MaxRunBytes)
	// errNoBudget is an internal function called without the run's budget:
	// only the patch writes such calls, so this is our bug.
	errNoBudget = errors.New("internal: an operation ran without the run's budget")
)

// spend charges steps of work and bytes of values, and fails once either
// total is over its bound.
func (b *budget) spend(steps, bytes int) error {
	b.steps += steps
	b.bytes += bytes
	if b.steps > MaxSteps {
		return errSteps
	}
	if b.bytes > MaxRunBytes {
		return errBytes
	}
	if b.account != nil {
		if b.account.steps.Add(int64(steps)) > MaxEventSteps {
			return errEventSteps
		}
		if b.account.bytes.Add(int64(bytes)) > MaxEventBytes {
			return errEventBytes
		}
	}
	return nil
}

// budgetOf returns the budget the patch passes as an internal function's
// first argument.
func budgetOf(args []any) (*budget, error) {
	if len(args) > 0 {
		if b, ok := args[0].(*budget); ok {
			return b, nil
		}
	}
	return nil, errNoBudget
}

// maxCharge caps one computed charge, far above both bounds, so products of
// sizes cannot overflow.
const maxCharge = 1 << 50

// mul multiplies two non-negative charges, saturating at maxCharge.
func mul(a, b int) int {
	if a <= 0 || b <= 0 {
		return 0
	}
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	if hi != 0 || lo > maxCharge {
		return maxCharge
	}
	return int(lo)
}

// log2 is the number of levels of a sort of n elements: ⌈log₂ n⌉, at least 1.
func log2(n int) int {
	if n <= 2 {
		return 1
	}
	return bits.Len(uint(n - 1))
}

// textLen is the length of a string or byte slice, else 0.
func textLen(v any) int {
	switch s := v.(type) {
	case string:
		return len(s)
	case []byte:
		return len(s)
	}
	return 0
}

// listLen is the length of a list (slice or array), else -1.
func listLen(v any) int {
	switch l := v.(type) {
	case []any:
		return len(l)
	case []string:
		return len(l)
	case []int:
		return len(l)
	case []float64:
		return len(l)
	case nil:
		return -1
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Slice || rv.Kind() == reflect.Array {
		return rv.Len()
	}
	return -1
}

// isScalar reports whether comparing or hashing v costs no more than a
// constant: numbers, booleans, nil, times and durations.
func isScalar(v any) bool {
	switch v.(type) {
	case nil, bool, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64,
		float32, float64, time.Time, time.Duration:
		return true
	}
	return false
}

// Sizes of the values a run builds, in bytes as Go holds them: what the
// budget of bytes charges per element.
const (
	// elemBytes is one element of a list ([]any holds 16-byte interfaces).
	elemBytes = 16
	// entryBytes is one entry of a map, with its share of the table.
	entryBytes = 64
	// scalarBytes is a boxed number or other small value.
	scalarBytes = 8
)

// sizeOf is the size of a value tree in bytes — strings by length, every
// list element, map entry and scalar by what Go holds for it — counting at
// most limit: a walk of a huge value costs no more than the budget it may
// still spend. Comparing, hashing or copying v touches at most this much.
func sizeOf(v any, limit int) int {
	n := 0
	sizeInto(v, &n, limit)
	return n
}

func sizeInto(v any, n *int, limit int) {
	if *n > limit {
		return
	}
	switch x := v.(type) {
	case string:
		*n += len(x) + elemBytes
	case []byte:
		*n += len(x) + elemBytes
	case map[string]any:
		for k, e := range x {
			*n += len(k) + entryBytes
			sizeInto(e, n, limit)
			if *n > limit {
				return
			}
		}
	case []any:
		*n += elemBytes
		for _, e := range x {
			*n += elemBytes
			sizeInto(e, n, limit)
			if *n > limit {
				return
			}
		}
	case []string:
		*n += elemBytes
		for _, e := range x {
			*n += len(e) + elemBytes
		}
	default:
		if isScalar(v) {
			*n += scalarBytes
			return
		}
		sizeReflect(reflect.ValueOf(v), n, limit)
	}
}

func sizeReflect(v reflect.Value, n *int, limit int) {
	switch v.Kind() {
	case reflect.Slice, reflect.Array:
		*n += elemBytes
		for i := range v.Len() {
			*n += elemBytes
			sizeInto(v.Index(i).Interface(), n, limit)
			if *n > limit {
				return
			}
		}
	case reflect.Map:
		it := v.MapRange()
		for it.Next() {
			*n += entryBytes
			sizeInto(it.Key().Interface(), n, limit)
			sizeInto(it.Value().Interface(), n, limit)
			if *n > limit {
				return
			}
		}
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			sizeReflect(v.Elem(), n, limit)
		}
	case reflect.String:
		*n += v.Len() + elemBytes
	default:
		*n += scalarBytes
	}
}

// jsonSize is the length of toJSON's text for v — indented two spaces per
// level, so a deep value's indentation counts — counting at most limit.
func jsonSize(v any, limit int) int {
	n := 0
	jsonInto(v, 0, &n, limit)
	return n
}

func jsonInto(v any, depth int, n *int, limit int) {
	if *n > limit {
		return
	}
	// Every element of a list or an object is on its own line, indented
	// to its depth and followed by ",\n"; the brackets close on a line of
	// their own.
	line := 2*(depth+1) + 2
	switch x := v.(type) {
	case string:
		*n += jsonStringLen(x)
	case map[string]any:
		*n += 2 + 2*depth + 1
		for k, e := range x {
			*n += line + jsonStringLen(k) + 2
			jsonInto(e, depth+1, n, limit)
			if *n > limit {
				return
			}
		}
	case []any:
		*n += 2 + 2*depth + 1
		for _, e := range x {
			*n += line
			jsonInto(e, depth+1, n, limit)
			if *n > limit {
				return
			}
		}
	case nil, bool:
		*n += 5
	default:
		if isScalar(v) {
			*n += scalarTextLen(v)
			return
		}
		rv := reflect.ValueOf(v)
		switch rv.Kind() {
		case reflect.Slice, reflect.Array:
			*n += 2 + 2*depth + 1
			for i := range rv.Len() {
				*n += line
				jsonInto(rv.Index(i).Interface(), depth+1, n, limit)
				if *n > limit {
					return
				}
			}
		case reflect.Map:
			*n += 2 + 2*depth + 1
			it := rv.MapRange()
			for it.Next() {
				*n += line + 2
				jsonInto(it.Key().Interface(), depth+1, n, limit)
				jsonInto(it.Value().Interface(), depth+1, n, limit)
				if *n > limit {
					return
				}
			}
		case reflect.String:
			*n += jsonStringLen(rv.String())
		default:
			// Anything else encodes as what it holds, at least {} — a
			// time as a quoted RFC 3339 text.
			*n += 40
		}
	}
}

// scalarTextLen is the length of the text encoding/json writes for a
// scalar (fmt writes numbers no longer).
func scalarTextLen(v any) int {
	var buf [40]byte
	switch x := v.(type) {
	case float64:
		f := 'f'
		if a := math.Abs(x); a != 0 && (a < 1e-6 || a >= 1e21) {
			f = 'e'
		}
		return len(strconv.AppendFloat(buf[:0], x, byte(f), -1, 64))
	case float32:
		return len(strconv.AppendFloat(buf[:0], float64(x), 'g', -1, 32)) + 2
	case int:
		return len(strconv.AppendInt(buf[:0], int64(x), 10))
	case time.Time:
		return 40
	}
	return 24 // the longest number encoding/json writes
}

// jsonStringLen is the length of s quoted by encoding/json: control
// characters, <, >, &, U+2028, U+2029 and invalid bytes take 6.
func jsonStringLen(s string) int {
	n := 2
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t':
				n += 2
			case c < 0x20 || c == '<' || c == '>' || c == '&':
				n += 6
			default:
				n++
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1, r == '\u2028', r == '\u2029':
			n += 6
		default:
			n += size
		}
		i += size
	}
	return n
}
