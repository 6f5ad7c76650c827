package controlws

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"tsconnect/policy/rules"
)

func pfx(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

// TestFilterDelta: a filter delta adds and removes a rule's sources in place of sending the
// filter again, keeping their order, and leaves the map it came from untouched; a delta
// that does not fit the map is refused naming why.
func TestFilterDelta(t *testing.T) {
	f := rules.Filter{
		{Src: pfx("100.64.0.1/32", "100.64.0.3/32", "fd7a::1/128"), Dst: pfx("100.64.0.9/32"), Ports: []rules.PortRange{rules.AllPorts}},
		{Src: pfx("0.0.0.0/0"), Dst: pfx("100.64.0.9/32"), Ports: []rules.PortRange{{First: 22, Last: 22}}},
	}
	nm := &NetworkMap{PacketFilter: &f}
	r := &MapResponse{FilterDelta: []SrcDelta{{Rule: 0, Add: pfx("100.64.0.2/32", "fd7a::2/128"), Remove: pfx("100.64.0.3/32")}}}
	if err := nm.CheckDelta(r); err != nil {
		t.Fatal(err)
	}
	before := slices.Clone(f[0].Src)
	got := *nm
	got.Apply(r)
	if want := pfx("100.64.0.1/32", "100.64.0.2/32", "fd7a::1/128", "fd7a::2/128"); !slices.Equal((*got.PacketFilter)[0].Src, want) {
		t.Fatalf("sources after the delta %v, want %v", (*got.PacketFilter)[0].Src, want)
	}
	if !slices.Equal(f[0].Src, before) || got.PacketFilter == nm.PacketFilter || !slices.Equal((*got.PacketFilter)[1].Src, f[1].Src) {
		t.Fatal("the delta wrote into the map it was applied to, or changed another rule")
	}
	for _, tc := range []struct {
		name string
		r    MapResponse
		nm   *NetworkMap
		want string
	}{
		{"with rules", MapResponse{Rules: &MapRules{}, FilterDelta: []SrcDelta{{Rule: 0}}}, nm, "both rules and a filter delta"},
		{"no filter", MapResponse{FilterDelta: []SrcDelta{{Rule: 0}}}, &NetworkMap{}, "without a packet filter"},
		{"rule out of range", MapResponse{FilterDelta: []SrcDelta{{Rule: 2, Add: pfx("100.64.0.2/32")}}}, nm, "rule 2 of a 2-rule filter"},
		{"rules out of order", MapResponse{FilterDelta: []SrcDelta{{Rule: 1}, {Rule: 0}}}, nm, "rule 0 of a 2-rule filter (after rule 1)"},
		{"unsorted", MapResponse{FilterDelta: []SrcDelta{{Rule: 0, Add: pfx("100.64.0.5/32", "100.64.0.4/32")}}}, nm, "added sources out of order"},
		{"invalid", MapResponse{FilterDelta: []SrcDelta{{Rule: 0, Add: []netip.Prefix{{}}}}}, nm, "an invalid added source"},
		{"remove unlisted", MapResponse{FilterDelta: []SrcDelta{{Rule: 0, Remove: pfx("100.64.0.2/32")}}}, nm, "removing 100.64.0.2/32, which it does not list"},
		{"add listed", MapResponse{FilterDelta: []SrcDelta{{Rule: 0, Add: pfx("100.64.0.1/32")}}}, nm, "adding 100.64.0.1/32, which it lists already"},
		{"empty rule", MapResponse{FilterDelta: []SrcDelta{{Rule: 1, Remove: pfx("0.0.0.0/0")}}}, nm, "leaves rule 1 without sources"},
		{"too big", MapResponse{FilterDelta: []SrcDelta{{Rule: 0, Add: make([]netip.Prefix, MaxFilterDeltaPrefixes+1)}}}, nm, "over 65536 prefixes"},
	} {
		if err := tc.nm.CheckDelta(&tc.r); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %q", tc.name, err, tc.want)
		}
	}
}
