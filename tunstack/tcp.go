package tunstack

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// TCP buffer sizes. With a 1280-byte MTU a segment carries at most 1240 bytes (IPv4), so
// bulk transfer needs deep windows; the stack grows each connection's receive buffer from
// tcpBufDefault toward tcpBufMax as the measured bandwidth-delay product asks (natively; in
// the browser the receive buffer is fixed, see recvBufMax).
const (
	tcpBufMin     = 4 << 10
	tcpBufDefault = 1 << 20
	tcpBufMax     = 4 << 20
)

// congestionControl is Reno, gVisor's default, on purpose. This gVisor's CUBIC lowers the
// congestion window on ordinary ACKs whenever W_cubic(t+RTT) is below it, and after a loss
// detected while the window is 1 (right after a retransmission timeout; frequent when a
// relay's short queues drop bursts) W_cubic stays below 1 packet: ACKs for the last
// segments in flight then drive the window to 0 with nothing outstanding, so no timer is
// armed, no ACK ever comes, and the connection stalls for good (seen natively and in wasm
// with memrelay queues of 32: sender ESTABLISHED or CLOSE-WAIT, cwnd 0, ssthresh 2).
// Reno only ever grows the window on ACKs and never lets it fall below 1. Upstream fixed
// CUBIC in google/gvisor#13958 ("prevent CUBIC ACKs from reducing cwnd"); after moving to a
// gVisor with that change, CUBIC is worth measuring again (here, before the stall: lossy
// relay 2–47 MiB/s vs Reno 1–45, loss-free native 104 vs 77 MiB/s, wasm alike).
var congestionControl = tcpip.CongestionControlOption("reno")

// lossRecovery turns off RACK and its tail loss probes (gVisor's default turns them on). This
// gVisor re-arms a connection's retransmission timer from scratch after every write while a
// probe is pending (schedulePTO disables it, the probe's expiry enables it again with the full
// RTO), so a sender whose application writes more often than its RTO never times out: once
// the path loses a window's tail (a relay down for longer than one RTO), nothing is ever
// retransmitted and the session stays frozen after the path is back, until the application
// stops writing for an RTO (seen: a shell printing every 100 ms through a relay down 4 s,
// 0 timeouts in 14 s; docs/architecture.md, "Outages"). Without RACK, loss is found by
// duplicate ACKs with SACK, and the retransmission timer runs from the oldest unacknowledged
// segment as RFC 6298 says.
var lossRecovery = tcpip.TCPRecovery(0)

// maxRTO caps the retransmission timeout (gVisor's default is 120 s, doubling from 200 ms):
// while a path is down the timer backs off, and without a cap a session whose relay came back
// after 4 s would wait up to 3.2 s more, after 30 s up to 26 s, for its next retransmission.
// gVisor exports no "retransmit now", so the cap bounds how long a connection stays stalled
// after its path is back; the price is one retransmission a second per stalled connection
// while the path is down. It stays above the RTO of any relay path (RTT + 4·RTTVAR), so it
// causes no spurious retransmissions.
const maxRTO = tcpip.TCPMaxRTOOption(time.Second)

// maxRetries is how many times a segment is retransmitted before the connection is dropped.
// gVisor's default (15) assumes a doubling RTO up to 120 s (about 15 minutes, as Linux); with
// the RTO capped at 1 s it would drop a session after about 15 s of outage, so this keeps
// the give-up time near those 15 minutes.
const maxRetries = tcpip.TCPMaxRetriesOption(900)

// tuneTCP sets the stack-wide TCP options that suit bulk transfer over a 1280 MTU.
func tuneTCP(s *stack.Stack) error {
	opts := []tcpip.SettableTransportProtocolOption{
		// SACK recovers several losses per window; gVisor leaves it off by default.
		ptr(tcpip.TCPSACKEnabled(true)),
		&tcpip.TCPReceiveBufferSizeRangeOption{Min: tcpBufMin, Default: recvBufDefault, Max: recvBufMax},
		&tcpip.TCPSendBufferSizeRangeOption{Min: tcpBufMin, Default: tcpBufDefault, Max: tcpBufMax},
		// Receive-buffer auto-tuning, so idle connections stay small.
		ptr(tcpip.TCPModerateReceiveBufferOption(true)),
		ptr(congestionControl),
		ptr(lossRecovery),
		ptr(maxRTO),
		ptr(maxRetries),
	}
	for _, o := range opts {
		if err := s.SetTransportProtocolOption(tcp.ProtocolNumber, o); err != nil {
			return fmt.Errorf("tunstack: set TCP option %T: %v", o, err)
		}
	}
	return nil
}

func ptr[T any](v T) *T { return &v }

// DialContext opens a TCP connection to addr through the stack. network is "tcp", "tcp4"
// or "tcp6"; an IPv4-mapped IPv6 address counts as IPv4.
func (s *Stack) DialContext(ctx context.Context, network string, addr netip.AddrPort) (net.Conn, error) {
	ip := addr.Addr().Unmap()
	if !ip.IsValid() {
		return nil, fmt.Errorf("tunstack: dial %s: invalid address", network)
	}
	switch {
	case network == "tcp", network == "tcp4" && ip.Is4(), network == "tcp6" && ip.Is6():
	case network == "tcp4" || network == "tcp6":
		return nil, fmt.Errorf("tunstack: dial %s %v: address family does not match network", network, addr)
	default:
		return nil, fmt.Errorf("tunstack: dial %s %v: unsupported network, want tcp, tcp4 or tcp6", network, addr)
	}
	if s.closed.Load() {
		return nil, &net.OpError{Op: "dial", Net: network, Err: net.ErrClosed}
	}
	proto := header.IPv6ProtocolNumber
	if ip.Is4() {
		proto = header.IPv4ProtocolNumber
	}
	fa := tcpip.FullAddress{NIC: nicID, Addr: tcpip.AddrFromSlice(ip.AsSlice()), Port: addr.Port()}
	c, err := gonet.DialContextTCP(ctx, s.stack, fa, proto)
	if err != nil {
		// gonet says "refused" only in text; the host's dialer says it as ECONNREFUSED.
		if strings.Contains(err.Error(), (&tcpip.ErrConnectionRefused{}).String()) {
			return nil, &net.OpError{Op: "dial", Net: network, Addr: net.TCPAddrFromAddrPort(addr), Err: syscall.ECONNREFUSED}
		}
		return nil, err
	}
	return c, nil
}

// ListenTCP listens on port of every address of the stack, IPv4 and IPv6, including
// addresses added later. Port 0 picks a free port; see the listener's Addr.
func (s *Stack) ListenTCP(port uint16) (net.Listener, error) {
	if s.closed.Load() {
		return nil, &net.OpError{Op: "listen", Net: "tcp", Err: net.ErrClosed}
	}
	// An IPv6 endpoint bound to the unspecified address is dual-stack in gVisor: it also
	// accepts IPv4 connections, which it sees as IPv4-mapped addresses.
	var wq waiter.Queue
	ep, terr := s.stack.NewEndpoint(tcp.ProtocolNumber, header.IPv6ProtocolNumber, &wq)
	if terr != nil {
		return nil, fmt.Errorf("tunstack: listen on TCP port %d: %v", port, terr)
	}
	// Like a server's SO_REUSEADDR: connections of a closed listener that linger (closing,
	// TIME-WAIT) do not keep a new listener off the port (`tsconnect set --ssh=false/true`).
	ep.SocketOptions().SetReuseAddress(true)
	if terr := ep.Bind(tcpip.FullAddress{NIC: nicID, Port: port}); terr != nil {
		ep.Close()
		return nil, fmt.Errorf("tunstack: listen on TCP port %d: bind: %v", port, terr)
	}
	if terr := ep.Listen(listenBacklog); terr != nil {
		ep.Close()
		return nil, fmt.Errorf("tunstack: listen on TCP port %d: %v", port, terr)
	}
	return gonet.NewTCPListener(s.stack, &wq, ep), nil
}

// listenBacklog is the accept queue of a listener, as gonet's own ListenTCP uses.
const listenBacklog = 10
