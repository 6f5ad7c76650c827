package control

import "sync"

// pubQueue holds the nodes whose registration or new stream is yet to be published. One
// goroutine (publishLoop) publishes whatever has gathered, with one compilation: a burst
// of nodes connecting at once is compiled and told per batch, not per node, while the
// registrations go on.
type pubQueue struct {
	mu   sync.Mutex
	ids  map[int64]struct{}
	wake chan struct{} // capacity 1
}

// publishSoon queues node id's change for publishLoop. Callers have updated the cache.
func (s *Server) publishSoon(id int64) {
	q := &s.pubq
	q.mu.Lock()
	if q.ids == nil {
		q.ids = map[int64]struct{}{}
	}
	q.ids[id] = struct{}{}
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// publishLoop publishes the queued nodes, a batch at a time, until the server closes.
func (s *Server) publishLoop() {
	defer s.wg.Done()
	q := &s.pubq
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-q.wake:
		}
		s.flushPublishes()
	}
}

// flushPublishes publishes what is queued now, under writeMu (which callers do not hold):
// once it returns, every registration and stream opened before has been told.
func (s *Server) flushPublishes() {
	q := &s.pubq
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	q.mu.Lock()
	ids := q.ids
	q.ids = nil
	q.mu.Unlock()
	if len(ids) > 0 {
		s.publishChangedAll(ids)
	}
}
