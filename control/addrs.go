package control

import (
	"errors"
	"net/netip"
	"strconv"

	"tsconnect/control/store"
)

// The IPv4 overlay range, 100.64.0.0/10 (shared address space, RFC 6598).
var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// ipv4Size is the number of addresses in cgnat.
const ipv4Size = 1 << (32 - 10)

var errAddrsExhausted = errors.New("no free overlay address left in 100.64.0.0/10")

// ipv4At returns the address at offset off of 100.64.0.0/10.
func ipv4At(off uint32) netip.Addr {
	b := cgnat.Addr().As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v += off
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// usableOffset reports whether the address at off may be handed out: not the first or last
// of the range, no .0 or .255 (they confuse people and some tools), and nothing in
// 100.100.100.0/24, kept free for service addresses.
func usableOffset(off uint32) bool {
	if off == 0 || off >= ipv4Size-1 {
		return false
	}
	a := ipv4At(off).As4()
	if a[3] == 0 || a[3] == 255 {
		return false
	}
	return !(a[0] == 100 && a[1] == 100 && a[2] == 100)
}

// ipv6For maps an IPv4 overlay address into the network's ULA /48: the low 32 bits carry
// the IPv4 address, so the pair is easy to recognise and unique together.
func ipv6For(ula netip.Prefix, v4 netip.Addr) netip.Addr {
	a := ula.Addr().As16()
	b := v4.As4()
	copy(a[12:], b[:])
	return netip.AddrFrom16(a)
}

// allocAddrs hands out the next free address pair after the persisted cursor and advances
// it. Addresses of deleted nodes come back only after the cursor wraps around the whole
// range. inUse is a fast pre-check (the server's cache); the store has the last word.
func (s *Server) allocAddrs(tx store.Tx, inUse func(netip.Addr) bool) (v4, v6 netip.Addr, err error) {
	cur, err := ipv4Cursor(tx)
	if err != nil {
		return v4, v6, err
	}
	off := cur
	for range ipv4Size {
		off++
		if off >= ipv4Size {
			off = 1
		}
		if !usableOffset(off) {
			continue
		}
		a := ipv4At(off)
		if inUse(a) {
			continue
		}
		used, err := tx.AddrInUse(a)
		if err != nil {
			return v4, v6, err
		}
		if used {
			continue
		}
		if err := tx.SetSetting(settingIPv4Cursor, strconv.FormatUint(uint64(off), 10)); err != nil {
			return v4, v6, err
		}
		return a, ipv6For(s.ula, a), nil
	}
	return v4, v6, errAddrsExhausted
}
