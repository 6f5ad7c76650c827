package controlws

import (
	"bytes"
	"crypto/rand"
	"testing"

	"github.com/flynn/noise"
)

// TestDH25519MatchesNoise checks that the handshake's key generation makes the key pair
// noise.DH25519 makes from the same random bytes, and that DH agrees across the two.
func TestDH25519MatchesNoise(t *testing.T) {
	for range 200 {
		seed := make([]byte, 64)
		rand.Read(seed)
		got, err := dh25519{}.GenerateKeypair(bytes.NewReader(seed))
		if err != nil {
			t.Fatal(err)
		}
		want, err := noise.DH25519.GenerateKeypair(bytes.NewReader(seed))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Private, want.Private) || !bytes.Equal(got.Public, want.Public) {
			t.Fatalf("key pair from %x: %x/%x, noise.DH25519 %x/%x", seed[:32], got.Private, got.Public, want.Private, want.Public)
		}
		other, _ := noise.DH25519.GenerateKeypair(bytes.NewReader(seed[32:]))
		a, err := dh25519{}.DH(got.Private, other.Public)
		if err != nil {
			t.Fatal(err)
		}
		b, err := noise.DH25519.DH(other.Private, got.Public)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Fatalf("shared secrets differ: %x, %x", a, b)
		}
	}
}
