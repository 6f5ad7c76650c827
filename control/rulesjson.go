package control

import (
	"encoding/json"
	"net/netip"

	"tsconnect/policy/rules"
)

// ruleRest is a filter rule's fields after "src", as rules.FilterRule encodes them.
type ruleRest struct {
	Dst    []netip.Prefix    `json:"dst"`
	Ports  []rules.PortRange `json:"ports"`
	Protos []rules.Proto     `json:"protos,omitempty"`
	Origin string            `json:"origin,omitempty"`
}

// appendFilterJSON appends node id's packet filter (never null) as JSON. Each rule's
// sources are its source set's bytes, encoded once for every node and message holding
// them: a server's filter of every member's address costs a copy, not an encoding.
// Callers hold s.mu (read).
func appendFilterJSON(b []byte, c *compiled, id int64) []byte {
	nr := c.rulesOf(id)
	if nr == nil || len(nr.Filter) == 0 {
		return append(b, "[]"...)
	}
	acc := c.accOf(id)
	b = append(b, '[')
	for i, r := range nr.Filter {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"src":`...)
		b = append(b, acc[i].json()...)
		rest, _ := json.Marshal(ruleRest{r.Dst, r.Ports, r.Protos, r.Origin})
		b = append(append(b, ','), rest[1:]...)
	}
	return append(b, ']')
}

// appendRulesJSON appends node id's rules as a MapRules object, with ssh and recordFrom
// as its stream's version reads them (stream.sshFor, stream.recordFromFor).
func appendRulesJSON(b []byte, c *compiled, id int64, ssh []rules.SSHRule, recordFrom []netip.Addr) []byte {
	b = appendFilterJSON(append(b, `{"packetFilter":`...), c, id)
	js, _ := json.Marshal(ssh)
	b = append(append(b, `,"sshRules":`...), js...)
	if len(recordFrom) > 0 {
		js, _ = json.Marshal(recordFrom)
		b = append(append(b, `,"recordFrom":`...), js...)
	}
	return append(b, '}')
}
