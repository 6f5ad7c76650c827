package agent

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sync"

	"tsconnect/controlws"
	"tsconnect/node"
)

// LoginRequest is the body of POST /localapi/v1/login (tsconnect login): re-authenticate
// with AuthKey, or interactively when it is empty.
type LoginRequest struct {
	AuthKey string `json:"authKey,omitempty"`
}

// LoginEvent is one line of the answer to POST /localapi/v1/login (JSON lines): LoginURL
// to sign in at (interactive), then the last line, Done with the new NodeKey, or Error
// (with Code, control's error code, when control refused).
type LoginEvent struct {
	LoginURL string `json:"loginURL,omitempty"`
	Done     bool   `json:"done,omitempty"`
	NodeKey  string `json:"nodeKey,omitempty"`
	Error    string `json:"error,omitempty"`
	Code     string `json:"code,omitempty"`
}

// Login re-authenticates the agent's node with control and rotates its node key; open SSH
// sessions stay (they were authorized for the node, which keeps its addresses and owner).
func (a *Agent) Login(ctx context.Context, authKey string, onLoginURL func(string)) error {
	a.loginMu.Lock()
	defer a.loginMu.Unlock()
	return a.node.Login(ctx, node.LoginOptions{AuthKey: authKey, OnLoginURL: onLoginURL})
}

// serveLogin answers POST /localapi/v1/login.
func (a *Agent) serveLogin(w http.ResponseWriter, r *http.Request) {
	var req LoginRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 4096))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil && !errors.Is(err, io.EOF) {
		httpError(w, http.StatusBadRequest, "bad login request: "+err.Error())
		return
	}
	if len(req.AuthKey) > controlws.MaxAuthKeyLen {
		httpError(w, http.StatusBadRequest, "auth key too long")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	var mu sync.Mutex
	enc := json.NewEncoder(w)
	send := func(ev LoginEvent) {
		mu.Lock()
		defer mu.Unlock()
		enc.Encode(ev)
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
	}
	err := a.Login(r.Context(), req.AuthKey, func(url string) { send(LoginEvent{LoginURL: url}) })
	if err != nil {
		ev := LoginEvent{Error: err.Error()}
		var ce *controlws.Error
		if errors.As(err, &ce) {
			ev.Code = ce.Code
		}
		send(ev)
		return
	}
	send(LoginEvent{Done: true, NodeKey: a.node.NodeKey().String()})
}
