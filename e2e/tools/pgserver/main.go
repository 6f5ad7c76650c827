// Command pgserver runs a real PostgreSQL server for the browser tests (internal/testpg: Debian's
// initdb and pg_ctl in a temporary directory, as an unprivileged user, on 127.0.0.1 only).
//
// It prints the URL of one fresh database on a line and serves until its standard input ends
// or it gets SIGTERM or SIGINT; then it stops the server and removes its directory.
package main

import (
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"syscall"

	"tsconnect/internal/testpg"
)

func main() {
	s, stop, err := testpg.Launch()
	if err != nil {
		log.Fatal(err)
	}
	url, err := s.CreateDatabase()
	if err != nil {
		stop()
		log.Fatal(err)
	}
	fmt.Println(url)
	done := make(chan struct{}, 2)
	go func() {
		io.Copy(io.Discard, os.Stdin)
		done <- struct{}{}
	}()
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
		<-sig
		done <- struct{}{}
	}()
	<-done
	if err := stop(); err != nil {
		log.Fatal(err)
	}
}
