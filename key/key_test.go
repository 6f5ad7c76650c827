package key

import (
	"encoding/json"
	"strings"
	"testing"

	"golang.org/x/crypto/nacl/box"
)

func TestPublicRoundTrip(t *testing.T) {
	priv := NewPrivate()
	pub := priv.Public()
	b, err := json.Marshal(pub)
	if err != nil {
		t.Fatal(err)
	}
	var got Public
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got != pub {
		t.Fatalf("round trip: got %v want %v", got, pub)
	}
	if _, err := ParsePublic("abcd"); err == nil || !strings.Contains(err.Error(), "64 hex digits") {
		t.Fatalf("short key: err = %v", err)
	}
}

// TestMatchesNaCl checks that Public is the key NaCl box derives, so DERP boxes open.
func TestMatchesNaCl(t *testing.T) {
	a, b := NewPrivate(), NewPrivate()
	ap, bp := a.Public(), b.Public()
	aa, bb := [32]byte(a), [32]byte(b)
	sealed := box.Seal(nil, []byte("hi"), &[24]byte{}, (*[32]byte)(&bp), &aa)
	out, ok := box.Open(nil, sealed, &[24]byte{}, (*[32]byte)(&ap), &bb)
	if !ok || string(out) != "hi" {
		t.Fatal("box sealed with key.Public did not open")
	}
}

func TestPrivateNotPrinted(t *testing.T) {
	k := NewPrivate()
	if s := k.String(); strings.Contains(s, k.Public().String()[:8]) || len(s) > 20 {
		t.Fatalf("String leaks: %q", s)
	}
}
