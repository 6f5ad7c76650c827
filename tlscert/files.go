// Package tlscert provides the certificates of control's and the relay's HTTPS listeners:
// from PEM files (reloaded on SIGHUP and when the files change) or from an ACME CA.
package tlscert

import (
	"crypto/tls"
	"fmt"
	"os"
	"sync"
	"time"

	"golang.org/x/crypto/acme"
)

// Source hands a TLS server its certificate; it is what tls.Config.GetCertificate calls.
type Source interface {
	GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error)
}

// ServerConfig is a TLS server configuration serving src's certificate, TLS 1.2 at least.
func ServerConfig(src Source) *tls.Config {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: src.GetCertificate}
	if _, ok := src.(*ACME); ok {
		// The CA's TLS-ALPN-01 validation connects with only this protocol.
		cfg.NextProtos = []string{"h2", "http/1.1", acme.ALPNProto}
	}
	return cfg
}

// statEvery bounds how often Files looks at its files' modification times.
const statEvery = time.Second

// Files serves the certificate and key in two PEM files, loaded anew by Reload (call it
// on SIGHUP) and, at most once a second, when either file's size or modification time has
// changed. A reload that fails keeps the certificate in force and is logged.
type Files struct {
	certPath, keyPath string
	logf              func(string, ...any)

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   [2]fileStamp
	checked time.Time
}

type fileStamp struct {
	size int64
	mod  time.Time
}

// NewFiles loads the pair once; a pair that does not load is an error here.
func NewFiles(certPath, keyPath string, logf func(string, ...any)) (*Files, error) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	f := &Files{certPath: certPath, keyPath: keyPath, logf: logf}
	if err := f.Reload(); err != nil {
		return nil, err
	}
	return f, nil
}

// Reload loads the files again; on an error the certificate in force stays.
func (f *Files) Reload() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reloadLocked()
}

func (f *Files) reloadLocked() error {
	stamp, err := f.stamps()
	if err != nil {
		return err
	}
	cert, err := tls.LoadX509KeyPair(f.certPath, f.keyPath)
	if err != nil {
		return fmt.Errorf("tlscert: %s and %s: %w", f.certPath, f.keyPath, err)
	}
	old := f.cert
	f.cert, f.stamp = &cert, stamp
	if old != nil {
		f.logf("tlscert: loaded %s again (expires %s)", f.certPath, cert.Leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return nil
}

func (f *Files) stamps() ([2]fileStamp, error) {
	var s [2]fileStamp
	for i, p := range []string{f.certPath, f.keyPath} {
		fi, err := os.Stat(p)
		if err != nil {
			return s, fmt.Errorf("tlscert: %w", err)
		}
		s[i] = fileStamp{fi.Size(), fi.ModTime()}
	}
	return s, nil
}

// GetCertificate returns the pair, loading it again first if the files changed.
func (f *Files) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if now := time.Now(); now.Sub(f.checked) >= statEvery {
		f.checked = now
		if s, err := f.stamps(); err == nil && s != f.stamp {
			if err := f.reloadLocked(); err != nil {
				f.logf("%v; keeping the certificate loaded before", err)
				f.stamp = s // not again until the files change again
			}
		}
	}
	return f.cert, nil
}
