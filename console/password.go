package console

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"tsconnect/control"
)

// passwordRefusal is why a password attempt was not let in, for the caller to answer.
type passwordRefusal struct {
	status int           // 401, 429, 503 or 500
	wait   time.Duration // Retry-After, for 429 and 503
	msg    string        // for the user
	err    error         // the unexpected error behind a 500
}

// setRetryAfter sets the Retry-After header of a 429 or 503.
func (pr *passwordRefusal) setRetryAfter(w http.ResponseWriter) {
	if pr.wait > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(pr.wait.Seconds()))))
	}
}

// checkPassword checks email and password under the login limits (see ratelimit.go) and
// records the attempt in the audit log as kind, "where" naming the page; it returns the
// user, or why not. Refusals without a check are coalesced in the audit log (refusals.go).
func (c *Console) checkPassword(ctx context.Context, r *http.Request, email, password string, kind control.AuthKind, where string) (control.User, *passwordRefusal) {
	email = strings.ToLower(strings.TrimSpace(email))
	ip := c.clientIP(r)
	addr, akey := c.clientAddr(r), limitKey(ip)
	lim, ukey := c.byEmail, email
	if len(email) > control.MaxAuditEmail {
		ukey = email[:control.MaxAuditEmail] // no user has such an email
	} else if u, err := c.srv.UserByEmail(ctx, email); err == nil {
		lim, ukey = c.byUser, strconv.FormatInt(u.ID, 10)
	}
	refuse := func(status int, wait time.Duration, why, msg string) *passwordRefusal {
		if write, more := c.refusals.note(ukey + "\x00" + akey); write {
			c.srv.RecordAuthAttempt(ctx, email, control.AuthPassword, kind, false, where+" from "+addr+": "+why+more)
		}
		return &passwordRefusal{status: status, wait: wait, msg: msg}
	}
	limited := func(wait time.Duration) *passwordRefusal {
		return refuse(http.StatusTooManyRequests, wait, "rate limited",
			fmt.Sprintf("too many failed attempts: try again in %d seconds", int(math.Ceil(wait.Seconds()))))
	}
	if wait := lim.reserve(ukey); wait > 0 {
		return control.User{}, limited(wait)
	}
	if wait := c.byAddr.reserve(akey); wait > 0 {
		lim.release(ukey)
		return control.User{}, limited(wait)
	}
	if !c.hashing.acquire(akey) {
		lim.release(ukey)
		c.byAddr.release(akey)
		return control.User{}, refuse(http.StatusTooManyRequests, time.Second, "password checks of this address already in progress",
			fmt.Sprintf("%d password checks from your address are in progress: wait for them", maxHashesPerAddr))
	}
	u, err := c.srv.CheckPassword(ctx, email, password)
	c.hashing.release(akey)
	switch {
	case errors.Is(err, control.ErrBadLogin):
		c.srv.RecordAuthAttempt(ctx, email, control.AuthPassword, kind, false, where+" from "+addr+": wrong email or password")
		return control.User{}, &passwordRefusal{status: http.StatusUnauthorized, msg: "wrong email or password"}
	case err != nil:
		lim.release(ukey)
		c.byAddr.release(akey)
		if errors.Is(err, control.ErrBusy) {
			return control.User{}, refuse(http.StatusServiceUnavailable, 5*time.Second, "server busy", "the server is busy checking passwords: try again in a few seconds")
		}
		return control.User{}, &passwordRefusal{status: http.StatusInternalServerError, msg: "internal error", err: err}
	}
	lim.reset(ukey)
	c.byAddr.release(akey)
	return u, nil
}

// sentence is msg as a sentence for a page: capitalised, with a full stop.
func sentence(msg string) string {
	if msg == "" {
		return msg
	}
	return strings.ToUpper(msg[:1]) + msg[1:] + "."
}
