package key

import (
	"errors"

	"filippo.io/edwards25519/field"
)

// errLowOrder is X25519's refusal of a peer key of small order (the shared secret is zero).
var errLowOrder = errors.New("key: low-order public key")

// Shared returns X25519(k, p), the Diffie-Hellman secret of k and peer key p, and an error
// when it is all zeros (p of small order), as curve25519.X25519 does. It is the RFC 7748
// Montgomery ladder on filippo.io/edwards25519's field, constant time (a swap per bit, no
// branch on k): curve25519.X25519 goes through crypto/ecdh, which derives k's public key
// first, a second ladder for every exchange (TestSharedIsX25519 checks it against it).
func (k Private) Shared(p Public) ([32]byte, error) {
	var out [32]byte
	s := k
	s[0] &= 248
	s[31] &= 127
	s[31] |= 64
	var x1, x2, z2, x3, z3, a, aa, b, bb, e, c, d, da, cb, t field.Element
	if _, err := x1.SetBytes(p[:]); err != nil { // ignores the top bit, takes non-canonical values (RFC 7748)
		return out, err
	}
	x2.One()
	z2.Zero()
	x3.Set(&x1)
	z3.One()
	swap := 0
	for i := 254; i >= 0; i-- {
		bit := int(s[i/8]>>(i%8)) & 1
		swap ^= bit
		x2.Swap(&x3, swap)
		z2.Swap(&z3, swap)
		swap = bit
		aa.Square(a.Add(&x2, &z2))
		bb.Square(b.Subtract(&x2, &z2))
		e.Subtract(&aa, &bb)
		da.Multiply(d.Subtract(&x3, &z3), &a)
		cb.Multiply(c.Add(&x3, &z3), &b)
		x3.Square(x3.Add(&da, &cb))
		z3.Multiply(z3.Square(z3.Subtract(&da, &cb)), &x1)
		x2.Multiply(&aa, &bb)
		z2.Multiply(&e, t.Add(&aa, t.Mult32(&e, 121665))) // a24 = 121665
	}
	x2.Swap(&x3, swap)
	z2.Swap(&z3, swap)
	z2.Invert(&z2)
	x2.Multiply(&x2, &z2)
	copy(out[:], x2.Bytes())
	if out == [32]byte{} {
		return out, errLowOrder
	}
	return out, nil
}
