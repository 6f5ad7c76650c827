package controlws

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func addrs(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

// TestRecordFromDelta: a recordFrom delta adds and removes a recorder's addresses in place
// of sending the list again, keeping its order, and leaves the map it came from untouched; a
// delta that does not fit the map is refused naming why.
func TestRecordFromDelta(t *testing.T) {
	nm := &NetworkMap{RecordFrom: addrs("100.64.0.1", "100.64.0.3", "fd7a::1")}
	before := slices.Clone(nm.RecordFrom)
	r := &MapResponse{RecordFromDelta: &AddrDelta{Add: addrs("100.64.0.2", "fd7a::2"), Remove: addrs("100.64.0.3")}}
	if err := nm.CheckDelta(r); err != nil {
		t.Fatal(err)
	}
	got := *nm
	got.Apply(r)
	if want := addrs("100.64.0.1", "100.64.0.2", "fd7a::1", "fd7a::2"); !slices.Equal(got.RecordFrom, want) {
		t.Fatalf("recordFrom after the delta %v, want %v", got.RecordFrom, want)
	}
	if !slices.Equal(nm.RecordFrom, before) {
		t.Fatal("the delta wrote into the map it was applied to")
	}
	// Down to none and back.
	empty := &NetworkMap{}
	r = &MapResponse{RecordFromDelta: &AddrDelta{Add: addrs("100.64.0.5")}}
	if err := empty.CheckDelta(r); err != nil {
		t.Fatal(err)
	}
	if empty.Apply(r); !slices.Equal(empty.RecordFrom, addrs("100.64.0.5")) {
		t.Fatalf("recordFrom from none: %v", empty.RecordFrom)
	}
	for _, c := range []struct {
		name string
		d    AddrDelta
		also bool // with Rules
		says string
	}{
		{"with rules", AddrDelta{Add: addrs("100.64.0.2")}, true, "both rules and a recordFrom delta"},
		{"empty", AddrDelta{}, false, "an empty recordFrom delta"},
		{"invalid", AddrDelta{Add: []netip.Addr{{}}}, false, "an invalid added address"},
		{"zoned", AddrDelta{Add: addrs("fe80::1%eth0")}, false, "an invalid added address"},
		{"mapped", AddrDelta{Add: addrs("::ffff:100.64.0.2")}, false, "an invalid added address"},
		{"unsorted", AddrDelta{Add: addrs("100.64.0.4", "100.64.0.2")}, false, "added addresses out of order at 100.64.0.2"},
		{"repeated", AddrDelta{Remove: addrs("100.64.0.1", "100.64.0.1")}, false, "removed addresses out of order"},
		{"removing unlisted", AddrDelta{Remove: addrs("100.64.0.2")}, false, "removing 100.64.0.2, which it does not list"},
		{"adding listed", AddrDelta{Add: addrs("100.64.0.1")}, false, "adding 100.64.0.1, which it lists already"},
		{"removing more than listed", AddrDelta{Remove: addrs("100.64.0.1", "100.64.0.2", "100.64.0.3", "100.64.0.4")}, false, "removing 4 of 3"},
	} {
		r := &MapResponse{RecordFromDelta: &c.d}
		if c.also {
			r.Rules = &MapRules{}
		}
		if err := nm.CheckDelta(r); err == nil || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: %v; want a refusal saying %q", c.name, err, c.says)
		}
	}
	// Past rules.MaxRecordFrom in all.
	big := &NetworkMap{RecordFrom: make([]netip.Addr, 1<<17)}
	for i := range big.RecordFrom {
		big.RecordFrom[i] = netip.AddrFrom4([4]byte{100, 64, byte(i >> 8), byte(i)})
	}
	big.RecordFrom = big.RecordFrom[:1<<16] // 100.64.0.0 to 100.64.255.255, sorted
	many := make([]netip.Addr, 1<<16+1)
	for i := range many {
		many[i] = netip.AddrFrom4([4]byte{100, 65 + byte(i>>16), byte(i >> 8), byte(i)})
	}
	if err := big.CheckDelta(&MapResponse{RecordFromDelta: &AddrDelta{Add: many}}); err == nil || !strings.Contains(err.Error(), "over the limit of 131072") {
		t.Errorf("a delta past the bound: %v", err)
	}
}
