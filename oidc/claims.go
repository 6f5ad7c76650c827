package oidc

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// Bounds on what a provider may send for a user.
const (
	maxGroups    = 256
	maxGroupLen  = 256
	maxEmailLen  = 254
	maxUserinfo  = 1 << 20 // bytes of a userinfo answer
	maxNameBytes = 256
	maxSubject   = 255 // OpenID Connect Core 2: sub is at most 255 ASCII characters
)

// identity reads the user from a verified ID token, completed from the userinfo endpoint
// (OpenID Connect Core 5.3, with tok's access token) when the ID token lacks the email,
// email_verified or the groups claim, and requires a verified email.
func (rp *RP) identity(ctx context.Context, t *oidc.IDToken, tok *oauth2.Token) (Identity, error) {
	var c map[string]any
	if err := t.Claims(&c); err != nil {
		return Identity{}, fmt.Errorf("%w: reading its claims: %v", ErrInvalidToken, err)
	}
	if len(t.Subject) > maxSubject {
		return Identity{}, fmt.Errorf("%w: its subject is %d bytes, more than %d", ErrInvalidToken, len(t.Subject), maxSubject)
	}
	_, hasGroups := claimAt(c, rp.cfg.GroupsClaim)
	if (c["email"] == nil || c["email_verified"] == nil || !hasGroups) && rp.userinfoURL != "" {
		u, err := rp.userinfo(ctx, tok)
		if err != nil {
			return Identity{}, err
		}
		if sub, _ := u["sub"].(string); sub != t.Subject {
			return Identity{}, fmt.Errorf("%w: the userinfo answer is for subject %q, not the ID token's %q", ErrUserinfo, printable(sub, 64), t.Subject)
		}
		for _, k := range []string{"email", "email_verified", "name", "preferred_username"} {
			if c[k] == nil && u[k] != nil {
				c[k] = u[k]
			}
		}
		if !hasGroups {
			if g, ok := claimAt(u, rp.cfg.GroupsClaim); ok {
				c[rp.cfg.GroupsClaim] = g
			}
		}
	}
	id := Identity{Issuer: t.Issuer, Subject: t.Subject}
	id.Email, _ = c["email"].(string)
	id.Email = strings.TrimSpace(id.Email)
	if id.Email == "" || !strings.Contains(id.Email, "@") {
		return Identity{}, fmt.Errorf("%w (subject %q); the email scope or claim may be missing", ErrNoEmail, t.Subject)
	}
	if len(id.Email) > maxEmailLen {
		return Identity{}, fmt.Errorf("%w: the email is %d bytes, more than %d", ErrInvalidToken, len(id.Email), maxEmailLen)
	}
	if !verified(c["email_verified"]) {
		return Identity{}, fmt.Errorf("%w: %s (email_verified is %v)", ErrEmailUnverified, id.Email, describe(c["email_verified"]))
	}
	if s, ok := c["name"].(string); ok && s != "" {
		id.Name = s
	} else if s, ok := c["preferred_username"].(string); ok {
		id.Name = s
	}
	if len(id.Name) > maxNameBytes {
		id.Name = printable(id.Name, maxNameBytes)
	}
	g, _ := claimAt(c, rp.cfg.GroupsClaim)
	groups, err := stringList(g)
	if err != nil {
		return Identity{}, fmt.Errorf("%w: claim %q: %v", ErrInvalidToken, rp.cfg.GroupsClaim, err)
	}
	if len(groups) > maxGroups {
		return Identity{}, fmt.Errorf("%w: claim %q holds %d groups, more than %d", ErrInvalidToken, rp.cfg.GroupsClaim, len(groups), maxGroups)
	}
	for _, g := range groups {
		if len(g) > maxGroupLen {
			return Identity{}, fmt.Errorf("%w: claim %q holds a group of %d bytes, more than %d", ErrInvalidToken, rp.cfg.GroupsClaim, len(g), maxGroupLen)
		}
	}
	id.Groups = groups
	if at, ok := c["auth_time"].(float64); ok && at > 0 {
		id.AuthTime = time.Unix(int64(at), 0)
	}
	return id, nil
}

// claimAt finds a claim by name or, failing that, by a dotted path through nested
// objects ("realm_access.roles").
func claimAt(c map[string]any, path string) (any, bool) {
	if v, ok := c[path]; ok {
		return v, true
	}
	var cur any = c
	for _, k := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[k]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// userinfo fetches the userinfo endpoint with the access token (a JSON answer of at most
// maxUserinfo bytes).
func (rp *RP) userinfo(ctx context.Context, tok *oauth2.Token) (map[string]any, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rp.userinfoURL, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUserinfo, err)
	}
	tok.SetAuthHeader(req)
	req.Header.Set("Accept", "application/json")
	resp, err := rp.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUserinfo, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: the endpoint answered %s", ErrUserinfo, resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return nil, fmt.Errorf("%w: the answer is %q, want application/json (signed userinfo is not supported)", ErrUserinfo, printable(ct, 64))
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxUserinfo+1))
	if err != nil {
		return nil, fmt.Errorf("%w: reading the answer: %v", ErrUserinfo, err)
	}
	if len(body) > maxUserinfo {
		return nil, fmt.Errorf("%w: the answer is larger than %d bytes", ErrUserinfo, maxUserinfo)
	}
	var u map[string]any
	if err := json.Unmarshal(body, &u); err != nil {
		return nil, fmt.Errorf("%w: the answer is not a JSON object: %v", ErrUserinfo, err)
	}
	return u, nil
}

// verified is true only for the JSON boolean true (or the string "true", which some
// providers send).
func verified(v any) bool {
	switch v := v.(type) {
	case bool:
		return v
	case string:
		return v == "true"
	}
	return false
}

func describe(v any) string {
	if v == nil {
		return "missing"
	}
	return fmt.Sprintf("%v", v)
}

// stringList reads a groups claim: absent, one string, or a list of strings.
func stringList(v any) ([]string, error) {
	switch v := v.(type) {
	case nil:
		return nil, nil
	case string:
		return []string{v}, nil
	case []any:
		out := make([]string, 0, len(v))
		for _, x := range v {
			s, ok := x.(string)
			if !ok {
				return nil, fmt.Errorf("holds %T, want strings", x)
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, fmt.Errorf("is a %T, want a list of strings", v)
}

// allowed applies the allow lists (see Config).
func (rp *RP) allowed(id Identity) error {
	c := &rp.cfg
	email := strings.ToLower(id.Email)
	for _, u := range c.AllowedUsers {
		if strings.EqualFold(strings.TrimSpace(u), email) {
			return nil
		}
	}
	if len(c.AllowedDomains) > 0 {
		domain := email[strings.LastIndexByte(email, '@')+1:]
		if !slices.ContainsFunc(c.AllowedDomains, func(d string) bool {
			return strings.EqualFold(strings.TrimPrefix(strings.TrimSpace(d), "@"), domain)
		}) {
			return fmt.Errorf("%w: %s: email domain %q is not allowed", ErrNotAllowed, id.Email, domain)
		}
	}
	if len(c.AllowedGroups) > 0 {
		if !slices.ContainsFunc(id.Groups, func(g string) bool { return slices.Contains(c.AllowedGroups, g) }) {
			return fmt.Errorf("%w: %s is in none of the allowed groups %v", ErrNotAllowed, id.Email, c.AllowedGroups)
		}
	}
	if len(c.AllowedDomains) == 0 && len(c.AllowedGroups) == 0 && len(c.AllowedUsers) > 0 {
		return fmt.Errorf("%w: %s is not among the allowed users", ErrNotAllowed, id.Email)
	}
	return nil
}
