package control

import (
	"context"
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

// addrBlockSize is how many IPv4 offsets a replica reserves from the shared cursor at once.
// Registrations hand addresses out of their replica's block without touching the cursor's
// row, which every registration updating under SERIALIZABLE made a hot row: replicas'
// registrations conflicted on it and each paid three more statements.
const addrBlockSize = 256

// addrBlock is the range of IPv4 offsets a replica reserved and hands out in order: next
// to end, inclusive. Guarded by writeMu.
type addrBlock struct{ next, end uint32 }

// errAddrBlockUsed asks registerAs to reserve a new block (outside its transaction) and run
// the registration again.
var errAddrBlockUsed = errors.New("control: this replica's block of addresses is used up")

// reserveAddrBlock reserves the addrBlockSize offsets after the persisted cursor, in a
// transaction of its own, and advances the cursor past them; after the end of the range it
// wraps to the start. Addresses of deleted nodes come back only after the cursor wraps.
// Callers hold writeMu.
func (s *Server) reserveAddrBlock(ctx context.Context) error {
	var blk addrBlock
	err := s.st.Update(ctx, func(tx store.Tx) error {
		cur, err := ipv4Cursor(tx)
		if err != nil {
			return err
		}
		if cur >= ipv4Size-2 {
			cur = 0
		}
		blk = addrBlock{next: cur + 1, end: min(cur+addrBlockSize, ipv4Size-1)}
		return tx.SetSetting(settingIPv4Cursor, strconv.FormatUint(uint64(blk.end), 10))
	})
	if err != nil {
		return err
	}
	s.addrs4 = blk
	return nil
}

// nextAddrs hands out the next address pair of the replica's block that is usable and not
// in use by inUse (the server's cache of live nodes; the store's unique index has the last
// word). It returns errAddrBlockUsed when the block is used up. Callers hold writeMu.
func (s *Server) nextAddrs(inUse func(netip.Addr) bool) (v4, v6 netip.Addr, err error) {
	b := &s.addrs4
	for ; b.next != 0 && b.next <= b.end; b.next++ {
		if !usableOffset(b.next) {
			continue
		}
		a := ipv4At(b.next)
		if inUse(a) {
			continue
		}
		b.next++
		return a, ipv6For(s.ula, a), nil
	}
	return v4, v6, errAddrBlockUsed
}
