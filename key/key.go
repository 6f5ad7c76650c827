// Package key holds the Curve25519 key pairs that name nodes, machines and servers.
// One pair type serves every role: a node key is its WireGuard and DERP identity, a machine key its Noise static key.
package key

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"

	"filippo.io/edwards25519"
)

// Private is a Curve25519 private key. The zero value is not a valid key.
type Private [32]byte

// Public is a Curve25519 public key.
type Public [32]byte

// NewPrivate returns a fresh, clamped private key from crypto/rand.
func NewPrivate() Private {
	var k Private
	if _, err := rand.Read(k[:]); err != nil {
		panic("key: no randomness: " + err.Error())
	}
	k[0] &= 248
	k[31] = (k[31] & 127) | 64
	return k
}

// IsZero reports whether k is the zero value.
func (k Private) IsZero() bool { return k == Private{} }

// Public returns the public half of k.
func (k Private) Public() Public {
	// X25519(k, 9) is the Montgomery u of [clamped k]·B, the Edwards base point mapped to
	// u = 9: a fixed-base multiplication on precomputed tables, a quarter of the ladder's
	// cost (TestPublicIsX25519 checks it against curve25519.X25519).
	s, err := edwards25519.NewScalar().SetBytesWithClamping(k[:])
	if err != nil {
		panic("key: " + err.Error()) // only for a length other than 32
	}
	var p Public
	copy(p[:], new(edwards25519.Point).ScalarBaseMult(s).BytesMontgomery())
	return p
}

// MarshalText encodes k as 64 hex digits. Only state files should ever hold it.
func (k Private) MarshalText() ([]byte, error) { return []byte(hex.EncodeToString(k[:])), nil }

// UnmarshalText decodes 64 hex digits.
func (k *Private) UnmarshalText(b []byte) error {
	return decode32((*[32]byte)(k), string(b), "private key")
}

// String never prints the key material, so a private key cannot leak into a log.
func (k Private) String() string { return "key.Private{…}" }

// IsZero reports whether k is the zero value.
func (k Public) IsZero() bool { return k == Public{} }

// String returns k as 64 lower-case hex digits (the DERP and WireGuard UAPI form).
func (k Public) String() string { return hex.EncodeToString(k[:]) }

// ShortString returns the first 8 hex digits of k, for logs.
func (k Public) ShortString() string { return hex.EncodeToString(k[:4]) }

// MarshalText encodes k as 64 hex digits.
func (k Public) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText decodes 64 hex digits.
func (k *Public) UnmarshalText(b []byte) error {
	return decode32((*[32]byte)(k), string(b), "public key")
}

// ParsePublic parses 64 hex digits.
func ParsePublic(s string) (Public, error) {
	var p Public
	err := p.UnmarshalText([]byte(s))
	return p, err
}

// ParsePrivate parses 64 hex digits.
func ParsePrivate(s string) (Private, error) {
	var p Private
	err := p.UnmarshalText([]byte(s))
	return p, err
}

var errLen = errors.New("want 64 hex digits")

func decode32(dst *[32]byte, s, what string) error {
	if len(s) != 64 {
		return fmt.Errorf("key: bad %s: %w, got %d characters", what, errLen, len(s))
	}
	if _, err := hex.Decode(dst[:], []byte(s)); err != nil {
		return fmt.Errorf("key: bad %s: %v", what, err)
	}
	return nil
}
