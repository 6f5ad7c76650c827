// Package testpebble runs a real ACME server for tests: Pebble and its DNS test server (which
// answers 127.0.0.1 for every name), built once from the module proxy into the tools cache.
package testpebble

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Version is the Pebble release the tests build.
const Version = "v2.10.3"

// CA is a running Pebble.
type CA struct {
	// Directory is the ACME directory URL.
	Directory string
	// HTTPSCA is a file holding the CA of Pebble's own HTTPS: what an ACME client must trust
	// to reach Directory (its SSL_CERT_FILE).
	HTTPSCA string
	// RootFile holds Pebble's issuing root (PEM): what the clients of a server it certified trust.
	RootFile string
	// RootPool is the same root as a pool.
	RootPool *x509.CertPool

	procs []*exec.Cmd
	dir   string
}

// Options configure Start.
type Options struct {
	// TLSPort is where Pebble's TLS-ALPN-01 validation connects (the server under test's port).
	TLSPort int
	// Validity is the lifetime of the certificates it issues.
	Validity time.Duration
	// Log, if set, gets the two servers' output.
	Log io.Writer
}

// Start builds (once per machine) and starts Pebble and its DNS server on loopback.
func Start(ctx context.Context, o Options) (*CA, error) {
	pebble, challtestsrv, modDir, err := tools()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "testpebble-")
	if err != nil {
		return nil, err
	}
	ca := &CA{dir: dir, HTTPSCA: filepath.Join(modDir, "test/certs/pebble.minica.pem")}
	ports, err := freePorts(4)
	if err != nil {
		return nil, err
	}
	dns, listen, mgmt, challMgmt := ports[0], ports[1], ports[2], ports[3]
	if err := ca.start(o.Log, challtestsrv, nil, "-dnsserver", dns, "-management", challMgmt, "-defaultIPv4", "127.0.0.1",
		"-defaultIPv6", "", "-http01", "", "-https01", "", "-tlsalpn01", "", "-doh", ""); err != nil {
		return nil, err
	}
	cfg := map[string]any{"pebble": map[string]any{
		"listenAddress": listen, "managementListenAddress": mgmt,
		"certificate": filepath.Join(modDir, "test/certs/localhost/cert.pem"),
		"privateKey":  filepath.Join(modDir, "test/certs/localhost/key.pem"),
		"httpPort":    1, "tlsPort": o.TLSPort, "keyAlgorithm": "ecdsa",
		"externalAccountBindingRequired": false,
		"profiles":                       map[string]any{"default": map[string]any{"description": "short", "validityPeriod": int(o.Validity.Seconds())}},
	}}
	b, _ := json.Marshal(cfg)
	cfgFile := filepath.Join(dir, "pebble.json")
	if err := os.WriteFile(cfgFile, b, 0o600); err != nil {
		ca.Close()
		return nil, err
	}
	if err := ca.start(o.Log, pebble, []string{"PEBBLE_VA_NOSLEEP=1", "PEBBLE_AUTHZREUSE=0"}, "-config", cfgFile, "-dnsserver", dns); err != nil {
		ca.Close()
		return nil, err
	}
	ca.Directory = "https://" + listen + "/dir"
	root, err := ca.fetchRoot(ctx, "https://"+mgmt+"/roots/0")
	if err != nil {
		ca.Close()
		return nil, err
	}
	ca.RootPool = x509.NewCertPool()
	if !ca.RootPool.AppendCertsFromPEM(root) {
		ca.Close()
		return nil, fmt.Errorf("testpebble: Pebble's root is not PEM: %q", root)
	}
	ca.RootFile = filepath.Join(dir, "pebble-root.pem")
	if err := os.WriteFile(ca.RootFile, root, 0o644); err != nil {
		ca.Close()
		return nil, err
	}
	return ca, nil
}

// Close stops both servers and removes their files.
func (ca *CA) Close() {
	for _, p := range ca.procs {
		p.Process.Kill()
		p.Wait()
	}
	os.RemoveAll(ca.dir)
}

func (ca *CA) start(log io.Writer, path string, env []string, args ...string) error {
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), env...)
	if log != nil {
		cmd.Stdout, cmd.Stderr = log, log
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("testpebble: %w", err)
	}
	ca.procs = append(ca.procs, cmd)
	return nil
}

// fetchRoot waits for Pebble's management API to answer and returns its issuing root.
func (ca *CA) fetchRoot(ctx context.Context, url string) ([]byte, error) {
	minica, err := os.ReadFile(ca.HTTPSCA)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(minica)
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := hc.Get(url)
		if err == nil {
			b, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if rerr == nil && resp.StatusCode == 200 {
				return b, nil
			}
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("testpebble: Pebble's management API did not answer within 30 s: %v", err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

var (
	toolsOnce                      sync.Once
	pebbleBin, challBin, modDirVal string
	toolsErr                       error
)

// tools builds Pebble and pebble-challtestsrv once per machine into the tools cache and
// returns their paths and the module's directory (its test certificates).
func tools() (pebble, challtestsrv, modDir string, err error) {
	toolsOnce.Do(func() { pebbleBin, challBin, modDirVal, toolsErr = build() })
	return pebbleBin, challBin, modDirVal, toolsErr
}

func build() (pebble, challtestsrv, modDir string, err error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", "", "", err
	}
	gover, err := exec.Command("go", "env", "GOVERSION").Output()
	if err != nil {
		return "", "", "", fmt.Errorf("testpebble: go env: %w", err)
	}
	bin := filepath.Join(cache, "tsconnect", "tools", "pebble-"+Version+"-"+strings.TrimSpace(string(gover)))
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return "", "", "", err
	}
	pebble, challtestsrv = filepath.Join(bin, "pebble"), filepath.Join(bin, "pebble-challtestsrv")
	goCmd := func(args ...string) ([]byte, error) {
		cmd := exec.Command("go", args...)
		cmd.Env = append(os.Environ(), "GOBIN="+bin, "GOFLAGS=")
		cmd.Dir = bin // outside any module
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("testpebble: go %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
		}
		return out, nil
	}
	if _, err := os.Stat(challtestsrv); errors.Is(err, os.ErrNotExist) {
		if _, err := goCmd("install", "github.com/letsencrypt/pebble/v2/cmd/pebble@"+Version,
			"github.com/letsencrypt/pebble/v2/cmd/pebble-challtestsrv@"+Version); err != nil {
			return "", "", "", err
		}
	}
	out, err := goCmd("mod", "download", "-json", "github.com/letsencrypt/pebble/v2@"+Version)
	if err != nil {
		return "", "", "", err
	}
	var m struct{ Dir string }
	if err := json.Unmarshal(out, &m); err != nil || m.Dir == "" {
		return "", "", "", fmt.Errorf("testpebble: go mod download pebble: %q: %v", out, err)
	}
	return pebble, challtestsrv, m.Dir, nil
}

// freePorts returns n loopback addresses free right now.
func freePorts(n int) ([]string, error) {
	var out []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer ln.Close() // held until all are picked, so no two are the same
		out = append(out, ln.Addr().String())
	}
	return out, nil
}
