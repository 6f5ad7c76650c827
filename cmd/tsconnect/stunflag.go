package main

import (
	"flag"
	"fmt"
	"net"
	"strconv"
)

// stunFlag is a relay's --stun-port: the UDP port on which it answers STUN, on the host of
// its --listen address; -1 (the default) serves no STUN, 0 takes any free port.
type stunFlag struct{ port int }

func (f *stunFlag) register(fs *flag.FlagSet) {
	fs.IntVar(&f.port, "stun-port", -1, "UDP port to answer STUN on, on the --listen host (0: any free port; -1: no STUN)")
}

// listen opens the STUN socket on listenAddr's host; nil, nil when STUN is off.
func (f *stunFlag) listen(listenAddr string) (net.PacketConn, error) {
	if f.port < 0 {
		return nil, nil
	}
	if f.port > 65535 {
		return nil, fmt.Errorf("--stun-port %d is not a UDP port", f.port)
	}
	host, _, err := net.SplitHostPort(listenAddr)
	if err != nil {
		return nil, fmt.Errorf("--stun-port: --listen %q: %w", listenAddr, err)
	}
	pc, err := net.ListenPacket("udp", net.JoinHostPort(host, strconv.Itoa(f.port)))
	if err != nil {
		return nil, fmt.Errorf("--stun-port: %w", err)
	}
	return pc, nil
}
