package console

import (
	"errors"
	"net/http"
	"strings"

	"tsconnect/control"
	"tsconnect/policy"
)

type policyJSON struct {
	Text    string  `json:"text"`
	Version int64   `json:"version"`
	Author  string  `json:"author"`
	Time    *string `json:"time"` // null for the built-in default
}

func policyOf(pv control.PolicyVersion) policyJSON {
	p := policyJSON{Text: pv.Text, Version: pv.Version, Author: pv.Author}
	if !pv.Created.IsZero() {
		t := rfc3339(pv.Created)
		p.Time = &t
	}
	return p
}

type policyRequest struct {
	Text string `json:"text"`
}

// problemJSON is one problem of a refused policy, at a place a person can find.
type problemJSON struct {
	Line    int    `json:"line"`   // 1-based; 0 when the problem has no single place
	Column  int    `json:"column"` // 1-based, in bytes
	Field   string `json:"field"`
	Message string `json:"message"`
}

type badPolicyJSON struct {
	Error    string        `json:"error"`
	Code     string        `json:"code"`
	Problems []problemJSON `json:"problems"`
}

func (c *Console) getPolicy(w http.ResponseWriter, r *http.Request, _ *session) {
	pv, err := c.srv.Policy(r.Context())
	if err != nil {
		c.writeErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, policyOf(pv))
}

// putPolicy puts a new policy in force; a refused one leaves the old one.
func (c *Console) putPolicy(w http.ResponseWriter, r *http.Request, s *session) {
	var req policyRequest
	if !readJSON(w, r, &req) {
		return
	}
	pv, err := c.srv.SetPolicy(r.Context(), []byte(req.Text), s.User.Email+" via the console")
	if err != nil {
		c.writePolicyErr(w, r, err)
		return
	}
	c.logf("console: %s put policy version %d in force", s.User.Email, pv.Version)
	writeJSON(w, http.StatusOK, policyOf(pv))
}

func (c *Console) validatePolicy(w http.ResponseWriter, r *http.Request, _ *session) {
	var req policyRequest
	if !readJSON(w, r, &req) {
		return
	}
	if _, err := control.ValidatePolicy([]byte(req.Text)); err != nil {
		c.writePolicyErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

// writePolicyErr answers 400 bad_policy with every problem of a refused policy.
func (c *Console) writePolicyErr(w http.ResponseWriter, r *http.Request, err error) {
	var list policy.ErrorList
	var one *policy.Error
	var problems []problemJSON
	switch {
	case errors.As(err, &list):
		for _, e := range list {
			problems = append(problems, problemJSON{Line: e.Line, Column: e.Column, Field: e.Field, Message: e.Msg})
		}
	case errors.As(err, &one):
		problems = append(problems, problemJSON{Line: one.Line, Column: one.Column, Field: one.Field, Message: one.Msg})
	case errors.Is(err, control.ErrInvalid):
		problems = append(problems, problemJSON{Message: strings.TrimPrefix(err.Error(), "control: ")})
	default:
		c.writeErr(w, r, err)
		return
	}
	msg := "the policy has problems; the one in force stays"
	if len(problems) == 1 {
		msg = "the policy has a problem; the one in force stays"
	}
	writeJSON(w, http.StatusBadRequest, badPolicyJSON{Error: msg, Code: codeBadPolicy, Problems: problems})
}
