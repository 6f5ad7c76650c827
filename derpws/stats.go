//go:build !js

package derpws

import (
	"sync/atomic"

	"tsconnect/key"
)

// ClientStats are a relay's counters for one key. They accumulate over all of the key's
// connections, so they survive disconnects.
type ClientStats struct {
	// PacketsIn and BytesIn count packets the relay received from the key (SendPacket frames).
	PacketsIn, BytesIn uint64
	// PacketsOut and BytesOut count packets the relay wrote to the key (RecvPacket frames).
	PacketsOut, BytesOut uint64
	// Drops counts packets for the key that the relay dropped: its send queue was full, or its
	// connection failed or closed before they went out.
	Drops uint64
	// Connections counts the key's authenticated connections.
	Connections uint64
}

// keyStats is the live form of ClientStats.
type keyStats struct {
	packetsIn, bytesIn   atomic.Uint64
	packetsOut, bytesOut atomic.Uint64
	drops                atomic.Uint64
	connects             atomic.Uint64
}

// Stats returns the relay's counters for k; all zero for a key never seen.
func (s *Server) Stats(k key.Public) ClientStats {
	s.mu.RLock()
	st := s.stats[k]
	s.mu.RUnlock()
	if st == nil {
		return ClientStats{}
	}
	return ClientStats{
		PacketsIn:   st.packetsIn.Load(),
		BytesIn:     st.bytesIn.Load(),
		PacketsOut:  st.packetsOut.Load(),
		BytesOut:    st.bytesOut.Load(),
		Drops:       st.drops.Load(),
		Connections: st.connects.Load(),
	}
}
