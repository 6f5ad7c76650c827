package controlws

import (
	"crypto/rand"
	"fmt"
	"io"

	"github.com/flynn/noise"

	"tsconnect/key"
)

// dh25519 is noise.DH25519 on key.Private: each handshake makes an ephemeral key, by a
// fixed-base multiplication (Public) where noise.DH25519 runs the X25519 ladder at five
// times the cost, and makes four exchanges, each one ladder (Shared) where noise.DH25519's
// curve25519.X25519 runs two.
type dh25519 struct{}

var _ noise.DHFunc = dh25519{}

// GenerateKeypair reads a private key from rng (crypto/rand if nil), clamped when used, as
// X25519 does.
func (dh25519) GenerateKeypair(rng io.Reader) (noise.DHKey, error) {
	if rng == nil {
		rng = rand.Reader
	}
	var k key.Private
	if _, err := io.ReadFull(rng, k[:]); err != nil {
		return noise.DHKey{}, fmt.Errorf("controlws: ephemeral key: %w", err)
	}
	pub := k.Public()
	return noise.DHKey{Private: k[:], Public: pub[:]}, nil
}

// DH is X25519(privkey, pubkey); a low-order pubkey is refused, as noise.DH25519 does.
func (dh25519) DH(privkey, pubkey []byte) ([]byte, error) {
	if len(privkey) != 32 || len(pubkey) != 32 {
		return nil, fmt.Errorf("controlws: X25519 keys of %d and %d bytes, want 32", len(privkey), len(pubkey))
	}
	s, err := key.Private(privkey).Shared(key.Public(pubkey))
	if err != nil {
		return nil, err
	}
	return s[:], nil
}

// DHLen is the length of a public key and of a shared secret: 32.
func (dh25519) DHLen() int { return noise.DH25519.DHLen() }

// DHName is the name in the protocol name: "25519".
func (dh25519) DHName() string { return noise.DH25519.DHName() }
