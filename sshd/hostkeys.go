package sshd

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/ssh"

	"tsconnect/internal/atomicfile"
)

// Host key files, in OpenSSH's private key format, named as OpenSSH names them.
var hostKeyFiles = []struct {
	name string
	gen  func() (crypto.Signer, error)
}{
	{"ssh_host_ed25519_key", func() (crypto.Signer, error) {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	}},
	{"ssh_host_ecdsa_key", func() (crypto.Signer, error) {
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}},
}

// LoadOrCreateHostKeys returns the Ed25519 and ECDSA P-256 host keys kept in dir, creating
// dir (0700) and any missing key (0600) on first use, so they stay stable across restarts.
func LoadOrCreateHostKeys(dir string) ([]ssh.Signer, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("sshd: host key directory: %w", err)
	}
	var signers []ssh.Signer
	for _, hk := range hostKeyFiles {
		path := filepath.Join(dir, hk.name)
		s, err := loadHostKey(path)
		if errors.Is(err, fs.ErrNotExist) {
			s, err = createHostKey(path, hk.gen)
		}
		if err != nil {
			return nil, err
		}
		signers = append(signers, s)
	}
	return signers, nil
}

func loadHostKey(path string) (ssh.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	s, err := ssh.ParsePrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("sshd: host key %s: %w", path, err)
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(path, 0o600); err != nil {
			return nil, fmt.Errorf("sshd: host key %s is readable by others and cannot be restricted: %w", path, err)
		}
	}
	return s, nil
}

// createHostKey writes a new key atomically (temp file, then rename), so a crash never
// leaves a truncated key behind.
func createHostKey(path string, gen func() (crypto.Signer, error)) (ssh.Signer, error) {
	k, err := gen()
	if err != nil {
		return nil, fmt.Errorf("sshd: generate host key: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(k, "")
	if err != nil {
		return nil, fmt.Errorf("sshd: encode host key: %w", err)
	}
	if err := atomicfile.WriteFile(path, pem.EncodeToMemory(block)); err != nil {
		return nil, fmt.Errorf("sshd: write host key %s: %w", path, err)
	}
	return ssh.NewSignerFromKey(k)
}

// AuthorizedKeys returns the public halves of signers as authorized_keys lines
// ("ssh-ed25519 AAAA..."), for publishing in the network map.
func AuthorizedKeys(signers []ssh.Signer) []string {
	lines := make([]string, 0, len(signers))
	for _, s := range signers {
		lines = append(lines, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.PublicKey()))))
	}
	return lines
}
