package sshd_test

import (
	"context"
	"errors"
	"log"
	"net"
	"net/netip"

	"tsconnect/sshd"
)

func ExampleServer() {
	keys, err := sshd.LoadOrCreateHostKeys("/var/lib/tsconnect/ssh")
	if err != nil {
		log.Fatal(err)
	}
	srv := &sshd.Server{
		HostKeys: keys,
		Authorize: func(ctx context.Context, req sshd.AuthRequest) (*sshd.Login, error) {
			// Look req.Remote() up in the network map and evaluate the SSH rules here.
			if req.User() != "deploy" {
				return nil, errors.New("tsconnect: only deploy may log in here")
			}
			return &sshd.Login{LocalUser: "deploy", Source: "ci (" + req.Remote().Addr().String() + ")", Rule: "ssh[0]"}, nil
		},
		Logf: log.Printf,
	}
	ln, err := net.Listen("tcp", "100.64.0.1:22") // the agent passes its netstack listener
	if err != nil {
		log.Fatal(err)
	}
	go srv.Serve(ln)
	// Later, after a policy change: cut logins that are no longer allowed.
	srv.Revoke(func(remote netip.AddrPort, l *sshd.Login) bool { return l.LocalUser == "deploy" }, "Access revoked.")
	srv.Close()
}
