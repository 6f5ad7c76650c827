package control

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"tsconnect/control/store"
	"tsconnect/key"
)

// settingEphemeralRefresh is when the latest sweep refreshed the last-seen time of the online
// ephemeral nodes (Unix nanoseconds): a node still holding exactly that time at start-up was
// online when control stopped without recording its stream's end (a crash).
const settingEphemeralRefresh = "ephemeral_refresh"

// settingStopping is when control last began a clean stop (Unix nanoseconds; "0" once
// start-up has used it): a node whose stream ended at or after it was online at the stop.
const settingStopping = "control_stopping"

// timeSetting reads a setting holding Unix nanoseconds; zero when unset or "0".
func timeSetting(tx store.Tx, name string) (time.Time, error) {
	v, err := tx.Setting(name)
	if errors.Is(err, store.ErrNotFound) || v == "0" {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, err
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("setting %s: %w", name, err)
	}
	return time.Unix(0, n).UTC(), nil
}

// reviveOnline gives the ephemeral nodes that were online when control last stopped the full
// grace from start-up, so that control's own downtime does not count against them: after a
// clean stop their streams ended at or after settingStopping; after a crash their last-seen
// time is the last sweep's refresh, up to half the grace before the crash.
func (s *Server) reviveOnline() error {
	var refresh, stopping time.Time
	err := s.st.Read(s.ctx, func(tx store.Tx) error {
		var err error
		if refresh, err = timeSetting(tx, settingEphemeralRefresh); err != nil {
			return err
		}
		stopping, err = timeSetting(tx, settingStopping)
		return err
	})
	if err != nil {
		return err
	}
	var revive []int64
	s.mu.RLock()
	for id, ln := range s.nodes {
		seen := ln.n.LastSeen
		if ln.n.Ephemeral && ((!refresh.IsZero() && seen.Equal(refresh)) || (!stopping.IsZero() && !seen.Before(stopping))) {
			revive = append(revive, id)
		}
	}
	s.mu.RUnlock()
	now := s.now().UTC()
	err = s.st.Update(s.ctx, func(tx store.Tx) error {
		for _, id := range revive {
			if err := tx.SetLastSeen(id, now); err != nil {
				return err
			}
		}
		return tx.SetSetting(settingStopping, "0")
	})
	if err != nil {
		return err
	}
	s.mu.Lock()
	for _, id := range revive {
		s.nodes[id].n.LastSeen = now
	}
	s.mu.Unlock()
	if len(revive) > 0 {
		s.logf("control: %d ephemeral node(s) were online when control last stopped: their grace runs from now", len(revive))
	}
	return nil
}

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
		var err error
		if stale, err = s.sweepStale(tx, stale, now, cutoff); err != nil {
			return err
		}
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
		if len(online) == 0 {
			return nil
		}
		return tx.SetSetting(settingEphemeralRefresh, strconv.FormatInt(now.UnixNano(), 10))
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
