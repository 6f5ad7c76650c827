package tlscert

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/acme"

	"tsconnect/internal/backoff"
)

// LetsEncrypt is the default ACME directory.
const LetsEncrypt = acme.LetsEncryptURL

// ACMEConfig configures an ACME certificate.
type ACMEConfig struct {
	// Domain is the one name on the certificate; it must contain a dot.
	Domain string
	// Email, if set, is the account's contact (the CA's expiry mails).
	Email string
	// DirectoryURL is the CA's ACME directory; "" is Let's Encrypt.
	DirectoryURL string
	// Dir keeps the account key and the certificate (created mode 0700, files 0600).
	Dir string
	// HTTPClient reaches the CA; nil is http.DefaultClient (the system's trust store).
	HTTPClient *http.Client
	// Logf logs obtaining and renewing; nil discards.
	Logf func(string, ...any)
}

// ACME gets a certificate for one domain from an ACME CA, proving control of the domain by
// TLS-ALPN-01 on the listener it serves (so that listener must be the domain's port 443, or
// the CA's validation port), keeps it in Dir, and renews it once a third of its lifetime is
// left; until a renewal succeeds the certificate in force is served. Run does the work.
type ACME struct {
	cfg    ACMEConfig
	logf   func(string, ...any)
	client *acme.Client

	mu        sync.Mutex
	cert      *tls.Certificate
	challenge map[string]*tls.Certificate // domain → TLS-ALPN-01 answer, while validating
	ready     chan struct{}               // closed once a certificate is served
	readyOnce sync.Once
}

// NewACME checks cfg and loads the account key and a cached certificate, if any.
func NewACME(cfg ACMEConfig) (*ACME, error) {
	d := strings.ToLower(strings.TrimSuffix(cfg.Domain, "."))
	if !strings.Contains(d, ".") || strings.ContainsAny(d, "/:* ") {
		return nil, fmt.Errorf("tlscert: ACME domain %q must be a DNS name with a dot (control.example.com)", cfg.Domain)
	}
	cfg.Domain = d
	if cfg.DirectoryURL == "" {
		cfg.DirectoryURL = LetsEncrypt
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("tlscert: %w", err)
	}
	key, err := loadOrCreateKey(filepath.Join(cfg.Dir, "account.key"))
	if err != nil {
		return nil, err
	}
	a := &ACME{cfg: cfg, logf: cfg.Logf, challenge: map[string]*tls.Certificate{}, ready: make(chan struct{}),
		client: &acme.Client{Key: key, DirectoryURL: cfg.DirectoryURL, HTTPClient: cfg.HTTPClient, UserAgent: "tsconnect"}}
	if c, err := tls.LoadX509KeyPair(a.certPath(), a.keyPath()); err == nil && c.Leaf != nil && slices.Contains(c.Leaf.DNSNames, d) {
		a.setCert(&c)
		a.logf("tlscert: %s: certificate from %s, expires %s", d, a.certPath(), c.Leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return a, nil
}

func (a *ACME) certPath() string { return filepath.Join(a.cfg.Dir, a.cfg.Domain+".crt") }
func (a *ACME) keyPath() string  { return filepath.Join(a.cfg.Dir, a.cfg.Domain+".key") }

func (a *ACME) setCert(c *tls.Certificate) {
	a.mu.Lock()
	a.cert = c
	a.mu.Unlock()
	a.readyOnce.Do(func() { close(a.ready) })
}

// Ready is closed once a certificate is served.
func (a *ACME) Ready() <-chan struct{} { return a.ready }

// GetCertificate answers the CA's TLS-ALPN-01 validation while an order is pending and
// serves the certificate otherwise.
func (a *ACME) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if slices.Contains(hello.SupportedProtos, acme.ALPNProto) {
		if c := a.challenge[strings.ToLower(hello.ServerName)]; c != nil {
			return c, nil
		}
		return nil, fmt.Errorf("tlscert: no ACME validation pending for %q", hello.ServerName)
	}
	if a.cert == nil {
		return nil, fmt.Errorf("tlscert: no certificate for %s yet (the ACME order is under way)", a.cfg.Domain)
	}
	return a.cert, nil
}

// RenewAt is when a certificate is renewed: with a third of its lifetime left.
func RenewAt(leaf *x509.Certificate) time.Time {
	life := leaf.NotAfter.Sub(leaf.NotBefore)
	return leaf.NotAfter.Add(-life / 3)
}

// Run obtains a certificate when there is none and renews it at RenewAt, retrying failures
// with a jittered back-off (1 s doubling to at most 10 minutes, never past the expiry's
// last tenth), until ctx ends.
func (a *ACME) Run(ctx context.Context) {
	bo := backoff.Backoff{Min: time.Second, Max: 10 * time.Minute}
	for {
		a.mu.Lock()
		cur := a.cert
		a.mu.Unlock()
		var wait time.Duration
		if cur != nil {
			wait = time.Until(RenewAt(cur.Leaf))
		}
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		err := a.obtain(ctx)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			bo.Reset()
			continue
		}
		d := bo.Next()
		if cur != nil {
			d = min(d, max(time.Second, time.Until(cur.Leaf.NotAfter)/10))
		}
		a.logf("tlscert: %s: %v; trying again in %v", a.cfg.Domain, err, d.Round(time.Second))
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// obtain runs one ACME order for the domain and installs the certificate.
func (a *ACME) obtain(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	acct := &acme.Account{}
	if a.cfg.Email != "" {
		acct.Contact = []string{"mailto:" + a.cfg.Email}
	}
	if _, err := a.client.Register(ctx, acct, acme.AcceptTOS); err != nil && !errors.Is(err, acme.ErrAccountAlreadyExists) {
		return fmt.Errorf("ACME account at %s: %w", a.cfg.DirectoryURL, err)
	}
	order, err := a.client.AuthorizeOrder(ctx, acme.DomainIDs(a.cfg.Domain))
	if err != nil {
		return fmt.Errorf("ACME order: %w", err)
	}
	for _, u := range order.AuthzURLs {
		if err := a.authorize(ctx, u); err != nil {
			return err
		}
	}
	if order, err = a.client.WaitOrder(ctx, order.URI); err != nil {
		return fmt.Errorf("ACME order: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: a.cfg.Domain}, DNSNames: []string{a.cfg.Domain}}, key)
	if err != nil {
		return err
	}
	der, _, err := a.client.CreateCertFromOrder(ctx, order, csr, true)
	if err != nil {
		return fmt.Errorf("ACME certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der[0])
	if err != nil {
		return fmt.Errorf("ACME certificate: %w", err)
	}
	if err := a.save(der, key); err != nil {
		return err
	}
	a.setCert(&tls.Certificate{Certificate: der, PrivateKey: key, Leaf: leaf})
	a.logf("tlscert: %s: new certificate from %s, valid until %s, renewal at %s", a.cfg.Domain, a.cfg.DirectoryURL,
		leaf.NotAfter.UTC().Format(time.RFC3339), RenewAt(leaf).UTC().Format(time.RFC3339))
	return nil
}

// authorize completes one authorization by TLS-ALPN-01.
func (a *ACME) authorize(ctx context.Context, url string) error {
	z, err := a.client.GetAuthorization(ctx, url)
	if err != nil {
		return fmt.Errorf("ACME authorization: %w", err)
	}
	if z.Status == acme.StatusValid {
		return nil
	}
	var chal *acme.Challenge
	for _, c := range z.Challenges {
		if c.Type == "tls-alpn-01" {
			chal = c
		}
	}
	if chal == nil {
		return fmt.Errorf("ACME: the CA offers no tls-alpn-01 challenge for %s", z.Identifier.Value)
	}
	cert, err := a.client.TLSALPN01ChallengeCert(chal.Token, z.Identifier.Value)
	if err != nil {
		return err
	}
	name := strings.ToLower(z.Identifier.Value)
	a.mu.Lock()
	a.challenge[name] = &cert
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		delete(a.challenge, name)
		a.mu.Unlock()
	}()
	if _, err := a.client.Accept(ctx, chal); err != nil {
		return fmt.Errorf("ACME challenge: %w", err)
	}
	if _, err := a.client.WaitAuthorization(ctx, z.URI); err != nil {
		return fmt.Errorf("ACME validation of %s (is this listener the domain's port 443?): %w", name, err)
	}
	return nil
}

// save writes the chain and key into Dir, each file replaced whole.
func (a *ACME) save(der [][]byte, key *ecdsa.PrivateKey) error {
	var chain []byte
	for _, b := range der {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: b})...)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := writeFile(a.keyPath(), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})); err != nil {
		return err
	}
	return writeFile(a.certPath(), chain)
}

// loadOrCreateKey reads the ACME account key at path, making one (P-256) if there is none.
func loadOrCreateKey(path string) (crypto.Signer, error) {
	if b, err := os.ReadFile(path); err == nil {
		blk, _ := pem.Decode(b)
		if blk == nil {
			return nil, fmt.Errorf("tlscert: %s holds no PEM key", path)
		}
		k, err := x509.ParseECPrivateKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("tlscert: %s: %w", path, err)
		}
		return k, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("tlscert: %w", err)
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	kb, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		return nil, err
	}
	if err := writeFile(path, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})); err != nil {
		return nil, err
	}
	return k, nil
}

// writeFile replaces path with data, mode 0600, through a synced temporary file.
func writeFile(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("tlscert: %w", err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("tlscert: %w", err)
	}
	return nil
}
