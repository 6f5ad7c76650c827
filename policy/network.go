package policy

import "net/netip"

// Node is one machine of the network as the policy sees it.
type Node struct {
	ID   int64
	Name string
	// Addresses are the node's overlay addresses (a /32 and a /128).
	Addresses []netip.Prefix
	// User is the owner's login (an email); "" for a tagged node.
	User string
	// Tags are the node's ACL tags ("tag:x"). A tagged node belongs to no user,
	// whatever User says.
	Tags []string
	// UserGroups are the owner's groups at the identity provider (the OIDC groups claim
	// of their latest sign-in). They count only where the policy opts in: a group listing
	// "idpgroup:NAME" includes every user holding NAME. Ignored for tagged nodes.
	UserGroups []string
}

// Tagged reports whether n carries tags (and so belongs to no user).
func (n Node) Tagged() bool { return len(n.Tags) > 0 }

// owner is the user n belongs to, or "" when tagged or unowned.
func (n Node) owner() string {
	if n.Tagged() {
		return ""
	}
	return n.User
}

func (n Node) hasTag(t string) bool {
	for _, x := range n.Tags {
		if x == t {
			return true
		}
	}
	return false
}

// User is one user of the network.
type User struct {
	Email string // login name
}

// Network is everything compilation needs to know about the network.
type Network struct {
	Nodes []Node
	Users []User
}
