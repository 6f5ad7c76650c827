//go:build !js

package derpws

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"

	"tsconnect/internal/dialaddrs"
	"tsconnect/internal/httpget"
	"tsconnect/wsconn"
)

// dial opens a byte stream to the relay: an HTTP upgrade over TCP or TLS, or a WebSocket when
// the options ask for one. The returned reader may already hold the first frame bytes.
// Both connect through a dialaddrs.Dialer with the options' resolver, so a relay host name
// of several addresses is tried at each, one that does not answer giving way after 2 s.
func (c *Client) dial(ctx context.Context) (net.Conn, *bufio.Reader, error) {
	d := &dialaddrs.Dialer{Resolver: c.opts.Resolver, Addr: c.opts.DialAddr}
	if c.opts.UseWebSocket {
		hc := d.HTTPClient()
		defer hc.CloseIdleConnections()
		nc, err := wsconn.DialLimitClient(ctx, c.url, Subprotocol, 0, hc)
		if err != nil {
			return nil, nil, err
		}
		return nc, bufio.NewReaderSize(nc, readBufSize), nil
	}
	return dialUpgradeWith(ctx, d, c.url)
}

// dialUpgrade is dialUpgradeWith the default resolver.
func dialUpgrade(ctx context.Context, rawURL string) (net.Conn, *bufio.Reader, error) {
	return dialUpgradeWith(ctx, &dialaddrs.Dialer{}, rawURL)
}

// dialUpgradeWith connects with d, sends "GET /derp" with "Upgrade: DERP" and expects 101
// Switching Protocols.
func dialUpgradeWith(ctx context.Context, d *dialaddrs.Dialer, rawURL string) (net.Conn, *bufio.Reader, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, nil, fmt.Errorf("derpws: relay URL: %w", err)
	}
	port := u.Port()
	switch u.Scheme {
	case "http":
		if port == "" {
			port = "80"
		}
	case "https":
		if port == "" {
			port = "443"
		}
	default:
		return nil, nil, fmt.Errorf("derpws: relay URL %q: want http or https", rawURL)
	}
	nc, err := d.DialContext(ctx, "tcp", net.JoinHostPort(u.Hostname(), port))
	if err != nil {
		return nil, nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		nc.SetDeadline(dl)
	} else {
		nc.SetDeadline(time.Now().Add(dialTimeout))
	}
	if u.Scheme == "https" {
		tc := tls.Client(nc, &tls.Config{ServerName: u.Hostname(), NextProtos: []string{"http/1.1"}})
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, nil, err
		}
		nc = tc
	}
	req := "GET " + u.RequestURI() + " HTTP/1.1\r\n" +
		"Host: " + u.Host + "\r\n" +
		"Upgrade: DERP\r\n" +
		"Connection: Upgrade\r\n\r\n"
	if _, err := nc.Write([]byte(req)); err != nil {
		nc.Close()
		return nil, nil, err
	}
	br := bufio.NewReaderSize(nc, readBufSize)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("derpws: reading the upgrade response: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		nc.Close()
		return nil, nil, fmt.Errorf("derpws: relay at %s answered %q, want 101 Switching Protocols", rawURL, resp.Status)
	}
	nc.SetDeadline(time.Time{})
	return nc, br, nil
}

// defaultHTTPGet fetches url with net/http's default client.
var defaultHTTPGet = httpget.Get
