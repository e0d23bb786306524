package rules

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
)

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
