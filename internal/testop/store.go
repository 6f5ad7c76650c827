package testop

import (
	"context"
	"fmt"
	"sync"

	"github.com/ory/fosite"
	"github.com/ory/fosite/storage"
	"golang.org/x/crypto/bcrypt"
)

// store is fosite's in-memory storage (codes, PKCE and OIDC sessions, tokens) with a client
// registry that may grow while the server runs.
type store struct {
	*storage.MemoryStore
	mu      sync.RWMutex
	clients map[string]*fosite.DefaultClient
}

func newStore() *store {
	return &store{MemoryStore: storage.NewMemoryStore(), clients: map[string]*fosite.DefaultClient{}}
}

func (s *store) addClient(c Client) error {
	// fosite compares client secrets against a bcrypt hash; the lowest cost keeps tests quick.
	hash, err := bcrypt.GenerateFromPassword([]byte(c.Secret), bcrypt.MinCost)
	if err != nil {
		return fmt.Errorf("testop: hashing the secret of client %q: %w", c.ID, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clients[c.ID] = &fosite.DefaultClient{
		ID:            c.ID,
		Secret:        hash,
		RedirectURIs:  append([]string{}, c.RedirectURIs...),
		ResponseTypes: []string{"code"},
		GrantTypes:    []string{"authorization_code"},
		Scopes:        []string{"openid", "email", "profile", "groups"},
	}
	return nil
}

// GetClient implements fosite.ClientManager.
func (s *store) GetClient(_ context.Context, id string) (fosite.Client, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c, ok := s.clients[id]
	if !ok {
		return nil, fosite.ErrNotFound
	}
	return c, nil
}
