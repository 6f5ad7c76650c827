package control

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/crypto/argon2"
)

// Password hashing: argon2id (RFC 9106) in the PHC string form
// $argon2id$v=19$m=MEMORY_KIB,t=PASSES,p=LANES$SALT$HASH (unpadded standard base64).
// The parameters are OWASP's first recommendation for argon2id; they travel in the string,
// so changing them later leaves stored hashes verifiable.
const (
	argonMemory  = 46 * 1024 // KiB
	argonTime    = 1
	argonThreads = 1
	argonKeyLen  = 32
	argonSaltLen = 16
)

// MinPasswordLen is the shortest password SetPassword accepts.
const MinPasswordLen = 8

// maxPasswordLen bounds the work one login attempt can cause.
const maxPasswordLen = 1024

var b64 = base64.RawStdEncoding

// MaxConcurrentHashes bounds the argon2id runs in progress at once in this process (each
// takes argonMemory: 4 × 46 MiB), whoever asks; more wait up to HashWait for a slot.
const MaxConcurrentHashes = 4

// HashWait is how long a password check waits for a hashing slot before ErrBusy.
const HashWait = 10 * time.Second

// ErrBusy is returned when every hashing slot stayed taken for HashWait (503: try later).
var ErrBusy = errors.New("too many password checks in progress: try again in a few seconds")

var hashSlots = make(chan struct{}, MaxConcurrentHashes)

// withHashSlot runs f holding one of the MaxConcurrentHashes slots.
func withHashSlot(ctx context.Context, f func()) error {
	t := time.NewTimer(HashWait)
	defer t.Stop()
	select {
	case hashSlots <- struct{}{}:
	case <-t.C:
		return ErrBusy
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-hashSlots }()
	f()
	return nil
}

// hashPassword returns the PHC string of password under a fresh salt.
func hashPassword(password string) string {
	salt := make([]byte, argonSaltLen)
	rand.Read(salt)
	sum := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		b64.EncodeToString(salt), b64.EncodeToString(sum))
}

// verifyPassword reports whether password matches the PHC string phc.
func verifyPassword(phc, password string) (bool, error) {
	parts := strings.Split(phc, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return false, errors.New("password hash is not an argon2id PHC string")
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return false, fmt.Errorf("argon2id version %q not supported", parts[2])
	}
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || m == 0 || t == 0 || p == 0 || m > 1<<22 || t > 64 {
		return false, fmt.Errorf("bad argon2id parameters %q", parts[3])
	}
	salt, err := b64.DecodeString(parts[4])
	if err != nil {
		return false, fmt.Errorf("bad argon2id salt: %w", err)
	}
	want, err := b64.DecodeString(parts[5])
	if err != nil || len(want) < 16 || len(want) > 128 {
		return false, errors.New("bad argon2id hash")
	}
	got := argon2.IDKey([]byte(password), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// dummyHash is verified against when a login names no user (or one without a password),
// so that such attempts take as long as real ones.
var dummyHash = hashPassword("no such user: this hash only spends time")
