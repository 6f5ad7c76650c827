package controlws

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"tsconnect/key"
)

// authorizedKey is pub in the form a node publishes ("TYPE BASE64").
func authorizedKey(t testing.TB, pub any) string {
	t.Helper()
	pk, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pk)))
}

// realHostKeys returns one key of every type a node may publish, RSA at 4096 bits.
func realHostKeys(t testing.TB) []string {
	t.Helper()
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	keys := []string{authorizedKey(t, edPub)}
	for _, c := range []elliptic.Curve{elliptic.P256(), elliptic.P384(), elliptic.P521()} {
		k, err := ecdsa.GenerateKey(c, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, authorizedKey(t, &k.PublicKey))
	}
	rk, err := rsa.GenerateKey(rand.Reader, 4096)
	if err != nil {
		t.Fatal(err)
	}
	return append(keys, authorizedKey(t, &rk.PublicKey))
}

// atCaps is a Hostinfo with every field at its limit, in the characters JSON inflates most.
func atCaps(t testing.TB) Hostinfo {
	keys := realHostKeys(t)
	h := Hostinfo{
		Hostname:    strings.Repeat("<", MaxHostnameLen),
		OS:          strings.Repeat("<", MaxOSLen),
		SSH:         true,
		SSHHostKeys: keys[len(keys)-MaxSSHHostKeys:], // the RSA key is the longest
		HomeDERP:    MaxHomeDERP,
		DiscoKey:    key.NewPrivate().Public(),
	}
	for i := range MaxSSHTools {
		h.SSHTools = append(h.SSHTools, strings.Repeat("x", 14)+strconv.Itoa(10+i))
	}
	for i := range MaxEndpoints {
		h.Endpoints = append(h.Endpoints, netip.MustParseAddrPort("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:"+strconv.FormatInt(int64(0xff00+i), 16)+"]:65535"))
	}
	return h
}

func TestHostinfoValidateAcceptsRealValues(t *testing.T) {
	for _, h := range []Hostinfo{
		{},
		{Hostname: "alice-laptop.corp.example", OS: "linux", SSH: true, SSHHostKeys: realHostKeys(t)[:4], SSHTools: []string{"tmux", "screen"}, HomeDERP: 1,
			Endpoints: []netip.AddrPort{netip.MustParseAddrPort("192.0.2.1:41641"), netip.MustParseAddrPort("[2001:db8::1]:41641")}},
		{Hostname: "Alice’s MacBook Pro", OS: "darwin"},
		atCaps(t),
	} {
		if err := h.Validate(); err != nil {
			t.Errorf("Validate(%.80q…) = %v, want nil", h.Hostname, err)
		}
	}
}

// TestHostinfoOverCapsIsRefused: every field past its limit or malformed is refused, and the
// error names the field (and the limit where there is one).
func TestHostinfoOverCapsIsRefused(t *testing.T) {
	keys := realHostKeys(t)
	ed := keys[0]
	edBlob, _ := base64.StdEncoding.DecodeString(strings.Fields(ed)[1])
	for _, c := range []struct {
		name string
		mod  func(*Hostinfo)
		want string
	}{
		{"hostname too long", func(h *Hostinfo) { h.Hostname = strings.Repeat("a", MaxHostnameLen+1) }, "hostname is 257 bytes, over the limit of 256"},
		{"hostname 3 MiB", func(h *Hostinfo) { h.Hostname = strings.Repeat("<", 3<<20) }, "hostname is 3145728 bytes"},
		{"hostname NUL", func(h *Hostinfo) { h.Hostname = "web\x00x" }, "hostname has a non-printable character at byte 3"},
		{"hostname escape", func(h *Hostinfo) { h.Hostname = "\x1b[2Jweb" }, "hostname has a non-printable"},
		{"hostname newline", func(h *Hostinfo) { h.Hostname = "web\nfake line" }, "hostname has a non-printable"},
		{"hostname bidi", func(h *Hostinfo) { h.Hostname = "web\u202egnp.exe" }, "hostname has a non-printable"},
		{"hostname invalid utf-8", func(h *Hostinfo) { h.Hostname = "web\xff" }, "hostname has a non-printable"},
		{"os too long", func(h *Hostinfo) { h.OS = strings.Repeat("<", MaxOSLen+1) }, "os is 65 bytes, over the limit of 64"},
		{"os control", func(h *Hostinfo) { h.OS = "linux\r" }, "os has a non-printable"},
		{"too many host keys", func(h *Hostinfo) { h.SSHHostKeys = append(keys, ed) }, "6 sshHostKeys, over the limit of 4"},
		{"host key too long", func(h *Hostinfo) { h.SSHHostKeys = []string{"ssh-rsa " + strings.Repeat("A", MaxSSHHostKeyLen)} }, "sshHostKeys[0]: 1032 bytes, over the limit of 1024"},
		{"host key comment", func(h *Hostinfo) { h.SSHHostKeys = []string{ed + " root@web"} }, `sshHostKeys[0]: not "TYPE BASE64"`},
		{"host key unknown type", func(h *Hostinfo) { h.SSHHostKeys = []string{"ssh-dss " + strings.Fields(ed)[1]} }, `type "ssh-dss" is not one of`},
		{"host key not base64", func(h *Hostinfo) { h.SSHHostKeys = []string{"ssh-ed25519 !!!"} }, "key is not base64"},
		{"host key type mismatch", func(h *Hostinfo) { h.SSHHostKeys = []string{"ssh-rsa " + strings.Fields(ed)[1]} }, "not a valid ssh-rsa key: the key blob names another type"},
		{"host key truncated", func(h *Hostinfo) {
			h.SSHHostKeys = []string{"ssh-ed25519 " + base64.StdEncoding.EncodeToString(edBlob[:len(edBlob)-1])}
		}, "field longer than the key"},
		{"host key trailing bytes", func(h *Hostinfo) {
			h.SSHHostKeys = []string{"ssh-ed25519 " + base64.StdEncoding.EncodeToString(append(edBlob, 0, 0, 0, 0))}
		}, "want one 32-byte public key"},
		{"host key empty", func(h *Hostinfo) { h.SSHHostKeys = []string{""} }, `not "TYPE BASE64"`},
		{"home DERP negative", func(h *Hostinfo) { h.HomeDERP = -1 }, "homeDERP -1 out of range [0, 65535]"},
		{"home DERP huge", func(h *Hostinfo) { h.HomeDERP = 1 << 40 }, "out of range"},
		{"too many endpoints", func(h *Hostinfo) { h.Endpoints = make([]netip.AddrPort, MaxEndpoints+1) }, "33 endpoints, over the limit of 32"},
		{"zero endpoint", func(h *Hostinfo) { h.Endpoints = []netip.AddrPort{{}} }, "endpoints[0]"},
		{"too many sshTools", func(h *Hostinfo) { h.SSHTools = slices.Repeat([]string{"tmux"}, MaxSSHTools+1) }, "9 sshTools, over the limit of 8"},
		{"sshTools with markup", func(h *Hostinfo) { h.SSHTools = []string{"<b>tmux"} }, "sshTools[0] is not a name"},
		{"empty sshTool", func(h *Hostinfo) { h.SSHTools = []string{"tmux", ""} }, "sshTools[1] is not a name"},
		{"long sshTool", func(h *Hostinfo) { h.SSHTools = []string{"tmux", "screen", strings.Repeat("a", 17)} }, "sshTools[2] is not a name"},
		{"disco key of low order", func(h *Hostinfo) { h.DiscoKey = key.Public{1} }, "discoKey is not a usable Curve25519 public key"},
		{"port 0", func(h *Hostinfo) { h.Endpoints = []netip.AddrPort{netip.MustParseAddrPort("192.0.2.1:0")} }, "non-zero port"},
		{"zone", func(h *Hostinfo) {
			h.Endpoints = []netip.AddrPort{netip.MustParseAddrPort("[fe80::1%" + strings.Repeat("z", 1000) + "]:1")}
		}, "endpoints[0]: an IPv6 zone"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := Hostinfo{Hostname: "web", OS: "linux"}
			c.mod(&h)
			err := h.Validate()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Validate = %v, want an error containing %q", err, c.want)
			}
			if len(err.Error()) > 300 {
				t.Fatalf("error of %d bytes quotes too much of the input: %.100s…", len(err.Error()), err)
			}
		})
	}
}

// TestNodeAtCapsFitsMaxNodeJSON: a peer entry built from a Hostinfo at every cap, in the
// characters JSON inflates most, stays within MaxNodeJSON, so MaxEnvelopeSize/MaxNodeJSON
// peers at the caps always fit in one map.
func TestNodeAtCapsFitsMaxNodeJSON(t *testing.T) {
	h := atCaps(t)
	if err := h.Validate(); err != nil {
		t.Fatal(err)
	}
	var tags []string
	for i := range 16 {
		tags = append(tags, "tag:"+strings.Repeat("<", 58)+strconv.Itoa(10+i))
	}
	now := time.Now()
	n := Node{ID: 1 << 62, Name: strings.Repeat("a", 63), Key: key.NewPrivate().Public(), MachineKey: key.NewPrivate().Public(),
		Addresses: []netip.Prefix{netip.MustParsePrefix("100.127.255.255/32"), netip.MustParsePrefix("fd7a:115c:a1e0:ffff:ffff:ffff:ffff:ffff/128")},
		HomeDERP:  h.HomeDERP, Endpoints: h.Endpoints, DiscoKey: h.DiscoKey, User: 1 << 62, Tags: tags, SSH: true, SSHHostKeys: h.SSHHostKeys, SSHTools: h.SSHTools,
		Hostname: h.Hostname, OS: h.OS, Ephemeral: true, Online: true, LastSeen: now, Created: now}
	b, err := json.Marshal(n)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > MaxNodeJSON {
		t.Fatalf("a node at every cap encodes to %d bytes, over MaxNodeJSON %d", len(b), MaxNodeJSON)
	}
	t.Logf("node at every cap: %d bytes of JSON; %d such peers fit in one %d-byte envelope", len(b), MaxEnvelopeSize/len(b), MaxEnvelopeSize)
}
