package policy

import (
	"fmt"
	"strconv"
	"strings"

	"tsconnect/policy/rules"
)

// defaultProtos apply when a rule names no protocol, as in the established format.
var defaultProtos = []rules.Proto{rules.ProtoTCP, rules.ProtoUDP, rules.ProtoICMP, rules.ProtoICMPv6}

var protoNames = map[string]rules.Proto{
	"icmp": rules.ProtoICMP, "igmp": rules.ProtoIGMP, "tcp": rules.ProtoTCP, "udp": rules.ProtoUDP, "gre": rules.ProtoGRE,
	"esp": rules.ProtoESP, "ah": rules.ProtoAH, "ipv6-icmp": rules.ProtoICMPv6, "icmpv6": rules.ProtoICMPv6, "sctp": rules.ProtoSCTP,
}

func parseProto(s string) (rules.Proto, error) {
	if p, ok := protoNames[strings.ToLower(s)]; ok {
		return p, nil
	}
	n, err := strconv.ParseUint(s, 10, 8)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("unknown protocol %q (want tcp, udp, icmp, ipv6-icmp, sctp, ... or a number 1-255)", s)
	}
	return rules.Proto(n), nil
}

// parsePorts reads "*", "22", "80,443" or "1000-2000" (and lists of those).
func parsePorts(s string) ([]rules.PortRange, error) {
	if s == "*" {
		return []rules.PortRange{rules.AllPorts}, nil
	}
	var out []rules.PortRange
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		first, err := parsePort(lo)
		if err != nil {
			return nil, err
		}
		last := first
		if isRange {
			if last, err = parsePort(hi); err != nil {
				return nil, err
			}
			if last < first {
				return nil, fmt.Errorf("bad port range %q: %d is above %d", part, first, last)
			}
		}
		out = append(out, rules.PortRange{First: first, Last: last})
	}
	return out, nil
}

func parsePort(s string) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || (s != "0" && strings.HasPrefix(s, "0")) {
		return 0, fmt.Errorf("bad port %q: want a number 0-65535, a range a-b or *", s)
	}
	return uint16(n), nil
}

// splitTargetPorts splits an acls destination "target:ports"; an IPv6 target
// may be bracketed ("[fd7a::1]:22").
func splitTargetPorts(s string) (target, ports string, err error) {
	if strings.HasPrefix(s, "[") {
		end := strings.Index(s, "]:")
		if end < 0 {
			return "", "", fmt.Errorf("%q: want [ipv6]:ports", s)
		}
		return s[1:end], s[end+2:], nil
	}
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return "", "", fmt.Errorf("%q has no ports: want target:ports, e.g. %s:22 or %s:*", s, s, s)
	}
	return s[:i], s[i+1:], nil
}
