package controlws

import (
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
	} {
		if err := (&SSHSessions{Logins: c.logins}).Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Validate = %v, want %q", err, c.want)
		}
	}
}
