package controlws

import (
	"fmt"
	"net/netip"
	"slices"

	"tsconnect/policy/rules"
)

// SrcDelta changes the sources of one rule of a packet filter (MapResponse.FilterDelta):
// the rule's list without Remove and with Add. All three lists are sorted and free of
// repeats in rules.ComparePrefixes order, the order control compiles them in, so the
// changed list is what a full map would carry. A member joining a network of 10,000 sends
// each server whose filter lists every member two addresses, not the whole list.
type SrcDelta struct {
	Rule   int            `json:"rule"` // index in the filter
	Add    []netip.Prefix `json:"add,omitempty"`
	Remove []netip.Prefix `json:"remove,omitempty"`
}

// MaxFilterDeltaPrefixes bounds the prefixes one map response's FilterDelta may add and
// remove in all; control sends a bigger change as whole rules.
const MaxFilterDeltaPrefixes = 1 << 16

// CheckDelta reports why delta r cannot be applied to nm, naming the problem: a filter
// delta with rules, without a filter to change, past MaxFilterDeltaPrefixes, for a rule
// nm does not have or out of order, with a malformed or unsorted prefix, removing a
// source the rule does not list, adding one it lists, or leaving a rule without sources.
// A client that gets such a delta has lost step with control and must start again from a
// full map. A full map or a delta without FilterDelta and RecordFromDelta always passes;
// checkRecordFromDelta says what RecordFromDelta must be.
func (nm *NetworkMap) CheckDelta(r *MapResponse) error {
	if r.Full != nil {
		return nil
	}
	if err := nm.checkRecordFromDelta(r); err != nil {
		return err
	}
	if r.FilterDelta == nil {
		return nil
	}
	if r.Rules != nil {
		return fmt.Errorf("controlws: a map delta with both rules and a filter delta")
	}
	if nm.PacketFilter == nil {
		return fmt.Errorf("controlws: a filter delta for a node without a packet filter")
	}
	f := *nm.PacketFilter
	n, last := 0, -1
	for _, d := range r.FilterDelta {
		if d.Rule <= last || d.Rule >= len(f) {
			return fmt.Errorf("controlws: a filter delta for rule %d of a %d-rule filter (after rule %d)", d.Rule, len(f), last)
		}
		last = d.Rule
		if n += len(d.Add) + len(d.Remove); n > MaxFilterDeltaPrefixes {
			return fmt.Errorf("controlws: a filter delta of over %d prefixes", MaxFilterDeltaPrefixes)
		}
		src := f[d.Rule].Src
		for what, l := range map[string][]netip.Prefix{"added": d.Add, "removed": d.Remove, "listed": src} {
			for i, p := range l {
				if !p.IsValid() {
					return fmt.Errorf("controlws: filter rule %d: an invalid %s source", d.Rule, what)
				}
				if i > 0 && rules.ComparePrefixes(l[i-1], p) >= 0 {
					return fmt.Errorf("controlws: filter rule %d: %s sources out of order at %s", d.Rule, what, p)
				}
			}
		}
		for _, p := range d.Remove {
			if _, ok := slices.BinarySearchFunc(src, p, rules.ComparePrefixes); !ok {
				return fmt.Errorf("controlws: filter rule %d: removing %s, which it does not list", d.Rule, p)
			}
		}
		for _, p := range d.Add {
			if _, ok := slices.BinarySearchFunc(src, p, rules.ComparePrefixes); ok {
				return fmt.Errorf("controlws: filter rule %d: adding %s, which it lists already", d.Rule, p)
			}
		}
		if len(src)-len(d.Remove)+len(d.Add) == 0 {
			return fmt.Errorf("controlws: a filter delta leaves rule %d without sources", d.Rule)
		}
	}
	return nil
}

// applyFilterDelta is f with ds applied (checked by CheckDelta; a delta for a rule f does
// not have is skipped). f and its lists are not written.
func applyFilterDelta(f rules.Filter, ds []SrcDelta) rules.Filter {
	f = slices.Clone(f)
	for _, d := range ds {
		if d.Rule < 0 || d.Rule >= len(f) {
			continue
		}
		f[d.Rule].Src = mergeSorted(f[d.Rule].Src, d.Remove, d.Add, rules.ComparePrefixes)
	}
	return f
}

// mergeSorted is the list l, sorted in cmp's order, without rm and with add (both sorted
// so), as a new slice: a filter rule's sources after a SrcDelta, a recorder's RecordFrom
// after an AddrDelta.
func mergeSorted[T comparable](l, rm, add []T, cmp func(a, b T) int) []T {
	out := make([]T, 0, len(l)+len(add)-min(len(rm), len(l)))
	for _, p := range l {
		for len(add) > 0 && cmp(add[0], p) < 0 {
			out, add = append(out, add[0]), add[1:]
		}
		for len(rm) > 0 && cmp(rm[0], p) < 0 {
			rm = rm[1:]
		}
		if len(rm) > 0 && rm[0] == p {
			rm = rm[1:]
			continue
		}
		out = append(out, p)
	}
	return append(out, add...)
}
