package console

import (
	"net/http"
	"strconv"
	"testing"

	"tsconnect/console/api"
	"tsconnect/control"
)

// TestStolenSessionEndsOnPasswordChange: ada changes her password (her current one
// required): the session an attacker took ends, hers goes on under a new cookie, and the
// new password is the one that works.
func TestStolenSessionEndsOnPasswordChange(t *testing.T) {
	e := newEnv(t)
	e.user("ada@example.com", control.RoleMember, "correct horse")
	ada := e.client().mustLogin("ada@example.com", "correct horse")
	thief := e.client().mustLogin("ada@example.com", "correct horse")
	ada.do("PUT", "/api/v1/me/password", changePasswordRequest{CurrentPassword: "wrong horse", NewPassword: "new battery staple"}).
		want(t, http.StatusUnauthorized, codeBadLogin)
	thief.do("GET", "/api/v1/me", nil).want(t, http.StatusOK, "")
	ada.do("PUT", "/api/v1/me/password", changePasswordRequest{CurrentPassword: "correct horse", NewPassword: "short"}).
		want(t, http.StatusBadRequest, codeBadRequest)
	a := ada.do("PUT", "/api/v1/me/password", changePasswordRequest{CurrentPassword: "correct horse", NewPassword: "new battery staple"}).
		want(t, http.StatusOK, "")
	ada.csrf = a.str("csrfToken")
	thief.do("GET", "/api/v1/me", nil).want(t, http.StatusUnauthorized, codeUnauthenticated)
	ada.do("GET", "/api/v1/me", nil).want(t, http.StatusOK, "")
	e.client().login("ada@example.com", "correct horse").want(t, http.StatusUnauthorized, codeBadLogin)
	e.client().mustLogin("ada@example.com", "new battery staple")
	// Without the CSRF token of the session, no change.
	ada.csrf = ""
	ada.do("PUT", "/api/v1/me/password", changePasswordRequest{CurrentPassword: "new battery staple", NewPassword: "third password"}).
		want(t, http.StatusForbidden, codeCSRF)
}

// TestAdminPasswordResetEndsUsersSessions: an admin resets bo's password: bo's sessions
// end, the admin's goes on; members may not reset anyone's.
func TestAdminPasswordResetEndsUsersSessions(t *testing.T) {
	e := newEnv(t)
	e.user("admin@example.com", control.RoleAdmin, "admin password")
	bo := e.user("bo@example.com", control.RoleMember, "battery staple")
	e.user("cy@example.com", control.RoleMember, "cy password")
	admin := e.client().mustLogin("admin@example.com", "admin password")
	boc := e.client().mustLogin("bo@example.com", "battery staple")
	cy := e.client().mustLogin("cy@example.com", "cy password")
	path := "/api/v1/users/" + strconv.FormatInt(bo.ID, 10) + "/password"
	cy.do("PUT", path, api.SetPasswordRequest{Password: "taken over!"}).want(t, http.StatusForbidden, codeForbidden)
	admin.do("PUT", path, api.SetPasswordRequest{Password: "reset by admin"}).want(t, http.StatusOK, "")
	boc.do("GET", "/api/v1/me", nil).want(t, http.StatusUnauthorized, codeUnauthenticated)
	admin.do("GET", "/api/v1/me", nil).want(t, http.StatusOK, "")
	e.client().mustLogin("bo@example.com", "reset by admin")
	admin.do("PUT", "/api/v1/users/999/password", api.SetPasswordRequest{Password: "whatever pw"}).want(t, http.StatusNotFound, codeNotFound)
}

// TestDeletedUserSessionsEnd: deleting bo ends his console sessions at once.
func TestDeletedUserSessionsEnd(t *testing.T) {
	e := newEnv(t)
	e.user("admin@example.com", control.RoleAdmin, "admin password")
	bo := e.user("bo@example.com", control.RoleMember, "battery staple")
	admin := e.client().mustLogin("admin@example.com", "admin password")
	boc := e.client().mustLogin("bo@example.com", "battery staple")
	admin.do("DELETE", "/api/v1/users/"+strconv.FormatInt(bo.ID, 10), nil).want(t, http.StatusOK, "")
	boc.do("GET", "/api/v1/me", nil).want(t, http.StatusUnauthorized, codeUnauthenticated)
}
