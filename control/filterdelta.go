package control

import (
	"net/netip"
	"reflect"
	"slices"

	"tsconnect/controlws"
	"tsconnect/policy/rules"
)

// srcDiff is how a node's filter changed when only its rules' sources did: the sources
// each changed rule gained and lost.
type srcDiff struct {
	ds    []controlws.SrcDelta
	size  int  // prefixes in ds
	whole int  // sources of the changed rules now
	ssh   bool // the SSH rules changed too
	// recordFrom is how the recorder's RecordFrom changed (nil: it did not), and
	// recordFromWhole its length now.
	recordFrom      *controlws.AddrDelta
	recordFromWhole int
	// narrow says no changed rule's sources hold a wide prefix, so the addresses in ds are
	// every address that entered or left the filter's rules.
	narrow bool
}

// diffSources compares node rules old (whose rules' source sets were oldAcc) with now;
// ok is false when a rule came, went or changed otherwise than in its sources. Rules
// whose set is the same (equal lists share one set) are not compared at all.
func diffSources(old *rules.NodeRules, oldAcc []*srcSet, now *rules.NodeRules, nowAcc []*srcSet) (d srcDiff, ok bool) {
	if old == nil || now == nil || len(old.Filter) != len(now.Filter) || len(oldAcc) != len(old.Filter) || len(nowAcc) != len(now.Filter) {
		return d, false
	}
	d.narrow = true
	for i, a := range old.Filter {
		b := now.Filter[i]
		if !slices.Equal(a.Dst, b.Dst) || !slices.Equal(a.Ports, b.Ports) || !slices.Equal(a.Protos, b.Protos) || a.Origin != b.Origin {
			return srcDiff{}, false
		}
		if oldAcc[i] == nowAcc[i] {
			continue
		}
		if len(oldAcc[i].wide) > 0 || len(nowAcc[i].wide) > 0 {
			d.narrow = false
		}
		sd := controlws.SrcDelta{Rule: i}
		sd.Remove, sd.Add = sortedDiff(a.Src, b.Src, rules.ComparePrefixes)
		if len(sd.Remove)+len(sd.Add) == 0 {
			continue
		}
		d.size += len(sd.Remove) + len(sd.Add)
		d.whole += len(b.Src)
		d.ds = append(d.ds, sd)
	}
	d.ssh = !reflect.DeepEqual(old.SSH, now.SSH)
	if rm, add := sortedDiff(old.RecordFrom, now.RecordFrom, netip.Addr.Compare); len(rm)+len(add) > 0 {
		d.recordFrom, d.recordFromWhole = &controlws.AddrDelta{Add: add, Remove: rm}, len(now.RecordFrom)
	}
	return d, true
}

// sendable reports whether d may go as deltas (MapResponse.FilterDelta and
// RecordFromDelta) to a client that applies filter deltas, and recordFrom deltas when
// recordFrom is set: the SSH rules did not change, something else did, and each changed
// list's delta is smaller than the list and within its bound (controlws.MaxFilterDeltaPrefixes,
// rules.MaxRecordFrom).
func (d srcDiff) sendable(recordFrom bool) bool {
	switch {
	case d.ssh || d.ds == nil && d.recordFrom == nil:
		return false
	case d.ds != nil && (d.size >= d.whole || d.size > controlws.MaxFilterDeltaPrefixes):
		return false
	case d.recordFrom != nil && (!recordFrom || len(d.recordFrom.Add)+len(d.recordFrom.Remove) >= max(d.recordFromWhole, 1)):
		return false
	}
	return true
}

// nodesOf lists the live nodes holding an address d adds or removes. Callers hold s.mu (read).
func (s *Server) nodesOf(d srcDiff) []int64 {
	var ids []int64
	for _, sd := range d.ds {
		for _, l := range [][]netip.Prefix{sd.Add, sd.Remove} {
			for _, p := range l {
				if id, ok := s.addrs[p.Addr()]; ok && p.IsSingleIP() {
					ids = append(ids, id)
				}
			}
		}
	}
	return ids
}

// sortedDiff lists what only a holds and what only b holds, of two lists sorted in cmp's
// order (rules.ComparePrefixes for sources, netip.Addr.Compare for RecordFrom).
func sortedDiff[T any](a, b []T, cmp func(x, y T) int) (onlyA, onlyB []T) {
	for len(a) > 0 || len(b) > 0 {
		switch {
		case len(b) == 0 || len(a) > 0 && cmp(a[0], b[0]) < 0:
			onlyA, a = append(onlyA, a[0]), a[1:]
		case len(a) == 0 || cmp(b[0], a[0]) < 0:
			onlyB, b = append(onlyB, b[0]), b[1:]
		default:
			a, b = a[1:], b[1:]
		}
	}
	return onlyA, onlyB
}
