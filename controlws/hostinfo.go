package controlws

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/curve25519"

	"tsconnect/internal/safetext"
	"tsconnect/key"
)

// Hostinfo is what a node reports about itself. Control copies it into every peer's map, so
// every field is bounded (Validate): one node's entry can never make another's map too big.
type Hostinfo struct {
	Hostname    string   `json:"hostname,omitempty"`
	OS          string   `json:"os,omitempty"`
	SSH         bool     `json:"ssh,omitempty"`
	SSHHostKeys []string `json:"sshHostKeys,omitempty"`
	// SSHTools are the terminal multiplexers its SSH users can attach to ("tmux", "screen"), so
	// that a browser session can offer to resume one after a reconnect.
	SSHTools []string `json:"sshTools,omitempty"`
	// VNC reports that the node forwards port 5900 of its overlay addresses to a VNC server
	// (the agent's --vnc). Needs no protocol version: an older control drops it, an older client ignores it.
	VNC       bool             `json:"vnc,omitempty"`
	HomeDERP  int              `json:"homeDERP,omitempty"`
	Endpoints []netip.AddrPort `json:"endpoints,omitempty"`
	// DiscoKey is the node's disco public key: its peers seal and open the pings that
	// find a direct path with it (magicbind). Zero: the node has no direct paths (a
	// browser, or an older agent), and peers reach it through the relay only.
	DiscoKey key.Public `json:"discoKey,omitzero"`
}

// Limits on a Hostinfo, enforced by control at register, map request and update (and by the
// client before it sends).
const (
	// MaxHostnameLen bounds Hostname in bytes; it is printable text (see Validate). The
	// node's name in the network is derived from it: a DNS label of at most 63 bytes.
	MaxHostnameLen = 256
	// MaxOSLen bounds OS in bytes; it is printable text.
	MaxOSLen = 64
	// MaxSSHHostKeys bounds the number of SSH host keys.
	MaxSSHHostKeys = 4
	// MaxSSHHostKeyLen bounds one host key line ("TYPE BASE64", no comment): enough for
	// RSA 4096, ECDSA P-521 and Ed25519.
	MaxSSHHostKeyLen = 1024
	// MaxSSHTools bounds the number of SSHTools; each is a name of 1 to 16 bytes of [a-z0-9-]
	// (names this version does not know are kept, for newer agents).
	MaxSSHTools = 8
	// MaxEndpoints bounds the number of endpoints.
	MaxEndpoints = 32
	// MaxHomeDERP is the largest DERP region ID accepted as HomeDERP (0 means unknown).
	MaxHomeDERP = 65535
)

// MaxNodeJSON bounds the JSON encoding of one Node built from a valid Hostinfo, with
// control's own fields (name, keys, addresses, times) and up to 16 tags of 64 bytes. A map
// of N peers fits MaxEnvelopeSize while N*MaxNodeJSON does (about 1,000 peers at every cap;
// about 30,000 with typical entries of 500 bytes).
const MaxNodeJSON = 16 << 10

// SSHHostKeyTypes are the host key types a node may publish.
var SSHHostKeyTypes = []string{
	"ssh-ed25519",
	"ecdsa-sha2-nistp256",
	"ecdsa-sha2-nistp384",
	"ecdsa-sha2-nistp521",
	"ssh-rsa",
}

// Validate reports the first field of h past its limit or malformed, naming the field and
// the limit. Control refuses a message whose Hostinfo fails it and keeps the old one.
func (h *Hostinfo) Validate() error {
	if err := checkText("hostname", h.Hostname, MaxHostnameLen); err != nil {
		return err
	}
	if err := checkText("os", h.OS, MaxOSLen); err != nil {
		return err
	}
	if len(h.SSHHostKeys) > MaxSSHHostKeys {
		return fmt.Errorf("hostinfo: %d sshHostKeys, over the limit of %d", len(h.SSHHostKeys), MaxSSHHostKeys)
	}
	for i, k := range h.SSHHostKeys {
		if err := checkHostKey(k); err != nil {
			return fmt.Errorf("hostinfo: sshHostKeys[%d]: %w", i, err)
		}
	}
	if len(h.SSHTools) > MaxSSHTools {
		return fmt.Errorf("hostinfo: %d sshTools, over the limit of %d", len(h.SSHTools), MaxSSHTools)
	}
	for i, t := range h.SSHTools {
		if len(t) == 0 || len(t) > 16 || strings.Trim(t, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" {
			return fmt.Errorf("hostinfo: sshTools[%d] is not a name of 1 to 16 bytes of [a-z0-9-]", i)
		}
	}
	if h.HomeDERP < 0 || h.HomeDERP > MaxHomeDERP {
		return fmt.Errorf("hostinfo: homeDERP %d out of range [0, %d]", h.HomeDERP, MaxHomeDERP)
	}
	if !h.DiscoKey.IsZero() {
		// A low-order point makes every box under it openable by anyone: refuse it.
		if _, err := curve25519.X25519(lowOrderProbe[:], h.DiscoKey[:]); err != nil {
			return fmt.Errorf("hostinfo: discoKey is not a usable Curve25519 public key: %v", err)
		}
	}
	if len(h.Endpoints) > MaxEndpoints {
		return fmt.Errorf("hostinfo: %d endpoints, over the limit of %d", len(h.Endpoints), MaxEndpoints)
	}
	for i, ep := range h.Endpoints {
		switch {
		case !ep.IsValid() || ep.Port() == 0:
			return fmt.Errorf("hostinfo: endpoints[%d] %q is not an address and a non-zero port", i, ep)
		case ep.Addr().Zone() != "":
			return fmt.Errorf("hostinfo: endpoints[%d]: an IPv6 zone means nothing to peers", i)
		}
	}
	return nil
}

// lowOrderProbe is any scalar: X25519 with it fails exactly on low-order points.
var lowOrderProbe = [32]byte{9}

// checkText accepts valid UTF-8 of at most max bytes whose every rune is printable (no
// control characters, no bidirectional overrides).
func checkText(field, s string, max int) error {
	if len(s) > max {
		return fmt.Errorf("hostinfo: %s is %d bytes, over the limit of %d", field, len(s), max)
	}
	for i, r := range s {
		if r == utf8.RuneError || !unicode.IsPrint(r) || unicode.Is(unicode.Bidi_Control, r) {
			return fmt.Errorf("hostinfo: %s has a non-printable character at byte %d (printable text only)", field, i)
		}
	}
	return nil
}

// checkHostKey accepts "TYPE BASE64" of a known type whose key blob names the same type.
func checkHostKey(k string) error {
	if len(k) > MaxSSHHostKeyLen {
		return fmt.Errorf("%d bytes, over the limit of %d", len(k), MaxSSHHostKeyLen)
	}
	typ, b64, ok := strings.Cut(k, " ")
	if !ok || strings.Contains(b64, " ") {
		return fmt.Errorf("not \"TYPE BASE64\" (no comment)")
	}
	if !slices.Contains(SSHHostKeyTypes, typ) {
		return fmt.Errorf("type \"%s\" is not one of %s", safetext.Bounded(typ, 40), strings.Join(SSHHostKeyTypes, ", "))
	}
	blob, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return fmt.Errorf("key is not base64: %v", err)
	}
	if err := checkKeyBlob(typ, blob); err != nil {
		return fmt.Errorf("not a valid %s key: %w", typ, err)
	}
	return nil
}

// checkKeyBlob parses an SSH public key blob (RFC 4253 6.6, RFC 5656 3.1, RFC 8709 4) of
// type typ: its fields, their sizes, nothing after them.
func checkKeyBlob(typ string, blob []byte) error {
	var fields [][]byte
	for len(blob) > 0 {
		if len(blob) < 4 {
			return errors.New("truncated field length")
		}
		n := binary.BigEndian.Uint32(blob)
		if uint64(n) > uint64(len(blob)-4) {
			return errors.New("field longer than the key")
		}
		fields, blob = append(fields, blob[4:4+n]), blob[4+n:]
	}
	if len(fields) == 0 || string(fields[0]) != typ {
		return errors.New("the key blob names another type")
	}
	switch typ {
	case "ssh-ed25519":
		if len(fields) != 2 || len(fields[1]) != 32 {
			return errors.New("want one 32-byte public key")
		}
	case "ssh-rsa":
		if len(fields) != 3 || len(fields[1]) == 0 || len(fields[2]) < 128 {
			return errors.New("want an exponent and a modulus of at least 1024 bits")
		}
	default: // ecdsa-sha2-nistpNNN: curve name, uncompressed point
		curve := strings.TrimPrefix(typ, "ecdsa-sha2-")
		size := map[string]int{"nistp256": 65, "nistp384": 97, "nistp521": 133}[curve]
		if len(fields) != 3 || string(fields[1]) != curve || len(fields[2]) != size || fields[2][0] != 4 {
			return fmt.Errorf("want curve %s and an uncompressed %d-byte point", curve, size)
		}
	}
	return nil
}
