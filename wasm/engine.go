package main

import (
	"context"
	"net"

	"tsconnect/controlws"
	"tsconnect/node"
)

// engine is what an IPN needs of a node; *node.Node is the real one.
type engine interface {
	Start(ctx context.Context) error
	Dial(ctx context.Context, network, addr string) (net.Conn, error)
	NetMap() *controlws.NetworkMap
	Logout(ctx context.Context) error
	Close() error
}

// newNode makes the node for cfg: keys in memory only, HTTP through httpGet (the
// browser's fetch), state and maps reported to the IPN.
func newNode(cfg Config, httpGet func(ctx context.Context, url string) ([]byte, error), p *IPN) (engine, error) {
	return node.New(node.Options{
		ControlURL: cfg.ControlURL,
		AuthKey:    cfg.AuthKey,
		OnLoginURL: loginURLFunc(cfg, p),
		Ephemeral:  true, // a browser node's keys live in memory only
		Hostname:   cfg.Hostname,
		OS:         "js",
		HTTPGet:    httpGet,
		Logf:       p.logf,
		OnState:    func(s node.State) { p.setState(string(s)) },
		OnNetMap:   p.setNetMap,
	})
}

// loginURLFunc returns node.Options.OnLoginURL for cfg: nil with an auth key, else one
// that hands the URL to the page.
func loginURLFunc(cfg Config, p *IPN) func(string) {
	if cfg.AuthKey != "" {
		return nil
	}
	return p.browseToURL
}
