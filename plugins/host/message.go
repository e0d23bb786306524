package host

import (
	"strings"
	"unicode/utf8"
)

// MaxMessageBytes bounds a plugin's message that hark passes on: a
// rejection reason, a refused delivery's message, a call's error. They reach
// senders and logs, and a plugin's bug must not put megabytes into either;
// a kibibyte holds any explanation worth reading.
const MaxMessageBytes = 1 << 10

// TrimMessage makes a message from a plugin safe to pass on: valid UTF-8
// (invalid bytes become U+FFFD) and at most MaxMessageBytes, cut at a rune
// boundary and ended with "…" when it was longer.
func TrimMessage(s string) string {
	const ellipsis = "…"
	// Only a prefix can survive: validate no more than that.
	cutShort := len(s) > 2*MaxMessageBytes
	if cutShort {
		s = s[:2*MaxMessageBytes]
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= MaxMessageBytes && !cutShort {
		return s
	}
	if len(s) <= MaxMessageBytes-len(ellipsis) {
		return s + ellipsis
	}
	cut := MaxMessageBytes - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ellipsis
}
