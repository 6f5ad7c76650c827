package control

import (
	"slices"
	"strings"
	"sync"
	"time"

	"tsconnect/control/store"
	"tsconnect/controlws"
)

// Failover: each replica advertises its control URL (--server-url) in the setting
// settingControlURLs, renewed while it runs, as its relay is in settingRelayMesh; the map
// each replica sends lists every URL listed (NetworkMap.ControlURLs, its own included), so a
// node whose replica dies dials another. A change of the set sends every stream here a full
// map (rare: a replica starting, stopping or running out of renewals).

// settingControlURLs lists the replicas' control URLs: JSON [{"url": …, "expires": unix ns}].
const settingControlURLs = "control_urls"

// replicaURLs is the set of the replicas' control URLs the maps list; its zero value is ready.
type replicaURLs struct {
	mu   sync.Mutex
	urls []string      // sorted; nil alone on the store
	wake chan struct{} // capacity 1; made by listenReplicas
}

// controlURL is this replica's base URL as nodes dial it, "" when there is none to
// advertise (no --server-url, one a node would refuse, or control alone on its store).
func (s *Server) controlURL() string {
	u := strings.TrimSuffix(s.cfg.ServerURL, "/")
	if s.origin == "" || u == "" || controlws.CheckControlURL(u) != nil {
		return ""
	}
	return u
}

// controlURLsLoop advertises this replica's control URL, renewing its entry every
// meshRenewEvery, and keeps the list the maps carry, read again whenever another replica
// announces a change of it. Callers run it only when controlURL is not "".
func (s *Server) controlURLsLoop() {
	defer s.wg.Done()
	self := s.controlURL()
	s.setReplicaURLs([]string{self})
	t := time.NewTicker(meshRenewEvery)
	defer t.Stop()
	renew := true
	for {
		var others []meshEntry
		err := s.st.Update(s.ctx, func(tx store.Tx) error {
			var err error
			if others, err = s.readControlURLs(tx); err != nil || !renew {
				return err
			}
			if len(others) >= controlws.MaxControlURLs {
				s.logf("control: %d control URLs listed already, the limit: not advertising %s", len(others), self)
				return nil
			}
			return writeURLList(tx, settingControlURLs, append(others, meshEntry{URL: self, Expires: s.now().Add(meshEntryTTL).UnixNano()}))
		})
		if err != nil && s.ctx.Err() == nil {
			s.logf("control: control URLs of the replicas: %v", err)
		}
		if err == nil {
			s.setReplicaURLs(append(meshEntryURLs(others), self))
		}
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			renew = true
		case <-s.replURLs.wake:
			renew = false
		}
	}
}

// readControlURLs returns the unexpired entries of settingControlURLs but this replica's.
func (s *Server) readControlURLs(tx store.Tx) ([]meshEntry, error) {
	self := s.controlURL()
	list, err := s.readURLList(tx, settingControlURLs, func(e meshEntry) bool {
		return e.URL == self || controlws.CheckControlURL(e.URL) != nil
	})
	if len(list) > controlws.MaxControlURLs-1 {
		list = list[:controlws.MaxControlURLs-1] // room for this replica's own
	}
	return list, err
}

// dropControlURL takes this replica's entry out of settingControlURLs (a clean stop).
func (s *Server) dropControlURL(tx store.Tx) error {
	if s.controlURL() == "" {
		return nil
	}
	others, err := s.readControlURLs(tx)
	if err != nil {
		return err
	}
	return writeURLList(tx, settingControlURLs, others)
}

// setReplicaURLs makes urls the list the maps carry; when the set changed, every stream
// here gets a full map with it.
func (s *Server) setReplicaURLs(urls []string) {
	urls = slices.Clone(urls)
	slices.Sort(urls)
	urls = slices.Compact(urls)
	r := &s.replURLs
	r.mu.Lock()
	same := slices.Equal(r.urls, urls)
	first := r.urls == nil
	if !same {
		r.urls = urls
	}
	r.mu.Unlock()
	if same || first {
		return
	}
	s.logf("control: the replicas' control URLs are now %s", strings.Join(urls, " "))
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, sts := range s.streams {
		for st := range sts {
			st.markFull()
		}
	}
}

// ReplicaURLs returns the control URLs of the replicas serving this store, this one's
// included, as the maps list them (nil alone on the store); the caller must not modify it.
func (s *Server) ReplicaURLs() []string { return s.replURLs.list() }

// list returns the URLs the maps carry (nil alone on the store); the caller must not modify it.
func (r *replicaURLs) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.urls
}

// changed wakes controlURLsLoop to read the list (another replica changed it).
func (r *replicaURLs) changed() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}
