package adminclient

import (
	"context"
	"net/http"
	"strconv"

	"tsconnect/console/api"
)

// AnyVersion is the ifVersion of a policy write made whatever version is in force.
const AnyVersion = -1

func ifMatch(version int64) http.Header {
	if version == AnyVersion {
		return http.Header{"If-Match": {"*"}}
	}
	return http.Header{"If-Match": {strconv.Quote(strconv.FormatInt(version, 10))}}
}

// Policy returns the policy version in force, with its text (version 0: the default).
func (c *Client) Policy(ctx context.Context) (api.Policy, error) {
	var pv api.Policy
	err := c.do(ctx, http.MethodGet, "/policy", nil, &pv)
	return pv, err
}

// SetPolicy puts text in force as a new version by author, if version ifVersion is still
// the one in force (AnyVersion: whichever is). A refused text (code bad_policy, listing
// every problem) or a stale version (code stale_version, naming the one in force) leaves
// the policy in force as it is.
func (c *Client) SetPolicy(ctx context.Context, text []byte, author string, ifVersion int64) (api.Policy, error) {
	var pv api.Policy
	err := c.call(ctx, http.MethodPut, "/policy", ifMatch(ifVersion), api.SetPolicyRequest{Text: string(text), Author: author}, &pv)
	return pv, err
}

// ValidatePolicy checks text as SetPolicy would, storing nothing.
func (c *Client) ValidatePolicy(ctx context.Context, text []byte) error {
	return c.do(ctx, http.MethodPost, "/policy/validate", api.SetPolicyRequest{Text: string(text)}, nil)
}

// PolicyHistory lists every accepted version, oldest first, without texts.
func (c *Client) PolicyHistory(ctx context.Context) ([]api.Policy, error) {
	var vs api.PolicyVersions
	err := c.do(ctx, http.MethodGet, "/policy/versions", nil, &vs)
	return vs.Versions, err
}

// PolicyVersion returns accepted version n with its text.
func (c *Client) PolicyVersion(ctx context.Context, n int64) (api.Policy, error) {
	var pv api.Policy
	err := c.do(ctx, http.MethodGet, "/policy/versions/"+id(n), nil, &pv)
	return pv, err
}

// RestorePolicy puts version n back in force as a new version by author, if version
// ifVersion is still the one in force (see SetPolicy).
func (c *Client) RestorePolicy(ctx context.Context, n int64, author string, ifVersion int64) (api.Policy, error) {
	var pv api.Policy
	err := c.call(ctx, http.MethodPost, "/policy/versions/"+id(n)+"/restore", ifMatch(ifVersion), api.RestorePolicyRequest{Author: author}, &pv)
	return pv, err
}
