package sshclient

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"strings"

	"golang.org/x/crypto/ssh"
)

// ErrHostKeyMismatch is matched (errors.Is) by the error Dial returns when the server
// presents a host key that is not one of those pinned in Options.HostKeys.
var ErrHostKeyMismatch = errors.New("host key mismatch")

// ErrNoHostKeys is matched by the error Dial returns when Options.HostKeys holds no usable
// key: the client never connects without a pinned key.
var ErrNoHostKeys = errors.New("no host key pinned for the target")

// pinnedKeys parses authorized_keys lines into public keys; unparsable lines are errors,
// so a corrupt map entry is reported instead of silently narrowing the pin set.
func pinnedKeys(lines []string) ([]ssh.PublicKey, error) {
	var keys []ssh.PublicKey
	for i, line := range lines {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
		if err != nil {
			return nil, fmt.Errorf("host key %d: %w", i, err)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, ErrNoHostKeys
	}
	return keys, nil
}

// hostKeyAlgorithms lists the signature algorithms that can prove possession of keys,
// so the server presents a pinned key rather than another one it holds.
func hostKeyAlgorithms(keys []ssh.PublicKey) []string {
	var algos []string
	seen := map[string]bool{}
	add := func(a string) {
		if !seen[a] {
			seen[a] = true
			algos = append(algos, a)
		}
	}
	for _, k := range keys {
		if k.Type() == ssh.KeyAlgoRSA {
			add(ssh.KeyAlgoRSASHA512)
			add(ssh.KeyAlgoRSASHA256)
		}
		add(k.Type())
	}
	return algos
}

// pinCallback accepts exactly the given keys.
func pinCallback(keys []ssh.PublicKey) ssh.HostKeyCallback {
	return func(hostname string, remote net.Addr, presented ssh.PublicKey) error {
		wire := presented.Marshal()
		for _, k := range keys {
			if bytes.Equal(k.Marshal(), wire) {
				return nil
			}
		}
		return fmt.Errorf("%w: %s presented %s key %s, which is not among the %d key(s) the network map pins for it",
			ErrHostKeyMismatch, hostname, presented.Type(), ssh.FingerprintSHA256(presented), len(keys))
	}
}
