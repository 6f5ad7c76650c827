package policy

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
)

// TestUpdateMatchesNewCompiler: a compiler brought up to date change by change (joins,
// retags, owner and group changes, removals) compiles for every node exactly what a new
// compiler of the same network does, and names every other node whose rules changed.
func TestUpdateMatchesNewCompiler(t *testing.T) {
	p, err := Parse("update.hujson", []byte(`{
		"groups": {"group:ops": ["ada@example.com", "idpgroup:ops"]},
		"hosts": {"lab": "100.64.0.0/30"},
		"tagOwners": {"tag:db": ["ada@example.com"], "tag:web": ["ada@example.com"], "tag:rec": []},
		"acls": [
			{"action": "accept", "src": ["group:ops"], "dst": ["tag:db:5432"]},
			{"action": "accept", "src": ["tag:web", "100.64.0.7", "lab"], "dst": ["tag:db:5432"]},
			{"action": "accept", "src": ["autogroup:member"], "dst": ["autogroup:self:*"]},
			{"action": "accept", "src": ["*"], "dst": ["tag:web:443"]},
			{"action": "accept", "src": ["tag:db"], "dst": ["autogroup:member:22"]},
			{"action": "accept", "src": ["group:ops", "*"], "dst": ["autogroup:self:80"]},
		],
		"ssh": [{"action": "accept", "src": ["autogroup:member"], "dst": ["autogroup:self"], "users": ["root"]},
			{"action": "accept", "src": ["group:ops"], "dst": ["tag:db"], "users": ["postgres"]},
			{"action": "accept", "src": ["autogroup:member"], "dst": ["autogroup:self", "tag:web"], "users": ["ops"],
			 "recorder": ["tag:rec", "lab"], "enforceRecorder": true}],
	}`))
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	users := []string{"ada@example.com", "bob@example.com", "cy@example.com"}
	tags := [][]string{nil, nil, {"tag:db"}, {"tag:web"}, {"tag:db", "tag:web"}, {"tag:rec"}}
	view := func(id int64) Node {
		n := Node{ID: id, Name: fmt.Sprint("n", id), Tags: tags[rng.IntN(len(tags))],
			Addresses: []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{100, 64, 0, byte(id)}), 32),
				netip.PrefixFrom(netip.AddrFrom16([16]byte{0xfd, 0x7a, 15: byte(id)}), 128)}}
		if len(n.Tags) == 0 {
			n.User = users[rng.IntN(len(users))]
			if rng.IntN(3) == 0 {
				n.UserGroups = []string{"ops"}
			}
		}
		return n
	}
	var nodes []Node
	c := p.NewCompiler(&Network{})
	compileAll := func(comp *Compiler) map[int64]string {
		out := map[int64]string{}
		for _, d := range nodes {
			b, _ := json.Marshal(comp.Compile(d))
			out[d.ID] = string(b)
		}
		return out
	}
	before := compileAll(c)
	for step := range 300 {
		var gone, now []Node
		for range 1 + rng.IntN(3) {
			id := int64(1 + rng.IntN(40))
			if slices.ContainsFunc(gone, func(n Node) bool { return n.ID == id }) ||
				slices.ContainsFunc(now, func(n Node) bool { return n.ID == id }) {
				continue
			}
			i := slices.IndexFunc(nodes, func(n Node) bool { return n.ID == id })
			if i >= 0 {
				gone = append(gone, nodes[i])
				nodes = slices.Delete(nodes, i, i+1)
			}
			if i < 0 || rng.IntN(4) != 0 { // joins, changes; a quarter of known nodes leave
				n := view(id)
				now = append(now, n)
				j, _ := slices.BinarySearchFunc(nodes, id, func(x Node, id int64) int { return int(x.ID - id) })
				nodes = slices.Insert(nodes, j, n)
			}
		}
		affected := c.Update(gone, now)
		got, want := compileAll(c), compileAll(p.NewCompiler(&Network{Nodes: nodes}))
		for _, d := range nodes {
			if got[d.ID] != want[d.ID] {
				t.Fatalf("step %d: node %d compiled after Update\n%s\nwant\n%s", step, d.ID, got[d.ID], want[d.ID])
			}
			changedSelf := slices.ContainsFunc(gone, func(n Node) bool { return n.ID == d.ID }) ||
				slices.ContainsFunc(now, func(n Node) bool { return n.ID == d.ID })
			if b, ok := before[d.ID]; ok && b != got[d.ID] && !changedSelf && !slices.Contains(affected, d.ID) {
				t.Fatalf("step %d: node %d's rules changed but Update did not name it (named %v)", step, d.ID, affected)
			}
		}
		before = got
	}
}
