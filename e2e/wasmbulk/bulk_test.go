//go:build js

// Package wasmbulk runs inside node under GOOS=js: a wasm node moves 32 MiB each way over
// SSH through the real relay to a real agent. e2e's TestWasmBulk starts the network and runs it.
package wasmbulk

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"tsconnect/key"
	"tsconnect/node"
)

const size = 32 << 20

func env(t *testing.T, name string) string {
	v := os.Getenv(name)
	if v == "" {
		t.Fatalf("%s is not set: run this through e2e's TestWasmBulk", name)
	}
	return v
}

func TestBulk(t *testing.T) {
	ctrlKey, err := key.ParsePublic(env(t, "E2E_CONTROL_KEY"))
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.New(node.Options{
		ControlURL: env(t, "E2E_CONTROL_URL"), ControlKey: ctrlKey,
		AuthKey: env(t, "E2E_AUTH_KEY"), Hostname: "wasm", Logf: t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	host := env(t, "E2E_HOST")
	peer, ok := n.NetMap().PeerByName(host)
	if !ok {
		t.Fatalf("%s not in the map", host)
	}
	nc, err := n.Dial(ctx, "tcp", host+":22")
	if err != nil {
		t.Fatal(err)
	}
	cfg := &ssh.ClientConfig{
		User: env(t, "E2E_USER"),
		HostKeyCallback: func(_ string, _ net.Addr, k ssh.PublicKey) error {
			for _, line := range peer.SSHHostKeys {
				pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
				if err == nil && bytes.Equal(pk.Marshal(), k.Marshal()) {
					return nil
				}
			}
			return errors.New("host key not in the map")
		},
	}
	cfg.Ciphers = []string{"chacha20-poly1305@openssh.com", "aes128-gcm@openssh.com"}
	c, chans, reqs, err := ssh.NewClientConn(nc, host, cfg)
	if err != nil {
		t.Fatal(err)
	}
	cl := ssh.NewClient(c, chans, reqs)
	defer cl.Close()

	// Upload: random bytes into sha256sum on the agent.
	up := make([]byte, size)
	rand.Read(up)
	want := sha256.Sum256(up)
	s, err := cl.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	s.Stdin, s.Stdout = bytes.NewReader(up), &out
	start := time.Now()
	if err := s.Run("sha256sum"); err != nil {
		t.Fatal(err)
	}
	upRate := float64(size) / (1 << 20) / time.Since(start).Seconds()
	if got := strings.Fields(out.String()); len(got) == 0 || got[0] != hex.EncodeToString(want[:]) {
		t.Fatalf("upload: agent's sha256 %q, sent %x", out.String(), want)
	}

	// Download: a file the host test wrote, checked against its sha256.
	s, err = cl.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := s.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	if err := s.Start("cat " + env(t, "E2E_FILE")); err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	nread, err := io.Copy(h, stdout)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Wait(); err != nil {
		t.Fatal(err)
	}
	downRate := float64(nread) / (1 << 20) / time.Since(start).Seconds()
	if got := hex.EncodeToString(h.Sum(nil)); got != env(t, "E2E_FILE_SHA256") || nread != size {
		t.Fatalf("download: %d bytes, sha256 %s, want %d bytes %s", nread, got, size, env(t, "E2E_FILE_SHA256"))
	}
	t.Logf("wasm node via relay: upload %.1f MiB/s, download %.1f MiB/s (32 MiB each, sha256 checked)", upRate, downRate)
}
