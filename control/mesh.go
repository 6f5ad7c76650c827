package control

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"tsconnect/control/store"
	"tsconnect/key"
)

// The embedded relays of replicas mesh by themselves: the mesh key is a secret of the
// store, and each replica advertises its relay's URL in the setting settingRelayMesh,
// renewed while it runs; the others mesh with every URL listed there.

// RelayKeyFile is the embedded relay's private key in the state directory of a replica
// (alone on its store, control keeps the relay's key in the store).
const RelayKeyFile = "derp.key"

// settingRelayMesh lists the replicas' relays: JSON [{"url": …, "expires": unix ns}].
const settingRelayMesh = "relay_mesh"

const (
	// meshRenewEvery is how often a replica renews its relay's entry in settingRelayMesh.
	meshRenewEvery = 10 * time.Second
	// meshEntryTTL is how long an entry stays listed without renewal.
	meshEntryTTL = 3 * meshRenewEvery
	// maxMeshPeers bounds the relays listed, and those one relay meshes with.
	maxMeshPeers = 32
	// maxMeshURL bounds the length of a listed URL.
	maxMeshURL = 512
)

// meshEntry is one replica's relay in settingRelayMesh, or its control URL in
// settingControlURLs.
type meshEntry struct {
	URL string `json:"url"`
	// Addr is where a relay is reached (ip:port) when not at URL's host (Config.RelayAddr).
	Addr    string `json:"addr,omitempty"`
	Expires int64  `json:"expires"` // Unix nanoseconds
}

// String names e's relay in log lines: its URL, and the address it is dialled at if any.
func (e meshEntry) String() string {
	if e.Addr == "" {
		return e.URL
	}
	return e.URL + " at " + e.Addr
}

// self reports whether e is the entry of a replica whose URL is url and address addr.
func (e meshEntry) self(url, addr string) bool { return e.URL == url && e.Addr == addr }

// meshPeers is the set of relays (URL and address) the embedded relay meshes with; its
// zero value is ready.
type meshPeers struct {
	mu   sync.Mutex
	with map[meshEntry]bool // Expires zero
	wake chan struct{}      // capacity 1; made by listenReplicas
}

// replicaRelayKeys sets, for a replica, the embedded relay's own key (RelayKeyFile in the
// state directory: each replica's relay has its own) and returns the region's mesh key
// (a secret of the store); alone on its store, control needs neither and it returns "".
func (s *Server) replicaRelayKeys() (meshKey string, err error) {
	if s.origin == "" {
		return "", nil
	}
	if s.derpKey, err = key.LoadOrCreateFile(filepath.Join(s.cfg.StateDir, RelayKeyFile)); err != nil {
		return "", fmt.Errorf("control: relay key: %w", err)
	}
	b, err := s.Secret(context.Background(), "derp_mesh")
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:32]), nil
}

// relayURL is the URL the other replicas' relays reach this one's at.
func (s *Server) relayURL() string { return strings.TrimSuffix(s.cfg.ServerURL, "/") + "/derp" }

// meshLoop advertises this replica's relay, renewing its entry every meshRenewEvery, and
// meshes with the relays listed, again whenever another replica announces a change of the
// list. Callers run it only for a replica with an embedded relay.
func (s *Server) meshLoop() {
	defer s.wg.Done()
	t := time.NewTicker(meshRenewEvery)
	defer t.Stop()
	renew := true
	for {
		var relays []meshEntry
		err := s.st.Update(s.ctx, func(tx store.Tx) error {
			var err error
			relays, err = s.meshList(tx, renew)
			return err
		})
		if err != nil && s.ctx.Err() == nil {
			s.logf("control: relay mesh: %v", err)
		}
		s.meshWith(relays)
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			renew = true
		case <-s.meshed.wake:
			renew = false
		}
	}
}

// meshList reads settingRelayMesh, dropping expired entries, and with renew writes this
// relay's entry anew; it returns the other relays' entries.
func (s *Server) meshList(tx store.Tx, renew bool) ([]meshEntry, error) {
	others, err := s.readMeshList(tx)
	if err != nil || !renew {
		return others, err
	}
	if len(others) >= maxMeshPeers {
		return others, fmt.Errorf("%d relays listed already, the limit: not advertising %s", len(others), s.relayURL())
	}
	return others, s.writeMeshList(tx, append(slices.Clone(others), meshEntry{URL: s.relayURL(), Addr: s.cfg.RelayAddr, Expires: s.now().Add(meshEntryTTL).UnixNano()}))
}

// dropMeshEntry takes this relay's entry out of settingRelayMesh (a clean stop).
func (s *Server) dropMeshEntry(tx store.Tx) error {
	others, err := s.readMeshList(tx)
	if err != nil {
		return err
	}
	return s.writeMeshList(tx, others)
}

// readMeshList returns the unexpired entries of settingRelayMesh but this relay's.
func (s *Server) readMeshList(tx store.Tx) ([]meshEntry, error) {
	url, addr := s.relayURL(), s.cfg.RelayAddr
	return s.readURLList(tx, settingRelayMesh, func(e meshEntry) bool {
		return e.self(url, addr) || !validMeshURL(e.URL) || (e.Addr != "" && !validMeshAddr(e.Addr))
	})
}

func (s *Server) writeMeshList(tx store.Tx, list []meshEntry) error {
	return writeURLList(tx, settingRelayMesh, list)
}

// readURLList returns the unexpired entries of setting (a list of meshEntry, as
// settingRelayMesh and settingControlURLs are) but those skip names (this replica's own
// and those not valid). A setting that does not parse, or is over maxMeshPeers entries, is
// started over.
func (s *Server) readURLList(tx store.Tx, setting string, skip func(meshEntry) bool) ([]meshEntry, error) {
	var list []meshEntry
	v, err := tx.Setting(setting)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return nil, err
	case json.Unmarshal([]byte(v), &list) != nil || len(list) > maxMeshPeers:
		s.logf("control: replicas: setting %s is not a list of up to %d entries: starting it over", setting, maxMeshPeers)
		list = nil
	}
	now := s.now().UnixNano()
	return slices.DeleteFunc(list, func(e meshEntry) bool {
		return e.Expires <= now || skip(e)
	}), nil
}

// writeURLList stores list as setting.
func writeURLList(tx store.Tx, setting string, list []meshEntry) error {
	b, err := json.Marshal(list)
	if err != nil {
		return err
	}
	return tx.SetSetting(setting, string(b))
}

// validMeshAddr reports whether a is an ip:port a relay can be dialled at.
func validMeshAddr(a string) bool {
	ap, err := netip.ParseAddrPort(a)
	return err == nil && ap.Port() != 0 && !ap.Addr().IsUnspecified() && !ap.Addr().IsMulticast()
}

func meshEntryURLs(list []meshEntry) []string {
	out := make([]string, len(list))
	for i, e := range list {
		out[i] = e.URL
	}
	return out
}

// validMeshURL reports whether u is an http(s) URL of a relay, within maxMeshURL.
func validMeshURL(u string) bool {
	p, err := url.Parse(u)
	return err == nil && len(u) <= maxMeshURL && (p.Scheme == "http" || p.Scheme == "https") && p.Host != ""
}

// meshWith meshes the embedded relay with those of relays it does not mesh with yet, up to
// maxMeshPeers in the server's life (a relay that goes away is retried by its client).
func (s *Server) meshWith(relays []meshEntry) {
	mr, ok := s.relay.(interface{ MeshWithAt(url, addr string) error })
	if !ok {
		return
	}
	m := &s.meshed
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.with == nil {
		m.with = map[meshEntry]bool{}
	}
	for _, e := range relays {
		e.Expires = 0
		if m.with[e] {
			continue
		}
		name := e.String()
		if len(m.with) >= maxMeshPeers {
			s.logf("control: relay mesh: already meshed with %d relays, the limit: not with %s", len(m.with), name)
			return
		}
		if err := mr.MeshWithAt(e.URL, e.Addr); err != nil {
			s.logf("control: relay mesh with %s: %v", name, err)
			continue
		}
		m.with[e] = true
		s.logf("control: relay meshes with %s", name)
	}
}

// meshChanged wakes meshLoop to read the list (another replica changed it).
func (m *meshPeers) meshChanged() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}
