package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"tsconnect/internal/eventually"
	"tsconnect/internal/syncbuf"
	"tsconnect/internal/testpebble"
)

// startPebble runs Pebble (internal/testpebble) until the test ends: its TLS-ALPN-01
// validation connects to tlsPort, its certificates are valid for validity.
func startPebble(t *testing.T, tlsPort int, validity time.Duration) *testpebble.CA {
	t.Helper()
	log := &syncbuf.Buffer{}
	ca, err := testpebble.Start(t.Context(), testpebble.Options{TLSPort: tlsPort, Validity: validity, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ca.Close()
		if t.Failed() {
			t.Logf("Pebble's output:\n%s", log)
		}
	})
	return ca
}

// servedCert dials addr with SNI name, verifying against pool, and returns the leaf.
func servedCert(addr, name string, pool *x509.CertPool) (*x509.Certificate, error) {
	d := &net.Dialer{Timeout: 3 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{ServerName: name, RootCAs: pool})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0], nil
}

// clientTo is an HTTPS client that trusts pool and connects to addr whatever the URL's host.
func clientTo(addr string, pool *x509.CertPool) *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		}}}
}

// TestACMECertificateAndRenewal: control with --acme-domain control.test gets its certificate
// from a real ACME server (Pebble, TLS-ALPN-01 validated on control's own listener), serves
// the console, control and the relay over it, renews it with a third of its lifetime left
// while an SSH session between two agents stays up through the embedded relay, and after a
// restart serves the cached certificate without a new order.
func TestACMECertificateAndRenewal(t *testing.T) {
	if os.Getuid() != 0 {
		t.Fatal("this test needs root (mount namespaces for the agents' /etc/hosts); run the tests as root")
	}
	const validity = 90 * time.Second
	dir := t.TempDir()
	addr := freePort(t)
	_, portStr, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(portStr)
	ca := startPebble(t, port, validity)
	url := "https://control.test:" + portStr
	ctrlArgs := []string{"control", "--listen", addr, "--state", dir, "--acme-domain", "control.test",
		"--acme-email", "ops@example.com", "--acme-directory", ca.Directory}
	ctrl := startProcEnv(t, []string{"SSL_CERT_FILE=" + ca.HTTPSCA}, ctrlArgs...)

	var first *x509.Certificate
	eventually.True(t, "control to serve a certificate from Pebble for control.test", func() bool {
		c, err := servedCert(addr, "control.test", ca.RootPool)
		first = c
		return err == nil
	})
	life := first.NotAfter.Sub(first.NotBefore)
	t.Logf("first certificate: serial %s, valid %v, renewal due %s", first.SerialNumber, life, first.NotAfter.Add(-life/3).Format(time.TimeOnly))
	if fi, err := os.Stat(filepath.Join(dir, "acme", "control.test.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("cached key: %v, mode %v; want DIR/acme/control.test.key mode 0600", err, fi.Mode().Perm())
	}

	// The console over HTTPS, verified against Pebble's root, by name.
	hc := clientTo(addr, ca.RootPool)
	resp, err := hc.Get(url + "/admin/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s/admin/: %s", url, resp.Status)
	}

	cli(t, "users", "create", "--state", dir, "alice@example.com")
	cliOwnNodesPolicy(t, dir)
	env := []string{"SSL_CERT_FILE=" + ca.RootFile}
	socks := map[string]string{}
	for _, name := range []string{"server", "laptop"} {
		key := lastLine(cli(t, "keys", "create", "--state", dir, "--user", "alice@example.com"))
		adir := t.TempDir()
		socks[name] = filepath.Join(adir, "agent.sock")
		startInHosts(t, "127.0.0.1 control.test\n", env, "--socket", socks[name], "up", "--ssh", "--hostname", name,
			"--login-server", url, "--auth-key", key, "--state", adir)
	}
	waitStatus(t, socks["laptop"], "server")

	// An SSH session printing a tick every 200 ms, through control's embedded relay over TLS.
	sess := exec.Command(tsconnectBin, "--socket", socks["laptop"], "ssh", currentUser(t)+"@server",
		"i=0; while :; do i=$((i+1)); echo tick $i; sleep 0.2; done")
	stdout, _ := sess.StdoutPipe()
	sess.Stderr = os.Stderr
	if err := sess.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sess.Process.Kill(); sess.Wait() })
	tk := readTicks(stdout)
	eventually.True(t, "the session to tick", func() bool { return tk.lines.Load() > 3 })

	// The renewal, while the session runs.
	var second *x509.Certificate
	deadline := time.Now().Add(life + 30*time.Second)
	for time.Now().Before(deadline) {
		c, err := servedCert(addr, "control.test", ca.RootPool)
		if err == nil && c.SerialNumber.Cmp(first.SerialNumber) != 0 {
			second = c
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if second == nil {
		t.Fatalf("no renewal within %v of the first certificate's issue (valid %v)", life+30*time.Second, life)
	}
	renewedAt := time.Now()
	due := first.NotAfter.Add(-life / 3)
	t.Logf("renewed: serial %s, seen %s; due %s (a third of the lifetime left); %v before the old one expired",
		second.SerialNumber, renewedAt.Format(time.TimeOnly), due.Format(time.TimeOnly), first.NotAfter.Sub(renewedAt).Round(time.Second))
	if renewedAt.Before(due.Add(-5*time.Second)) || !renewedAt.Before(first.NotAfter) {
		t.Errorf("renewed at %s; want at about %s (a third of the lifetime left) and before %s", renewedAt.Format(time.TimeOnly), due.Format(time.TimeOnly), first.NotAfter.Format(time.TimeOnly))
	}

	// The open session went on through the renewal, without a gap.
	time.Sleep(2 * time.Second)
	gap, last, n := tk.maxGap(), tk.lastAt(), tk.lines.Load()
	if time.Since(last) > time.Second || gap > 2*time.Second {
		t.Errorf("the SSH session across the renewal: %d ticks, longest gap %v, last %v ago", n, gap, time.Since(last).Round(time.Millisecond))
	}
	t.Logf("session across the renewal: %d ticks, longest gap %v", n, gap.Round(time.Millisecond))
	if out, err := exec.Command(tsconnectBin, "--socket", socks["laptop"], "ssh", currentUser(t)+"@server", "echo", "after-renewal").CombinedOutput(); err != nil || !strings.Contains(string(out), "after-renewal") {
		t.Errorf("a new session after the renewal: %v\n%s", err, out)
	}

	// A restart serves the cached certificate at once: no new order.
	ctrl.cmd.Process.Signal(os.Interrupt)
	ctrl.cmd.Wait()
	startProcEnv(t, []string{"SSL_CERT_FILE=" + ca.HTTPSCA}, ctrlArgs...)
	var third *x509.Certificate
	eventually.True(t, "the restarted control to serve a certificate", func() bool {
		c, err := servedCert(addr, "control.test", ca.RootPool)
		third = c
		return err == nil
	})
	if third.SerialNumber.Cmp(second.SerialNumber) != 0 {
		t.Errorf("after a restart control serves serial %s; want the cached %s", third.SerialNumber, second.SerialNumber)
	}
}

// TestACMEDerp: a standalone relay with --acme-domain gets its certificate from Pebble,
// keeps it beside its key file, and serves the relay's probe over it.
func TestACMEDerp(t *testing.T) {
	addr := freePort(t)
	_, portStr, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(portStr)
	ca := startPebble(t, port, time.Hour)
	dir := t.TempDir()
	startProcEnv(t, []string{"SSL_CERT_FILE=" + ca.HTTPSCA}, "derp", "--listen", addr, "--key-file", filepath.Join(dir, "derp.key"),
		"--acme-domain", "derp.test", "--acme-directory", ca.Directory)
	eventually.True(t, "the relay to serve a certificate from Pebble for derp.test", func() bool {
		_, err := servedCert(addr, "derp.test", ca.RootPool)
		return err == nil
	})
	if _, err := os.Stat(filepath.Join(dir, "acme", "derp.test.crt")); err != nil {
		t.Errorf("the certificate is not kept beside the key file: %v", err)
	}
	hc := clientTo(addr, ca.RootPool)
	resp, err := hc.Get("https://derp.test:" + portStr + "/derp/probe")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /derp/probe over the ACME certificate: %s", resp.Status)
	}
}
