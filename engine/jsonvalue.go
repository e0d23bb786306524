package engine

// decodeValue and checkObject read JSON with exactly decodeStruct's rules
// (duplicate keys, numbers out of float64's range and text that is not
// UTF-8 are errors; numbers a float64 cannot hold exactly keep their text),
// for the ingest path, where building protobuf Structs was the largest cost:
//
//   - checkObject validates an event part without building anything;
//   - decodeValue builds the Go values expressions see (map[string]any,
//     []any, string, float64, bool, nil).
//
// The event log keeps the JSON as received; Structs are built only when an
// API call reads an event (StructFromJSON). jsonstruct_test.go holds the
// three to one another and to protojson.

// checkObject reports whether b is one JSON object under decodeStruct's
// rules, building no values but the keys it must compare.
func checkObject(b []byte) error {
	d := &valueDecoder{jsonDecoder: jsonDecoder{b: b}, skip: true}
	_, err := d.top()
	return err
}

// decodeObject decodes a JSON object as expressions see it; nil when b is
// not one (the ingest path checked it before).
func decodeObject(b []byte) map[string]any {
	d := &valueDecoder{jsonDecoder: jsonDecoder{b: b}}
	v, err := d.top()
	if err != nil {
		return nil
	}
	m, _ := v.(map[string]any)
	return m
}

// valueDecoder is jsonDecoder building Go values, or nothing (skip).
type valueDecoder struct {
	jsonDecoder
	skip bool
}

func (d *valueDecoder) top() (any, error) {
	d.space()
	if d.i >= len(d.b) || d.b[d.i] != '{' {
		return nil, d.errorf("expected a JSON object")
	}
	v, err := d.object(0)
	if err != nil {
		return nil, err
	}
	d.space()
	if d.i != len(d.b) {
		return nil, d.errorf("unexpected data after the object")
	}
	return v, nil
}

func (d *valueDecoder) object(depth int) (any, error) {
	if depth > maxJSONDepth {
		return nil, d.errorf("JSON nested too deeply")
	}
	d.i++ // {
	var (
		m    map[string]any
		keys []string // skip: the keys seen, for duplicates
	)
	if !d.skip {
		m = map[string]any{}
	}
	d.space()
	if d.i < len(d.b) && d.b[d.i] == '}' {
		d.i++
		return m, nil
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
		if d.skip {
			for _, k := range keys {
				if k == key {
					return nil, d.errorf("duplicate map key %q", key)
				}
			}
			keys = append(keys, key)
		} else if _, dup := m[key]; dup {
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
		if !d.skip {
			m[key] = v
		}
		d.space()
		if d.i >= len(d.b) {
			return nil, d.errorf("unexpected end of JSON")
		}
		switch d.b[d.i] {
		case ',':
			d.i++
		case '}':
			d.i++
			return m, nil
		default:
			return nil, d.errorf("expected ',' or '}'")
		}
	}
}

func (d *valueDecoder) list(depth int) (any, error) {
	if depth > maxJSONDepth {
		return nil, d.errorf("JSON nested too deeply")
	}
	d.i++ // [
	var l []any
	if !d.skip {
		l = []any{}
	}
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
		if !d.skip {
			l = append(l, v)
		}
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

func (d *valueDecoder) value(depth int) (any, error) {
	d.space()
	if d.i >= len(d.b) {
		return nil, d.errorf("unexpected end of JSON")
	}
	switch c := d.b[d.i]; {
	case c == '{':
		return d.object(depth)
	case c == '[':
		return d.list(depth)
	case c == '"':
		if d.skip {
			return nil, d.skipStr()
		}
		return d.str()
	case c == 't':
		return true, d.word("true")
	case c == 'f':
		return false, d.word("false")
	case c == 'n':
		return nil, d.word("null")
	case c == '-' || (c >= '0' && c <= '9'):
		text, f, err := d.numberText()
		if err != nil || d.skip {
			return nil, err
		}
		if !exactFloat(text, f) {
			return string(text), nil
		}
		return f, nil
	default:
		return nil, d.errorf("invalid character %q", c)
	}
}

// skipStr checks a string value without keeping it: str's rules, and an
// allocation only for strings with escapes.
func (d *valueDecoder) skipStr() error {
	_, err := d.str()
	return err
}

func (d *valueDecoder) word(w string) error {
	if len(d.b)-d.i < len(w) || string(d.b[d.i:d.i+len(w)]) != w {
		return d.errorf("invalid literal")
	}
	d.i += len(w)
	return nil
}
