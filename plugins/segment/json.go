package segment

import (
	"bytes"
	"encoding/json"
	"slices"
	"unicode"
	"unicode/utf8"
)

// The parser reads an event's top-level members straight from its text:
// one json.Valid of the body, then a walk that notes where each member's
// value lies, without decoding (or copying) any value it does not need.
// Every value it hands on — the event, its properties, traits, message id —
// is a slice of the body, so the SDK can send it back to hark as an offset
// into the body hark already holds (see the plugin protocol's Event).
//
// The walk only ever runs over text json.Valid accepted, which is what lets
// it skip values by their brackets and quotes alone.

// member is one member of a JSON object.
type member struct {
	// key is the key's text between its quotes, or its decoded value when
	// it has escapes.
	key []byte
	// value is the member's value: a slice of the object's text, without
	// surrounding whitespace.
	value []byte
}

// members appends the members of obj, valid JSON whose first byte is '{',
// to dst, in order (duplicates included).
func members(dst []member, obj []byte) []member {
	i := 1
	for {
		i = skipSpace(obj, i)
		switch obj[i] {
		case '}':
			return dst
		case ',':
			i = skipSpace(obj, i+1)
		}
		end, escaped := stringEnd(obj, i)
		key := obj[i+1 : end-1]
		if escaped {
			var s string
			_ = json.Unmarshal(obj[i:end], &s) // valid, so it decodes
			key = []byte(s)
		}
		i = skipSpace(obj, end) // at ':'
		i = skipSpace(obj, i+1)
		vend := valueEnd(obj, i)
		dst = append(dst, member{key: key, value: obj[i:vend]})
		i = vend
	}
}

// elements appends the elements of arr, valid JSON whose first byte is '[',
// to dst.
func elements(dst [][]byte, arr []byte) [][]byte {
	i := skipSpace(arr, 1)
	if arr[i] == ']' {
		return dst
	}
	for {
		end := valueEnd(arr, i)
		dst = append(dst, arr[i:end])
		i = skipSpace(arr, end)
		if arr[i] == ']' {
			return dst
		}
		i = skipSpace(arr, i+1) // past ','
	}
}

// get is the value of key in ms, as a JSON object decoded into a map keeps
// it: the last member of that key wins. Nil when absent.
func get(ms []member, key string) []byte {
	for i := len(ms) - 1; i >= 0; i-- {
		if string(ms[i].key) == key {
			return ms[i].value
		}
	}
	return nil
}

// has reports whether ms has a member key.
func has(ms []member, key string) bool {
	for i := range ms {
		if string(ms[i].key) == key {
			return true
		}
	}
	return false
}

// getFold is the value of the member that decoding obj into a struct with
// one field named upper (ASCII capitals) would keep: encoding/json matches
// keys without regard to case, by the same folding as foldKey, and the last
// match wins. Nil when obj is not an object or has no such member.
func getFold(obj []byte, upper string) []byte {
	if len(obj) == 0 || obj[0] != '{' {
		return nil
	}
	var found []byte
	var buf [16]member
	for _, m := range members(buf[:0], obj) {
		if foldsTo(m.key, upper) {
			found = m.value
		}
	}
	return found
}

// foldsTo reports whether key folds to upper as encoding/json folds field
// names (each rune to upper(lower(r))), upper being ASCII capitals: so
// "traits", "TRAITS" and "traitſ" (long s) all fold to "TRAITS".
func foldsTo(key []byte, upper string) bool {
	j := 0
	for i := 0; i < len(key); {
		c := rune(key[i])
		n := 1
		if c >= utf8.RuneSelf {
			c, n = utf8.DecodeRune(key[i:])
			c = unicode.ToUpper(unicode.ToLower(c))
		} else if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		if j >= len(upper) || c != rune(upper[j]) {
			return false
		}
		i, j = i+n, j+1
	}
	return j == len(upper)
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index after the string that starts at b[i] (a
// quote), and whether it has escapes.
func stringEnd(b []byte, i int) (int, bool) {
	q := closingQuote(b, i)
	if q < 0 {
		return len(b), true
	}
	return q + 1, bytes.IndexByte(b[i+1:q], '\\') >= 0
}

// closingQuote returns the index of the quote that ends the string opened
// by the quote at b[open], or -1 when it does not end: the first quote after
// it with an even number of backslashes before it. It jumps from quote to
// quote (bytes.IndexByte) instead of looking at every byte.
func closingQuote(b []byte, open int) int {
	for i := open + 1; ; {
		j := bytes.IndexByte(b[i:], '"')
		if j < 0 {
			return -1
		}
		q := i + j
		backslashes := 0
		for k := q - 1; b[k] == '\\'; k-- { // stops at the opening quote at the latest
			backslashes++
		}
		if backslashes%2 == 0 {
			return q
		}
		i = q + 1
	}
}

// valueEnd returns the index after the value that starts at b[i].
func valueEnd(b []byte, i int) int {
	switch b[i] {
	case '"':
		end, _ := stringEnd(b, i)
		return end
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				end, _ := stringEnd(b, i)
				i = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
		return len(b)
	default: // a number, true, false or null: up to what ends it
		for ; i < len(b); i++ {
			switch b[i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return i
			}
		}
		return i
	}
}

// stringValue decodes a JSON string value; ok is false for other values.
func stringValue(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", false
	}
	inner := raw[1 : len(raw)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return string(inner), true
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false
	}
	return s, true
}

// encodeObject writes the members of fields as one JSON object, keys
// sorted (as json.Marshal sorts a map's), values as they are.
func encodeObject(fields map[string][]byte) []byte {
	keys := make([]string, 0, len(fields))
	size := 2
	for k, v := range fields {
		keys = append(keys, k)
		size += len(k) + len(v) + 4
	}
	slices.Sort(keys)
	out := make([]byte, 0, size)
	out = append(out, '{')
	for i, k := range keys {
		if i > 0 {
			out = append(out, ',')
		}
		out = appendKey(out, k)
		out = append(out, ':')
		out = append(out, fields[k]...)
	}
	return append(out, '}')
}

// appendKey appends k as a JSON string.
func appendKey(out []byte, k string) []byte {
	for i := 0; i < len(k); i++ {
		if c := k[i]; c < 0x20 || c == '"' || c == '\\' {
			quoted, _ := json.Marshal(k) // a string always encodes
			return append(out, quoted...)
		}
	}
	out = append(out, '"')
	out = append(out, k...)
	return append(out, '"')
}
