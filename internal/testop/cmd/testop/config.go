package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"tsconnect/internal/testop"
)

// config is the JSON the provider starts from.
type config struct {
	Users   []userJSON   `json:"users"`
	Client  *clientJSON  `json:"client"`
	Clients []clientJSON `json:"clients"`
}

// userJSON is a user in the config and in POST /users.
type userJSON struct {
	Email         string   `json:"email"`
	Password      string   `json:"password"`
	EmailVerified bool     `json:"email_verified"`
	Groups        []string `json:"groups"`
	Name          string   `json:"name"`
	Subject       string   `json:"subject"`
}

// clientJSON is a client in the config and in POST /clients.
type clientJSON struct {
	ID           string   `json:"id"`
	Secret       string   `json:"secret"`
	RedirectURI  string   `json:"redirect_uri"`
	RedirectURIs []string `json:"redirect_uris"`
}

// user is u as the provider's account; it needs an email and a password.
func (u userJSON) user() (testop.User, error) {
	if u.Email == "" || u.Password == "" {
		return testop.User{}, errors.New("needs an email and a password")
	}
	return testop.User{Subject: u.Subject, Email: u.Email, Password: u.Password,
		Name: u.Name, EmailVerified: u.EmailVerified, Groups: u.Groups}, nil
}

// client is c as a relying party (testop.AddClient checks its fields).
func (c clientJSON) client() testop.Client {
	uris := c.RedirectURIs
	if c.RedirectURI != "" {
		uris = append([]string{c.RedirectURI}, uris...)
	}
	return testop.Client{ID: c.ID, Secret: c.Secret, RedirectURIs: uris}
}

// decodeStrict decodes one JSON value, refusing fields it does not know.
func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
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
	if err := decodeStrict(data, &c); err != nil {
		return testop.Options{}, fmt.Errorf("config %s: %w", path, err)
	}
	var opts testop.Options
	for i, uj := range c.Users {
		u, err := uj.user()
		if err != nil {
			return testop.Options{}, fmt.Errorf("config %s: user %d %w", path, i+1, err)
		}
		opts.Users = append(opts.Users, u)
	}
	clients := c.Clients
	if c.Client != nil {
		clients = append([]clientJSON{*c.Client}, clients...)
	}
	if len(clients) == 0 {
		return testop.Options{}, fmt.Errorf("config %s: no client: give \"client\": {\"id\", \"secret\", \"redirect_uri\"}", path)
	}
	for _, cl := range clients {
		opts.Clients = append(opts.Clients, cl.client())
	}
	return opts, nil
}
