package control

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"

	"tsconnect/control/store"
)

// Secret returns the server's random 32-byte secret called name (e.g. the key that signs
// the single sign-on state cookies), made the first time and kept in the store, so that it
// survives restarts and never leaves the server.
func (s *Server) Secret(ctx context.Context, name string) ([]byte, error) {
	setting := "secret_" + name
	var out []byte
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	err := s.st.Update(ctx, func(tx store.Tx) error {
		v, err := tx.Setting(setting)
		if errors.Is(err, store.ErrNotFound) {
			out = make([]byte, 32)
			rand.Read(out)
			return tx.SetSetting(setting, b64.EncodeToString(out))
		}
		if err != nil {
			return err
		}
		out, err = b64.DecodeString(v)
		if err == nil && len(out) < 32 {
			err = errors.New("shorter than 32 bytes")
		}
		if err != nil {
			return fmt.Errorf("setting %s: %w", setting, err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("control: secret %s: %w", name, err)
	}
	return out, nil
}
