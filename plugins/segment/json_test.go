package segment

import (
	"math/rand/v2"
	"testing"
)

// nestingByteByByte is the plain state machine nesting must agree with: it
// looks at every byte, tracking whether it is inside a string and after a
// backslash there.
func nestingByteByByte(b []byte) int {
	depth, deepest := 0, 0
	inString, escaped := false, false
	for _, c := range b {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
			deepest = max(deepest, depth)
		case c == '}' || c == ']':
			depth--
		}
	}
	return deepest
}

// TestNestingSkipsStringsExactly checks nesting, which jumps from quote to
// quote, against the byte-by-byte state machine on texts made of the bytes
// that matter (brackets, quotes, backslashes) and others, valid JSON or not.
func TestNestingSkipsStringsExactly(t *testing.T) {
	t.Parallel()
	const alphabet = `{}[]"\\a:,`
	r := rand.New(rand.NewPCG(14, 1))
	for range 200000 {
		b := make([]byte, r.IntN(40))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		if got, want := nesting(b), nestingByteByByte(b); got != want {
			t.Fatalf("nesting(%q) = %d, want %d", b, got, want)
		}
	}
}

// TestStringEnd checks where strings end and whether they have escapes.
func TestStringEnd(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		end     int
		escaped bool
	}{
		{`"" x`, 2, false},
		{`"abc",`, 5, false},
		{`"a\"b"`, 6, true},
		{`"a\\"b"`, 5, true},
		{`"a\\\"b"`, 8, true},
		{`"unterminated`, 13, true},
		{`"ends in a backslash\"`, 22, true},
	}
	for _, tt := range tests {
		end, escaped := stringEnd([]byte(tt.in), 0)
		if end != tt.end || escaped != tt.escaped {
			t.Errorf("stringEnd(%q) = %d, %v; want %d, %v", tt.in, end, escaped, tt.end, tt.escaped)
		}
	}
}
