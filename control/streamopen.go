package control

import (
	"context"
	"sync"

	"tsconnect/control/store"
	"tsconnect/controlws"
	"tsconnect/key"
)

// maxOpensAtOnce bounds how many queued map requests one transaction opens.
const maxOpensAtOnce = 256

// streamOpens queues map requests that wait for their stream: they are opened together, many
// in one store transaction, so that 10,000 nodes connecting at once cost a few hundred
// commits instead of 10,000.
type streamOpens struct {
	mu      sync.Mutex
	queue   []*streamOpen
	opening int  // how many requests the batch being opened holds
	running bool // a goroutine is opening batches
}

// streamOpen is one map request waiting for its stream.
type streamOpen struct {
	ctx   context.Context
	nc    *nodeConn
	reqID uint64
	req   *controlws.MapRequest
	done  chan struct{}
	st    *stream
	err   error
}

// openStream validates a map request and registers the stream; the node is online from now.
// It waits for the batch that opens it.
func (s *Server) openStream(ctx context.Context, nc *nodeConn, reqID uint64, req *controlws.MapRequest) (*stream, error) {
	o := &streamOpen{ctx: ctx, nc: nc, reqID: reqID, req: req, done: make(chan struct{})}
	q := &s.opens
	q.mu.Lock()
	q.queue = append(q.queue, o)
	if !q.running {
		q.running = true
		go s.openBatches()
	}
	q.mu.Unlock()
	<-o.done // a batch is one short transaction: not cut short by ctx, or a stream could open unrun
	return o.st, o.err
}

// openBatches opens queued map requests, a batch at a time, until the queue is empty.
func (s *Server) openBatches() {
	q := &s.opens
	for {
		q.mu.Lock()
		q.opening = 0
		n := min(len(q.queue), maxOpensAtOnce)
		if n == 0 {
			q.running = false
			q.mu.Unlock()
			return
		}
		batch := q.queue[:n:n]
		q.queue = q.queue[n:]
		if len(q.queue) == 0 {
			q.queue = nil
		}
		q.opening = n
		q.mu.Unlock()
		s.writeMu.Lock()
		s.openBatchLocked(batch)
		s.writeMu.Unlock()
		for _, o := range batch {
			close(o.done)
		}
	}
}

// openBatchLocked opens batch in one transaction; a request refused (its node deleted, its
// key not the machine's) fails alone. Callers hold writeMu.
func (s *Server) openBatchLocked(batch []*streamOpen) {
	nodes := make([]store.Node, len(batch))
	err := s.st.Update(context.Background(), func(tx store.Tx) error {
		machines := make([]key.Public, 0, len(batch))
		for _, o := range batch {
			o.err = context.Cause(o.ctx)
			if o.err == nil {
				machines = append(machines, o.nc.machine)
			}
		}
		found, err := tx.NodesByMachineKeys(machines)
		if err != nil {
			return err // the store failed: the transaction is lost for all
		}
		seen := make([]*store.Node, 0, len(machines))
		now := s.now().UTC()
		for i, o := range batch {
			if o.err != nil {
				continue
			}
			n, ok := found[o.nc.machine]
			if o.err = openCheck(n, ok, o); o.err != nil {
				continue
			}
			n.LastSeen = now
			if hi := marshalHostinfo(o.req.Hostinfo); hi != nil {
				n.Hostinfo = hi
			}
			nodes[i] = n
			seen = append(seen, &nodes[i])
			noteOnline(tx, n.ID, true)
		}
		return tx.SetSeenAll(seen)
	})
	if err != nil {
		for _, o := range batch {
			o.err = err
		}
		return
	}
	var opened []int64
	s.mu.Lock()
	for i, o := range batch {
		if o.err != nil {
			continue
		}
		if s.closed {
			o.err = errf(controlws.CodeInternal, "server shutting down")
			continue
		}
		n := nodes[i]
		st := newStream(s, n.ID, o.reqID, o.nc.conn.WriteEnvelope)
		st.rulesDelta = o.nc.version >= controlws.VersionRulesDelta
		st.filterDelta = o.nc.version >= controlws.VersionFilterDelta
		st.recording = o.nc.version >= controlws.VersionRecording
		st.recordFromDelta = o.nc.version >= controlws.VersionRecordFromDelta
		o.nc.nodeID.Store(n.ID)
		s.cacheNode(n)
		if s.streams[n.ID] == nil {
			s.streams[n.ID] = map[*stream]struct{}{}
		}
		s.streams[n.ID][st] = struct{}{}
		s.onlineChanged(n.ID)
		o.st = st
		opened = append(opened, n.ID)
	}
	s.mu.Unlock()
	for _, id := range opened {
		s.publishSoon(id) // its own first map needs no publish; its peers hear with others'
	}
}

// openCheck checks that o's machine, whose newest node is n (ok false: it has none), holds
// the node key it asks a map for.
func openCheck(n store.Node, ok bool, o *streamOpen) error {
	switch {
	case !ok:
		return errf(controlws.CodeNotRegistered, "this machine has no node: register first")
	case !n.Deleted.IsZero():
		return errf(controlws.CodeNodeDeleted, "this machine's node was deleted")
	case n.NodeKey != o.req.NodeKey:
		return errf(controlws.CodeNotRegistered, "node key %s is not this machine's node key: register it first", o.req.NodeKey.ShortString())
	case n.LoggedOut:
		return errf(controlws.CodeNotRegistered, "this node logged out: register with a new auth key")
	}
	return nil
}
