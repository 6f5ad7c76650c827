package policy

import (
	"bytes"
	"fmt"
	"strings"
)

// Error is one problem in a policy file, at a place a person can find.
type Error struct {
	File   string // the file name given to Parse
	Line   int    // 1-based; 0 when the problem has no single place
	Column int    // 1-based, in bytes
	Field  string // e.g. "ssh[0].users"; "" for the file as a whole
	Msg    string
}

// Error formats e as "file:line:col: field: message".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", e.Line, e.Column)
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ErrorList is every problem found in one policy file, in file order.
type ErrorList []*Error

// Error joins the problems, one per line.
func (l ErrorList) Error() string {
	s := make([]string, len(l))
	for i, e := range l {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// lineCol converts a byte offset of src into a 1-based line and column.
func lineCol(src []byte, off int) (line, col int) {
	if off < 0 {
		return 0, 0
	}
	if off > len(src) {
		off = len(src)
	}
	line = 1 + bytes.Count(src[:off], []byte("\n"))
	col = 1 + off - (bytes.LastIndexByte(src[:off], '\n') + 1)
	return line, col
}
