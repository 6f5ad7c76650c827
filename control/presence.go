package control

import (
	"context"
	"errors"
	"maps"
	"slices"
	"time"

	"tsconnect/control/store"
)

// Presence across replicas: a node is online when it has a map stream on any replica. A
// replica announces a node online (store.ChangeOnline) in the transaction that opens its
// first stream, gone (store.ChangeGone) in the one that records its last stream's end,
// and every presenceEvery announces all its online nodes again; the others keep what they
// heard, and forget what they have not heard again within presenceTTL (a replica that
// died, or an announcement lost).

const (
	// presenceEvery is how often a replica announces its online nodes again.
	presenceEvery = 10 * time.Second
	// presenceTTL is how long a node stays online on another replica without being heard of.
	presenceTTL = 3 * presenceEvery
	// presencePerTx bounds the nodes one renewal announces (under store.MaxChanges).
	presencePerTx = 200
)

// noteOnline adds to tx's announcement that node id is online here (on) or no longer.
// Alone on its store (tx announces nothing), it does nothing.
func noteOnline(tx store.Tx, id int64, on bool) {
	if rt, ok := tx.(*recordingTx); ok {
		k := store.ChangeGone
		if on {
			k = store.ChangeOnline
		}
		rt.note(k, id)
	}
}

// onlineLocked reports whether node id has a map stream here or, as last heard, on
// another replica. Callers hold s.mu.
func (s *Server) onlineLocked(id int64) bool {
	return len(s.streams[id]) > 0 || len(s.elsewhere[id]) > 0
}

// applyPresence records what other replicas said of their online nodes and tells the
// streams of each node whose online state changed.
func (s *Server) applyPresence(p map[presenceKey]bool) {
	if len(p) == 0 {
		return
	}
	now := s.now()
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	var changed []int64
	s.mu.Lock()
	for k, on := range p {
		if _, ok := s.nodes[k.id]; !ok && on {
			continue // unknown here (yet): its next renewal will tell
		}
		was := s.onlineLocked(k.id)
		if on {
			if s.elsewhere[k.id] == nil {
				s.elsewhere[k.id] = map[string]time.Time{}
			}
			s.elsewhere[k.id][k.origin] = now
		} else {
			delete(s.elsewhere[k.id], k.origin)
			if len(s.elsewhere[k.id]) == 0 {
				delete(s.elsewhere, k.id)
			}
		}
		if s.onlineLocked(k.id) != was {
			s.onlineChanged(k.id)
			changed = append(changed, k.id)
		}
	}
	s.mu.Unlock()
	for _, id := range changed {
		s.publishChanged(id)
	}
}

// presenceLoop announces this replica's online nodes every presenceEvery and forgets the
// other replicas' nodes not heard of within presenceTTL, until the server closes.
func (s *Server) presenceLoop() {
	defer s.wg.Done()
	t := time.NewTicker(presenceEvery)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		s.mu.RLock()
		ids := slices.Sorted(maps.Keys(s.streams))
		s.mu.RUnlock()
		for chunk := range slices.Chunk(ids, presencePerTx) {
			err := s.st.Update(s.ctx, func(tx store.Tx) error {
				for _, id := range chunk {
					noteOnline(tx, id, true)
				}
				return nil
			})
			if err != nil && s.ctx.Err() == nil {
				s.logf("control: announcing the online nodes: %v", err)
			}
		}
		s.expirePresence()
	}
}

// expirePresence forgets the other replicas' online nodes not heard of within presenceTTL.
func (s *Server) expirePresence() {
	cutoff := s.now().Add(-presenceTTL)
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	var changed []int64
	s.mu.Lock()
	for id, origins := range s.elsewhere {
		was := s.onlineLocked(id)
		for o, heard := range origins {
			if heard.Before(cutoff) {
				delete(origins, o)
			}
		}
		if len(origins) == 0 {
			delete(s.elsewhere, id)
		}
		if _, live := s.nodes[id]; !live {
			delete(s.elsewhere, id)
			continue
		}
		if s.onlineLocked(id) != was {
			s.onlineChanged(id)
			changed = append(changed, id)
		}
	}
	s.mu.Unlock()
	for _, id := range changed {
		s.publishChanged(id)
	}
}

// announceStopGone announces, presencePerTx nodes a transaction, that the nodes whose last
// stream here ended while this replica stopped (stopGone) are gone from it, and records
// when they were last seen: the other replicas learn it at once, in a few transactions
// rather than one a node. Close calls it once every stream has ended.
func (s *Server) announceStopGone() {
	s.mu.Lock()
	ids := s.stopGone
	s.stopGone = nil
	s.mu.Unlock()
	now := s.now().UTC()
	for chunk := range slices.Chunk(ids, presencePerTx) {
		err := s.st.Update(context.Background(), func(tx store.Tx) error {
			for _, id := range chunk {
				noteOnline(tx, id, false)
				if err := tx.SetLastSeen(id, now); err != nil && !errors.Is(err, store.ErrNotFound) {
					return err
				}
			}
			return nil
		})
		if err != nil {
			s.logf("control: announcing %d nodes gone from this stopping replica: %v", len(chunk), err)
		}
	}
}
