package controlws

import (
	"crypto/rand"
	"fmt"
	"io"

	"github.com/flynn/noise"

	"tsconnect/key"
)

// dh25519 is noise.DH25519 with its key generation on key.Private.Public, a fixed-base
// multiplication: each handshake makes an ephemeral key, and noise.DH25519 makes it with
// the X25519 ladder at five times the cost. DH itself is noise.DH25519's.
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

// DH is X25519 (noise.DH25519.DH).
func (dh25519) DH(privkey, pubkey []byte) ([]byte, error) { return noise.DH25519.DH(privkey, pubkey) }

// DHLen is the length of a public key and of a shared secret: 32.
func (dh25519) DHLen() int { return noise.DH25519.DHLen() }

// DHName is the name in the protocol name: "25519".
func (dh25519) DHName() string { return noise.DH25519.DHName() }
