package control

import (
	"context"
	"fmt"

	"tsconnect/control/store"
)

// Ready tells whether the server can do its work: it has not been closed and its store
// answers a read (GET /readyz).
func (s *Server) Ready(ctx context.Context) error {
	if s.ctx.Err() != nil {
		return fmt.Errorf("control is shutting down")
	}
	err := s.st.Read(ctx, func(tx store.Tx) error {
		_, err := tx.Setting(settingServerKey)
		return err
	})
	if err != nil {
		return fmt.Errorf("the store does not answer: %w", err)
	}
	return nil
}
