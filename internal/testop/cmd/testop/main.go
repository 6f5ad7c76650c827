// Command testop runs the test OpenID Provider (package testop) on 127.0.0.1 for tests that
// need it as a process: users and clients from a JSON config, the issuer URL on stdout, and
// a small admin endpoint on loopback to change users and read counters while it runs.
//
// Usage:
//
//	testop --config FILE|- [--groups-claim NAME] [--id-token-lifespan DUR]
//	       [--claims-in-userinfo-only] [--userinfo-subject SUB] [--remember-sign-ins]
//	       [--no-auth-time] [-v=false]
//
// The config (the file, or standard input for "-") is
//
//	{"users": [{"email": "erin@example.com", "password": "…", "email_verified": true,
//	            "groups": ["engineering"], "name": "Erin", "subject": "…"}],
//	 "client": {"id": "tsconnect", "secret": "…", "redirect_uri": "http://127.0.0.1:8080/auth/oidc/callback"}}
//
// "clients" (a list of the same shape, "redirect_uris" a list) may stand beside or instead of
// "client". Once it serves, testop prints two lines on standard output:
//
//	http://127.0.0.1:PORT                     the issuer URL
//	admin http://127.0.0.1:PORT2 TOKEN        the admin endpoint and its bearer token
//
// The admin endpoint (every request with "Authorization: Bearer TOKEN") has
//
//	POST /users     a user in the config's form: added, or replacing the one with its email
//	POST /clients   a client in the config's form
//	GET  /logins    {"logins": N}: how many password sign-ins the login form has accepted
//	POST /backdate  {"by": "2h"}: remembered sign-ins move that far into the past
//
// testop serves until it gets SIGINT or SIGTERM. Sign-ins and refused requests are logged on
// standard error (never passwords or tokens).
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"tsconnect/internal/testop"
)

func main() {
	log.SetFlags(0)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdin, os.Stdout); err != nil {
		log.Fatalf("testop: %v", err)
	}
}

// run serves the provider the arguments describe, and its admin endpoint, until ctx ends.
func run(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	fs := flag.NewFlagSet("testop", flag.ContinueOnError)
	configPath := fs.String("config", "", `JSON file with "users" and "client" ("-": standard input)`)
	groupsClaim := fs.String("groups-claim", "groups", "ID token claim that carries the users' groups (a dotted path nests it)")
	lifespan := fs.Duration("id-token-lifespan", time.Hour, "how long ID tokens are valid")
	userinfoOnly := fs.Bool("claims-in-userinfo-only", false, "leave email, email_verified, name and groups out of the ID token (userinfo has them)")
	userinfoSub := fs.String("userinfo-subject", "", `the "sub" the userinfo endpoint answers for every user (a broken provider); "" is the user's own`)
	remember := fs.Bool("remember-sign-ins", false, "keep a provider session per browser: later requests without prompt=login or max_age=0 sign in silently")
	noAuthTime := fs.Bool("no-auth-time", false, "leave auth_time out of the ID token")
	verbose := fs.Bool("v", true, "log sign-ins and refused requests on standard error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *configPath == "" {
		return errors.New("--config FILE (or - for standard input) is required")
	}
	opts, err := readConfig(*configPath, stdin)
	if err != nil {
		return err
	}
	opts.GroupsClaim = *groupsClaim
	opts.IDTokenLifespan = *lifespan
	opts.ClaimsInUserinfoOnly = *userinfoOnly
	opts.RememberSignIns = *remember
	opts.NoAuthTime = *noAuthTime
	if sub := *userinfoSub; sub != "" {
		opts.UserinfoSubject = func(testop.User) string { return sub }
	}
	if *verbose {
		opts.Logf = log.Printf
	}
	op, err := testop.New(opts)
	if err != nil {
		return err
	}
	defer op.Close()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("admin endpoint: %w", err)
	}
	token := rand.Text()
	admin := &http.Server{Handler: adminHandler(op, token), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- admin.Serve(ln) }()
	defer func() {
		admin.Close()
		<-served
	}()

	fmt.Fprintln(stdout, op.Issuer())
	fmt.Fprintf(stdout, "admin http://%s %s\n", ln.Addr(), token)
	log.Printf("testop: serving %s with %d users and %d clients", op.Issuer(), len(opts.Users), len(opts.Clients))
	<-ctx.Done()
	return nil
}
