package safetext

import (
	"strings"
	"testing"
)

func TestEscape(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"alpha-1.example", "alpha-1.example"},
		{"héllo 世界", "héllo 世界"},
		{"fake\x1b[2K\rpeer", `fake\x1b[2K\x0dpeer`},
		{"nul\x00", `nul\x00`},
		{"back\\slash", `back\\slash`},
		{"bad\xffutf8", `bad\xffutf8`},
		{"del\x7f", `del\x7f`},
		{"c1\u009b31m", `c1\u009b31m`},
		{"bidi\u202egnp.exe", `bidi\u202egnp.exe`},
		{"line\nbreak", `line\x0abreak`},
	} {
		if got := Escape(c.in); got != c.want {
			t.Errorf("Escape(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestBounded(t *testing.T) {
	long := strings.Repeat("<", 3<<20)
	got := Bounded(long, 64)
	if !strings.HasPrefix(got, strings.Repeat("<", 64)+"…(+") || len(got) > 100 {
		t.Fatalf("Bounded(3 MiB) = %q", got)
	}
	if got := Bounded("short", 64); got != "short" {
		t.Fatalf("Bounded(short) = %q", got)
	}
	// A cut never splits a rune.
	got = Bounded(strings.Repeat("é", 100), 5)
	if !strings.HasPrefix(got, "éé…(+") {
		t.Fatalf("Bounded(é…) = %q", got)
	}
}

func FuzzEscape(f *testing.F) {
	f.Add("a\x1b]52;c;aGk=\x07")
	f.Fuzz(func(t *testing.T, s string) {
		e := Bounded(s, 128)
		for i := 0; i < len(e); i++ {
			if c := e[i]; c < 0x20 || c == 0x7f {
				t.Fatalf("control byte %#x in %q", c, e)
			}
		}
		if len(e) > 128*10+32 {
			t.Fatalf("Bounded grew to %d bytes", len(e))
		}
	})
}
