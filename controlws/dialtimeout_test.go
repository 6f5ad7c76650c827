//go:build !js

package controlws

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"tsconnect/internal/leakcheck"
	"tsconnect/key"
)

// TestDialTimeout: a "control" that accepts TCP and never answers fails a dial after
// DialOptions.Timeout, with no deadline on ctx, both while fetching the server key and, with
// the key pinned, while upgrading to WebSocket.
func TestDialTimeout(t *testing.T) {
	leakcheck.Check(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		var held []net.Conn // accepted, never read or answered
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	for _, tc := range []struct {
		name string
		key  key.Public
	}{{"key fetch", key.Public{}}, {"pinned key", key.NewPrivate().Public()}} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			c, err := Dial(context.Background(), DialOptions{
				ServerURL: "http://" + ln.Addr().String(), ServerKey: tc.key,
				MachineKey: key.NewPrivate(), Timeout: 300 * time.Millisecond,
			})
			took := time.Since(start)
			if err == nil {
				c.Close()
				t.Fatal("Dial to a server that never answers succeeded")
			}
			if took > 5*time.Second {
				t.Fatalf("Dial returned after %v, want about its 300ms timeout (%v)", took, err)
			}
			if !strings.Contains(err.Error(), "deadline") {
				t.Errorf("error %q does not say the dial timed out", err)
			}
		})
	}
}
