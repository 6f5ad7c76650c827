package controlws

import (
	"net/netip"
	"time"

	"tsconnect/derpws"
	"tsconnect/key"
	"tsconnect/policy/rules"
)

// NetworkMap is what control tells a node about the network: itself, the peers it may
// reach, the users they belong to and the relays to use. Full maps and deltas both
// resolve to this type on the client.
type NetworkMap struct {
	Self    Node          `json:"self"`
	Peers   []Node        `json:"peers"`
	Users   []UserProfile `json:"users"`
	DERPMap *derpws.Map   `json:"derpMap"`
	// Domain names the network (e.g. "demo.tsconnect"); node names are unique within it.
	Domain string `json:"domain,omitempty"`
	// PacketFilter is the node's inbound packet filter, compiled from the policy for this
	// node alone. Nil means control sent none (no filtering); an empty filter admits nothing.
	PacketFilter *rules.Filter `json:"packetFilter,omitempty"`
	// SSHRules are the node's SSH rules in the order they are tried (check before accept),
	// concerning this node alone.
	SSHRules []rules.SSHRule `json:"sshRules,omitempty"`
	// ControlURLs are the base URLs of the control replicas serving this network now, the
	// one that sent the map among them (controlurls.go); a node that loses its control
	// connection tries the others. Empty from a control alone on its store, or one older
	// than failover: the node keeps to the URL it was given.
	ControlURLs []string `json:"controlURLs,omitempty"`
	// RecordFrom, on a recorder node, is the overlay addresses of the nodes whose ssh rules
	// name it as recorder: the only ones whose recordings it may accept (version 5 on;
	// sorted; see rules.NodeRules.RecordFrom). A connection of an older version has none.
	RecordFrom []netip.Addr `json:"recordFrom,omitempty"`
}

// Node is one machine of the network as others see it.
type Node struct {
	ID   int64  `json:"id"`
	Name string `json:"name"` // unique in the network; a DNS label
	// Key is the node key: its WireGuard and DERP identity. It may be rotated.
	Key key.Public `json:"key"`
	// MachineKey is the long-lived Noise static key of the machine.
	MachineKey key.Public `json:"machineKey"`
	// Addresses are exactly its /32 and /128; they are also its WireGuard allowed IPs.
	Addresses []netip.Prefix `json:"addresses"`
	// HomeDERP is the region ID of the relay it is reachable through; 0 if unknown.
	HomeDERP  int              `json:"homeDERP,omitempty"`
	Endpoints []netip.AddrPort `json:"endpoints,omitempty"`
	// User is the owner's ID; 0 for a tagged node, which belongs to no user.
	User int64    `json:"user,omitempty"`
	Tags []string `json:"tags,omitempty"`
	// SSH reports that the node runs our SSH server on port 22 of its overlay addresses.
	SSH bool `json:"ssh,omitempty"`
	// SSHHostKeys are its SSH host public keys in authorized_keys form.
	SSHHostKeys []string `json:"sshHostKeys,omitempty"`
	// SSHTools are the terminal multiplexers it offers SSH users (Hostinfo.SSHTools).
	SSHTools  []string  `json:"sshTools,omitempty"`
	Hostname  string    `json:"hostname,omitempty"` // as reported by the machine
	OS        string    `json:"os,omitempty"`
	Ephemeral bool      `json:"ephemeral,omitempty"`
	Online    bool      `json:"online,omitempty"`
	LastSeen  time.Time `json:"lastSeen,omitzero"`
	Created   time.Time `json:"created,omitzero"`
	// KeyExpiry is when Key stops being accepted unless the node re-authenticates; zero
	// when it never expires (expiry disabled, or a server before key expiry). Agents refuse
	// a peer past it by their own clock, with or without control.
	KeyExpiry time.Time `json:"keyExpiry,omitzero"`
}

// KeyExpired reports whether n's key has expired at now.
func (n *Node) KeyExpired(now time.Time) bool {
	return !n.KeyExpiry.IsZero() && !now.Before(n.KeyExpiry)
}

// UserProfile is the public face of a user.
type UserProfile struct {
	ID          int64  `json:"id"`
	LoginName   string `json:"loginName"` // an email address
	DisplayName string `json:"displayName,omitempty"`
}

// PeerByAddr returns the peer whose overlay addresses contain a.
func (nm *NetworkMap) PeerByAddr(a netip.Addr) (Node, bool) {
	for _, p := range nm.Peers {
		for _, pfx := range p.Addresses {
			if pfx.Addr() == a.Unmap() {
				return p, true
			}
		}
	}
	return Node{}, false
}

// PeerByName returns the peer with the given name (or its name within Domain).
func (nm *NetworkMap) PeerByName(name string) (Node, bool) {
	for _, p := range nm.Peers {
		if p.Name == name || (nm.Domain != "" && p.Name+"."+nm.Domain == name) {
			return p, true
		}
	}
	return Node{}, false
}

// UserByID returns the profile of user id.
func (nm *NetworkMap) UserByID(id int64) (UserProfile, bool) {
	for _, u := range nm.Users {
		if u.ID == id {
			return u, true
		}
	}
	return UserProfile{}, false
}
