package control

import (
	"net/netip"
	"reflect"
	"slices"

	"tsconnect/controlws"
	"tsconnect/policy/rules"
)

// filterDeltaOf is the change from rules old (whose rules' source sets were oldAcc) to now
// as source deltas (controlws.SrcDelta), when only sources changed and the delta is
// smaller than the changed rules' lists: ok is false when a rule came, went or changed
// otherwise, the SSH rules changed, or sending the lists whole costs as little. Lists
// whose set is the same (equal lists share one set) are not compared at all.
func filterDeltaOf(old *rules.NodeRules, oldAcc []*srcSet, now *rules.NodeRules, nowAcc []*srcSet) (ds []controlws.SrcDelta, ok bool) {
	if old == nil || now == nil || len(old.Filter) != len(now.Filter) || len(oldAcc) != len(old.Filter) ||
		len(nowAcc) != len(now.Filter) || !reflect.DeepEqual(old.SSH, now.SSH) {
		return nil, false
	}
	size, whole := 0, 0
	for i, a := range old.Filter {
		b := now.Filter[i]
		if !slices.Equal(a.Dst, b.Dst) || !slices.Equal(a.Ports, b.Ports) || !slices.Equal(a.Protos, b.Protos) || a.Origin != b.Origin {
			return nil, false
		}
		if oldAcc[i] == nowAcc[i] {
			continue
		}
		d := controlws.SrcDelta{Rule: i}
		d.Remove, d.Add = sortedDiff(a.Src, b.Src)
		if len(d.Remove)+len(d.Add) == 0 {
			continue
		}
		size += len(d.Remove) + len(d.Add)
		whole += len(b.Src)
		ds = append(ds, d)
	}
	if size > controlws.MaxFilterDeltaPrefixes || size >= whole {
		return nil, false
	}
	return ds, ds != nil
}

// sortedDiff lists what only a holds and what only b holds, of two lists sorted in
// rules.ComparePrefixes order.
func sortedDiff(a, b []netip.Prefix) (onlyA, onlyB []netip.Prefix) {
	for len(a) > 0 || len(b) > 0 {
		switch {
		case len(b) == 0 || len(a) > 0 && rules.ComparePrefixes(a[0], b[0]) < 0:
			onlyA, a = append(onlyA, a[0]), a[1:]
		case len(a) == 0 || rules.ComparePrefixes(b[0], a[0]) < 0:
			onlyB, b = append(onlyB, b[0]), b[1:]
		default:
			a, b = a[1:], b[1:]
		}
	}
	return onlyA, onlyB
}
