package control

import (
	"sync"
	"testing"

	"tsconnect/controlws"
)

// TestTakeWhilePeersChangeDoesNotAbort: a stream whose own entry changed while no peer was
// dirty used to range over the live dirty map after unlocking it, while markPeer (another
// node's update) wrote into it: "concurrent map iteration and map write" killed control.
// Under -race this fails at once on the old code; without it the runtime may abort.
func TestTakeWhilePeersChangeDoesNotAbort(t *testing.T) {
	e := newEnv(t, nil)
	u := e.user("alice@example.com")
	k := e.authKey(AuthKeyOptions{User: u.ID, Reusable: true})
	_, self := e.mustRegister(k, "self")
	var peers []int64
	for i := range 8 {
		_, n := e.mustRegister(k, "peer"+string(rune('a'+i)))
		peers = append(peers, n.ID)
	}
	st := newStream(e.s, self.ID, 1, func(*controlws.Envelope) error { return nil })
	st.take() // the first, full map
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			st.markPeer(peers[i%len(peers)])
		}
	}()
	for range 20000 {
		st.markSelf()
		st.take()
	}
	close(stop)
	wg.Wait()
}
