package console

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"tsconnect/control"
	"tsconnect/controlws"
	"tsconnect/key"
	"tsconnect/oidc"
)

// checkPolicy: members may SSH to tag:server as root after re-authenticating on every login.
const flowCheckPolicy = `{
	"tagOwners": {"tag:server": ["alice@example.com"]},
	"acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}],
	"ssh": [{"action": "check", "src": ["autogroup:member"], "dst": ["tag:server"], "users": ["root"], "checkPeriod": "always"}],
}`

const (
	alicePW = "alice-password"
	bobPW   = "bob-password"
)

// checkNet: the tagged server (whose control client asks for checks, as its agent would),
// and the laptops of alice and bob, under flowCheckPolicy.
type checkNet struct {
	e          *env
	alice, bob control.User
	server     *controlws.Client
	serverNode controlws.Node
	laptop     controlws.Node // alice's
	bobs       controlws.Node
}

// newCheckNet sets the network up in e; alice and bob exist (with passwords unless they
// were made beforehand, e.g. by single sign-on).
func newCheckNet(e *env, laptopName string) *checkNet {
	e.t.Helper()
	ctx := context.Background()
	cn := &checkNet{e: e}
	userOf := func(email, pw string) control.User {
		if u, err := e.srv.UserByEmail(ctx, email); err == nil {
			return u
		}
		return e.user(email, control.RoleMember, pw)
	}
	cn.alice, cn.bob = userOf("alice@example.com", alicePW), userOf("bob@example.com", bobPW)
	e.setPolicy(flowCheckPolicy)
	cn.server, _, cn.serverNode = e.register(control.AuthKeyOptions{User: cn.alice.ID, Tags: []string{"tag:server"}, CreatedBy: cn.alice.ID},
		controlws.Hostinfo{Hostname: "server", OS: "linux"})
	_, _, cn.laptop = e.register(control.AuthKeyOptions{User: cn.alice.ID}, controlws.Hostinfo{Hostname: laptopName, OS: "linux"})
	_, _, cn.bobs = e.register(control.AuthKeyOptions{User: cn.bob.ID}, controlws.Hostinfo{Hostname: "bobs", OS: "linux"})
	return cn
}

// held is an SSH login the server's agent holds for a check.
type held struct {
	id      string
	pending chan controlws.SSHCheckVerdict
	done    chan struct{}
	v       *controlws.SSHCheckVerdict
	err     error
}

// ask has the server's agent ask about a login as root from src and returns it held.
func (cn *checkNet) ask(src controlws.Node) *held {
	t := cn.e.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	h := &held{pending: make(chan controlws.SSHCheckVerdict, 1), done: make(chan struct{})}
	req := controlws.SSHCheckRequest{SrcNode: src.ID, SrcAddr: src.Addresses[0].Addr(), User: "root", LocalUser: "root"}
	go func() {
		defer close(h.done)
		h.v, h.err = cn.server.SSHCheck(ctx, req, func(v controlws.SSHCheckVerdict) { h.pending <- v })
	}()
	t.Cleanup(func() { cancel(); <-h.done })
	select {
	case p := <-h.pending:
		id, ok := strings.CutPrefix(p.URL, cn.e.hs.URL+"/check/")
		if !ok {
			t.Fatalf("check URL %q is not on %s/check/", p.URL, cn.e.hs.URL)
		}
		h.id = id
	case <-h.done:
		t.Fatalf("the check was not held: verdict %+v, err %v", h.v, h.err)
	}
	return h
}

// final waits for the held login's verdict.
func (h *held) final(t *testing.T) *controlws.SSHCheckVerdict {
	t.Helper()
	select {
	case <-h.done:
	case <-time.After(30 * time.Second):
		t.Fatal("the held login got no verdict")
	}
	if h.err != nil {
		t.Fatalf("check: %v", h.err)
	}
	return h.v
}

// stillHeld fails if the login got a verdict.
func (h *held) stillHeld(t *testing.T, e *env) {
	t.Helper()
	select {
	case <-h.done:
		t.Fatalf("the login was decided: %+v %v", h.v, h.err)
	default:
	}
	if _, err := e.srv.PendingCheck(context.Background(), h.id); err != nil {
		t.Fatalf("the check is no longer pending: %v", err)
	}
}

var formTokenRE = regexp.MustCompile(`name="token" value="([^"]*)"`)

// token is the form token of a page.
func token(t *testing.T, a answer) string {
	t.Helper()
	m := formTokenRE.FindSubmatch(a.raw)
	if m == nil {
		t.Fatalf("no form token on the page: %s", a.raw)
	}
	return string(m[1])
}

// post submits a form as a browser would (Origin: the console's, unless hdr says otherwise).
func (c *client) post(path string, v url.Values, hdr ...string) answer {
	c.e.t.Helper()
	req, err := http.NewRequest("POST", c.e.hs.URL+path, strings.NewReader(v.Encode()))
	if err != nil {
		c.e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if c.origin != "" {
		req.Header.Set("Origin", c.origin)
	}
	return c.send(req, hdr...)
}

func approve(tok, email, password string) url.Values {
	return url.Values{"token": {tok}, "action": {"approve"}, "email": {email}, "password": {password}}
}

// TestCheckPagePassword: the page says who, from which machine, to which machine, as whom;
// alice's password lets the held login in, once; the audit log has it.
func TestCheckPagePassword(t *testing.T) {
	e := newEnv(t)
	cn := newCheckNet(e, "laptop")
	h := cn.ask(cn.laptop)
	c := e.client()
	page := c.do("GET", "/check/"+h.id, nil)
	wantPage(t, page, http.StatusOK, "alice@example.com", "laptop <span class=\"who\">(alice@example.com)</span>",
		"server <span class=\"who\">(tag:server)</span>", "<code>root</code>", `type="password"`, "Decline")
	if strings.Contains(string(page.raw), "single sign-on") {
		t.Errorf("the page offers single sign-on without a provider")
	}
	a := c.post("/check/"+h.id, approve(token(t, page), "alice@example.com", alicePW))
	wantPage(t, a, http.StatusOK, "Approved — you can close this window")
	if v := h.final(t); v.Verdict != controlws.CheckAccept {
		t.Fatalf("verdict %+v, want accept", v)
	}
	ev, _ := e.srv.AuditLog(context.Background(), 0, 1)
	if len(ev) != 1 || ev[0].Kind != control.AuthCheck || ev[0].Method != control.AuthPassword || !ev[0].OK || ev[0].UserID != cn.alice.ID {
		t.Fatalf("audit %+v; want alice's check by password", ev)
	}
	wantPage(t, c.do("GET", "/check/"+h.id, nil), http.StatusNotFound, "unknown or has expired")
	wantPage(t, c.post("/check/"+h.id, approve(token(t, page), "alice@example.com", alicePW)), http.StatusNotFound)
}

// TestCheckPageWrongPassword: a wrong password re-shows the form with an error, leaves the
// login held, and counts against the login rate limit: after five, even the right one waits.
func TestCheckPageWrongPassword(t *testing.T) {
	e := newEnv(t)
	cn := newCheckNet(e, "laptop")
	h := cn.ask(cn.laptop)
	c := e.client()
	tok := token(t, c.do("GET", "/check/"+h.id, nil))
	for i := range maxFailuresPerEmail {
		a := c.post("/check/"+h.id, approve(tok, "alice@example.com", "guess-"+strconv.Itoa(i)))
		wantPage(t, a, http.StatusUnauthorized, "Wrong email or password.", `type="password"`)
	}
	h.stillHeld(t, e)
	a := c.post("/check/"+h.id, approve(tok, "alice@example.com", alicePW))
	wantPage(t, a, http.StatusTooManyRequests, "Too many failed attempts")
	if a.header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	h.stillHeld(t, e)
	ev, _ := e.srv.AuditLog(context.Background(), 0, 10)
	if len(ev) != maxFailuresPerEmail+1 || ev[1].OK || ev[1].Kind != control.AuthCheck {
		t.Fatalf("audit %+v; want the failed checks", ev)
	}
}

// TestCheckPageDecline: Decline refuses the held login.
func TestCheckPageDecline(t *testing.T) {
	e := newEnv(t)
	cn := newCheckNet(e, "laptop")
	h := cn.ask(cn.laptop)
	c := e.client()
	tok := token(t, c.do("GET", "/check/"+h.id, nil))
	wantPage(t, c.post("/check/"+h.id, url.Values{"token": {tok}, "action": {"decline"}}), http.StatusOK, "Declined")
	if v := h.final(t); v.Verdict != controlws.CheckReject || !strings.Contains(v.Message, "declined") {
		t.Fatalf("verdict %+v, want a reject saying declined", v)
	}
}

// TestCheckPageOtherUser: bob, signed in to the console, is told the login waits for
// alice, and his password does not approve it; alice's does.
func TestCheckPageOtherUser(t *testing.T) {
	e := newEnv(t)
	cn := newCheckNet(e, "laptop")
	h := cn.ask(cn.laptop)
	c := e.client().mustLogin("bob@example.com", bobPW)
	page := c.do("GET", "/check/"+h.id, nil)
	wantPage(t, page, http.StatusOK, "signed in to the console as bob@example.com, not as alice@example.com")
	a := c.post("/check/"+h.id, approve(token(t, page), "bob@example.com", bobPW))
	wantPage(t, a, http.StatusForbidden, "only alice@example.com can approve it")
	h.stillHeld(t, e)
	a = c.post("/check/"+h.id, approve(token(t, page), "alice@example.com", alicePW))
	wantPage(t, a, http.StatusOK, "Approved")
	if v := h.final(t); v.Verdict != controlws.CheckAccept {
		t.Fatalf("verdict %+v, want accept", v)
	}
}

// TestCheckPageForgedForms: a form without the token, with another check's token, from a
// foreign origin or with no origin at all is refused, and the login stays held.
func TestCheckPageForgedForms(t *testing.T) {
	e := newEnv(t)
	cn := newCheckNet(e, "laptop")
	h1 := cn.ask(cn.laptop)
	h2 := cn.ask(cn.laptop)
	c := e.client()
	tok1 := token(t, c.do("GET", "/check/"+h1.id, nil))
	tok2 := token(t, c.do("GET", "/check/"+h2.id, nil))
	if tok1 == tok2 {
		t.Fatal("two checks share a form token")
	}
	for _, tc := range []struct {
		name string
		v    url.Values
		hdr  []string
		want string
	}{
		{"no token", approve("", "alice@example.com", alicePW), nil, "no valid token"},
		{"another check's token", approve(tok2, "alice@example.com", alicePW), nil, "no valid token"},
		{"decline with another check's token", url.Values{"token": {tok2}, "action": {"decline"}}, nil, "no valid token"},
		{"foreign origin", approve(tok1, "alice@example.com", alicePW), []string{"Origin", "https://evil.example"}, "was not sent from"},
		{"no origin, cross-site", approve(tok1, "alice@example.com", alicePW), []string{"Origin", "", "Sec-Fetch-Site", "cross-site"}, "no Origin header"},
	} {
		a := c.post("/check/"+h1.id, tc.v, tc.hdr...)
		if a.status != http.StatusForbidden || !strings.Contains(string(a.raw), tc.want) {
			t.Errorf("%s: got %d %s; want 403 saying %q", tc.name, a.status, a.raw, tc.want)
		}
	}
	h1.stillHeld(t, e)
	h2.stillHeld(t, e)
	wantPage(t, c.do("GET", "/check/0123456789abcdef0123456789abcdef", nil), http.StatusNotFound, "unknown or has expired")
}

// TestCheckPageSSO: alice signs in with single sign-on only; her check page offers a fresh
// sign-in at the provider (no password form), which approves the login; bob's fresh
// sign-in does not.
func TestCheckPageSSO(t *testing.T) {
	e, _ := newSSOEnv(t, oidc.Config{})
	wantPage(t, e.client().sso(OIDCStartPath, ssoAlice.Email, ssoAlice.Password), http.StatusOK)
	wantPage(t, e.client().sso(OIDCStartPath, ssoBob.Email, ssoBob.Password), http.StatusOK)
	cn := newCheckNet(e, "laptop")
	h := cn.ask(cn.laptop)

	bob := e.client()
	a := bob.sso("/check/"+h.id+"/sso", ssoBob.Email, ssoBob.Password)
	wantPage(t, a, http.StatusForbidden, "only alice@example.com can approve it")
	h.stillHeld(t, e)

	c := e.client()
	page := c.do("GET", "/check/"+h.id, nil)
	body := wantPage(t, page, http.StatusOK, `href="/check/`+h.id+`/sso"`, "Re-authenticate with single sign-on")
	if strings.Contains(body, `type="password"`) {
		t.Errorf("the page asks a single sign-on user for a password: %s", body)
	}
	a = c.sso("/check/"+h.id+"/sso", ssoAlice.Email, ssoAlice.Password)
	wantPage(t, a, http.StatusOK, "Approved — you can close this window")
	if ck := sessionCookie(a); ck != nil {
		t.Error("a check re-authentication started a console session")
	}
	if v := h.final(t); v.Verdict != controlws.CheckAccept {
		t.Fatalf("verdict %+v, want accept", v)
	}
	ev, _ := e.srv.AuditLog(context.Background(), 0, 1)
	if len(ev) != 1 || ev[0].Kind != control.AuthCheck || ev[0].Method != control.AuthOIDC || !ev[0].OK || ev[0].UserID != cn.alice.ID {
		t.Fatalf("audit %+v; want alice's check by oidc", ev)
	}
}

// interactive is a node registering without an auth key, waiting for its login page.
type interactive struct {
	url  string
	done chan struct{}
	resp *controlws.RegisterResponse
	err  error
}

func (e *env) interactive(hi controlws.Hostinfo) *interactive {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	c, err := controlws.Dial(ctx, controlws.DialOptions{ServerURL: e.hs.URL, MachineKey: key.NewPrivate()})
	if err != nil {
		e.t.Fatal(err)
	}
	il := &interactive{done: make(chan struct{})}
	urls := make(chan string, 1)
	go func() {
		defer close(il.done)
		il.resp, il.err = c.RegisterInteractive(ctx, controlws.RegisterRequest{NodeKey: key.NewPrivate().Public(), Hostinfo: hi},
			func(u controlws.LoginURL) { urls <- u.URL })
	}()
	e.t.Cleanup(func() { cancel(); <-il.done; c.Close() })
	select {
	case il.url = <-urls:
	case <-il.done:
		e.t.Fatalf("interactive register gave no URL: %+v %v", il.resp, il.err)
	}
	return il
}

func (il *interactive) path(t *testing.T, e *env) string {
	t.Helper()
	p, ok := strings.CutPrefix(il.url, e.hs.URL)
	if !ok || !strings.HasPrefix(p, "/login/") {
		t.Fatalf("login URL %q is not on %s/login/", il.url, e.hs.URL)
	}
	return p
}

// TestLoginPage: a node without an auth key waits; alice signs in on its page, confirms
// "Add laptop as alice@example.com", and the node is registered as hers.
func TestLoginPage(t *testing.T) {
	e := newEnv(t)
	alice := e.user("alice@example.com", control.RoleMember, alicePW)
	il := e.interactive(controlws.Hostinfo{Hostname: "laptop", OS: "linux"})
	p := il.path(t, e)
	c := e.client()
	page := c.do("GET", p, nil)
	wantPage(t, page, http.StatusOK, "laptop", "linux", `type="password"`)
	a := c.post(p, url.Values{"token": {token(t, page)}, "action": {"signin"}, "email": {"alice@example.com"}, "password": {"wrong-password"}})
	wantPage(t, a, http.StatusUnauthorized, "Wrong email or password.")
	a = c.post(p, url.Values{"token": {token(t, page)}, "action": {"signin"}, "email": {"alice@example.com"}, "password": {alicePW}})
	wantPage(t, a, http.StatusOK, "Add laptop as alice@example.com")
	if sessionCookie(a) == nil {
		t.Fatal("signing in on the login page set no session cookie")
	}
	// The sign-in form's token does not confirm.
	if b := c.post(p, url.Values{"token": {token(t, page)}, "action": {"confirm"}}); b.status != http.StatusForbidden {
		t.Fatalf("confirm with the sign-in token: %d %s; want 403", b.status, b.raw)
	}
	a = c.post(p, url.Values{"token": {token(t, a)}, "action": {"confirm"}})
	wantPage(t, a, http.StatusOK, "laptop is now in the network as alice@example.com")
	select {
	case <-il.done:
	case <-time.After(30 * time.Second):
		t.Fatal("the node was not answered")
	}
	if il.err != nil || il.resp.Node.User != alice.ID || len(il.resp.Node.Tags) != 0 {
		t.Fatalf("register: %+v %v; want the node as alice's", il.resp, il.err)
	}
	ev, _ := e.srv.AuditLog(context.Background(), 0, 1)
	if len(ev) != 1 || ev[0].Kind != control.AuthNodeLogin || !ev[0].OK || ev[0].UserID != alice.ID {
		t.Fatalf("audit %+v; want alice's node-login", ev)
	}
	wantPage(t, c.do("GET", p, nil), http.StatusNotFound, "unknown or has expired")
}

// TestLoginPageSSO: signing in with single sign-on from a node's login page comes back to
// it, signed in, to confirm.
func TestLoginPageSSO(t *testing.T) {
	e, _ := newSSOEnv(t, oidc.Config{})
	il := e.interactive(controlws.Hostinfo{Hostname: "laptop", OS: "linux"})
	p := il.path(t, e)
	c := e.client()
	page := c.do("GET", p, nil)
	wantPage(t, page, http.StatusOK, `href="/auth/oidc/start?returnTo=`+url.QueryEscape(p)+`"`)
	a := c.sso(OIDCStartPath+"?returnTo="+url.QueryEscape(p), ssoAlice.Email, ssoAlice.Password)
	wantPage(t, a, http.StatusOK, `content="0;url=`+p+`"`)
	page = c.do("GET", p, nil)
	wantPage(t, page, http.StatusOK, "Add laptop as alice@example.com")
	wantPage(t, c.post(p, url.Values{"token": {token(t, page)}, "action": {"confirm"}}), http.StatusOK, "Machine added")
	<-il.done
	if il.err != nil || il.resp.User.LoginName != ssoAlice.Email {
		t.Fatalf("register: %+v %v; want the node as alice's", il.resp, il.err)
	}
}

// TestPagesEscapeHostileNames: a node naming itself <img src=x onerror=…> is shown as
// text on the login page and cannot inject markup into the check page.
func TestPagesEscapeHostileNames(t *testing.T) {
	const hostile = `<img src=x onerror=alert(1)>`
	e := newEnv(t)
	e.user("alice@example.com", control.RoleMember, alicePW)
	il := e.interactive(controlws.Hostinfo{Hostname: hostile, OS: `"><script>alert(2)</script>`})
	c := e.client().mustLogin("alice@example.com", alicePW)
	body := wantPage(t, c.do("GET", il.path(t, e), nil), http.StatusOK,
		"&lt;img src=x onerror=alert(1)&gt;", "&#34;&gt;&lt;script&gt;alert(2)&lt;/script&gt;")
	if strings.Contains(body, "<img") {
		t.Fatalf("the login page carries the node's markup: %s", body)
	}

	cn := newCheckNet(e, hostile)
	h := cn.ask(cn.laptop)
	body = wantPage(t, c.do("GET", "/check/"+h.id, nil), http.StatusOK, cn.laptop.Name)
	if strings.Contains(body, "<img") {
		t.Fatalf("the check page carries the node's markup: %s", body)
	}
}
