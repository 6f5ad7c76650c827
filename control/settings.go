package control

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net/netip"
	"strconv"

	"tsconnect/control/store"
	"tsconnect/key"
)

// Names of the network-wide settings kept in the store.
const (
	settingServerKey  = "server_private_key" // Noise static key, hex
	settingDERPKey    = "derp_private_key"   // embedded relay's key, hex
	settingULA        = "ula_prefix"         // the network's IPv6 /48
	settingIPv4Cursor = "ipv4_cursor"        // offset of the last IPv4 address handed out
	settingKeyExpiry  = "node_key_expiry"    // node-key lifetime in nanoseconds; unset: DefaultNodeKeyExpiry (keyexpiry.go)
)

// loadOrCreateKey returns the private key stored under name, generating it the first time.
func loadOrCreateKey(tx store.Tx, name string) (key.Private, error) {
	v, err := tx.Setting(name)
	if errors.Is(err, store.ErrNotFound) {
		k := key.NewPrivate()
		txt, _ := k.MarshalText()
		return k, tx.SetSetting(name, string(txt))
	}
	if err != nil {
		return key.Private{}, err
	}
	k, err := key.ParsePrivate(v)
	if err != nil {
		return key.Private{}, fmt.Errorf("setting %s: %w", name, err)
	}
	return k, nil
}

// loadOrCreateULA returns the network's IPv6 /48, generating a random one in fd00::/8 the first time.
func loadOrCreateULA(tx store.Tx) (netip.Prefix, error) {
	v, err := tx.Setting(settingULA)
	if errors.Is(err, store.ErrNotFound) {
		var a [16]byte
		a[0] = 0xfd
		if _, err := rand.Read(a[1:6]); err != nil {
			return netip.Prefix{}, err
		}
		p := netip.PrefixFrom(netip.AddrFrom16(a), 48)
		return p, tx.SetSetting(settingULA, p.String())
	}
	if err != nil {
		return netip.Prefix{}, err
	}
	p, err := netip.ParsePrefix(v)
	if err != nil || p.Bits() != 48 || !p.Addr().Is6() {
		return netip.Prefix{}, fmt.Errorf("setting %s: %q is not an IPv6 /48", settingULA, v)
	}
	return p, nil
}

// ipv4Cursor returns the offset of the last IPv4 address handed out (0 before the first).
func ipv4Cursor(tx store.Tx) (uint32, error) {
	v, err := tx.Setting(settingIPv4Cursor)
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("setting %s: %q: %w", settingIPv4Cursor, v, err)
	}
	return uint32(n), nil
}
