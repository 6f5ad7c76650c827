package oidc

import (
	"errors"
	"fmt"
	"strings"

	"github.com/coreos/go-oidc/v3/oidc"
)

// Reasons a sign-in is refused. Finish's errors wrap exactly one of them.
var (
	ErrState           = errors.New("oidc: sign-in state refused")
	ErrProvider        = errors.New("oidc: the provider refused the sign-in")
	ErrExchange        = errors.New("oidc: redeeming the authorization code failed")
	ErrBadSignature    = errors.New("oidc: ID token signature does not verify with the provider's keys")
	ErrWrongAudience   = errors.New("oidc: ID token was issued for another client (wrong audience)")
	ErrWrongIssuer     = errors.New("oidc: ID token was issued by another provider (wrong issuer)")
	ErrTokenExpired    = errors.New("oidc: ID token has expired")
	ErrInvalidToken    = errors.New("oidc: ID token is invalid")
	ErrNonce           = errors.New("oidc: ID token nonce mismatch (replayed or swapped token)")
	ErrNoEmail         = errors.New("oidc: the provider sent no email for the user")
	ErrEmailUnverified = errors.New("oidc: the user's email is not verified by the provider")
	ErrNotAllowed      = errors.New("oidc: user not allowed to sign in")
	ErrStaleAuth       = errors.New("oidc: the provider did not re-authenticate the user")
	ErrUserinfo        = errors.New("oidc: the provider's userinfo answer is unusable")
)

// classify wraps an error of go-oidc's verifier in the matching Err value. go-oidc types only
// expiry; its other messages are matched (a test pins each case).
func classify(err error) error {
	var exp *oidc.TokenExpiredError
	msg := err.Error()
	switch {
	case errors.As(err, &exp):
		return fmt.Errorf("%w (at %s)", ErrTokenExpired, exp.Expiry.UTC().Format("2006-01-02 15:04:05Z"))
	case strings.Contains(msg, "failed to verify signature"):
		return fmt.Errorf("%w: %v", ErrBadSignature, err)
	case strings.Contains(msg, "expected audience"):
		return fmt.Errorf("%w: %v", ErrWrongAudience, err)
	case strings.Contains(msg, "issued by a different provider"):
		return fmt.Errorf("%w: %v", ErrWrongIssuer, err)
	}
	return fmt.Errorf("%w: %v", ErrInvalidToken, err)
}
