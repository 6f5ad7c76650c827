package e2e

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

// netLab is a small internet of network namespaces a test builds and removes: a "wan"
// namespace routing between links 10.77.N.0/24 (N from 1), with a STUN address 10.77.255.1
// on its loopback, and sites behind it. Nothing in it touches the host's own interfaces.
type netLab struct {
	t     testing.TB
	id    string // namespace and link name prefix, unique in this host
	wan   string
	links int
	wans  map[string]netip.Addr // each router's wan address
}

// natMode is how a site's router maps its LAN to the wan.
type natMode int

const (
	// natEIM is Linux masquerading: endpoint-independent mapping (the source port kept),
	// address-and-port-dependent filtering (a reply to a flow only), unsolicited packets
	// from the wan dropped, as a home router does.
	natEIM natMode = iota
	// natSymmetric picks a random port for every flow (nft "masquerade fully-random"):
	// what STUN saw is useless to a peer.
	natSymmetric
)

// labSTUN is the wan address a netLab's STUN server listens on.
var labSTUN = netip.MustParseAddr("10.77.255.1")

var labSeq atomic.Int32

// newNetLab builds the wan namespace; it skips t when namespaces cannot be made (not root,
// or no ip/nft), and removes every namespace it made when t ends.
func newNetLab(t testing.TB) *netLab {
	t.Helper()
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("network namespaces: %s not found (scripts/deps.sh installs it)", tool)
		}
	}
	l := &netLab{t: t, id: fmt.Sprintf("tn%d%d", os.Getpid()%10000, labSeq.Add(1)), wans: map[string]netip.Addr{}}
	probe := l.id + "-probe"
	if out, err := exec.Command("ip", "netns", "add", probe).CombinedOutput(); err != nil {
		t.Skipf("cannot create a network namespace (needs root): %v: %s", err, out)
	}
	exec.Command("ip", "netns", "del", probe).Run()
	l.wan = l.ns("wan")
	l.ip(l.wan, "addr", "add", labSTUN.String()+"/32", "dev", "lo")
	l.forward(l.wan)
	return l
}

// ns makes a namespace with its loopback up.
func (l *netLab) ns(name string) string {
	full := l.id + "-" + name
	l.cmd("ip", "netns", "add", full)
	l.t.Cleanup(func() { exec.Command("ip", "netns", "del", full).Run() })
	l.ip(full, "link", "set", "lo", "up")
	return full
}

func (l *netLab) cmd(args ...string) {
	l.t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		l.t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// ip runs `ip -n ns ARGS`.
func (l *netLab) ip(ns string, args ...string) { l.cmd(append([]string{"ip", "-n", ns}, args...)...) }

// nft runs `nft SCRIPT` in ns.
func (l *netLab) nft(ns, script string) {
	l.t.Helper()
	cmd := exec.Command("ip", "netns", "exec", ns, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		l.t.Fatalf("nft in %s: %v\n%s\n%s", ns, err, script, out)
	}
}

func (l *netLab) forward(ns string) {
	l.cmd("ip", "netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
}

// veth links namespaces a and b and returns the two ends' names.
func (l *netLab) veth(a, b string) (string, string) {
	l.links++
	ea, eb := fmt.Sprintf("%sa%d", l.id, l.links), fmt.Sprintf("%sb%d", l.id, l.links)
	l.cmd("ip", "link", "add", ea, "netns", a, "type", "veth", "peer", "name", eb, "netns", b)
	l.ip(a, "link", "set", ea, "up")
	l.ip(b, "link", "set", eb, "up")
	return ea, eb
}

// wanLink links ns to the wan on a new 10.77.N.0/24 (the wan .1, ns .2, ns's default route
// through the wan) and returns ns's link, its address and N.
func (l *netLab) wanLink(ns string) (string, netip.Addr, int) {
	w, e := l.veth(l.wan, ns)
	n := l.links
	l.ip(l.wan, "addr", "add", fmt.Sprintf("10.77.%d.1/24", n), "dev", w)
	addr := netip.MustParseAddr(fmt.Sprintf("10.77.%d.2", n))
	l.ip(ns, "addr", "add", addr.String()+"/24", "dev", e)
	l.ip(ns, "route", "add", "default", "via", fmt.Sprintf("10.77.%d.1", n))
	return e, addr, n
}

// public makes a host namespace straight on the wan (no NAT) and returns it and its address.
func (l *netLab) public(name string) (string, netip.Addr) {
	ns := l.ns(name)
	_, addr, _ := l.wanLink(ns)
	return ns, addr
}

// site makes a router namespace NATing a LAN (192.168.N.0/24 on a bridge) to the wan, and
// a host namespace on that LAN for each name; it returns the hosts' namespaces and
// addresses, and the router's namespace.
func (l *netLab) site(name string, mode natMode, hosts ...string) (nss []string, addrs []netip.Addr, router string) {
	router = l.ns(name + "-r")
	wanIf, wanAddr, n := l.wanLink(router)
	l.wans[router] = wanAddr
	l.forward(router)
	l.ip(router, "link", "add", "br0", "type", "bridge")
	l.ip(router, "addr", "add", fmt.Sprintf("192.168.%d.1/24", n), "dev", "br0")
	l.ip(router, "link", "set", "br0", "up")
	for i, h := range hosts {
		hns := l.ns(h)
		r, e := l.veth(router, hns)
		l.ip(router, "link", "set", r, "master", "br0")
		addr := netip.MustParseAddr(fmt.Sprintf("192.168.%d.%d", n, 10+i))
		l.ip(hns, "addr", "add", addr.String()+"/24", "dev", e)
		l.ip(hns, "route", "add", "default", "via", fmt.Sprintf("192.168.%d.1", n))
		nss, addrs = append(nss, hns), append(addrs, addr)
	}
	masq := "masquerade"
	if mode == natSymmetric {
		masq = "masquerade fully-random"
	}
	l.nft(router, fmt.Sprintf(`table ip nat {
	chain post { type nat hook postrouting priority srcnat; oifname %q %s; }
}
table inet fw {
	chain wanin { type filter hook input priority filter; iifname %q ct state new drop; }
	chain wanfwd { type filter hook forward priority filter; iifname %q ct state new drop; }
}
`, wanIf, masq, wanIf, wanIf))
	return nss, addrs, router
}

// wanAddr is router's address on the wan: what a peer sees its LAN's hosts at.
func (l *netLab) wanAddr(router string) netip.Addr { return l.wans[router] }

// dropUDP makes router ns forward no UDP until the returned function is called (a direct
// path that dies; the relay, over TCP on the host's loopback, is not in the lab).
func (l *netLab) dropUDP(ns string) (undo func()) {
	l.nft(ns, "table inet tscdrop {\n\tchain dropudp { type filter hook forward priority filter - 10; meta l4proto udp drop; }\n}\n")
	return func() { l.cmd("ip", "netns", "exec", ns, "nft", "delete", "table", "inet", "tscdrop") }
}

// listenUDP opens a UDP socket in ns on addr (":0" style, IPv4); the socket stays in ns.
func (l *netLab) listenUDP(ns string, addr netip.AddrPort) *net.UDPConn {
	l.t.Helper()
	type result struct {
		uc  *net.UDPConn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		// This goroutine's thread enters ns and is never unlocked: Go ends the thread with
		// it, so no other goroutine runs in ns.
		runtime.LockOSThread()
		f, err := os.Open("/run/netns/" + ns)
		if err != nil {
			ch <- result{nil, err}
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- result{nil, fmt.Errorf("setns %s: %w", ns, err)}
			return
		}
		uc, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(addr))
		ch <- result{uc, err}
	}()
	r := <-ch
	if r.err != nil {
		l.t.Fatal(r.err)
	}
	l.t.Cleanup(func() { r.uc.Close() })
	return r.uc
}
