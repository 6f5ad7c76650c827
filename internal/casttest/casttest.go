// Package casttest reads asciicast v2 recordings in tests: what a recording's output events
// say, as the terminal showed it.
package casttest

import (
	"encoding/json"
	"strings"
)

// Output is the data of cast's "o" events joined (the header line and malformed lines are
// skipped).
func Output(cast []byte) string {
	var b strings.Builder
	for i, l := range strings.Split(strings.TrimSpace(string(cast)), "\n") {
		var e [3]any
		if i > 0 && json.Unmarshal([]byte(l), &e) == nil && e[1] == "o" {
			s, _ := e[2].(string)
			b.WriteString(s)
		}
	}
	return b.String()
}
