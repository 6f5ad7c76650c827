// Package sshdtest runs an SSH server on loopback for a test and logs in to it with Go's
// SSH client or the real OpenSSH tools, both pinning the server's host keys.
package sshdtest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"tsconnect/internal/opensshtest"
)

// Server is what Serve runs: an sshd.Server (this package does not import sshd, so that
// sshd's own tests can use it).
type Server interface {
	Serve(ln net.Listener) error
	Close() error
}

// Serve serves srv on a fresh loopback TCP listener and returns its address. When t ends it
// closes srv and fails t unless Serve returned net.ErrClosed.
func Serve(t testing.TB, srv Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ServeOn(t, srv, ln)
	return ln.Addr().String()
}

// ServeOn serves srv on ln as Serve does (for listeners that are not TCP).
func ServeOn(t testing.TB, srv Server, ln net.Listener) {
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-served; !errors.Is(err, net.ErrClosed) {
			t.Errorf("Serve returned %v, want net.ErrClosed", err)
		}
	})
}

// PinKeys accepts exactly the public keys of signers as the server's host key (any of
// them: clients pick the algorithm).
func PinKeys(signers []ssh.Signer) ssh.HostKeyCallback {
	return func(_ string, _ net.Addr, key ssh.PublicKey) error {
		for _, s := range signers {
			if bytes.Equal(s.PublicKey().Marshal(), key.Marshal()) {
				return nil
			}
		}
		return fmt.Errorf("host key %s is not the server's", ssh.FingerprintSHA256(key))
	}
}

// Client logs in over nc as user with Go's SSH client, offering no keys or passwords (the
// server decides in the "none" method), pinning hostKeys; banner, if non-nil, gets every
// auth banner. On error nc is closed.
func Client(nc net.Conn, user string, hostKeys []ssh.Signer, banner func(string)) (*ssh.Client, error) {
	cfg := &ssh.ClientConfig{
		User:            user,
		HostKeyCallback: PinKeys(hostKeys),
		BannerCallback: func(m string) error {
			if banner != nil {
				banner(m)
			}
			return nil
		},
	}
	c, chans, reqs, err := ssh.NewClientConn(nc, "server", cfg)
	if err != nil {
		nc.Close()
		return nil, err
	}
	return ssh.NewClient(c, chans, reqs), nil
}

// Dial connects to addr over TCP (within 10 s) and logs in as Client does.
func Dial(addr, user string, hostKeys []ssh.Signer, banner func(string)) (*ssh.Client, error) {
	nc, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	return Client(nc, user, hostKeys, banner)
}

// OpenSSH runs the real OpenSSH tools (ssh, scp, sftp) against a test server, with no
// configuration but the server's host keys pinned in a known_hosts of its own HOME.
type OpenSSH struct {
	t          testing.TB
	Host, Port string
	Home       string   // HOME for the tools, holding KnownHosts
	KnownHosts string   // the server's host keys
	Env        []string // extra environment for the tools, e.g. "SSH_AUTH_SOCK=…"
}

// NewOpenSSH points the OpenSSH tools at the server at addr whose host keys are hostKeys.
func NewOpenSSH(t testing.TB, addr string, hostKeys []ssh.Signer) *OpenSSH {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	c := &OpenSSH{t: t, Host: host, Port: port, Home: home, KnownHosts: filepath.Join(home, "known_hosts")}
	var kh strings.Builder
	for _, k := range hostKeys {
		kh.WriteString("[" + host + "]:" + port + " " + string(ssh.MarshalAuthorizedKey(k.PublicKey())))
	}
	if err := os.WriteFile(c.KnownHosts, []byte(kh.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return c
}

// Opts are the options every tool gets: no config file, no prompts, the host key pinned.
func (c *OpenSSH) Opts() []string {
	return []string{"-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
		"-o", "UserKnownHostsFile=" + c.KnownHosts, "-o", "GlobalKnownHostsFile=/dev/null"}
}

// Run runs tool with Opts, then args, and stdin; it returns stdout, stderr and the exit code.
func (c *OpenSSH) Run(stdin, tool string, args ...string) (stdout, stderr string, code int) {
	c.t.Helper()
	env := append([]string{"HOME=" + c.Home}, c.Env...)
	return opensshtest.Run(c.t, env, strings.NewReader(stdin), tool, append(c.Opts(), args...)...)
}

// SSH runs ssh to the server as user with args (options, then the command).
func (c *OpenSSH) SSH(user string, args ...string) (stdout, stderr string, code int) {
	c.t.Helper()
	return c.Run("", "ssh", append([]string{"-p", c.Port, "-l", user, c.Host}, args...)...)
}
