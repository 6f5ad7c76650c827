package oidc

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// identity reads the user from a verified ID token and requires a verified email.
func (rp *RP) identity(t *oidc.IDToken) (Identity, error) {
	var c map[string]any
	if err := t.Claims(&c); err != nil {
		return Identity{}, fmt.Errorf("%w: reading its claims: %v", ErrInvalidToken, err)
	}
	id := Identity{Issuer: t.Issuer, Subject: t.Subject}
	id.Email, _ = c["email"].(string)
	id.Email = strings.TrimSpace(id.Email)
	if id.Email == "" || !strings.Contains(id.Email, "@") {
		return Identity{}, fmt.Errorf("%w (subject %q); the email scope or claim may be missing", ErrNoEmail, t.Subject)
	}
	if !verified(c["email_verified"]) {
		return Identity{}, fmt.Errorf("%w: %s (email_verified is %v)", ErrEmailUnverified, id.Email, describe(c["email_verified"]))
	}
	if s, ok := c["name"].(string); ok && s != "" {
		id.Name = s
	} else if s, ok := c["preferred_username"].(string); ok {
		id.Name = s
	}
	groups, err := stringList(c[rp.cfg.GroupsClaim])
	if err != nil {
		return Identity{}, fmt.Errorf("%w: claim %q: %v", ErrInvalidToken, rp.cfg.GroupsClaim, err)
	}
	id.Groups = groups
	if at, ok := c["auth_time"].(float64); ok && at > 0 {
		id.AuthTime = time.Unix(int64(at), 0)
	}
	return id, nil
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
