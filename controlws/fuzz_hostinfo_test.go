package controlws

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"

	"tsconnect/key"
)

// Fuzz targets for the host-info validator and the bodies that carry it (mapRequest,
// update; register is FuzzRegisterRequest): whatever decodes, Validate judges without
// panicking, with a short error, and what it accepts stays within the caps and valid
// after a round trip.

// checkHostinfo is the property every target asserts of a decoded Hostinfo.
func checkHostinfo(t *testing.T, h *Hostinfo) {
	t.Helper()
	err := h.Validate()
	if err != nil {
		if msg := err.Error(); msg == "" || len(msg) > 400 || !strings.HasPrefix(msg, "hostinfo: ") {
			t.Fatalf("error %q: want a short one starting \"hostinfo: \"", msg)
		}
		return
	}
	if len(h.Hostname) > MaxHostnameLen || len(h.OS) > MaxOSLen || len(h.SSHHostKeys) > MaxSSHHostKeys || len(h.Endpoints) > MaxEndpoints {
		t.Fatalf("accepted past a cap: %d-byte hostname, %d-byte OS, %d keys, %d endpoints", len(h.Hostname), len(h.OS), len(h.SSHHostKeys), len(h.Endpoints))
	}
	b, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	var again Hostinfo
	if err := json.Unmarshal(b, &again); err != nil {
		t.Fatalf("re-decoding %s: %v", b, err)
	}
	if err := again.Validate(); err != nil {
		t.Fatalf("valid host info %s is invalid after a round trip: %v", b, err)
	}
	n, _ := json.Marshal(Node{Hostname: h.Hostname, OS: h.OS, SSHHostKeys: h.SSHHostKeys, Endpoints: h.Endpoints, HomeDERP: h.HomeDERP})
	if len(n) > MaxNodeJSON {
		t.Fatalf("a valid host info makes a %d-byte node, over MaxNodeJSON", len(n))
	}
}

var fuzzHostinfos = []Hostinfo{
	{},
	{Hostname: "laptop", OS: "linux", SSH: true, HomeDERP: 1,
		SSHHostKeys: []string{"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDlCp6G1nqUCXVaAy9kRVN3D1wS5sQ1KsRu6QUp7W7mL"},
		Endpoints:   []netip.AddrPort{netip.MustParseAddrPort("192.0.2.1:41641"), netip.MustParseAddrPort("[2001:db8::1]:41641")}},
	{Hostname: "<img src=x onerror=alert(1)>", OS: "\x1b[2J"},
	{Hostname: "web\u202e", HomeDERP: -1},
}

func FuzzHostinfo(f *testing.F) {
	for _, h := range fuzzHostinfos {
		b, _ := json.Marshal(h)
		f.Add(b)
	}
	f.Add([]byte(`{"sshHostKeys":["ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABB"],"endpoints":["[fe80::1%eth0]:1"]}`))
	f.Add([]byte(`{"sshHostKeys":["ssh-rsa AAAAB3NzaC1yc2EAAAADAQAB"],"homeDERP":65536}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var h Hostinfo
		if json.Unmarshal(body, &h) != nil {
			return
		}
		checkHostinfo(t, &h)
	})
}

// FuzzHostKey feeds one host key line to the validator directly (the SSH blob parser).
func FuzzHostKey(f *testing.F) {
	f.Add("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDlCp6G1nqUCXVaAy9kRVN3D1wS5sQ1KsRu6QUp7W7mL")
	f.Add("ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBA==")
	f.Add("ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQ==")
	f.Add("ssh-ed25519 /////w==")
	f.Fuzz(func(t *testing.T, k string) {
		h := Hostinfo{SSHHostKeys: []string{k}}
		checkHostinfo(t, &h)
	})
}

func FuzzMapRequest(f *testing.F) {
	var nk key.Public
	nk[0] = 9
	for _, h := range fuzzHostinfos {
		addBodies(f, &MapRequest{NodeKey: nk, Hostinfo: h})
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var req MapRequest
		if json.Unmarshal(body, &req) != nil {
			return
		}
		checkHostinfo(t, &req.Hostinfo)
		stableJSON(t, &req)
	})
}

func FuzzUpdate(f *testing.F) {
	for _, h := range fuzzHostinfos {
		addBodies(f, &Update{Hostinfo: h})
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var u Update
		if json.Unmarshal(body, &u) != nil {
			return
		}
		checkHostinfo(t, &u.Hostinfo)
		stableJSON(t, &u)
	})
}
