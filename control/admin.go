package control

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// AdminSocket is the admin API's unix socket inside the state directory.
const AdminSocket = "admin.sock"

// AdminPrefix is where the admin API is served.
const AdminPrefix = "/api/v1"

// ListenAdmin listens on the admin socket DIR/admin.sock, mode 0600, replacing a stale one.
func ListenAdmin(stateDir string) (net.Listener, error) {
	p := filepath.Join(stateDir, AdminSocket)
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("control: admin socket: %w", err)
	}
	ln, err := net.Listen("unix", p)
	if err != nil {
		return nil, fmt.Errorf("control: admin socket: %w", err)
	}
	if err := os.Chmod(p, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control: admin socket: %w", err)
	}
	return ln, nil
}

// ServeAdmin serves the admin API on ln until ln is closed or the server closes; it then
// returns nil. Whoever can connect to ln is an administrator: keep it a private unix socket.
//
//	POST   /api/v1/users       {"email", "role", "password"}        → User
//	GET    /api/v1/users                                            → [User]
//	DELETE /api/v1/users/{email}  delete with nodes, revoke keys     → DeletedUser
//	PUT    /api/v1/users/{email}/password  {"password"}, ends sessions → User
//	POST   /api/v1/keys        CreateKeyRequest                     → CreateKeyResponse
//	GET    /api/v1/keys                                             → [AuthKeyInfo]
//	DELETE /api/v1/keys/{id}   revoke                               → 204
//	GET    /api/v1/nodes                                            → [controlws.Node]
//	DELETE /api/v1/nodes/{id}                                       → 204
//	PUT    /api/v1/nodes/{id}/tags  SetTagsRequest                  → controlws.Node
//	GET    /api/v1/policy                                           → PolicyVersion (in force)
//	PUT    /api/v1/policy  SetPolicyRequest                         → PolicyVersion
//	POST   /api/v1/policy/validate  SetPolicyRequest                → PolicyVersion (not stored)
//	GET    /api/v1/policy/versions                                  → [PolicyVersion] (no texts)
//	GET    /api/v1/policy/versions/{n}                              → PolicyVersion
//	POST   /api/v1/policy/versions/{n}/restore  {"author"}          → PolicyVersion
//
// Errors are {"error": "message"} with 400, 404, 409 or 500.
func (s *Server) ServeAdmin(ln net.Listener) error {
	hs := &http.Server{Handler: s.AdminHandler(), ReadHeaderTimeout: 10 * time.Second}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-s.ctx.Done():
			hs.Close()
		case <-stop:
		}
	}()
	err := hs.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// CreateUserRequest is the body of POST /api/v1/users.
type CreateUserRequest struct {
	Email string `json:"email"`
	Role  Role   `json:"role,omitempty"`
	// Password, if set, is the user's console password (see Server.SetPassword).
	Password string `json:"password,omitempty"`
}

// CreateKeyRequest is the body of POST /api/v1/keys: AuthKeyOptions, with the owner given
// by ID (User) or by email (UserEmail). Expiry is a Go duration string ("24h"); empty means the default.
type CreateKeyRequest struct {
	User      int64    `json:"user,omitempty"`
	UserEmail string   `json:"userEmail,omitempty"`
	Reusable  bool     `json:"reusable,omitempty"`
	Ephemeral bool     `json:"ephemeral,omitempty"`
	Tags      []string `json:"tags,omitempty"`
	Expiry    string   `json:"expiry,omitempty"`
	// Description says what the key is for (see AuthKeyOptions.Description).
	Description string `json:"description,omitempty"`
	// CreatedByEmail names the user asking for the key (see AuthKeyOptions.CreatedBy);
	// empty means the administrator calling the API.
	CreatedByEmail string `json:"createdByEmail,omitempty"`
}

// CreateKeyResponse is the answer to POST /api/v1/keys: the secret, shown this once.
type CreateKeyResponse struct {
	Secret string      `json:"secret"`
	Key    AuthKeyInfo `json:"key"`
}

// SetPolicyRequest is the body of PUT /api/v1/policy and POST /api/v1/policy/validate.
type SetPolicyRequest struct {
	Policy string `json:"policy"`           // the HuJSON text
	Author string `json:"author,omitempty"` // who writes it, kept with the version
}

// RestorePolicyRequest is the body of POST /api/v1/policy/versions/{n}/restore.
type RestorePolicyRequest struct {
	Author string `json:"author,omitempty"`
}

// SetTagsRequest is the body of PUT /api/v1/nodes/{id}/tags (see Server.SetNodeTags).
type SetTagsRequest struct {
	Tags []string `json:"tags"` // empty untags the node
	// ByEmail names the user applying the tags (TagNodeOptions.By); empty means the
	// administrator calling the API.
	ByEmail string `json:"byEmail,omitempty"`
	// UserEmail names the new owner when the node ends up untagged (TagNodeOptions.User).
	UserEmail string `json:"userEmail,omitempty"`
}

// SetPasswordRequest is the body of PUT /api/v1/users/{email}/password.
type SetPasswordRequest struct {
	Password string `json:"password"`
}

// ErrorResponse is the body of every admin API error.
type ErrorResponse struct {
	Error string `json:"error"`
}

// AdminHandler returns the admin API as an http.Handler (ServeAdmin serves it on a socket).
func (s *Server) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+AdminPrefix+"/users", func(w http.ResponseWriter, r *http.Request) {
		var req CreateUserRequest
		if !readJSON(w, r, &req) {
			return
		}
		u, err := s.CreateUserWithPassword(r.Context(), req.Email, req.Role, req.Password)
		reply(w, http.StatusCreated, u, err)
	})
	mux.HandleFunc("GET "+AdminPrefix+"/users", func(w http.ResponseWriter, r *http.Request) {
		us, err := s.Users(r.Context())
		reply(w, http.StatusOK, nonNil(us), err)
	})
	mux.HandleFunc("DELETE "+AdminPrefix+"/users/{email}", func(w http.ResponseWriter, r *http.Request) {
		du, err := s.DeleteUser(r.Context(), r.PathValue("email"))
		reply(w, http.StatusOK, du, err)
	})
	mux.HandleFunc("PUT "+AdminPrefix+"/users/{email}/password", func(w http.ResponseWriter, r *http.Request) {
		var req SetPasswordRequest
		if !readJSON(w, r, &req) {
			return
		}
		u, err := s.SetPasswordByEmail(r.Context(), r.PathValue("email"), req.Password)
		reply(w, http.StatusOK, u, err)
	})
	mux.HandleFunc("POST "+AdminPrefix+"/keys", func(w http.ResponseWriter, r *http.Request) {
		var req CreateKeyRequest
		if !readJSON(w, r, &req) {
			return
		}
		o := AuthKeyOptions{User: req.User, Reusable: req.Reusable, Ephemeral: req.Ephemeral, Tags: req.Tags,
			Description: req.Description}
		if req.Expiry != "" {
			d, err := time.ParseDuration(req.Expiry)
			if err != nil || d <= 0 {
				writeError(w, http.StatusBadRequest, fmt.Sprintf("expiry %q: want a positive duration like 24h", req.Expiry))
				return
			}
			o.Expiry = d
		}
		if req.UserEmail != "" {
			u, err := s.UserByEmail(r.Context(), req.UserEmail)
			if err != nil {
				reply(w, 0, nil, err)
				return
			}
			o.User = u.ID
		}
		if req.CreatedByEmail != "" {
			u, err := s.UserByEmail(r.Context(), req.CreatedByEmail)
			if err != nil {
				reply(w, 0, nil, err)
				return
			}
			o.CreatedBy = u.ID
		}
		secret, info, err := s.CreateAuthKey(r.Context(), o)
		reply(w, http.StatusCreated, CreateKeyResponse{Secret: secret, Key: info}, err)
	})
	mux.HandleFunc("GET "+AdminPrefix+"/keys", func(w http.ResponseWriter, r *http.Request) {
		ks, err := s.AuthKeys(r.Context())
		reply(w, http.StatusOK, nonNil(ks), err)
	})
	mux.HandleFunc("DELETE "+AdminPrefix+"/keys/{id}", func(w http.ResponseWriter, r *http.Request) {
		id, ok := pathID(w, r)
		if ok {
			reply(w, http.StatusNoContent, nil, s.RevokeAuthKey(r.Context(), id))
		}
	})
	mux.HandleFunc("GET "+AdminPrefix+"/nodes", func(w http.ResponseWriter, r *http.Request) {
		ns, err := s.Nodes(r.Context())
		reply(w, http.StatusOK, nonNil(ns), err)
	})
	mux.HandleFunc("DELETE "+AdminPrefix+"/nodes/{id}", func(w http.ResponseWriter, r *http.Request) {
		id, ok := pathID(w, r)
		if ok {
			reply(w, http.StatusNoContent, nil, s.DeleteNode(r.Context(), id))
		}
	})
	mux.HandleFunc("PUT "+AdminPrefix+"/nodes/{id}/tags", func(w http.ResponseWriter, r *http.Request) {
		var req SetTagsRequest
		id, ok := pathID(w, r)
		if !ok || !readJSON(w, r, &req) {
			return
		}
		var o TagNodeOptions
		for _, who := range []struct {
			email string
			id    *int64
		}{{req.ByEmail, &o.By}, {req.UserEmail, &o.User}} {
			if who.email == "" {
				continue
			}
			u, err := s.UserByEmail(r.Context(), who.email)
			if err != nil {
				reply(w, 0, nil, err)
				return
			}
			*who.id = u.ID
		}
		n, err := s.SetNodeTags(r.Context(), id, req.Tags, o)
		reply(w, http.StatusOK, n, err)
	})
	mux.HandleFunc("GET "+AdminPrefix+"/policy", func(w http.ResponseWriter, r *http.Request) {
		pv, err := s.Policy(r.Context())
		reply(w, http.StatusOK, pv, err)
	})
	mux.HandleFunc("PUT "+AdminPrefix+"/policy", func(w http.ResponseWriter, r *http.Request) {
		var req SetPolicyRequest
		if readJSON(w, r, &req) {
			pv, err := s.SetPolicy(r.Context(), []byte(req.Policy), req.Author)
			reply(w, http.StatusOK, pv, err)
		}
	})
	mux.HandleFunc("POST "+AdminPrefix+"/policy/validate", func(w http.ResponseWriter, r *http.Request) {
		var req SetPolicyRequest
		if readJSON(w, r, &req) {
			_, err := ValidatePolicy([]byte(req.Policy))
			reply(w, http.StatusOK, PolicyVersion{Text: req.Policy}, err)
		}
	})
	mux.HandleFunc("GET "+AdminPrefix+"/policy/versions", func(w http.ResponseWriter, r *http.Request) {
		vs, err := s.PolicyHistory(r.Context())
		reply(w, http.StatusOK, nonNil(vs), err)
	})
	mux.HandleFunc("GET "+AdminPrefix+"/policy/versions/{n}", func(w http.ResponseWriter, r *http.Request) {
		if n, ok := pathVersion(w, r); ok {
			pv, err := s.PolicyVersionText(r.Context(), n)
			reply(w, http.StatusOK, pv, err)
		}
	})
	mux.HandleFunc("POST "+AdminPrefix+"/policy/versions/{n}/restore", func(w http.ResponseWriter, r *http.Request) {
		var req RestorePolicyRequest
		if n, ok := pathVersion(w, r); ok && readJSON(w, r, &req) {
			pv, err := s.RestorePolicy(r.Context(), n, req.Author)
			reply(w, http.StatusOK, pv, err)
		}
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no admin API endpoint %s %s", r.Method, r.URL.Path))
	})
	return mux
}

// nonNil makes an empty list encode as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func pathID(w http.ResponseWriter, r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("bad id %q: want a positive number", r.PathValue("id")))
		return 0, false
	}
	return id, true
}

func pathVersion(w http.ResponseWriter, r *http.Request) (int64, bool) {
	n, err := strconv.ParseInt(r.PathValue("n"), 10, 64)
	if err != nil || n < 0 {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("bad policy version %q: want 0 (the default) or a version number", r.PathValue("n")))
		return 0, false
	}
	return n, true
}

func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "bad JSON body: "+err.Error())
		return false
	}
	return true
}

// reply writes v with status, or err as an ErrorResponse with the status its kind maps to.
func reply(w http.ResponseWriter, status int, v any, err error) {
	if err != nil {
		code := http.StatusInternalServerError
		switch {
		case errors.Is(err, ErrNotFound):
			code = http.StatusNotFound
		case errors.Is(err, ErrExists):
			code = http.StatusConflict
		case errors.Is(err, ErrInvalid):
			code = http.StatusBadRequest
		}
		writeError(w, code, err.Error())
		return
	}
	if status == http.StatusNoContent {
		w.WriteHeader(status)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(ErrorResponse{Error: msg})
}
