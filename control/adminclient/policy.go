package adminclient

import (
	"context"
	"net/http"
	"strconv"

	"tsconnect/control"
)

// Policy returns the policy version in force, with its text (version 0: the default).
func (c *Client) Policy(ctx context.Context) (control.PolicyVersion, error) {
	var pv control.PolicyVersion
	err := c.do(ctx, http.MethodGet, "/policy", nil, &pv)
	return pv, err
}

// SetPolicy puts text in force as a new version by author; a refused text (a 400 Error
// listing every problem) leaves the old policy in force.
func (c *Client) SetPolicy(ctx context.Context, text []byte, author string) (control.PolicyVersion, error) {
	var pv control.PolicyVersion
	err := c.do(ctx, http.MethodPut, "/policy", control.SetPolicyRequest{Policy: string(text), Author: author}, &pv)
	return pv, err
}

// ValidatePolicy checks text as SetPolicy would, storing nothing.
func (c *Client) ValidatePolicy(ctx context.Context, text []byte) error {
	return c.do(ctx, http.MethodPost, "/policy/validate", control.SetPolicyRequest{Policy: string(text)}, nil)
}

// PolicyHistory lists every accepted version, oldest first, without texts.
func (c *Client) PolicyHistory(ctx context.Context) ([]control.PolicyVersion, error) {
	var vs []control.PolicyVersion
	err := c.do(ctx, http.MethodGet, "/policy/versions", nil, &vs)
	return vs, err
}

// PolicyVersion returns accepted version n with its text.
func (c *Client) PolicyVersion(ctx context.Context, n int64) (control.PolicyVersion, error) {
	var pv control.PolicyVersion
	err := c.do(ctx, http.MethodGet, "/policy/versions/"+strconv.FormatInt(n, 10), nil, &pv)
	return pv, err
}

// RestorePolicy puts version n back in force as a new version by author.
func (c *Client) RestorePolicy(ctx context.Context, n int64, author string) (control.PolicyVersion, error) {
	var pv control.PolicyVersion
	err := c.do(ctx, http.MethodPost, "/policy/versions/"+strconv.FormatInt(n, 10)+"/restore", control.RestorePolicyRequest{Author: author}, &pv)
	return pv, err
}
