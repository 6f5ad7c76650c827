package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"tsconnect/control/store"
	"tsconnect/control/store/pgstore"
)

// openStore opens the store that control's --store flag names: "" is nil (SQLite in the
// state directory), postgres://… or postgresql://… a PostgreSQL database.
func openStore(ctx context.Context, spec string) (store.Store, error) {
	if spec == "" {
		return nil, nil
	}
	st, err := openPostgres(ctx, "--store", spec)
	if err != nil {
		return nil, err
	}
	return st, nil
}

// openPostgres opens (and migrates) the PostgreSQL database at url, which flag named.
func openPostgres(ctx context.Context, flag, url string) (*pgstore.Store, error) {
	if !strings.HasPrefix(url, "postgres://") && !strings.HasPrefix(url, "postgresql://") {
		return nil, fmt.Errorf("%s: want a postgres:// URL", flag)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return pgstore.Open(ctx, url)
}

// relayAddr is where the other replicas on the store at storeURL reach this one's embedded
// relay (control.Config.RelayAddr): the listener's address when it is bound to one IP,
// else the address this host sends from toward the store's host (what the database sees
// it connect from) with the listener's port. That address is not told when it is a
// loopback one (the store on this host, reached over loopback): other hosts' replicas would
// dial themselves; such a replica's relay is reached at its URL, or at the IP --listen names.
// Alone on SQLite (no storeURL) it is "".
func relayAddr(ln net.Addr, storeURL string) (string, error) {
	la, ok := ln.(*net.TCPAddr)
	if storeURL == "" || !ok {
		return "", nil
	}
	if ip, ok := netip.AddrFromSlice(la.IP); ok && !ip.Unmap().IsUnspecified() {
		return netip.AddrPortFrom(ip.Unmap(), uint16(la.Port)).String(), nil
	}
	u, err := url.Parse(storeURL)
	if err != nil {
		return "", fmt.Errorf("--store: %w", err)
	}
	host := u.Hostname()
	if host == "" || strings.HasPrefix(u.Query().Get("host"), "/") {
		return "", nil // a unix socket: the database is on this host
	}
	// A UDP "connection" sends nothing; it only asks the kernel which address it would use.
	c, err := net.Dial("udp", net.JoinHostPort(host, "5432"))
	if err != nil {
		return "", fmt.Errorf("the address this replica's relay is reached at (it listens on every address): no route toward the store's host %s: %w", host, err)
	}
	defer c.Close()
	from := c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap()
	if from.IsLoopback() {
		return "", nil
	}
	return netip.AddrPortFrom(from, uint16(la.Port)).String(), nil
}
