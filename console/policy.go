package console

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"tsconnect/console/api"
	"tsconnect/control"
	"tsconnect/internal/safetext"
	"tsconnect/policy"
)

// Policy writes (PUT /policy, POST /policy/versions/{n}/restore) take If-Match with the
// version in force they were made against, as GET /policy's ETag gives it ("7", quotes
// optional) or "*" for whichever is in force. A stale one is answered 412 stale_version
// naming the version in force and writes nothing; none at all is answered 428.

func policyOf(pv control.PolicyVersion) api.Policy {
	p := api.Policy{Text: pv.Text, Version: pv.Version, Author: pv.Author, Note: pv.Note}
	if !pv.Created.IsZero() {
		t := wireTime(pv.Created)
		p.Time = &t
	}
	return p
}

// etag is the ETag of policy version n.
func etag(n int64) string { return `"` + strconv.FormatInt(n, 10) + `"` }

// ifMatch reads the If-Match of a policy write: the version it was made against, or
// control.AnyVersion for "*". It answers 428 or 400 and returns false without one.
func ifMatch(w http.ResponseWriter, r *http.Request) (int64, bool) {
	v := strings.TrimSpace(r.Header.Get("If-Match"))
	if v == "" {
		writeError(w, http.StatusPreconditionRequired, codeIfMatchRequired, "policy writes need If-Match: the version they change, as GET "+api.Prefix+"/policy gives it in ETag (\"*\": whichever is in force)")
		return 0, false
	}
	if v == "*" {
		return control.AnyVersion, true
	}
	n, err := strconv.ParseInt(strings.Trim(strings.TrimPrefix(v, "W/"), `"`), 10, 64)
	if err != nil || n < 0 {
		writeError(w, http.StatusBadRequest, codeBadRequest, fmt.Sprintf("bad If-Match %q: want a policy version such as \"7\", or *", safetext.Bounded(v, 40)))
		return 0, false
	}
	return n, true
}

// authorOf is the author a policy version records: the caller, and what they said.
func authorOf(p *caller, said string) string {
	a := p.name() + " via the console"
	switch p.via {
	case viaSocket:
		a = p.name() + " via the admin socket"
	case viaToken:
		a = p.name()
	}
	if said = strings.TrimSpace(said); said != "" {
		a = fmt.Sprintf("%s (%s)", said, a)
		if p.via == viaSocket {
			a = said
		}
	}
	return a
}

func (c *Console) getPolicy(w http.ResponseWriter, r *http.Request, _ *caller) {
	pv, err := c.srv.Policy(r.Context())
	if err != nil {
		c.writeErr(w, r, err)
		return
	}
	w.Header().Set("ETag", etag(pv.Version))
	writeJSON(w, http.StatusOK, policyOf(pv))
}

// putPolicy puts a new policy in force; a refused or stale one leaves the old one.
func (c *Console) putPolicy(w http.ResponseWriter, r *http.Request, s *caller) {
	var req api.SetPolicyRequest
	if !readJSON(w, r, &req) {
		return
	}
	want, ok := ifMatch(w, r)
	if !ok {
		return
	}
	pv, err := c.srv.SetPolicyIf(r.Context(), []byte(req.Text), authorOf(s, req.Author), want)
	if err != nil {
		c.writePolicyErr(w, r, err)
		return
	}
	c.logf("console: %s put policy version %d in force", s.name(), pv.Version)
	w.Header().Set("ETag", etag(pv.Version))
	writeJSON(w, http.StatusOK, policyOf(pv))
}

func (c *Console) validatePolicy(w http.ResponseWriter, r *http.Request, _ *caller) {
	var req api.SetPolicyRequest
	if !readJSON(w, r, &req) {
		return
	}
	if _, err := control.ValidatePolicy([]byte(req.Text)); err != nil {
		c.writePolicyErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, api.PolicyCheck{OK: true})
}

// policyVersions lists every accepted version, oldest first, without texts.
func (c *Console) policyVersions(w http.ResponseWriter, r *http.Request, _ *caller) {
	vs, err := c.srv.PolicyHistory(r.Context())
	if err != nil {
		c.writeErr(w, r, err)
		return
	}
	out := api.PolicyVersions{Versions: []api.Policy{}}
	for _, v := range vs {
		out.Versions = append(out.Versions, policyOf(v))
	}
	writeJSON(w, http.StatusOK, out)
}

func pathVersion(w http.ResponseWriter, r *http.Request) (int64, bool) {
	n, err := strconv.ParseInt(r.PathValue("n"), 10, 64)
	if err != nil || n < 0 {
		writeError(w, http.StatusBadRequest, codeBadRequest, fmt.Sprintf("bad policy version %q: want 0 (the default) or a version number", safetext.Bounded(r.PathValue("n"), 40)))
		return 0, false
	}
	return n, true
}

// policyVersion answers accepted version {n} with its text.
func (c *Console) policyVersion(w http.ResponseWriter, r *http.Request, _ *caller) {
	n, ok := pathVersion(w, r)
	if !ok {
		return
	}
	pv, err := c.srv.PolicyVersionText(r.Context(), n)
	if err != nil {
		c.writeErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, policyOf(pv))
}

// restorePolicy puts version {n} back in force as a new version (If-Match as putPolicy).
func (c *Console) restorePolicy(w http.ResponseWriter, r *http.Request, s *caller) {
	n, ok := pathVersion(w, r)
	if !ok {
		return
	}
	var req api.RestorePolicyRequest
	if !readJSON(w, r, &req) {
		return
	}
	want, ok := ifMatch(w, r)
	if !ok {
		return
	}
	pv, err := c.srv.RestorePolicyIf(r.Context(), n, authorOf(s, req.Author), want)
	if err != nil {
		c.writePolicyErr(w, r, err)
		return
	}
	c.logf("console: %s restored policy version %d as version %d", s.name(), n, pv.Version)
	w.Header().Set("ETag", etag(pv.Version))
	writeJSON(w, http.StatusOK, policyOf(pv))
}

// writePolicyErr answers 400 bad_policy with every problem of a refused policy.
func (c *Console) writePolicyErr(w http.ResponseWriter, r *http.Request, err error) {
	var list policy.ErrorList
	var one *policy.Error
	var problems []api.Problem
	switch {
	case errors.As(err, &list):
		for _, e := range list {
			problems = append(problems, api.Problem{Line: e.Line, Column: e.Column, Field: e.Field, Message: e.Msg})
		}
	case errors.As(err, &one):
		problems = append(problems, api.Problem{Line: one.Line, Column: one.Column, Field: one.Field, Message: one.Msg})
	case errors.Is(err, control.ErrInvalid):
		problems = append(problems, api.Problem{Message: strings.TrimPrefix(err.Error(), "control: ")})
	default:
		c.writeErr(w, r, err)
		return
	}
	msg := "the policy has problems; the one in force stays"
	if len(problems) == 1 {
		msg = "the policy has a problem; the one in force stays"
	}
	writeJSON(w, http.StatusBadRequest, api.Error{Code: codeBadPolicy, Message: msg, Problems: problems})
}
