package recorder

import (
	"encoding/json"
	"testing"
)

// FuzzCheckEvent: every line checkEvent accepts is a JSON list of a number, "o", "i" or
// "r", and a string, as encoding/json reads it; and it never panics.
func FuzzCheckEvent(f *testing.F) {
	for _, s := range []string{`[0.5, "o", "a\u001b[0m\n"]`, `[1,"r","80x24"]`, `[1e2, "i", "\ud83d\ude00"]`, `[0, "o", "\"]`, `[01, "o", ""]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		ev, err := checkEvent(line)
		if err != nil {
			return
		}
		var v []any
		if jerr := json.Unmarshal(line, &v); jerr != nil || len(v) != 3 {
			t.Fatalf("accepted %q, which encoding/json reads as %v (%v)", line, v, jerr)
		}
		tm, ok1 := v[0].(float64)
		kind, ok2 := v[1].(string)
		_, ok3 := v[2].(string)
		if !ok1 || !ok2 || !ok3 || tm != ev.time || kind != string(ev.kind) {
			t.Fatalf("accepted %q as %+v; encoding/json reads %v", line, ev, v)
		}
	})
}
