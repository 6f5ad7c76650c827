package control

import (
	"context"
	"time"

	"tsconnect/control/store"
)

// Replicated reports whether the server is one replica of several on a shared store, so
// that what the console counts in memory (login rate limits) must be counted in the store.
func (s *Server) Replicated() bool { return s.origin != "" }

// ReserveFailure counts an attempt of key in scope (a login rate limit) as a failure now,
// in the store, unless key has limit failures within window: then it returns how long it
// must wait. maxKeys bounds the keys the scope holds (0: no bound). See store.Tx.ReserveFailure.
func (s *Server) ReserveFailure(ctx context.Context, scope, key string, window time.Duration, limit, maxKeys int) (wait time.Duration, err error) {
	err = s.st.Update(ctx, func(tx store.Tx) error {
		wait, err = tx.ReserveFailure(scope, key, s.now(), window, limit, maxKeys)
		return err
	})
	return wait, err
}

// ReleaseFailure takes back key's latest failure in scope.
func (s *Server) ReleaseFailure(ctx context.Context, scope, key string) error {
	return s.st.Update(ctx, func(tx store.Tx) error { return tx.ReleaseFailure(scope, key) })
}

// ResetFailures forgets key's failures in scope.
func (s *Server) ResetFailures(ctx context.Context, scope, key string) error {
	return s.st.Update(ctx, func(tx store.Tx) error { return tx.ResetFailures(scope, key) })
}
