package key

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// LoadOrCreateFile reads a private key (hex, as MarshalText writes it) from path, or makes
// a new one and writes it there (mode 0600) when the file does not exist.
func LoadOrCreateFile(path string) (Private, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		k := NewPrivate()
		text, _ := k.MarshalText()
		if err := os.WriteFile(path, append(text, '\n'), 0o600); err != nil {
			return Private{}, err
		}
		return k, nil
	}
	if err != nil {
		return Private{}, err
	}
	var k Private
	if err := k.UnmarshalText([]byte(strings.TrimSpace(string(b)))); err != nil {
		return Private{}, fmt.Errorf("key file %s: %v", path, err)
	}
	return k, nil
}
