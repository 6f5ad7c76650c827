// Package adminclient calls the admin API (package console/api) of a running control
// server: over its admin socket as the local admin, or over HTTP with an API token.
package adminclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"tsconnect/console/api"
	"tsconnect/control"
)

// Client is an admin API client. Its methods may be called concurrently.
type Client struct {
	base  string // scheme://host, without api.Prefix
	where string // for error messages
	token string // sent as Authorization: Bearer; "" on the admin socket
	hc    *http.Client
}

// New returns a client for the server whose state directory is stateDir: it dials
// stateDir/admin.sock on each call (nothing is connected yet) and acts as the local admin.
func New(stateDir string) *Client {
	sock := filepath.Join(stateDir, control.AdminSocket)
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
		MaxIdleConns:    2,
		IdleConnTimeout: 30 * time.Second,
	}
	return &Client{base: "http://control", where: "admin API at " + sock + " (is `tsconnect control` running with this --state?)",
		hc: &http.Client{Transport: tr}}
}

// NewWithToken returns a client of the server at serverURL (its public base URL) that
// authenticates with an API token.
func NewWithToken(serverURL, token string) *Client {
	base := strings.TrimSuffix(serverURL, "/")
	return &Client{base: base, where: "admin API at " + base, token: token,
		hc: &http.Client{Timeout: time.Minute}}
}

// Close releases idle connections.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

// Error is an error the admin API answered with (api.Error).
type Error struct {
	Status int    // HTTP status
	Code   string // api.Code…
	// Message is the server's sentence; for code bad_policy followed by every problem, one
	// a line, as line:column: field: message.
	Message string
	// Problems are a refused policy's problems.
	Problems []api.Problem
	// CurrentVersion is the policy version in force (code stale_version), else -1.
	CurrentVersion int64
}

func (e *Error) Error() string { return e.Message }

// call makes one request; header, if non-nil, adds request headers; out, if non-nil, gets the JSON answer.
func (c *Client) call(ctx context.Context, method, path string, header http.Header, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	if in != nil {
		header = header.Clone()
		if header == nil {
			header = http.Header{}
		}
		header.Set("Content-Type", "application/json")
	}
	resp, err := c.send(ctx, method, path, header, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("admin API: reading response: %w", err)
	}
	if resp.StatusCode >= 300 {
		return errorOf(method, path, resp, data)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("admin API: %s %s: bad JSON answer: %w", method, path, err)
	}
	return nil
}

// send makes one request with the client's authentication and returns the answer, whatever
// its status; header, if non-nil, adds request headers.
func (c *Client) send(ctx context.Context, method, path string, header http.Header, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+api.Prefix+path, body)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("%s: %w", c.where, err)
	}
	return resp, nil
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	return c.call(ctx, method, path, nil, in, out)
}

func errorOf(method, path string, resp *http.Response, data []byte) *Error {
	var ae api.Error
	if json.Unmarshal(data, &ae) != nil || ae.Message == "" {
		ae.Message = fmt.Sprintf("admin API: %s %s: HTTP %s", method, path, resp.Status)
	}
	e := &Error{Status: resp.StatusCode, Code: ae.Code, Message: ae.Message, Problems: ae.Problems, CurrentVersion: -1}
	if ae.CurrentVersion != nil {
		e.CurrentVersion = *ae.CurrentVersion
	}
	for _, p := range ae.Problems {
		e.Message += "\n" + FormatProblem(p)
	}
	return e
}

// FormatProblem writes a policy problem as line:column: field: message (the parts known).
func FormatProblem(p api.Problem) string {
	var b strings.Builder
	if p.Line > 0 {
		fmt.Fprintf(&b, "%d:%d: ", p.Line, p.Column)
	}
	if p.Field != "" {
		b.WriteString(p.Field + ": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

func id(n int64) string { return strconv.FormatInt(n, 10) }

// userPath is the path segment naming a user: an id or an email.
func userPath(user string) string { return "/users/" + url.PathEscape(strings.TrimSpace(user)) }

// Me says who the client is to the server.
func (c *Client) Me(ctx context.Context) (api.Me, error) {
	var me api.Me
	err := c.do(ctx, http.MethodGet, "/me", nil, &me)
	return me, err
}

// CreateUser adds a user as req says (with a console password when req.Password is set).
func (c *Client) CreateUser(ctx context.Context, req api.CreateUserRequest) (api.User, error) {
	var u api.User
	err := c.do(ctx, http.MethodPost, "/users", req, &u)
	return u, err
}

// SetPassword sets the console password of user (an id or an email); every console
// sign-in of theirs ends.
func (c *Client) SetPassword(ctx context.Context, user, password string) (api.User, error) {
	var u api.User
	err := c.do(ctx, http.MethodPut, userPath(user)+"/password", api.SetPasswordRequest{Password: password}, &u)
	return u, err
}

// Users lists users.
func (c *Client) Users(ctx context.Context) ([]api.User, error) {
	var ul api.UserList
	err := c.do(ctx, http.MethodGet, "/users", nil, &ul)
	return ul.Users, err
}

// DeleteUser deletes user (an id or an email), their nodes with them, and revokes their
// auth keys and API tokens.
func (c *Client) DeleteUser(ctx context.Context, user string) (api.DeletedUser, error) {
	var du api.DeletedUser
	err := c.do(ctx, http.MethodDelete, userPath(user), nil, &du)
	return du, err
}

// CreateAuthKey makes an auth key; the returned secret is shown this once.
func (c *Client) CreateAuthKey(ctx context.Context, req api.CreateKeyRequest) (secret string, key api.Key, err error) {
	var r api.CreatedKey
	err = c.do(ctx, http.MethodPost, "/keys", req, &r)
	return r.Secret, r.Key, err
}

// AuthKeys lists auth keys (never their secrets).
func (c *Client) AuthKeys(ctx context.Context) ([]api.Key, error) {
	var kl api.KeyList
	err := c.do(ctx, http.MethodGet, "/keys", nil, &kl)
	return kl.Keys, err
}

// RevokeAuthKey revokes auth key n.
func (c *Client) RevokeAuthKey(ctx context.Context, n int64) error {
	return c.do(ctx, http.MethodDelete, "/keys/"+id(n), nil, nil)
}

// Nodes lists the nodes with their online state.
func (c *Client) Nodes(ctx context.Context) ([]api.Node, error) {
	var nl api.NodeList
	err := c.do(ctx, http.MethodGet, "/nodes", nil, &nl)
	return nl.Nodes, err
}

// DeleteNode deletes node n.
func (c *Client) DeleteNode(ctx context.Context, n int64) error {
	return c.do(ctx, http.MethodDelete, "/nodes/"+id(n), nil, nil)
}

// SetNodeTags replaces node n's tags (empty untags it; see api.SetTagsRequest) and
// returns the node as it now is.
func (c *Client) SetNodeTags(ctx context.Context, n int64, req api.SetTagsRequest) (api.Node, error) {
	if req.Tags == nil {
		req.Tags = []string{}
	}
	var nd api.Node
	err := c.do(ctx, http.MethodPut, "/nodes/"+id(n)+"/tags", req, &nd)
	return nd, err
}

// APITokens lists API tokens (never their secrets).
func (c *Client) APITokens(ctx context.Context) ([]api.APIToken, error) {
	var tl api.APITokenList
	err := c.do(ctx, http.MethodGet, "/api-tokens", nil, &tl)
	return tl.Tokens, err
}

// CreateAPIToken makes an API token; the returned secret is shown this once.
func (c *Client) CreateAPIToken(ctx context.Context, req api.CreateAPITokenRequest) (secret string, t api.APIToken, err error) {
	var r api.CreatedAPIToken
	err = c.do(ctx, http.MethodPost, "/api-tokens", req, &r)
	return r.Secret, r.Token, err
}

// RevokeAPIToken revokes API token n.
func (c *Client) RevokeAPIToken(ctx context.Context, n int64) error {
	return c.do(ctx, http.MethodDelete, "/api-tokens/"+id(n), nil, nil)
}

// SetNodeKeyExpiryDisabled disables (true) or enables again the expiry of node n's key and
// returns the node as it now is.
func (c *Client) SetNodeKeyExpiryDisabled(ctx context.Context, n int64, disabled bool) (api.Node, error) {
	var nd api.Node
	err := c.do(ctx, http.MethodPut, "/nodes/"+id(n)+"/key-expiry", api.SetKeyExpiryRequest{Disabled: disabled}, &nd)
	return nd, err
}

// NodeKeyExpiry returns the network's node-key lifetime.
func (c *Client) NodeKeyExpiry(ctx context.Context) (time.Duration, error) {
	var ke api.NodeKeyExpiry
	err := c.do(ctx, http.MethodGet, "/settings/node-key-expiry", nil, &ke)
	return time.Duration(ke.Seconds) * time.Second, err
}

// SetNodeKeyExpiry sets the network's node-key lifetime (whole seconds).
func (c *Client) SetNodeKeyExpiry(ctx context.Context, d time.Duration) error {
	return c.do(ctx, http.MethodPut, "/settings/node-key-expiry", api.NodeKeyExpiry{Seconds: int64(d / time.Second)}, nil)
}
