// Command pebblenet runs a real ACME server (Pebble and its DNS test server, internal/testpebble)
// for the browser tests until its stdin closes or it is signalled.
//
// Usage:
//
//	pebblenet --tls-port PORT --validity DUR
//
// Once ready it prints one JSON line: {"directory": URL, "httpsCA": FILE, "root": FILE}, the
// ACME directory, the CA an ACME client trusts to reach it, and the root its certificates chain to.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"io"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"

	"tsconnect/internal/testpebble"
)

func main() {
	port := flag.Int("tls-port", 0, "where Pebble's TLS-ALPN-01 validation connects")
	validity := flag.Duration("validity", time.Hour, "lifetime of the certificates it issues")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ca, err := testpebble.Start(ctx, testpebble.Options{TLSPort: *port, Validity: *validity, Log: os.Stderr})
	if err != nil {
		log.Fatal(err)
	}
	defer ca.Close()
	json.NewEncoder(os.Stdout).Encode(map[string]string{"directory": ca.Directory, "httpsCA": ca.HTTPSCA, "root": ca.RootFile})
	go func() {
		io.Copy(io.Discard, os.Stdin)
		stop()
	}()
	<-ctx.Done()
}
