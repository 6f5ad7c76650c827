package control

import "testing"

// TestNodeTableCopyOnWrite: a table made from another by next shares its entries, and
// writing it (in a shared chunk, a new chunk, a removal) leaves the older table as it was.
func TestNodeTableCopyOnWrite(t *testing.T) {
	a := nodeTable{owner: 1}
	e1, e2, e3 := &compiledNode{key: 1}, &compiledNode{key: 2}, &compiledNode{key: 3}
	a.put(5, e1)
	a.put(300, e2)
	b := a.next(2)
	b.put(5, e3)
	b.put(1000, e3)
	b.put(300, nil)
	if a.get(5) != e1 || a.get(300) != e2 || a.get(1000) != nil || a.n != 2 {
		t.Fatalf("the older table changed: %v %v %v, %d entries", a.get(5), a.get(300), a.get(1000), a.n)
	}
	if b.get(5) != e3 || b.get(300) != nil || b.get(1000) != e3 || b.n != 2 {
		t.Fatalf("the newer table: %v %v %v, %d entries", b.get(5), b.get(300), b.get(1000), b.n)
	}
	var ids []int64
	b.each(func(id int64, _ *compiledNode) { ids = append(ids, id) })
	if len(ids) != 2 || ids[0] != 5 || ids[1] != 1000 {
		t.Fatalf("each visited %v, want [5 1000]", ids)
	}
}
