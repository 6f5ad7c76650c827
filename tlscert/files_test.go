package tlscert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// writePair writes a self-signed certificate with serial for name, and its key.
func writePair(t *testing.T, certPath, keyPath string, serial int64) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "relay.test"},
		DNSNames: []string{"relay.test"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(k)
	os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

func serialOf(t *testing.T, f *Files) int64 {
	t.Helper()
	c, err := f.GetCertificate(&tls.ClientHelloInfo{ServerName: "relay.test"})
	if err != nil {
		t.Fatal(err)
	}
	return c.Leaf.SerialNumber.Int64()
}

// TestFilesReload: new files are served after a change (within a second) or a Reload; a
// broken pair keeps the one in force, and Reload says why.
func TestFilesReload(t *testing.T) {
	dir := t.TempDir()
	cp, kp := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	writePair(t, cp, kp, 1)
	var mu sync.Mutex
	var logs []string
	f, err := NewFiles(cp, kp, func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		logs = append(logs, format)
	})
	if err != nil {
		t.Fatal(err)
	}
	if s := serialOf(t, f); s != 1 {
		t.Fatalf("serial %d, want 1", s)
	}
	writePair(t, cp, kp, 2)
	if err := f.Reload(); err != nil {
		t.Fatal(err)
	}
	if s := serialOf(t, f); s != 2 {
		t.Fatalf("after Reload: serial %d, want 2", s)
	}

	writePair(t, cp, kp, 3)
	deadline := time.Now().Add(5 * time.Second)
	for serialOf(t, f) != 3 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if s := serialOf(t, f); s != 3 {
		t.Fatalf("the changed files were not loaded: serial %d, want 3", s)
	}

	os.WriteFile(cp, []byte("not a certificate"), 0o644)
	if err := f.Reload(); err == nil || !strings.Contains(err.Error(), cp) {
		t.Errorf("Reload of a broken pair: %v; want an error naming %s", err, cp)
	}
	time.Sleep(statEvery + 100*time.Millisecond)
	if s := serialOf(t, f); s != 3 {
		t.Errorf("a broken pair replaced the certificate in force: serial %d", s)
	}
	if _, err := NewFiles(cp, kp, nil); err == nil {
		t.Error("NewFiles accepted a broken pair")
	}
}

// TestRenewAt: a third of the lifetime before the end.
func TestRenewAt(t *testing.T) {
	nb := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	leaf := &x509.Certificate{NotBefore: nb, NotAfter: nb.Add(90 * 24 * time.Hour)}
	if got, want := RenewAt(leaf), nb.Add(60*24*time.Hour); !got.Equal(want) {
		t.Errorf("RenewAt = %v, want %v", got, want)
	}
}

// TestNewACMERefusesBadDomains: a name without a dot, a wildcard, a URL.
func TestNewACMERefusesBadDomains(t *testing.T) {
	for _, d := range []string{"localhost", "*.example.com", "https://example.com", ""} {
		if _, err := NewACME(ACMEConfig{Domain: d, Dir: t.TempDir()}); err == nil {
			t.Errorf("NewACME accepted domain %q", d)
		}
	}
}
