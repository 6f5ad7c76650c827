package controlws

import (
	"context"
	"errors"
	"fmt"
)

// ErrUnsupported is returned (wrapped) when the server does not know a message type this
// client sent: it predates check mode or interactive login.
var ErrUnsupported = errors.New("controlws: the control server does not support this request")

// SSHCheck asks control for the verdict on a login held by a check rule and waits for the
// final one (accept or reject). onPending, if non-nil, is called (on SSHCheck's goroutine)
// with the pending verdict carrying the URL the user must visit. When ctx ends first,
// SSHCheck tells control to drop the check and returns ctx's cause; when the connection
// fails it returns the connection's error.
func (c *Client) SSHCheck(ctx context.Context, req SSHCheckRequest, onPending func(SSHCheckVerdict)) (*SSHCheckVerdict, error) {
	var final *SSHCheckVerdict
	err := c.multi(ctx, TypeSSHCheck, &req, TypeSSHCheckCancel, func(env *Envelope) (bool, error) {
		v, done, err := checkAnswer(env)
		if err != nil {
			return false, err
		}
		if done {
			final = &v
		} else if onPending != nil {
			onPending(v)
		}
		return done, nil
	})
	return final, err
}

// checkAnswer decodes one answer to an sshCheck: a pending verdict (done false) or the
// final one (done true).
func checkAnswer(env *Envelope) (v SSHCheckVerdict, done bool, err error) {
	if env.Type != TypeSSHCheckVerdict {
		return v, false, fmt.Errorf("controlws: server answered sshCheck with %q", env.Type)
	}
	if err := env.DecodeBody(&v); err != nil {
		return v, false, err
	}
	switch v.Verdict {
	case CheckPending:
		return v, false, nil
	case CheckAccept, CheckReject:
		return v, true, nil
	}
	return v, false, fmt.Errorf("controlws: unknown check verdict %q", v.Verdict)
}

// RegisterInteractive registers like Register, but without an auth key asks for an
// interactive login: onURL (on RegisterInteractive's goroutine) gets the URL where a user
// signs in to own the node, and the call returns once they have (or with an *Error such as
// CodeLoginExpired). A machine whose node is live and logged in gets its answer at once.
// When ctx ends first, the call returns ctx's cause; control forgets the login when it expires.
func (c *Client) RegisterInteractive(ctx context.Context, req RegisterRequest, onURL func(LoginURL)) (*RegisterResponse, error) {
	req.Interactive = true
	if err := req.Hostinfo.Validate(); err != nil {
		return nil, fmt.Errorf("controlws: register not sent: %w", err)
	}
	var resp *RegisterResponse
	err := c.multi(ctx, TypeRegister, &req, "", func(env *Envelope) (bool, error) {
		u, r, err := registerAnswer(env)
		switch {
		case err != nil:
			return false, err
		case u != nil:
			if onURL != nil {
				onURL(*u)
			}
			return false, nil
		}
		resp = r
		return true, nil
	})
	return resp, err
}

// registerAnswer decodes one answer to an interactive register: the login URL (first) or
// the final registerResponse; exactly one of them is non-nil when err is nil.
func registerAnswer(env *Envelope) (*LoginURL, *RegisterResponse, error) {
	switch env.Type {
	case TypeLoginURL:
		var u LoginURL
		if err := env.DecodeBody(&u); err != nil {
			return nil, nil, err
		}
		return &u, nil, nil
	case TypeRegisterResponse:
		var r RegisterResponse
		if err := env.DecodeBody(&r); err != nil {
			return nil, nil, err
		}
		return nil, &r, nil
	}
	return nil, nil, fmt.Errorf("controlws: server answered register with %q", env.Type)
}

// multi sends a request whose answers are several messages with its ID; handle sees each
// one (errors excepted) and says when the last has come. On ctx's end, cancelType (if not
// "") is sent with the request's ID so the server can drop its side.
func (c *Client) multi(ctx context.Context, typ string, body any, cancelType string, handle func(*Envelope) (done bool, err error)) error {
	if err := c.Err(); err != nil {
		return err
	}
	s := &stream{signal: make(chan struct{}, 1)}
	id := c.track(nil, s)
	defer c.forget(id)
	if err := c.conn.Send(typ, id, body); err != nil {
		if c.Err() != nil {
			return c.connErr()
		}
		return err
	}
	step := func() (bool, error) {
		for _, env := range s.drain() {
			if err := env.Err(); err != nil {
				var ce *Error
				if errors.As(err, &ce) && ce.Code == CodeBadRequest && ce.Message == fmt.Sprintf("unknown message type %q", typ) {
					return true, fmt.Errorf("%w (%s)", ErrUnsupported, typ)
				}
				return true, err
			}
			if done, err := handle(env); done || err != nil {
				return true, err
			}
		}
		return false, nil
	}
	for {
		if done, err := step(); done {
			return err
		}
		select {
		case <-s.signal:
		case <-ctx.Done():
			if cancelType != "" && c.Err() == nil {
				c.conn.Send(cancelType, id, nil) // best effort; the answer is dropped
			}
			return fmt.Errorf("controlws: %s: %w", typ, context.Cause(ctx))
		case <-c.done:
			if done, err := step(); done {
				return err
			}
			return c.readErr
		}
	}
}
