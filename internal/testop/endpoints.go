package testop

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/go-jose/go-jose/v4"
	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
)

// discovery serves the OpenID Provider metadata (OpenID Connect Discovery 1.0).
func (op *OP) discovery(w http.ResponseWriter, r *http.Request) {
	iss := op.Issuer()
	writeJSON(w, map[string]any{
		"issuer":                                iss,
		"authorization_endpoint":                iss + "/authorize",
		"token_endpoint":                        iss + "/token",
		"userinfo_endpoint":                     iss + "/userinfo",
		"jwks_uri":                              iss + "/jwks",
		"response_types_supported":              []string{"code"},
		"response_modes_supported":              []string{"query"},
		"grant_types_supported":                 []string{"authorization_code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"scopes_supported":                      []string{"openid", "email", "profile", "groups"},
		"claims_supported":                      []string{"sub", "iss", "aud", "exp", "iat", "nonce", "email", "email_verified", "name", op.groups},
		"code_challenge_methods_supported":      []string{"S256"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
	})
}

// jwks serves the public half of the signing key.
func (op *OP) jwks(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{
		Key: &op.key.PublicKey, KeyID: op.kid, Algorithm: string(jose.RS256), Use: "sig",
	}}})
}

// token is the token endpoint: it redeems a code (once, with the PKCE verifier and the
// client's secret) for an access token and an ID token.
func (op *OP) token(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	// The session stored with the code replaces this empty one.
	ar, err := op.provider.NewAccessRequest(ctx, r, openid.NewDefaultSession())
	if err != nil {
		op.logf("testop: token request refused: %v", fositeReason(err))
		op.provider.WriteAccessError(ctx, w, ar, err)
		return
	}
	resp, err := op.provider.NewAccessResponse(ctx, ar)
	if err != nil {
		op.logf("testop: token response refused: %v", fositeReason(err))
		op.provider.WriteAccessError(ctx, w, ar, err)
		return
	}
	if raw, ok := resp.GetExtra("id_token").(string); ok && op.opts.NoAuthTime {
		t, err := op.withoutAuthTime(raw)
		if err != nil {
			op.logf("testop: removing auth_time: %v", err)
			http.Error(w, "server error", http.StatusInternalServerError)
			return
		}
		resp.SetExtra("id_token", t)
	}
	op.provider.WriteAccessResponse(ctx, w, ar, resp)
}

// withoutAuthTime re-signs an ID token without its auth_time claim (fosite always sets one).
func (op *OP) withoutAuthTime(raw string) (string, error) {
	jws, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return "", err
	}
	payload, err := jws.Verify(&op.key.PublicKey)
	if err != nil {
		return "", err
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		return "", err
	}
	delete(claims, "auth_time")
	if payload, err = json.Marshal(claims); err != nil {
		return "", err
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: op.key},
		(&jose.SignerOptions{}).WithHeader("kid", op.kid).WithType("JWT"))
	if err != nil {
		return "", err
	}
	obj, err := signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return obj.CompactSerialize()
}

// userinfo is the UserInfo endpoint (OpenID Connect Core 5.3): the profile claims of the
// access token's user, with its sub (Options.UserinfoSubject may change it).
func (op *OP) userinfo(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		w.Header().Set("WWW-Authenticate", "Bearer")
		http.Error(w, "no bearer token", http.StatusUnauthorized)
		return
	}
	_, ar, err := op.provider.IntrospectToken(ctx, tok, fosite.AccessToken, openid.NewDefaultSession())
	if err != nil {
		op.logf("testop: userinfo refused: %v", fositeReason(err))
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		http.Error(w, "invalid access token", http.StatusUnauthorized)
		return
	}
	u, found := op.userBySubject(ar.GetSession().GetSubject())
	if !found {
		http.Error(w, "no such user", http.StatusNotFound)
		return
	}
	c := op.claims(u)
	c["sub"] = u.Subject
	if op.opts.UserinfoSubject != nil {
		c["sub"] = op.opts.UserinfoSubject(u)
	}
	writeJSON(w, c)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(v)
}

// fositeReason is the error's name, hint and debug text (fosite keeps them apart).
func fositeReason(err error) string {
	e := fosite.ErrorToRFC6749Error(err)
	s := e.ErrorField
	if e.HintField != "" {
		s += ": " + e.HintField
	}
	if e.DebugField != "" {
		s += " (" + e.DebugField + ")"
	}
	return s
}
