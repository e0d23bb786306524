package rules

import (
	"strings"

	"github.com/expr-lang/expr/vm/runtime"
)

// The operators and closures the patches rewrite, and the charges they insert.

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
	acct, _ := arg(args, 0).(*account)
	s, _ := arg(args, 1).(int)
	by, _ := arg(args, 2).(int)
	b := &budget{account: acct}
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
