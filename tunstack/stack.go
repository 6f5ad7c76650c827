// Package tunstack is a WireGuard tun.Device backed by gVisor's userspace TCP/IP stack:
// the node's own TCP endpoints live inside the process, with no kernel interface.
package tunstack

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"

	"golang.zx2c4.com/wireguard/tun"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
)

const (
	// DefaultMTU suits WireGuard carried over DERP or the public Internet.
	DefaultMTU = 1280
	// OutboundQueueLen is how many packets may wait between the stack and WireGuard. When it
	// is full the stack's packets are dropped (TCP retransmits), never waited for: a stack
	// goroutine that blocked here would hold endpoint locks and, in single-threaded wasm,
	// livelock the stack (docs/architecture.md, "Single-threaded wasm").
	OutboundQueueLen = 1024
	// batchSize is the most packets one Read or Write call handles.
	batchSize = 32

	nicID = 1
)

// Options configures a Stack. A nil *Options means defaults.
type Options struct {
	// MTU is the device and stack MTU. Zero means DefaultMTU.
	MTU int
	// Logf, if non-nil, receives the stack's rare log lines.
	Logf func(format string, args ...any)
}

// Stack is a gVisor network stack that is also a tun.Device: WireGuard reads the packets
// the stack sends and writes the packets it received for the stack. It offers TCP dial and
// listen on its addresses, IPv4 and IPv6.
type Stack struct {
	mtu  int
	logf func(format string, args ...any)

	stack  *stack.Stack
	link   *channel.Endpoint
	events chan tun.Event

	ctx    context.Context // done when closed; unblocks Read
	cancel context.CancelFunc
	closed atomic.Bool

	mu    sync.Mutex // serializes SetAddresses
	addrs []netip.Prefix
}

// New returns a Stack with no addresses. Its Events channel already holds tun.EventUp.
func New(opts *Options) (*Stack, error) {
	if opts == nil {
		opts = &Options{}
	}
	mtu := opts.MTU
	if mtu == 0 {
		mtu = DefaultMTU
	}
	if mtu < 1280 || mtu > 65535 {
		return nil, fmt.Errorf("tunstack: MTU %d out of range: IPv6 needs at least 1280, IP allows at most 65535", mtu)
	}
	logf := opts.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}

	s := &Stack{
		mtu:  mtu,
		logf: logf,
		stack: stack.New(stack.Options{
			NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, ipv6.NewProtocol},
			TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol},
			HandleLocal:        true,
		}),
		link:   channel.New(OutboundQueueLen, uint32(mtu), ""),
		events: make(chan tun.Event, 1),
	}
	// Packets from WireGuard are authenticated end to end, and the sender's stack computed
	// their checksums: checking them again would only spend CPU (dear in wasm).
	s.link.LinkEPCapabilities = stack.CapabilityRXChecksumOffload
	s.ctx, s.cancel = context.WithCancel(context.Background())

	if err := tuneTCP(s.stack); err != nil {
		s.stack.Close()
		return nil, err
	}
	if err := s.stack.CreateNIC(nicID, s.link); err != nil {
		s.stack.Close()
		return nil, fmt.Errorf("tunstack: create NIC: %v", err)
	}
	// Everything not addressed to us goes to WireGuard, which routes by allowed IPs.
	s.stack.SetRouteTable([]tcpip.Route{
		{Destination: header.IPv4EmptySubnet, NIC: nicID},
		{Destination: header.IPv6EmptySubnet, NIC: nicID},
	})
	s.events <- tun.EventUp
	return s, nil
}

// Close stops the stack: its connections and listeners fail, a blocked Read returns
// os.ErrClosed, the Events channel is closed, and every later call returns os.ErrClosed.
func (s *Stack) Close() error {
	if s.closed.Swap(true) {
		return errClosed
	}
	s.cancel()
	s.stack.Close()
	s.stack.Wait()
	s.link.Close()
	close(s.events)
	return nil
}

// errClosed is what tun.Device calls return after Close; WireGuard recognises os.ErrClosed.
var errClosed = fmt.Errorf("tunstack: device closed: %w", os.ErrClosed)
