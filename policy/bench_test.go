package policy

import (
	"fmt"
	"net/netip"
	"testing"
)

// BenchmarkCompile10k compiles one destination's rules in a network of
// 10,000 nodes (control does this for every node a change concerns).
func BenchmarkCompile10k(b *testing.B) {
	p, err := Parse("bench.hujson", []byte(conformancePolicies["main"]))
	if err != nil {
		b.Fatal(err)
	}
	nw := &Network{}
	users := []string{"alice@example.com", "bob@example.com", "carol@other.org"}
	for i := range 10000 {
		n := Node{ID: int64(i), Name: fmt.Sprint("n", i),
			Addresses: []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{100, 64 + byte(i>>16), byte(i >> 8), byte(i)}), 32)}}
		if i%10 == 0 {
			n.Tags = []string{"tag:prod"}
		} else {
			n.User = users[i%3]
		}
		nw.Nodes = append(nw.Nodes, n)
	}
	dst := nw.Nodes[10]
	b.ResetTimer()
	for b.Loop() {
		r := p.Compile(nw, dst)
		if len(r.SSH) == 0 {
			b.Fatal("no rules")
		}
	}
}
