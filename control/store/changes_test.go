package store

import (
	"slices"
	"strings"
	"testing"
)

// TestChangesRoundTrip: announcements decode to what was encoded; too many changes, or
// ChangeAll among them, become ChangeAll alone.
func TestChangesRoundTrip(t *testing.T) {
	cs := []Change{{ChangeNode, 12}, {ChangeUser, 3}, {ChangePolicy, 0}, {ChangeKeys, 0}, {ChangeCheck, 7}, {ChangeMesh, 0}, {ChangeOnline, 9}, {ChangeGone, 9}}
	origin, got, err := DecodeChanges(EncodeChanges("r1", cs))
	if err != nil || origin != "r1" || !slices.Equal(got, cs) {
		t.Fatalf("round trip: %q %v %v; want r1 %v", origin, got, err, cs)
	}
	many := make([]Change, MaxChanges+1)
	for i := range many {
		many[i] = Change{ChangeNode, int64(i)}
	}
	all := []Change{{Kind: ChangeAll}}
	for _, in := range [][]Change{many, append(cs, Change{Kind: ChangeAll})} {
		if _, got, err := DecodeChanges(EncodeChanges("r1", in)); err != nil || !slices.Equal(got, all) {
			t.Fatalf("%d changes: %v %v; want ChangeAll alone", len(in), got, err)
		}
	}
	if p := EncodeChanges(strings.Repeat("o", MaxOrigin), many[:MaxChanges]); len(p) >= 8000 {
		t.Fatalf("largest payload is %d bytes; PostgreSQL takes under 8000", len(p))
	}
}

// TestDecodeChangesRefuses: malformed or oversized announcements are refused with the
// problem named.
func TestDecodeChangesRefuses(t *testing.T) {
	for payload, want := range map[string]string{
		"no origin":                              "origin",
		";n1":                                    "origin",
		strings.Repeat("o", MaxOrigin+1) + ";n1": "origin",
		"r;q1":                                   "unknown kind",
		"r;n":                                    "bad ID",
		"r;n-4":                                  "bad ID",
		"r;n1,,n2":                               "empty change",
		"r;" + strings.Repeat("n1,", MaxChanges) + "n1": "changes, over",
	} {
		if _, _, err := DecodeChanges(payload); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("DecodeChanges(%.40q) = %v; want an error saying %q", payload, err, want)
		}
	}
}
