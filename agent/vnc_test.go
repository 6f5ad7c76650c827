package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"tsconnect/control"
	"tsconnect/control/controltest"
	"tsconnect/internal/eventually"
	"tsconnect/internal/nodetest"
	"tsconnect/internal/tcptest"
)

// TestVNCForward: an agent with Config.VNC says so in the map and copies each connection to
// overlay port 5900 to its VNC server and back; past maxVNCConns open at once, another is
// closed at once while the open ones keep working; a user the acls do not give port 5900 is
// refused at once.
func TestVNCForward(t *testing.T) {
	cs := controltest.New(t, nil)
	alice := cs.User("alice@example.com", control.RoleAdmin)
	bob := cs.User("bob@example.com", control.RoleMember)
	policy := `{"acls": [
		{"action": "accept", "src": ["alice@example.com"], "dst": ["*:5900"]},
		{"action": "accept", "src": ["bob@example.com"], "dst": ["*:22"]},
	]}`
	if _, err := cs.Control.SetPolicy(context.Background(), []byte(policy), "test"); err != nil {
		t.Fatal(err)
	}
	key := func(o control.AuthKeyOptions) string {
		k, _, err := cs.Control.CreateAuthKey(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	server := tcptest.Loopback(t, func(c net.Conn) { io.Copy(c, c) }) // the "VNC server": an echo
	a, err := New(Config{ControlURL: cs.URL, AuthKey: key(control.AuthKeyOptions{User: alice.ID}), Hostname: "desk",
		StateDir: t.TempDir(), VNC: server, Logf: prefixLogf(t, "desk")})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	laptop := nodetest.Join(t, cs.URL, key(control.AuthKeyOptions{User: alice.ID, Ephemeral: true}), "laptop")
	eventually.True(t, "desk in laptop's map, offering VNC", func() bool {
		nm := laptop.NetMap()
		if nm == nil {
			return false
		}
		p, ok := nm.PeerByName("desk")
		return ok && p.VNC
	})

	roundTrip := func(c net.Conn, msg string) error {
		c.SetDeadline(time.Now().Add(20 * time.Second))
		if _, err := io.WriteString(c, msg); err != nil {
			return err
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(c, got); err != nil {
			return err
		}
		if string(got) != msg {
			return fmt.Errorf("echoed %q, want %q", got, msg)
		}
		return nil
	}
	var open []net.Conn
	for i := range maxVNCConns {
		c, err := laptop.Dial(ctx, "tcp", fmt.Sprintf("desk:%d", VNCPort))
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		defer c.Close()
		if err := roundTrip(c, fmt.Sprintf("hello %d", i)); err != nil {
			t.Fatalf("connection %d through the forward: %v", i, err)
		}
		open = append(open, c)
	}
	extra, err := laptop.Dial(ctx, "tcp", fmt.Sprintf("desk:%d", VNCPort))
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	extra.SetDeadline(time.Now().Add(5 * time.Second))
	var timeout net.Error
	if n, err := extra.Read(make([]byte, 1)); err == nil || (errors.As(err, &timeout) && timeout.Timeout()) {
		t.Fatalf("connection %d: read %d bytes, %v; want it closed at once: %d are open", maxVNCConns+1, n, err, maxVNCConns)
	}
	if err := roundTrip(open[0], "still here"); err != nil {
		t.Errorf("an open connection after the refused one: %v", err)
	}
	open[1].Close()
	eventually.True(t, "a connection again once one closed", func() bool {
		c, err := laptop.Dial(ctx, "tcp", fmt.Sprintf("desk:%d", VNCPort))
		if err != nil {
			return false
		}
		defer c.Close()
		return roundTrip(c, "again") == nil
	})

	// bob's rule reaches port 22 only: desk is in his map, and its port 5900 refuses him at once.
	bobs := nodetest.Join(t, cs.URL, key(control.AuthKeyOptions{User: bob.ID, Ephemeral: true}), "bobs")
	eventually.True(t, "desk in bob's map", func() bool {
		nm := bobs.NetMap()
		if nm == nil {
			return false
		}
		_, ok := nm.PeerByName("desk")
		return ok
	})
	t0 := time.Now()
	if c, err := bobs.Dial(ctx, "tcp", fmt.Sprintf("desk:%d", VNCPort)); err == nil {
		c.Close()
		t.Error("bob reached desk's VNC forward; the policy gives him port 22 only")
	} else if took := time.Since(t0); !strings.Contains(err.Error(), "refused") || took > 3*time.Second {
		t.Errorf("bob to desk:%d: %v after %v; want connection refused at once", VNCPort, err, took)
	}
}
