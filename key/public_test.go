package key

import (
	"bytes"
	"crypto/rand"
	"testing"

	"golang.org/x/crypto/curve25519"
)

// TestPublicIsX25519 checks Public against X25519 with the base point, for fresh keys and
// for raw bytes no one clamped (a private key read from a file need not be).
func TestPublicIsX25519(t *testing.T) {
	var ones Private
	for i := range ones {
		ones[i] = 0xff
	}
	keys := []Private{{}, ones, {0xff, 0xff}, {31: 0xff}}
	for i := range 2000 {
		var k Private
		rand.Read(k[:])
		if i%2 == 0 {
			k = NewPrivate()
		}
		keys = append(keys, k)
	}
	for _, k := range keys {
		want, err := curve25519.X25519(k[:], curve25519.Basepoint)
		if err != nil {
			t.Fatal(err)
		}
		if got := k.Public(); !bytes.Equal(got[:], want) {
			t.Fatalf("Public(%x) = %x, X25519 gives %x", k, got, want)
		}
	}
}

// BenchmarkPublic measures Public against the X25519 ladder it replaced.
func BenchmarkPublic(b *testing.B) {
	k := NewPrivate()
	b.Run("fixed-base", func(b *testing.B) {
		for b.Loop() {
			k.Public()
		}
	})
	b.Run("x25519", func(b *testing.B) {
		for b.Loop() {
			curve25519.X25519(k[:], curve25519.Basepoint)
		}
	})
}
