//go:build !js

// Package dialaddrs dials a host name that resolves to several addresses (control replicas
// behind one DNS name) by trying each in turn, each for a bounded time, so one dead replica
// costs a node a refused connection or AddrTimeout, not its whole dial.
package dialaddrs

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// AddrTimeout bounds the TCP connect to one address when more addresses are left to try.
const AddrTimeout = 2 * time.Second

// maxAddrs bounds how many addresses of one name a dial tries.
const maxAddrs = 16

// Dialer dials TCP host:port, trying each address host resolves to.
type Dialer struct {
	// Resolver looks host names up; nil means net.DefaultResolver (tests pass one whose Dial
	// reaches a DNS server on loopback).
	Resolver *net.Resolver
	// Addr, if set, is the one address (ip:port) every dial connects to, whatever host it
	// names: one of several replicas behind a shared name, whose name still goes into TLS
	// and the Host header.
	Addr string
}

// DialContext connects to addr (host:port) on network (tcp, tcp4, tcp6): an IP address
// directly, a name at each address it resolves to in the resolver's order, until one
// accepts. All failing, it returns their errors joined.
func (d *Dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("dialaddrs: %w", err)
	}
	var nd net.Dialer
	if d.Addr != "" {
		return nd.DialContext(ctx, network, d.Addr)
	}
	if ip := net.ParseIP(host); ip != nil {
		return nd.DialContext(ctx, network, addr)
	}
	r := d.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	ips, err := r.LookupHost(ctx, host)
	if err != nil {
		return nil, fmt.Errorf("dialaddrs: looking up %s: %w", host, err)
	}
	if len(ips) > maxAddrs {
		ips = ips[:maxAddrs]
	}
	var errs []error
	for i, ip := range ips {
		actx, cancel := ctx, context.CancelFunc(func() {})
		if i < len(ips)-1 {
			actx, cancel = context.WithTimeout(ctx, AddrTimeout)
		}
		c, err := nd.DialContext(actx, network, net.JoinHostPort(ip, port))
		cancel()
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("dialaddrs: no address of %s answered: %w", host, errors.Join(errs...))
}

// HTTPClient returns an HTTP client (as net/http's default one) that connects with d.
func (d *Dialer) HTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = d.DialContext
	return &http.Client{Transport: t}
}
