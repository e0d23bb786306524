package engine

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/structpb"
)

// decodeStruct parses a JSON object into a google.protobuf.Struct, with the
// rules of protojson — duplicate keys, numbers out of float64's range and
// text that is not UTF-8 are errors — in one pass and with far fewer
// allocations: decoding events into Structs was the largest item of the
// ingest profile. decodeStruct_test.go holds it to protojson's results.
func decodeStruct(b []byte) (*structpb.Struct, error) {
	d := &jsonDecoder{b: b}
	d.space()
	if d.i >= len(d.b) || d.b[d.i] != '{' {
		return nil, d.errorf("expected a JSON object")
	}
	s, err := d.object(0)
	if err != nil {
		return nil, err
	}
	d.space()
	if d.i != len(d.b) {
		return nil, d.errorf("unexpected data after the object")
	}
	return s, nil
}

// maxJSONDepth bounds recursion; events are held to 64 levels before this.
const maxJSONDepth = 10000

type jsonDecoder struct {
	b []byte
	i int
}

func (d *jsonDecoder) errorf(format string, args ...any) error {
	return fmt.Errorf("%s at byte %d", fmt.Sprintf(format, args...), d.i)
}

func (d *jsonDecoder) space() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *jsonDecoder) object(depth int) (*structpb.Struct, error) {
	if depth > maxJSONDepth {
		return nil, d.errorf("JSON nested too deeply")
	}
	d.i++ // {
	s := &structpb.Struct{Fields: map[string]*structpb.Value{}}
	d.space()
	if d.i < len(d.b) && d.b[d.i] == '}' {
		d.i++
		return s, nil
	}
	for {
		d.space()
		if d.i >= len(d.b) || d.b[d.i] != '"' {
			return nil, d.errorf("expected a string key")
		}
		key, err := d.str()
		if err != nil {
			return nil, err
		}
		if _, dup := s.Fields[key]; dup {
			return nil, d.errorf("duplicate map key %q", key)
		}
		d.space()
		if d.i >= len(d.b) || d.b[d.i] != ':' {
			return nil, d.errorf("expected ':'")
		}
		d.i++
		v, err := d.value(depth + 1)
		if err != nil {
			return nil, err
		}
		s.Fields[key] = v
		d.space()
		if d.i >= len(d.b) {
			return nil, d.errorf("unexpected end of JSON")
		}
		switch d.b[d.i] {
		case ',':
			d.i++
		case '}':
			d.i++
			return s, nil
		default:
			return nil, d.errorf("expected ',' or '}'")
		}
	}
}

func (d *jsonDecoder) list(depth int) (*structpb.ListValue, error) {
	if depth > maxJSONDepth {
		return nil, d.errorf("JSON nested too deeply")
	}
	d.i++ // [
	l := &structpb.ListValue{}
	d.space()
	if d.i < len(d.b) && d.b[d.i] == ']' {
		d.i++
		return l, nil
	}
	for {
		v, err := d.value(depth + 1)
		if err != nil {
			return nil, err
		}
		l.Values = append(l.Values, v)
		d.space()
		if d.i >= len(d.b) {
			return nil, d.errorf("unexpected end of JSON")
		}
		switch d.b[d.i] {
		case ',':
			d.i++
		case ']':
			d.i++
			return l, nil
		default:
			return nil, d.errorf("expected ',' or ']'")
		}
	}
}

func (d *jsonDecoder) value(depth int) (*structpb.Value, error) {
	d.space()
	if d.i >= len(d.b) {
		return nil, d.errorf("unexpected end of JSON")
	}
	switch c := d.b[d.i]; {
	case c == '{':
		s, err := d.object(depth)
		if err != nil {
			return nil, err
		}
		return structpb.NewStructValue(s), nil
	case c == '[':
		l, err := d.list(depth)
		if err != nil {
			return nil, err
		}
		return structpb.NewListValue(l), nil
	case c == '"':
		s, err := d.str()
		if err != nil {
			return nil, err
		}
		return structpb.NewStringValue(s), nil
	case c == 't':
		return d.literal("true", structpb.NewBoolValue(true))
	case c == 'f':
		return d.literal("false", structpb.NewBoolValue(false))
	case c == 'n':
		return d.literal("null", structpb.NewNullValue())
	case c == '-' || (c >= '0' && c <= '9'):
		return d.number()
	default:
		return nil, d.errorf("invalid character %q", c)
	}
}

func (d *jsonDecoder) literal(word string, v *structpb.Value) (*structpb.Value, error) {
	if len(d.b)-d.i < len(word) || string(d.b[d.i:d.i+len(word)]) != word {
		return nil, d.errorf("invalid literal")
	}
	d.i += len(word)
	return v, nil
}

// number reads a JSON number (RFC 8259's grammar) as a float64, as Struct
// holds numbers — unless a float64 cannot hold its value exactly (see
// numberValue): then it is kept as its text, a string, so a 20-digit order
// id comes back digit for digit instead of rounded.
func (d *jsonDecoder) number() (*structpb.Value, error) {
	text, f, err := d.numberText()
	if err != nil {
		return nil, err
	}
	if !exactFloat(text, f) {
		return structpb.NewStringValue(string(text)), nil
	}
	return structpb.NewNumberValue(f), nil
}

// numberText reads a JSON number (RFC 8259's grammar): its text and its
// value as a float64, which must be in range.
func (d *jsonDecoder) numberText() ([]byte, float64, error) {
	start := d.i
	if d.b[d.i] == '-' {
		d.i++
	}
	digits := func() int {
		n := 0
		for d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9' {
			d.i++
			n++
		}
		return n
	}
	switch {
	case d.i < len(d.b) && d.b[d.i] == '0':
		d.i++
	case digits() == 0:
		return nil, 0, d.errorf("invalid number")
	}
	if d.i < len(d.b) && d.b[d.i] == '.' {
		d.i++
		if digits() == 0 {
			return nil, 0, d.errorf("invalid number")
		}
	}
	if d.i < len(d.b) && (d.b[d.i] == 'e' || d.b[d.i] == 'E') {
		d.i++
		if d.i < len(d.b) && (d.b[d.i] == '+' || d.b[d.i] == '-') {
			d.i++
		}
		if digits() == 0 {
			return nil, 0, d.errorf("invalid number")
		}
	}
	text := d.b[start:d.i]
	f, err := strconv.ParseFloat(string(text), 64)
	if err != nil {
		// Out of float64's range. Quote the number, not all of it: the
		// reason goes back to the sender.
		q := string(text)
		if len(q) > 32 {
			q = fmt.Sprintf("%s… (%d characters)", q[:24], len(q))
		}
		return nil, 0, d.errorf("invalid value for number: %s", q)
	}
	return text, f, nil
}

// exactFloat reports whether f, parsed from the JSON number text, has
// exactly the value the text writes, that is whether the shortest decimal
// that reads back as f is the text's value: 0.1, 1e21 and
// 0.30000000000000004 yes, the 20-digit 12345678901234567891 no. Any text with at most 15 significant digits reads
// back exactly (a float64 keeps 15.95 decimal digits), so only longer ones
// are compared.
func exactFloat(text []byte, f float64) bool {
	digits, exp := decimalOf(text)
	if len(digits) <= 15 {
		return true
	}
	shortest, sexp := decimalOf(strconv.AppendFloat(nil, f, 'e', -1, 64))
	return string(digits) == string(shortest) && exp == sexp
}

// decimalOf reads a JSON number's text as its significant digits (no
// leading or trailing zeros) and the decimal exponent of the first of them,
// so equal values give equal results: "120.0" and "1.2e2" are ("12", 2).
// The sign is ignored (exactness does not depend on it).
func decimalOf(text []byte) (digits []byte, exp int) {
	var mantissa []byte
	point := -1
	i := 0
	if i < len(text) && text[i] == '-' {
		i++
	}
	for ; i < len(text) && text[i] != 'e' && text[i] != 'E'; i++ {
		if text[i] == '.' {
			point = len(mantissa)
			continue
		}
		mantissa = append(mantissa, text[i])
	}
	if point < 0 {
		point = len(mantissa)
	}
	if i < len(text) {
		e, _ := strconv.Atoi(string(text[i+1:])) // the grammar was checked; huge exponents saturate harmlessly
		exp = e
	}
	lead := 0
	for lead < len(mantissa) && mantissa[lead] == '0' {
		lead++
	}
	trail := len(mantissa)
	for trail > lead && mantissa[trail-1] == '0' {
		trail--
	}
	if lead == trail {
		return nil, 0 // zero
	}
	return mantissa[lead:trail], exp + point - lead
}

var errJSONString = errors.New("invalid JSON string")

// str reads a JSON string: escapes decoded, surrogate pairs joined, and the
// text required to be UTF-8.
func (d *jsonDecoder) str() (string, error) {
	d.i++ // opening quote
	start := d.i
	// Fast path: no escapes.
	for d.i < len(d.b) {
		c := d.b[d.i]
		if c == '"' {
			s := d.b[start:d.i]
			d.i++
			if !utf8.Valid(s) {
				return "", d.errorf("invalid UTF-8 in string")
			}
			return string(s), nil
		}
		if c == '\\' {
			break
		}
		if c < 0x20 {
			return "", d.errorf("invalid control character in string")
		}
		d.i++
	}
	buf := append([]byte(nil), d.b[start:d.i]...)
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			d.i++
			if !utf8.Valid(buf) {
				return "", d.errorf("invalid UTF-8 in string")
			}
			return string(buf), nil
		case c < 0x20:
			return "", d.errorf("invalid control character in string")
		case c != '\\':
			buf = append(buf, c)
			d.i++
			continue
		}
		d.i++ // backslash
		if d.i >= len(d.b) {
			break
		}
		e := d.b[d.i]
		d.i++
		switch e {
		case '"', '\\', '/':
			buf = append(buf, e)
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r, ok := d.hex4()
			if !ok {
				return "", d.errorf("invalid escape code in string")
			}
			if utf16.IsSurrogate(r) {
				// A high surrogate must be followed by a low one.
				if d.i+1 < len(d.b) && d.b[d.i] == '\\' && d.b[d.i+1] == 'u' {
					save := d.i
					d.i += 2
					if r2, ok := d.hex4(); ok {
						if joined := utf16.DecodeRune(r, r2); joined != utf8.RuneError {
							buf = utf8.AppendRune(buf, joined)
							continue
						}
					}
					d.i = save
				}
				return "", d.errorf("invalid escape code in string")
			}
			buf = utf8.AppendRune(buf, r)
		default:
			return "", d.errorf("invalid escape code in string")
		}
	}
	return "", errJSONString
}

func (d *jsonDecoder) hex4() (rune, bool) {
	if len(d.b)-d.i < 4 {
		return 0, false
	}
	n, err := strconv.ParseUint(string(d.b[d.i:d.i+4]), 16, 32)
	if err != nil {
		return 0, false
	}
	d.i += 4
	return rune(n), true
}
