package console

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"tsconnect/console/api"
	"tsconnect/control"
	"tsconnect/internal/safetext"
)

// Error codes of api.Error.
const (
	codeUnauthenticated   = api.CodeUnauthenticated
	codeForbidden         = api.CodeForbidden
	codeInsufficientScope = api.CodeInsufficientScope
	codeCSRF              = api.CodeCSRF
	codeBadLogin          = api.CodeBadLogin
	codeRateLimited       = api.CodeRateLimited
	codeNotAllowed        = api.CodeNotAllowed
	codeBadPolicy         = api.CodeBadPolicy
	codeBadRequest        = api.CodeBadRequest
	codeNotFound          = api.CodeNotFound
	codeMethodNotAllowed  = api.CodeMethodNotAllowed
	codeExists            = api.CodeExists
	codeStaleVersion      = api.CodeStaleVersion
	codeTooLarge          = api.CodeTooLarge
	codeIfMatchRequired   = api.CodeIfMatchRequired
	codeInternal          = api.CodeInternal
	codeBusy              = api.CodeBusy
)

func writeJSON(w http.ResponseWriter, status int, v any) {
	if status == http.StatusNoContent {
		w.WriteHeader(status)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// writeError answers with status and the one error shape, api.Error.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, api.Error{Code: code, Message: msg})
}

// writeErr answers with the status and code err's kind maps to. Unexpected errors are
// logged and answered with a generic message.
func (c *Console) writeErr(w http.ResponseWriter, r *http.Request, err error) {
	msg := strings.TrimPrefix(err.Error(), "control: ")
	var stale *control.StaleVersionError
	switch {
	case errors.Is(err, control.ErrNotFound):
		writeError(w, http.StatusNotFound, codeNotFound, msg)
	case errors.Is(err, control.ErrExists):
		writeError(w, http.StatusConflict, codeExists, msg)
	case errors.Is(err, control.ErrForbidden):
		writeError(w, http.StatusForbidden, codeForbidden, msg)
	case errors.Is(err, control.ErrBusy):
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, codeBusy, msg)
	case errors.Is(err, control.ErrInvalid):
		writeError(w, http.StatusBadRequest, codeBadRequest, msg)
	case errors.As(err, &stale):
		writeJSON(w, http.StatusPreconditionFailed, api.Error{Code: codeStaleVersion, Message: msg, CurrentVersion: &stale.Current})
	default:
		c.logf("console: %s %s: %v", r.Method, safetext.Bounded(r.URL.Path, 0), err)
		writeError(w, http.StatusInternalServerError, codeInternal, "internal error; the server log has the details")
	}
}

// Request body bounds: every console route reads at most maxBody (a policy maxPolicyBody,
// a login maxLoginBody); a longer body is refused with 413 before it is decoded.
const (
	maxBody       = 64 << 10
	maxPolicyBody = 1 << 20
	maxLoginBody  = 8 << 10
)

// bodyLimit is the body bound of a request to path.
func bodyLimit(path string) int64 {
	if path == api.Prefix+"/policy" || strings.HasPrefix(path, api.Prefix+"/policy/") {
		return maxPolicyBody
	}
	return maxBody
}

// readJSON decodes the request body (at most its route's bodyLimit, no unknown fields) into v.
func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	return readJSONMax(w, r, v, bodyLimit(r.URL.Path))
}

// readJSONMax is readJSON with a body of at most limit bytes.
func readJSONMax(w http.ResponseWriter, r *http.Request, v any, limit int64) bool {
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		writeError(w, http.StatusRequestEntityTooLarge, codeTooLarge, fmt.Sprintf("request body larger than %d bytes", tooBig.Limit))
		return false
	case err != nil:
		writeError(w, http.StatusBadRequest, codeBadRequest, "bad JSON body: "+safetext.Bounded(err.Error(), 200))
		return false
	}
	return true
}

func pathID(w http.ResponseWriter, r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		writeError(w, http.StatusBadRequest, codeBadRequest, fmt.Sprintf("bad id %q: want a positive number", r.PathValue("id")))
		return 0, false
	}
	return id, true
}

// nonNil makes an empty list encode as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
