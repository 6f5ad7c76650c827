package recorder

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"

	"tsconnect/policy/rules"
)

// Limits on an uploaded recording.
const (
	// MaxHeaderLine bounds the asciicast header line, newline included.
	MaxHeaderLine = 8 << 10
	// MaxEventLine bounds one event line, newline included: a 32 KiB PTY read, escaped.
	MaxEventLine = 256 << 10
	// MaxTermSize bounds a terminal's columns and rows (header and "r" events).
	MaxTermSize = 10000
	// MaxEventTime bounds an event's time, in seconds since the recording's start (~3 years).
	MaxEventTime = 1e8
	// maxIdentity bounds srcUser and srcNode.
	maxIdentity = 256
	// maxEnv bounds the header's env entries.
	maxEnv = 16
)

// Header is an asciicast v2 header line, with the fields tsconnect adds naming the login:
// who (srcUser, on srcNode) logged in as which local account (localUser).
type Header struct {
	Version   int    `json:"version"`   // always 2
	Width     int    `json:"width"`     // columns, 1 to MaxTermSize
	Height    int    `json:"height"`    // rows, 1 to MaxTermSize
	Timestamp int64  `json:"timestamp"` // start, Unix seconds
	Title     string `json:"title,omitempty"`
	// IdleTimeLimit and Duration are asciicast's own optional fields, kept as sent.
	IdleTimeLimit float64           `json:"idle_time_limit,omitempty"`
	Duration      float64           `json:"duration,omitempty"`
	Command       string            `json:"command,omitempty"`
	Env           map[string]string `json:"env,omitempty"` // e.g. TERM, SHELL; at most 16
	SrcUser       string            `json:"srcUser"`       // the SSH client's user (login name; "tagged" for a tagged node)
	SrcNode       string            `json:"srcNode"`       // the SSH client's node name
	LocalUser     string            `json:"localUser"`     // the local account logged in to
}

// parseHeader reads and checks an asciicast v2 header line (without its newline).
func parseHeader(line []byte) (Header, error) {
	var h Header
	d := json.NewDecoder(bytes.NewReader(line))
	d.DisallowUnknownFields()
	if err := d.Decode(&h); err != nil {
		return h, fmt.Errorf("header line: %w", err)
	}
	if d.More() {
		return h, errors.New("header line: more than one JSON value")
	}
	switch {
	case h.Version != 2:
		return h, fmt.Errorf("header line: version %d, want 2 (asciicast v2)", h.Version)
	case h.Width < 1 || h.Width > MaxTermSize || h.Height < 1 || h.Height > MaxTermSize:
		return h, fmt.Errorf("header line: terminal size %dx%d out of range (1 to %d)", h.Width, h.Height, MaxTermSize)
	case h.Timestamp <= 0:
		return h, errors.New("header line: missing timestamp")
	case h.IdleTimeLimit < 0 || h.Duration < 0:
		return h, errors.New("header line: negative idle_time_limit or duration")
	case len(h.Env) > maxEnv:
		return h, fmt.Errorf("header line: %d env entries, at most %d", len(h.Env), maxEnv)
	}
	for name, v := range map[string]string{"srcUser": h.SrcUser, "srcNode": h.SrcNode} {
		if err := checkIdentity(v); err != nil {
			return h, fmt.Errorf("header line: %s: %w", name, err)
		}
	}
	if err := rules.CheckUserName(h.LocalUser); err != nil {
		return h, fmt.Errorf("header line: localUser: %w", err)
	}
	return h, nil
}

// checkIdentity accepts a non-empty name of printable characters, at most maxIdentity bytes.
func checkIdentity(s string) error {
	if s == "" || len(s) > maxIdentity {
		return fmt.Errorf("want 1 to %d bytes, got %d", maxIdentity, len(s))
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == utf8.RuneError {
			return errors.New("holds a control character or invalid UTF-8")
		}
	}
	return nil
}

// event is what checkEvent learns from an event line.
type event struct {
	time float64
	kind byte // 'o', 'i' or 'r'
}

// checkEvent validates one asciicast v2 event line (without its newline):
// [TIME, "o"|"i"|"r", DATA], TIME a JSON number, DATA a JSON string ("COLSxROWS" for r).
func checkEvent(line []byte) (event, error) {
	var ev event
	i := skipSpace(line, 0)
	if i >= len(line) || line[i] != '[' {
		return ev, errors.New("event: not a JSON list")
	}
	i = skipSpace(line, i+1)
	j := numberEnd(line, i)
	if j == i {
		return ev, errors.New("event: time is not a non-negative number")
	}
	t, err := strconv.ParseFloat(string(line[i:j]), 64)
	if err != nil || math.IsNaN(t) || t < 0 || t > MaxEventTime {
		return ev, fmt.Errorf("event: time %q is not a number from 0 to %g", line[i:j], float64(MaxEventTime))
	}
	ev.time = t
	i = skipSpace(line, j)
	if i >= len(line) || line[i] != ',' {
		return ev, errors.New("event: want a comma after the time")
	}
	i = skipSpace(line, i+1)
	if i+3 > len(line) || line[i] != '"' || line[i+2] != '"' || (line[i+1] != 'o' && line[i+1] != 'i' && line[i+1] != 'r') {
		return ev, errors.New(`event: type must be "o", "i" or "r"`)
	}
	ev.kind = line[i+1]
	i = skipSpace(line, i+3)
	if i >= len(line) || line[i] != ',' {
		return ev, errors.New("event: want a comma after the type")
	}
	i = skipSpace(line, i+1)
	end, err := jsonString(line, i)
	if err != nil {
		return ev, fmt.Errorf("event: data: %w", err)
	}
	if ev.kind == 'r' {
		if err := checkResize(line[i+1 : end-1]); err != nil {
			return ev, fmt.Errorf(`event: "r" data: %w`, err)
		}
	}
	i = skipSpace(line, end)
	if i >= len(line) || line[i] != ']' || skipSpace(line, i+1) != len(line) {
		return ev, errors.New("event: want exactly three elements and nothing after the list")
	}
	return ev, nil
}

// numberEnd is the end of the JSON number without sign at b[i:] (i itself when there is none):
// 0 or a digit string without leading zero, an optional fraction, an optional exponent.
func numberEnd(b []byte, i int) int {
	digits := func(j int) int {
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
		return j
	}
	j := i
	switch {
	case j < len(b) && b[j] == '0':
		j++
	case j < len(b) && b[j] >= '1' && b[j] <= '9':
		j = digits(j)
	default:
		return i
	}
	if j < len(b) && b[j] == '.' {
		k := digits(j + 1)
		if k == j+1 {
			return i
		}
		j = k
	}
	if j < len(b) && (b[j] == 'e' || b[j] == 'E') {
		k := j + 1
		if k < len(b) && (b[k] == '+' || b[k] == '-') {
			k++
		}
		e := digits(k)
		if e == k {
			return i
		}
		j = e
	}
	return j
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t') {
		i++
	}
	return i
}

// jsonString checks the JSON string starting at b[i] (its opening quote) and returns the
// index after its closing quote.
func jsonString(b []byte, i int) (int, error) {
	if i >= len(b) || b[i] != '"' {
		return 0, errors.New("not a JSON string")
	}
	for i++; i < len(b); {
		c := b[i]
		switch {
		case c == '"':
			return i + 1, nil
		case c < 0x20:
			return 0, fmt.Errorf("control character 0x%02x in a string", c)
		case c == '\\':
			if i+1 >= len(b) {
				return 0, errors.New("unterminated string")
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) || !isHex4(b[i+2:i+6]) {
					return 0, errors.New(`bad \u escape`)
				}
				i += 6
			default:
				return 0, fmt.Errorf("bad escape \\%c", b[i+1])
			}
		case c < utf8.RuneSelf:
			i++
		default:
			r, n := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && n <= 1 {
				return 0, errors.New("invalid UTF-8")
			}
			i += n
		}
	}
	return 0, errors.New("unterminated string")
}

func isHex4(b []byte) bool {
	for _, c := range b {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// checkResize accepts "COLSxROWS", each 1 to MaxTermSize.
func checkResize(s []byte) error {
	cols, rows, ok := bytes.Cut(s, []byte("x"))
	c, err1 := strconv.Atoi(string(cols))
	r, err2 := strconv.Atoi(string(rows))
	if !ok || err1 != nil || err2 != nil || c < 1 || r < 1 || c > MaxTermSize || r > MaxTermSize ||
		cols[0] == '+' || rows[0] == '+' {
		return fmt.Errorf("want COLSxROWS, each 1 to %d", MaxTermSize)
	}
	return nil
}
