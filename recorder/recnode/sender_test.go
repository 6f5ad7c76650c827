package recnode

import (
	"net/netip"
	"strings"
	"testing"

	"tsconnect/controlws"
)

// TestCheckSender: a listed sender passes; an unlisted one, any sender under a control
// older than version 5 (whose maps carry no recordFrom), and a list past its bound are
// refused, each saying why.
func TestCheckSender(t *testing.T) {
	a, b := netip.MustParseAddr("100.64.0.2"), netip.MustParseAddr("100.64.0.3")
	nm := &controlws.NetworkMap{RecordFrom: []netip.Addr{a, netip.MustParseAddr("fd7a::2")}}
	if err := checkSender(nm, controlws.VersionRecording, a, "web"); err != nil {
		t.Errorf("a listed sender: %v", err)
	}
	for _, c := range []struct {
		name    string
		nm      *controlws.NetworkMap
		version int
		addr    netip.Addr
		says    string
	}{
		{"unlisted", nm, controlws.VersionRecording, b, "no ssh rule of node n names this recorder"},
		{"old control", nm, controlws.VersionRecording - 1, a, "speaks protocol version 4, which does not tell a recorder"},
		{"no map stream yet", nm, 0, a, "upgrade control"},
		{"over-long list", &controlws.NetworkMap{RecordFrom: make([]netip.Addr, 1<<17+1)}, controlws.VersionRecording, a, "over the limit"},
	} {
		if err := checkSender(c.nm, c.version, c.addr, "n"); err == nil || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: %v; want a refusal saying %q", c.name, err, c.says)
		}
	}
}
