package key

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"testing"

	"golang.org/x/crypto/curve25519"
)

// TestSharedIsX25519 checks Shared against curve25519.X25519: RFC 7748's vectors, random
// scalars and points (unclamped, top bit set, non-canonical), and low-order points refused.
func TestSharedIsX25519(t *testing.T) {
	// RFC 7748 section 5.2.
	for _, v := range []struct{ k, u, want string }{
		{"a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
			"e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
			"c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552"},
		{"4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
			"e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
			"95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957"},
	} {
		var k Private
		var u Public
		hex.Decode(k[:], []byte(v.k))
		hex.Decode(u[:], []byte(v.u))
		got, err := k.Shared(u)
		if err != nil || hex.EncodeToString(got[:]) != v.want {
			t.Fatalf("Shared(%s, %s) = %x, %v; want %s", v.k, v.u, got, err, v.want)
		}
	}
	// Points whose multiple is zero: 0, 1 and the order-8 points curve25519 refuses.
	low := []string{"00", "01", "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"}
	for _, h := range low {
		var u Public
		hex.Decode(u[:], []byte(h))
		if _, err := NewPrivate().Shared(u); err == nil {
			t.Errorf("Shared with low-order point %s: no error", h)
		}
	}
	for i := range 3000 {
		var k Private
		var u Public
		rand.Read(k[:])
		rand.Read(u[:])
		switch i % 3 {
		case 0:
			u = NewPrivate().Public()
		case 1:
			u[31] |= 0x80 // the top bit, ignored
		}
		if i%100 == 0 {
			u = Public{0: 0xee, 31: 0x7f} // non-canonical: 2^255-18 is 1
			for j := 1; j < 31; j++ {
				u[j] = 0xff
			}
		}
		want, wantErr := curve25519.X25519(k[:], u[:])
		got, err := k.Shared(u)
		if (err != nil) != (wantErr != nil) || err == nil && !bytes.Equal(got[:], want) {
			t.Fatalf("Shared(%x, %x) = %x, %v; X25519 gives %x, %v", k, u, got, err, want, wantErr)
		}
	}
}

// BenchmarkShared measures Shared against curve25519.X25519 (two ladders through crypto/ecdh).
func BenchmarkShared(b *testing.B) {
	k, p := NewPrivate(), NewPrivate().Public()
	b.Run("ladder", func(b *testing.B) {
		for b.Loop() {
			k.Shared(p)
		}
	})
	b.Run("x25519", func(b *testing.B) {
		for b.Loop() {
			curve25519.X25519(k[:], p[:])
		}
	})
}
