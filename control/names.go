package control

import (
	"strconv"
	"strings"

	"tsconnect/control/store"
)

// maxLabel is the longest DNS label.
const maxLabel = 63

// sanitizeHostname turns a reported hostname into a DNS label: the first dot-separated
// part, lower case, runs of anything but [a-z0-9] become one '-', no leading or trailing
// '-', at most 63 bytes. An empty result becomes "node".
func sanitizeHostname(h string) string {
	h, _, _ = strings.Cut(strings.TrimSpace(h), ".")
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(h) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(r)
		} else {
			dash = true
		}
		if b.Len() >= maxLabel {
			break
		}
	}
	out := strings.TrimRight(b.String()[:min(b.Len(), maxLabel)], "-")
	if out == "" {
		return "node"
	}
	return out
}

// uniqueName returns base, or base-1, base-2, … : the first not used by a live node.
// taken is a fast pre-check (the server's cache); the store has the last word, unless tx is
// nil (the caller's insert is refused by the unique index instead).
func uniqueName(tx store.Tx, base string, taken func(string) bool) (string, error) {
	for i := 0; ; i++ {
		name := base
		if i > 0 {
			suffix := "-" + strconv.Itoa(i)
			name = strings.TrimRight(base[:min(len(base), maxLabel-len(suffix))], "-") + suffix
		}
		if taken(name) {
			continue
		}
		if tx == nil {
			return name, nil
		}
		used, err := tx.NameInUse(name)
		if err != nil {
			return "", err
		}
		if !used {
			return name, nil
		}
	}
}
