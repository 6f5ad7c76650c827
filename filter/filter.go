package filter

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.zx2c4.com/wireguard/tun"

	"tsconnect/policy/rules"
)

// Idle timeouts of tracked flows (how many are tracked at most: flows.go).
const (
	tcpTimeout   = 5 * time.Minute
	otherTimeout = 2 * time.Minute
)

// Options configure a Device. A nil *Options means the defaults.
type Options struct {
	// Logf, if non-nil, receives a line for dropped packets (at most one a second).
	Logf func(format string, args ...any)
	// Now, if non-nil, replaces time.Now (tests).
	Now func() time.Time
	// Reject, if non-nil, is handed a TCP reset (an IP packet) for each inbound connection
	// attempt the policy refuses, to send back to the peer, so that its dial fails at once
	// instead of timing out (at most rejectRate a second; beyond that they are only dropped).
	Reject func(pkt []byte)
}

// Device is a tun.Device whose Write (packets WireGuard delivers to the node) drops what
// the filter does not admit, and whose Read (packets the node sends) records the flows the
// node opens, so that their replies pass. Neither ever blocks beyond the wrapped device.
type Device struct {
	tun.Device
	logf   func(format string, args ...any)
	now    func() time.Time
	reject func(pkt []byte)

	allowed atomic.Pointer[rules.Filter] // nil: admit everything
	dropped atomic.Uint64

	mu      sync.Mutex
	flows   *flowTable // flows the node opened → when they expire
	lastLog time.Time
	rejects rateWindow // resets sent this second
}

// flow names a connection from the node's side.
type flow struct {
	proto         rules.Proto
	local, remote netip.Addr
	lport, rport  uint16
}

// Wrap returns dev behind a filter that admits everything until SetFilter is called.
func Wrap(dev tun.Device, opts *Options) *Device {
	d := &Device{Device: dev, logf: func(string, ...any) {}, now: time.Now, flows: newFlowTable()}
	if opts != nil && opts.Logf != nil {
		d.logf = opts.Logf
	}
	if opts != nil && opts.Now != nil {
		d.now = opts.Now
	}
	if opts != nil {
		d.reject = opts.Reject
	}
	return d
}

// SetFilter replaces the inbound filter; nil admits every packet, an empty Filter only
// replies to the node's own connections. Connections already admitted are judged again,
// packet by packet, under the new filter.
func (d *Device) SetFilter(f *rules.Filter) { d.allowed.Store(f) }

// Dropped returns how many inbound packets were dropped so far.
func (d *Device) Dropped() uint64 { return d.dropped.Load() }

// Read reads from the wrapped device and records the flows the node opens.
func (d *Device) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	n, err := d.Device.Read(bufs, sizes, offset)
	if n > 0 && d.allowed.Load() != nil {
		now := d.now()
		d.mu.Lock()
		for i := 0; i < n; i++ {
			if p, ok := parse(bufs[i][offset : offset+sizes[i]]); ok {
				d.trackLocked(p, now)
			}
		}
		d.mu.Unlock()
	}
	return n, err
}

// trackLocked records an outbound packet: TCP SYNs, ICMP echo requests and any UDP or
// other packet open a flow; later packets of a known flow keep it alive. A TCP reply of a
// connection someone else opened does not open a flow, so it cannot outlive the filter.
func (d *Device) trackLocked(p packet, now time.Time) {
	f := flow{proto: p.proto, local: p.src, remote: p.dst, lport: p.sport, rport: p.dport}
	timeout := otherTimeout
	switch p.proto {
	case rules.ProtoTCP:
		timeout = tcpTimeout
		if p.tcpFlags&(tcpSYN|tcpACK) != tcpSYN {
			d.flows.refresh(f, now.Add(timeout))
			return
		}
	case rules.ProtoICMP, rules.ProtoICMPv6:
		if !p.isEchoRequest() {
			return
		}
	}
	d.flows.put(f, now.Add(timeout), now)
}

// Write passes the admitted packets of bufs to the wrapped device and drops the rest.
// It reports all of bufs as written: a dropped packet is not an error.
func (d *Device) Write(bufs [][]byte, offset int) (int, error) {
	allowed := d.allowed.Load()
	if allowed == nil {
		return d.Device.Write(bufs, offset)
	}
	now := d.now()
	var kept [][]byte
	for i, b := range bufs {
		ok := d.admit(*allowed, b[offset:], now)
		switch {
		case ok && kept != nil:
			kept = append(kept, b)
		case !ok && kept == nil:
			kept = append(make([][]byte, 0, len(bufs)), bufs[:i]...)
		}
	}
	if kept == nil {
		return d.Device.Write(bufs, offset)
	}
	if len(kept) > 0 {
		if _, err := d.Device.Write(kept, offset); err != nil {
			return 0, err
		}
	}
	return len(bufs), nil
}

// admit decides one inbound packet.
func (d *Device) admit(allowed rules.Filter, b []byte, now time.Time) bool {
	p, ok := parse(b)
	if !ok {
		d.drop(p, now, "unparseable")
		return false
	}
	if p.isEchoReply() || p.proto == rules.ProtoTCP || p.proto == rules.ProtoUDP || p.proto == rules.ProtoSCTP {
		f := flow{proto: p.proto, local: p.dst, remote: p.src, lport: p.dport, rport: p.sport}
		d.mu.Lock()
		exp, known := d.flows.get(f)
		if known && now.After(exp) {
			d.flows.delete(f)
			known = false
		}
		if known && p.proto != rules.ProtoTCP {
			d.flows.refresh(f, now.Add(otherTimeout))
		}
		d.mu.Unlock()
		if known {
			return true
		}
	}
	if allowed.Allows(p.src, netip.AddrPortFrom(p.dst, p.dport), p.proto) {
		return true
	}
	d.drop(p, now, "not allowed by the policy")
	if d.reject != nil && p.proto == rules.ProtoTCP && p.tcpFlags&(tcpSYN|tcpACK|tcpRST) == tcpSYN {
		d.mu.Lock()
		ok := d.rejects.take(now, rejectRate)
		d.mu.Unlock()
		if ok {
			d.reject(reset(p))
		}
	}
	return false
}

func (d *Device) drop(p packet, now time.Time, why string) {
	n := d.dropped.Add(1)
	d.mu.Lock()
	quiet := now.Sub(d.lastLog) < time.Second
	if !quiet {
		d.lastLog = now
	}
	d.mu.Unlock()
	if !quiet {
		d.logf("filter: dropped inbound proto %d %v:%d → %v:%d: %s (%d dropped so far)", p.proto, p.src, p.sport, p.dst, p.dport, why, n)
	}
}
