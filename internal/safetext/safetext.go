// Package safetext makes strings that came from another party fit for a terminal or a log:
// control characters and invalid UTF-8 escaped, length bounded.
package safetext

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// DefaultMax is the bound Bounded uses for a log field: long enough for any valid value.
const DefaultMax = 256

// Escape returns s with every byte or rune that is not printable (control characters,
// terminal escapes, invalid UTF-8, bidirectional overrides) and the backslash written as a
// Go escape, so the result prints as one line and never moves a terminal's cursor.
func Escape(s string) string {
	if isPlain(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\\':
			b.WriteString(`\\`)
		case r < 0x80 && r >= 0x20 && r != 0x7f:
			b.WriteByte(byte(r))
		case r >= 0x80 && unicode.IsPrint(r) && !unicode.Is(unicode.Bidi_Control, r):
			b.WriteString(s[i : i+n])
		case r < 0x80:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r <= 0xffff:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			fmt.Fprintf(&b, `\U%08x`, r)
		}
		i += n
	}
	return b.String()
}

// Bounded is Escape of at most the first max bytes of s (max <= 0 means DefaultMax),
// followed by "…(+N bytes)" when s was longer.
func Bounded(s string, max int) string {
	if max <= 0 {
		max = DefaultMax
	}
	if len(s) <= max {
		return Escape(s)
	}
	cut := max
	for cut > 0 && cut > max-utf8.UTFMax && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return Escape(s[:cut]) + fmt.Sprintf("…(+%d bytes)", len(s)-cut)
}

func isPlain(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '\\' {
			return false
		}
	}
	return true
}
