package derpws

// Map is the DERP map in the common JSON format: the relay regions a node may use.
type Map struct {
	Regions map[int]*Region `json:"Regions"`
}

// Region is a set of relays that mesh with each other; a node's home is one region.
type Region struct {
	RegionID   int     `json:"RegionID"`
	RegionCode string  `json:"RegionCode"`
	RegionName string  `json:"RegionName"`
	Nodes      []*Node `json:"Nodes"`
}

// Node is one relay server of a region.
type Node struct {
	Name     string `json:"Name"`
	RegionID int    `json:"RegionID"`
	HostName string `json:"HostName"`
	IPv4     string `json:"IPv4,omitempty"`
	IPv6     string `json:"IPv6,omitempty"`
	// DERPPort is the HTTPS (or, with InsecureForTests, plain HTTP) port; 0 means 443.
	DERPPort int `json:"DERPPort,omitempty"`
	// STUNPort is the STUN UDP port; -1 means none, 0 DefaultSTUNPort (3478).
	STUNPort int `json:"STUNPort,omitempty"`
	// InsecureForTests means plain HTTP/WS; allowed for loopback only.
	InsecureForTests bool `json:"InsecureForTests,omitempty"`
}
