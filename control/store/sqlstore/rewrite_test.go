package sqlstore

import (
	"fmt"
	"testing"
)

// TestRenderPlaceholders checks PostgreSQL's numbering of ? placeholders, the same from the
// cache as the first time, and that queries past the bound are still rendered.
func TestRenderPlaceholders(t *testing.T) {
	var p placeholderCache
	for range 2 {
		if got, want := p.render(`SELECT a FROM t WHERE b = ? AND c IN (?, ?) AND d = 'é'`), `SELECT a FROM t WHERE b = $1 AND c IN ($2, $3) AND d = 'é'`; got != want {
			t.Fatalf("render = %q, want %q", got, want)
		}
	}
	for i := range maxRewritten + 10 {
		q := fmt.Sprintf("SELECT %d WHERE x = ? OR y = ?", i)
		if got, want := p.render(q), fmt.Sprintf("SELECT %d WHERE x = $1 OR y = $2", i); got != want {
			t.Fatalf("render = %q, want %q", got, want)
		}
	}
	if len(p.done) > maxRewritten {
		t.Fatalf("%d renderings kept, want at most %d", len(p.done), maxRewritten)
	}
}
