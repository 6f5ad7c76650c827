package control

import (
	"time"

	"tsconnect/control/store"
	"tsconnect/key"
)

// sweepLoop deletes ephemeral nodes that stay offline longer than EphemeralGrace, the
// first time right away (nodes left stale while the server was down), then every half grace.
func (s *Server) sweepLoop() {
	defer s.wg.Done()
	every := max(s.cfg.EphemeralGrace/2, 10*time.Millisecond)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		s.sweepEphemeral()
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sweepEphemeral runs one sweep. Online ephemeral nodes get their last-seen time refreshed,
// so a server restart does not find them stale.
func (s *Server) sweepEphemeral() {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	now := s.now().UTC()
	cutoff := now.Add(-s.cfg.EphemeralGrace)
	var stale, online []int64
	s.mu.RLock()
	for id, ln := range s.nodes {
		if !ln.n.Ephemeral {
			continue
		}
		switch {
		case len(s.streams[id]) > 0:
			online = append(online, id)
		case ln.n.LastSeen.Before(cutoff):
			stale = append(stale, id)
		}
	}
	s.mu.RUnlock()
	if len(stale) == 0 && len(online) == 0 {
		return
	}
	err := s.st.Update(s.ctx, func(tx store.Tx) error {
		for _, id := range stale {
			if err := tx.PurgeNode(id); err != nil {
				return err
			}
		}
		for _, id := range online {
			if err := tx.SetLastSeen(id, now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		if s.ctx.Err() == nil {
			s.logf("control: ephemeral sweep: %v", err)
		}
		return
	}
	var keys []key.Public
	var conns []*nodeConn
	for _, id := range stale {
		s.mu.RLock()
		keys = append(keys, s.nodes[id].n.Key)
		s.mu.RUnlock()
		conns = append(conns, s.forgetNode(id)...)
		s.logf("control: deleted ephemeral node %d: offline longer than %v", id, s.cfg.EphemeralGrace)
	}
	for i := range keys {
		s.dropNode(keys[i], nil)
	}
	for _, nc := range conns {
		nc.close()
	}
}
