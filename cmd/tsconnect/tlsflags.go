package main

import (
	"context"
	"errors"
	"flag"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"tsconnect/tlscert"
)

// tlsFlags are the HTTPS flags of control and derp: a certificate from files, or from ACME.
type tlsFlags struct {
	certFile, keyFile              string
	acmeDomain, acmeEmail, acmeDir string
}

func (f *tlsFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.certFile, "tls-cert", "", "TLS certificate file (PEM; loaded again on SIGHUP and when it changes)")
	fs.StringVar(&f.keyFile, "tls-key", "", "TLS key file (PEM)")
	fs.StringVar(&f.acmeDomain, "acme-domain", "", "get and renew the certificate for this DNS name from an ACME CA (TLS-ALPN-01 on --listen, which must be the name's port 443)")
	fs.StringVar(&f.acmeEmail, "acme-email", "", "contact address of the ACME account")
	fs.StringVar(&f.acmeDir, "acme-directory", tlscert.LetsEncrypt, "the ACME CA's directory URL")
}

// check reports flags that do not go together.
func (f *tlsFlags) check() error {
	if (f.certFile == "") != (f.keyFile == "") {
		return errors.New("--tls-cert and --tls-key go together")
	}
	if f.acmeDomain != "" && f.certFile != "" {
		return errors.New("choose one of --acme-domain or --tls-cert/--tls-key")
	}
	if f.acmeDomain == "" && (f.acmeEmail != "" || f.acmeDir != tlscert.LetsEncrypt) {
		return errors.New("--acme-email and --acme-directory need --acme-domain")
	}
	return nil
}

// enabled tells whether the listener serves HTTPS.
func (f *tlsFlags) enabled() bool { return f.certFile != "" || f.acmeDomain != "" }

// defaultURL is the public base URL of a listener on addr: https://DOMAIN[:port] with ACME.
func (f *tlsFlags) defaultURL(addr net.Addr) string {
	switch {
	case f.acmeDomain != "":
		u := "https://" + f.acmeDomain
		if ta, ok := addr.(*net.TCPAddr); ok && ta.Port != 443 {
			u += ":" + strconv.Itoa(ta.Port)
		}
		return u
	case f.certFile != "":
		return "https://" + addr.String()
	}
	return "http://" + addr.String()
}

// source starts the certificate source until ctx ends: the files (reloaded on SIGHUP), or
// ACME with its cache in acmeCache.
func (f *tlsFlags) source(ctx context.Context, acmeCache, prefix string) (tlscert.Source, error) {
	logf := logfTo(prefix)
	if f.acmeDomain != "" {
		a, err := tlscert.NewACME(tlscert.ACMEConfig{Domain: f.acmeDomain, Email: f.acmeEmail,
			DirectoryURL: f.acmeDir, Dir: acmeCache, Logf: logf})
		if err != nil {
			return nil, err
		}
		go a.Run(ctx)
		return a, nil
	}
	fs, err := tlscert.NewFiles(f.certFile, f.keyFile, logf)
	if err != nil {
		return nil, err
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				if err := fs.Reload(); err != nil {
					log.Printf("%s%v; keeping the certificate loaded before", prefix, err)
				}
			}
		}
	}()
	return fs, nil
}

// serve serves hs on ln: HTTPS from src, or plain HTTP when src is nil.
func serve(hs *http.Server, ln net.Listener, src tlscert.Source) error {
	if src == nil {
		return hs.Serve(ln)
	}
	hs.TLSConfig = tlscert.ServerConfig(src)
	return hs.ServeTLS(ln, "", "")
}
