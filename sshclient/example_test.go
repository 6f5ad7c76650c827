package sshclient_test

import (
	"context"
	"log"
	"net"
	"os"

	"tsconnect/sshclient"
)

func ExampleDial() {
	var nc net.Conn                                // e.g. from node.Dial(ctx, "tcp", "100.64.0.2:22")
	var hostKeys = []string{"ssh-ed25519 AAAA..."} // the peer's SSHHostKeys from the network map
	if nc == nil {
		return
	}
	s, err := sshclient.Dial(context.Background(), nc, "alice", sshclient.Options{
		HostKeys: hostKeys,
		Rows:     24, Cols: 80,
		OnBanner: func(text string) { os.Stderr.WriteString(text) },
		OnData:   func(p []byte) { os.Stdout.Write(p) },
	})
	if err != nil {
		log.Fatal(err) // a wrong key fails with "host key mismatch"
	}
	defer s.Close()
	s.Write([]byte("uname -a\n"))
	s.Resize(40, 120)
	code, err := s.Wait()
	log.Printf("exit %d %v", code, err)
}
