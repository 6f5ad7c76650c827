package controlws

import (
	"math"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestSSHSessionsValidate(t *testing.T) {
	ok := SSHLogin{Remote: netip.MustParseAddrPort("100.64.0.9:51000"), LocalUser: "root", Started: time.Now(), Sessions: 1}
	many := make([]SSHLogin, MaxSSHSessions+1)
	for i := range many {
		many[i] = ok
	}
	if err := (&SSHSessions{Logins: many[:MaxSSHSessions]}).Validate(); err != nil {
		t.Errorf("a report at the limit: %v", err)
	}
	direct := ok
	direct.Path = &LoginPath{Direct: netip.MustParseAddrPort("192.0.2.7:41641"), RegionCode: "tsc", RTTMillis: 0.4}
	if err := (&SSHSessions{Logins: []SSHLogin{direct}}).Validate(); err != nil {
		t.Errorf("a login with a direct path: %v", err)
	}
	mod := func(f func(*SSHLogin)) []SSHLogin { l := ok; f(&l); return []SSHLogin{ok, l} }
	for _, c := range []struct {
		logins []SSHLogin
		want   string
	}{
		{many, "257 logins, over the limit of 256"},
		{mod(func(l *SSHLogin) { l.Remote = netip.AddrPort{} }), "logins[1]: remote"},
		{mod(func(l *SSHLogin) { l.LocalUser = "root\x1b[2J" }), "logins[1]: localUser"},
		{mod(func(l *SSHLogin) { l.LocalUser = strings.Repeat("a", 65) }), "logins[1]: localUser"},
		{mod(func(l *SSHLogin) { l.BytesIn = -1 }), "logins[1]: negative"},
		{mod(func(l *SSHLogin) { l.Path = &LoginPath{Direct: netip.MustParseAddrPort("0.0.0.0:41641")} }), "logins[1]: path: direct"},
		{mod(func(l *SSHLogin) { l.Path = &LoginPath{RegionCode: "tsc\x1b[2J"} }), "logins[1]: path: regionCode"},
		{mod(func(l *SSHLogin) { l.Path = &LoginPath{RegionCode: strings.Repeat("a", MaxRegionCode+1)} }), "logins[1]: path: regionCode"},
		{mod(func(l *SSHLogin) { l.Path = &LoginPath{RTTMillis: -1} }), "logins[1]: path: rttMs"},
		{mod(func(l *SSHLogin) { l.Path = &LoginPath{RTTMillis: math.NaN()} }), "logins[1]: path: rttMs"},
		{mod(func(l *SSHLogin) { l.Path = &LoginPath{RTTMillis: MaxRTTMillis + 1} }), "logins[1]: path: rttMs"},
	} {
		if err := (&SSHSessions{Logins: c.logins}).Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Validate = %v, want %q", err, c.want)
		}
	}
}

func TestSSHSessionsValidatePeers(t *testing.T) {
	peer := func(i int) PeerPath {
		return PeerPath{Peer: netip.AddrFrom4([4]byte{100, 64, byte(i >> 8), byte(i)}),
			LoginPath: LoginPath{Direct: netip.MustParseAddrPort("192.0.2.7:41641"), RTTMillis: 0.4}}
	}
	many := make([]PeerPath, MaxPeerPaths+1)
	for i := range many {
		many[i] = peer(i + 1)
	}
	if err := (&SSHSessions{Peers: many[:MaxPeerPaths]}).Validate(); err != nil {
		t.Errorf("a report of peers at the limit: %v", err)
	}
	if err := (&SSHSessions{Peers: []PeerPath{{Peer: peer(1).Peer, LoginPath: LoginPath{RegionCode: "tsc"}}}}).Validate(); err != nil {
		t.Errorf("a relayed peer: %v", err)
	}
	mod := func(f func(*PeerPath)) []PeerPath { p := peer(2); f(&p); return []PeerPath{peer(1), p} }
	for _, c := range []struct {
		peers []PeerPath
		want  string
	}{
		{many, "65 peers, over the limit of 64"},
		{mod(func(p *PeerPath) { p.Peer = netip.Addr{} }), "peers[1]: peer is not an overlay address"},
		{mod(func(p *PeerPath) { p.Peer = netip.IPv4Unspecified() }), "peers[1]: peer is not an overlay address"},
		{mod(func(p *PeerPath) { p.Peer = peer(1).Peer }), "peers[1]: peer 100.64.0.1 listed twice"},
		{mod(func(p *PeerPath) { p.Direct = netip.MustParseAddrPort("192.0.2.7:0") }), "peers[1]: path: direct"},
		{mod(func(p *PeerPath) { p.RegionCode = "tsc\x1b[2J" }), "peers[1]: path: regionCode"},
		{mod(func(p *PeerPath) { p.RTTMillis = math.Inf(1) }), "peers[1]: path: rttMs"},
	} {
		if err := (&SSHSessions{Peers: c.peers}).Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Validate = %v, want %q", err, c.want)
		}
	}
}
