// Package adminclient talks to a running control server's admin API over its unix socket,
// so that CLI commands such as `tsconnect users create` stay thin.
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

	"tsconnect/control"
	"tsconnect/controlws"
)

// Client is an admin API client. Its methods may be called concurrently.
type Client struct {
	sock string
	hc   *http.Client
}

// New returns a client for the server whose state directory is stateDir (it dials
// stateDir/admin.sock on each call; nothing is connected yet).
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
	return &Client{sock: sock, hc: &http.Client{Transport: tr}}
}

// Close releases idle connections.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

// Error is an error the admin API answered with.
type Error struct {
	Status  int    // HTTP status: 400, 404, 409, 500
	Message string // the server's message
}

func (e *Error) Error() string { return e.Message }

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://control"+control.AdminPrefix+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("admin API at %s (is `tsconnect control` running with this --state?): %w", c.sock, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("admin API: reading response: %w", err)
	}
	if resp.StatusCode >= 300 {
		var er control.ErrorResponse
		if json.Unmarshal(data, &er) != nil || er.Error == "" {
			er.Error = fmt.Sprintf("admin API: %s %s: HTTP %s", method, path, resp.Status)
		}
		return &Error{Status: resp.StatusCode, Message: er.Error}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("admin API: %s %s: bad JSON answer: %w", method, path, err)
	}
	return nil
}

// CreateUser adds a user; role "" means member.
func (c *Client) CreateUser(ctx context.Context, email string, role control.Role) (control.User, error) {
	var u control.User
	err := c.do(ctx, http.MethodPost, "/users", control.CreateUserRequest{Email: email, Role: role}, &u)
	return u, err
}

// CreateUserWith adds a user as req says (with a password when req.Password is set).
func (c *Client) CreateUserWith(ctx context.Context, req control.CreateUserRequest) (control.User, error) {
	var u control.User
	err := c.do(ctx, http.MethodPost, "/users", req, &u)
	return u, err
}

// SetPassword sets the console password of the user with that email; every console
// session of theirs ends (see control.Server.SetPassword).
func (c *Client) SetPassword(ctx context.Context, email, password string) (control.User, error) {
	var u control.User
	err := c.do(ctx, http.MethodPut, "/users/"+url.PathEscape(strings.TrimSpace(email))+"/password", control.SetPasswordRequest{Password: password}, &u)
	return u, err
}

// Users lists users.
func (c *Client) Users(ctx context.Context) ([]control.User, error) {
	var us []control.User
	err := c.do(ctx, http.MethodGet, "/users", nil, &us)
	return us, err
}

// CreateAuthKey makes an auth key; the returned secret is shown this once.
func (c *Client) CreateAuthKey(ctx context.Context, req control.CreateKeyRequest) (secret string, info control.AuthKeyInfo, err error) {
	var r control.CreateKeyResponse
	err = c.do(ctx, http.MethodPost, "/keys", req, &r)
	return r.Secret, r.Key, err
}

// AuthKeys lists auth keys (never their secrets).
func (c *Client) AuthKeys(ctx context.Context) ([]control.AuthKeyInfo, error) {
	var ks []control.AuthKeyInfo
	err := c.do(ctx, http.MethodGet, "/keys", nil, &ks)
	return ks, err
}

// RevokeAuthKey revokes auth key id.
func (c *Client) RevokeAuthKey(ctx context.Context, id int64) error {
	return c.do(ctx, http.MethodDelete, "/keys/"+strconv.FormatInt(id, 10), nil, nil)
}

// Nodes lists live nodes with their online state.
func (c *Client) Nodes(ctx context.Context) ([]controlws.Node, error) {
	var ns []controlws.Node
	err := c.do(ctx, http.MethodGet, "/nodes", nil, &ns)
	return ns, err
}

// DeleteNode deletes node id.
func (c *Client) DeleteNode(ctx context.Context, id int64) error {
	return c.do(ctx, http.MethodDelete, "/nodes/"+strconv.FormatInt(id, 10), nil, nil)
}

// SetNodeTags replaces node id's tags (empty untags it; see control.SetTagsRequest) and
// returns the node as it now is.
func (c *Client) SetNodeTags(ctx context.Context, id int64, req control.SetTagsRequest) (controlws.Node, error) {
	if req.Tags == nil {
		req.Tags = []string{}
	}
	var n controlws.Node
	err := c.do(ctx, http.MethodPut, "/nodes/"+strconv.FormatInt(id, 10)+"/tags", req, &n)
	return n, err
}

// DeleteUser deletes the user with that email, their nodes with them, and revokes their
// auth keys (see control.Server.DeleteUser).
func (c *Client) DeleteUser(ctx context.Context, email string) (control.DeletedUser, error) {
	var du control.DeletedUser
	err := c.do(ctx, http.MethodDelete, "/users/"+url.PathEscape(strings.TrimSpace(email)), nil, &du)
	return du, err
}
