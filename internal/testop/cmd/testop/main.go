// Command testop runs the test OpenID Provider (package testop) on 127.0.0.1 for tests that
// need it as a process: users and a client from a JSON file, the issuer URL on stdout.
//
// Usage:
//
//	testop --config FILE|- [--groups-claim NAME] [--id-token-lifespan DUR] [-v=false]
//
// The config (the file, or standard input for "-") is
//
//	{"users": [{"email": "erin@example.com", "password": "…", "email_verified": true,
//	            "groups": ["engineering"], "name": "Erin", "subject": "…"}],
//	 "client": {"id": "tsconnect", "secret": "…", "redirect_uri": "http://127.0.0.1:8080/auth/oidc/callback"}}
//
// "clients" (a list of the same shape, "redirect_uris" a list) may stand beside or instead of
// "client". testop prints one line, the issuer URL, once it serves, then serves until it gets
// SIGINT or SIGTERM. Sign-ins and refused requests are logged on standard error (never passwords).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"

	"tsconnect/internal/testop"
)

// config is the JSON the provider starts from.
type config struct {
	Users   []userJSON   `json:"users"`
	Client  *clientJSON  `json:"client"`
	Clients []clientJSON `json:"clients"`
}

type userJSON struct {
	Email         string   `json:"email"`
	Password      string   `json:"password"`
	EmailVerified bool     `json:"email_verified"`
	Groups        []string `json:"groups"`
	Name          string   `json:"name"`
	Subject       string   `json:"subject"`
}

type clientJSON struct {
	ID           string   `json:"id"`
	Secret       string   `json:"secret"`
	RedirectURI  string   `json:"redirect_uri"`
	RedirectURIs []string `json:"redirect_uris"`
}

func main() {
	log.SetFlags(0)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdin, os.Stdout); err != nil {
		log.Fatalf("testop: %v", err)
	}
}

// run serves the provider the arguments describe until ctx ends.
func run(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	fs := flag.NewFlagSet("testop", flag.ContinueOnError)
	configPath := fs.String("config", "", `JSON file with "users" and "client" ("-": standard input)`)
	groupsClaim := fs.String("groups-claim", "groups", "ID token claim that carries the users' groups")
	lifespan := fs.Duration("id-token-lifespan", time.Hour, "how long ID tokens are valid")
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
	if *verbose {
		opts.Logf = log.Printf
	}
	op, err := testop.New(opts)
	if err != nil {
		return err
	}
	defer op.Close()
	fmt.Fprintln(stdout, op.Issuer())
	log.Printf("testop: serving %s with %d users and %d clients", op.Issuer(), len(opts.Users), len(opts.Clients))
	<-ctx.Done()
	return nil
}

// readConfig reads and checks the JSON config at path ("-": stdin).
func readConfig(path string, stdin io.Reader) (testop.Options, error) {
	var data []byte
	var err error
	if path == "-" {
		data, err = io.ReadAll(stdin)
	} else {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return testop.Options{}, fmt.Errorf("reading the config: %w", err)
	}
	var c config
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return testop.Options{}, fmt.Errorf("config %s: %w", path, err)
	}
	var opts testop.Options
	for i, u := range c.Users {
		if u.Email == "" || u.Password == "" {
			return testop.Options{}, fmt.Errorf("config %s: user %d needs an email and a password", path, i+1)
		}
		opts.Users = append(opts.Users, testop.User{Subject: u.Subject, Email: u.Email, Password: u.Password,
			Name: u.Name, EmailVerified: u.EmailVerified, Groups: u.Groups})
	}
	clients := c.Clients
	if c.Client != nil {
		clients = append([]clientJSON{*c.Client}, clients...)
	}
	if len(clients) == 0 {
		return testop.Options{}, fmt.Errorf("config %s: no client: give \"client\": {\"id\", \"secret\", \"redirect_uri\"}", path)
	}
	for _, cl := range clients {
		uris := cl.RedirectURIs
		if cl.RedirectURI != "" {
			uris = append([]string{cl.RedirectURI}, uris...)
		}
		opts.Clients = append(opts.Clients, testop.Client{ID: cl.ID, Secret: cl.Secret, RedirectURIs: uris})
	}
	return opts, nil
}
