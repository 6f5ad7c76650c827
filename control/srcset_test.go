package control

import (
	"encoding/json"
	"net/netip"
	"testing"
)

// TestSrcSetJSON: a source set's hand-written JSON is what encoding/json writes for its list.
func TestSrcSetJSON(t *testing.T) {
	for _, src := range [][]netip.Prefix{
		{netip.MustParsePrefix("100.64.0.1/32")},
		{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")},
		{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("100.64.0.9/32"), netip.MustParsePrefix("fd7a:115c:a1e0::9/128")},
	} {
		want, _ := json.Marshal(src)
		if got := newSrcSet(src, hashPrefixes(src)).json(); string(got) != string(want) {
			t.Errorf("set of %v encodes as %s, want %s", src, got, want)
		}
	}
}
