package controlws

import (
	"fmt"
	"net/netip"
	"slices"

	"tsconnect/policy/rules"
)

// AddrDelta changes a recorder's NetworkMap.RecordFrom (MapResponse.RecordFromDelta, version
// VersionRecordFromDelta on): the list without Remove and with Add. All three lists are
// sorted and free of repeats, so the changed list is what a full map would carry. A node
// joining that an ssh rule naming the recorder applies to sends the recorder its
// addresses, not the whole list of every node it records for.
type AddrDelta struct {
	Add    []netip.Addr `json:"add,omitempty"`
	Remove []netip.Addr `json:"remove,omitempty"`
}

// checkRecordFromDelta reports why r's RecordFromDelta cannot be applied to nm: with rules
// (which replace RecordFrom), empty, with a malformed, unsorted or repeated address,
// removing an address RecordFrom does not list, adding one it lists, or leaving it longer
// than rules.MaxRecordFrom. A delta without RecordFromDelta passes.
func (nm *NetworkMap) checkRecordFromDelta(r *MapResponse) error {
	d := r.RecordFromDelta
	if d == nil {
		return nil
	}
	if r.Rules != nil {
		return fmt.Errorf("controlws: a map delta with both rules and a recordFrom delta")
	}
	if len(d.Add)+len(d.Remove) == 0 {
		return fmt.Errorf("controlws: an empty recordFrom delta")
	}
	if len(d.Add) > rules.MaxRecordFrom || len(d.Remove) > len(nm.RecordFrom) {
		return fmt.Errorf("controlws: a recordFrom delta adding %d and removing %d of %d addresses", len(d.Add), len(d.Remove), len(nm.RecordFrom))
	}
	for what, l := range map[string][]netip.Addr{"added": d.Add, "removed": d.Remove} {
		for i, a := range l {
			if !a.IsValid() || a.Zone() != "" || a.Is4In6() {
				return fmt.Errorf("controlws: recordFrom delta: an invalid %s address", what)
			}
			if i > 0 && l[i-1].Compare(a) >= 0 {
				return fmt.Errorf("controlws: recordFrom delta: %s addresses out of order at %s", what, a)
			}
		}
	}
	for _, a := range d.Remove {
		if _, ok := slices.BinarySearchFunc(nm.RecordFrom, a, netip.Addr.Compare); !ok {
			return fmt.Errorf("controlws: recordFrom delta: removing %s, which it does not list", a)
		}
	}
	for _, a := range d.Add {
		if _, ok := slices.BinarySearchFunc(nm.RecordFrom, a, netip.Addr.Compare); ok {
			return fmt.Errorf("controlws: recordFrom delta: adding %s, which it lists already", a)
		}
	}
	if n := len(nm.RecordFrom) - len(d.Remove) + len(d.Add); n > rules.MaxRecordFrom {
		return fmt.Errorf("controlws: a recordFrom delta leaves %d addresses, over the limit of %d", n, rules.MaxRecordFrom)
	}
	return nil
}

// applyRecordFromDelta is l with d applied (checked by CheckDelta), as a new slice.
func applyRecordFromDelta(l []netip.Addr, d *AddrDelta) []netip.Addr {
	return mergeSorted(l, d.Remove, d.Add, netip.Addr.Compare)
}
