package oidc

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
)

// SetStateKey sets the secret that seals the sign-in cookies (at least 32 bytes; keep it
// in the server's store so sign-ins in progress survive a restart). Without it, New
// draws a random one for the RP's lifetime. Call it before serving.
func (rp *RP) SetStateKey(secret []byte) error {
	if len(secret) < 32 {
		return errors.New("oidc: the state key must be at least 32 bytes")
	}
	aead, err := stateAEAD(secret)
	if err != nil {
		return err
	}
	rp.mu.Lock()
	rp.aead = aead
	rp.mu.Unlock()
	return nil
}

// stateAEAD is AES-256-GCM under a key derived from secret for this one use.
func stateAEAD(secret []byte) (cipher.AEAD, error) {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("tsconnect oidc sign-in state cookie v1"))
	block, err := aes.NewCipher(m.Sum(nil))
	if err != nil {
		return nil, fmt.Errorf("oidc: state key: %w", err)
	}
	return cipher.NewGCM(block)
}

func randomStateAEAD() cipher.AEAD {
	k := make([]byte, 32)
	rand.Read(k)
	a, err := stateAEAD(k)
	if err != nil {
		panic(err) // AES-256 with a 32-byte key cannot fail
	}
	return a
}

func (rp *RP) stateCipher() cipher.AEAD {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	return rp.aead
}

// seal encrypts and authenticates p for the cookie called name.
func (rp *RP) seal(name string, p flowState) (string, error) {
	plain, err := json.Marshal(p)
	if err != nil {
		return "", fmt.Errorf("oidc: sealing the sign-in state: %w", err)
	}
	a := rp.stateCipher()
	nonce := make([]byte, a.NonceSize())
	rand.Read(nonce)
	return base64.RawURLEncoding.EncodeToString(a.Seal(nonce, nonce, plain, []byte(name))), nil
}

// open checks and decrypts the value of the cookie called name.
func (rp *RP) open(name, value string) (flowState, error) {
	var p flowState
	if len(value) > 4096 {
		return p, errors.New("sign-in cookie too long")
	}
	raw, err := base64.RawURLEncoding.DecodeString(value)
	a := rp.stateCipher()
	if err != nil || len(raw) < a.NonceSize()+a.Overhead() {
		return p, errors.New("sign-in cookie malformed")
	}
	plain, err := a.Open(nil, raw[:a.NonceSize()], raw[a.NonceSize():], []byte(name))
	if err != nil {
		return p, errors.New("sign-in cookie does not verify")
	}
	if err := json.Unmarshal(plain, &p); err != nil {
		return p, errors.New("sign-in cookie unreadable")
	}
	return p, nil
}
