package console

import (
	"crypto/sha256"
	"encoding/json"
	"slices"

	"tsconnect/console/api"
)

// nodeDigests is what one events stream last told its client of each node: a digest of
// the node as the API shows it, by ID (32 bytes a node, not the node).
type nodeDigests map[int64][sha256.Size]byte

// update records ns and returns which nodes changed or were added (Changed) and which
// went away (Removed) since the last update, and how many there are now.
func (d nodeDigests) update(ns []api.Node) (api.NodeChanges, error) {
	ch := api.NodeChanges{Changed: []int64{}, Removed: []int64{}, Total: len(ns)}
	present := make(map[int64]bool, len(ns))
	for _, n := range ns {
		b, err := json.Marshal(n)
		if err != nil {
			return ch, err
		}
		sum := sha256.Sum256(b)
		present[n.ID] = true
		if old, ok := d[n.ID]; !ok || old != sum {
			d[n.ID] = sum
			ch.Changed = append(ch.Changed, n.ID)
		}
	}
	for id := range d {
		if !present[id] {
			delete(d, id)
			ch.Removed = append(ch.Removed, id)
		}
	}
	slices.Sort(ch.Removed)
	return ch, nil
}
