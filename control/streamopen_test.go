package control

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"tsconnect/control/store"
	"tsconnect/control/store/sqlitestore"
	"tsconnect/controlws"
)

// countingStore counts read-write transactions.
type countingStore struct {
	store.Store
	updates atomic.Int64
}

func (c *countingStore) Update(ctx context.Context, fn func(store.Tx) error) error {
	c.updates.Add(1)
	return c.Store.Update(ctx, fn)
}

// TestStreamsOpenTogether: map requests that arrive while control is busy open together in a
// few transactions (not one each), every node gets its first map, and a refused request
// among them (a node key that is not the machine's) fails alone with its own error.
func TestStreamsOpenTogether(t *testing.T) {
	const n = 40
	st, err := sqlitestore.Open(filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	cs := &countingStore{Store: st}
	e := newEnv(t, func(c *Config) { c.Store = cs })
	u := e.user("alice@example.com")
	k := e.authKey(AuthKeyOptions{User: u.ID, Reusable: true})
	machines := make([]*machine, n)
	for i := range machines {
		machines[i], _ = e.mustRegister(k, "node"+string(rune('a'+i%26))+string(rune('a'+i/26)))
	}
	bad := machines[n-1]
	bad.nk = newKey() // asks for a node key it never registered

	e.s.writeMu.Lock() // control busy: every request queues
	watchers := make([]*watcher, n)
	for i, m := range machines {
		watchers[i] = m.watch(t)
	}
	q := &e.s.opens
	for deadline := time.Now().Add(20 * time.Second); ; {
		q.mu.Lock()
		waiting := len(q.queue) + q.opening
		q.mu.Unlock()
		if waiting == n {
			break
		}
		if time.Now().After(deadline) {
			e.s.writeMu.Unlock()
			t.Fatalf("%d of %d map requests queued", waiting, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	before := cs.updates.Load()
	e.s.writeMu.Unlock()
	for i, w := range watchers[:n-1] {
		w.waitFor(t, machines[i].nk.Public().ShortString()+"'s first map", func(nm *controlws.NetworkMap) bool {
			return len(nm.Peers) == n-1 // the refused machine's node is registered, only offline
		})
	}
	wantCode(t, watchers[n-1].ended(t), controlws.CodeNotRegistered)
	if txs := cs.updates.Load() - before; txs > n/4 {
		t.Fatalf("%d streams opened in %d transactions, want a few", n, txs)
	}
}
