package controlws

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"testing"
	"time"

	"tsconnect/key"
)

// Fuzz targets for the bodies check mode and interactive login added: the requests as
// control decodes them (json.Unmarshal, as its nodeConn does) and the answers as the
// client's SSHCheck and RegisterInteractive decode them (checkAnswer, registerAnswer).

// stableJSON checks that a body decoded from fuzz input encodes again, and that the
// encoding is a fixed point: decoding and encoding it once more gives the same bytes.
func stableJSON[T any](t *testing.T, v *T) {
	t.Helper()
	b1, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("re-encoding an accepted %T: %v", v, err)
	}
	var w T
	if err := json.Unmarshal(b1, &w); err != nil {
		t.Fatalf("decoding a re-encoded %T %s: %v", v, b1, err)
	}
	b2, err := json.Marshal(&w)
	if err != nil || !bytes.Equal(b1, b2) {
		t.Fatalf("%T changed in a round trip: %s became %s (%v)", v, b1, b2, err)
	}
}

// addBodies seeds f with the JSON of each body and a few malformed variants.
func addBodies(f *testing.F, bodies ...any) {
	for _, b := range bodies {
		j, err := json.Marshal(b)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(j)
		f.Add(j[:len(j)/2])
	}
	f.Add([]byte(`null`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"verdict":1}`))
}

func FuzzSSHCheckRequest(f *testing.F) {
	addBodies(f,
		&SSHCheckRequest{SrcNode: 3, SrcAddr: netip.MustParseAddr("100.64.0.3"), User: "root", LocalUser: "root", CheckPeriod: time.Hour},
		&SSHCheckRequest{SrcNode: 4, SrcAddr: netip.MustParseAddr("fd7a:115c:a1e0::4"), User: "alice", LocalUser: "alice", HeldFor: 3 * time.Second},
	)
	f.Add([]byte(`{"srcNode":-1,"srcAddr":"fe80::1%eth0","checkPeriod":-5,"heldFor":9223372036854775807}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var req SSHCheckRequest
		if json.Unmarshal(body, &req) != nil {
			return
		}
		stableJSON(t, &req)
	})
}

func FuzzSSHCheckVerdict(f *testing.F) {
	addBodies(f,
		&SSHCheckVerdict{Verdict: CheckPending, User: "bob@example.com", URL: "https://control.example/check/0123456789abcdef0123456789abcdef",
			Expires: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC), Message: "re-authentication required"},
		&SSHCheckVerdict{Verdict: CheckAccept, User: "bob@example.com", Message: "authenticated at 2026-11-22T09:55:00Z"},
		&SSHCheckVerdict{Verdict: CheckReject, Message: "bob@example.com declined the login"},
	)
	f.Add([]byte(`{"verdict":"pending","expires":"9999-12-31T23:59:59-23:59"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		env := &Envelope{V: Version, Type: TypeSSHCheckVerdict, ID: 7, Body: body}
		v, done, err := checkAnswer(env)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("error without text")
			}
			return
		}
		switch {
		case v.Verdict == CheckPending && done, (v.Verdict == CheckAccept || v.Verdict == CheckReject) && !done:
			t.Fatalf("verdict %q taken as done=%v", v.Verdict, done)
		case v.Verdict != CheckPending && v.Verdict != CheckAccept && v.Verdict != CheckReject:
			t.Fatalf("unknown verdict %q accepted", v.Verdict)
		}
		stableJSON(t, &v)
		// The same body under another type is refused, not misread.
		if _, _, err := checkAnswer(&Envelope{V: Version, Type: TypeLoginURL, ID: 7, Body: body}); err == nil {
			t.Fatal("a loginURL message was taken as a check verdict")
		}
	})
}

func FuzzLoginURL(f *testing.F) {
	addBodies(f,
		&LoginURL{URL: "https://control.example/login/0123456789abcdef0123456789abcdef", Expires: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)},
		&RegisterResponse{Node: testPeer(9)},
	)
	f.Add([]byte(`{"url":"","expires":"2026-11-22T10:00:00.123456789+05:30"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, typ := range []string{TypeLoginURL, TypeRegisterResponse} {
			u, r, err := registerAnswer(&Envelope{V: Version, Type: typ, ID: 1, Body: body})
			if err != nil {
				if err.Error() == "" {
					t.Fatal("error without text")
				}
				continue
			}
			switch {
			case typ == TypeLoginURL && (u == nil || r != nil):
				t.Fatalf("loginURL decoded as url %v, response %v", u, r)
			case typ == TypeRegisterResponse && (u != nil || r == nil):
				t.Fatalf("registerResponse decoded as url %v, response %v", u, r)
			case u != nil:
				stableJSON(t, u)
			default:
				stableJSON(t, r)
			}
		}
	})
}

func FuzzRegisterRequest(f *testing.F) {
	var nk key.Public
	nk[0] = 7
	addBodies(f,
		&RegisterRequest{NodeKey: nk, Hostinfo: Hostinfo{Hostname: "laptop", OS: "linux"}, Interactive: true, Ephemeral: true},
		&RegisterRequest{AuthKey: "tskey-0123", NodeKey: nk, Hostinfo: Hostinfo{Hostname: "server"}},
	)
	f.Add([]byte(`{"nodeKey":"zz","interactive":"yes"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var req RegisterRequest
		if json.Unmarshal(body, &req) != nil {
			return
		}
		checkHostinfo(t, &req.Hostinfo)
		stableJSON(t, &req)
	})
}
