package main

import (
	"net"
	"testing"
)

func TestRelayAddr(t *testing.T) {
	for _, c := range []struct {
		listen, store, want string
	}{
		{"127.0.0.2:8443", "postgres://u@db.example:5432/tsc", "127.0.0.2:8443"}, // bound to one IP: that one
		{"127.0.0.1:8443", "postgres://u@127.0.0.1:5432/tsc", "127.0.0.1:8443"},  // loopback, when named
		{"0.0.0.0:8443", "postgres://u@127.0.0.1:5432/tsc", ""},                  // every address, the store over loopback: none (its URL)
		{"[::]:8443", "postgres:///tsc?host=/run/postgresql", ""},                // a unix socket: none
		{"0.0.0.0:8443", "", ""}, // alone on SQLite: none
	} {
		la, err := net.ResolveTCPAddr("tcp", c.listen)
		if err != nil {
			t.Fatal(err)
		}
		got, err := relayAddr(la, c.store)
		if err != nil || got != c.want {
			t.Errorf("relayAddr(%s, %q) = %q, %v; want %q", c.listen, c.store, got, err, c.want)
		}
	}
}
