package policy

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"tsconnect/policy/rules"

	"github.com/tailscale/hujson"
)

// Check periods: how long a check-mode re-authentication stays valid.
const (
	DefaultCheckPeriod = 12 * time.Hour
	MinCheckPeriod     = time.Minute
	MaxCheckPeriod     = 168 * time.Hour
)

func (b *builder) sshRules(v *hujson.Value) {
	items, ok := b.list(v, "ssh")
	if !ok {
		return
	}
	for i, it := range items {
		field := fmt.Sprintf("ssh[%d]", i)
		m, ok := b.fields(it, field, []string{"action", "src", "dst", "users", "checkPeriod", "acceptEnv",
			"recorder", "enforceRecorder", "recordInput"}, map[string]string{
			"srcPosture": "device posture is not supported",
		})
		if !ok && m == nil {
			continue
		}
		r := sshRule{index: i, off: it.StartOffset, checkPeriod: DefaultCheckPeriod}
		if act, ok := b.requireString(m, "action", field, it.StartOffset); ok {
			switch act.s {
			case "accept":
				r.action = rules.Accept
			case "check":
				r.action = rules.Check
			default:
				b.errf(act.off, field+".action", "unknown action %q: want \"accept\" or \"check\"", act.s)
			}
		}
		r.src = b.aliases(m, "src", field, ctxSSHSrc, it.StartOffset)
		r.dst = b.aliases(m, "dst", field, ctxSSHDst, it.StartOffset)
		b.sshSrcDst(&r, field)
		b.sshUsers(&r, m, field, it.StartOffset)
		if cp, ok := m["checkPeriod"]; ok {
			b.checkPeriod(&r, cp.val, field+".checkPeriod")
		}
		if ae, ok := m["acceptEnv"]; ok {
			pats, _ := b.strList(ae.val, field+".acceptEnv")
			for _, p := range pats {
				if !validEnvPattern(p.s) {
					b.errf(p.off, field+".acceptEnv", "%q is not a valid environment variable pattern (letters, digits, _, * and ?)", p.s)
					continue
				}
				r.acceptEnv = append(r.acceptEnv, p.s)
			}
		}
		b.sshRecorder(&r, m, field)
		b.p.ssh = append(b.p.ssh, r)
	}
}

// sshRecorder reads a rule's recorder, enforceRecorder and recordInput.
func (b *builder) sshRecorder(r *sshRule, m map[string]member, field string) {
	rm, hasRec := m["recorder"]
	if hasRec {
		f := field + ".recorder"
		list, _ := b.strList(rm.val, f)
		switch {
		case len(list) == 0 && rm.val.Value.Kind() == '[':
			b.errf(rm.val.StartOffset, f, "is empty: name the recorder nodes, e.g. [\"tag:recorder\"]")
		case len(list) > rules.MaxRecorders:
			b.errf(list[rules.MaxRecorders].off, f, "more than %d recorders", rules.MaxRecorders)
			list = nil
		}
		for _, s := range list {
			if a, ok := b.parseAlias(s, f, ctxRecorder); ok {
				r.recorder = append(r.recorder, a)
			}
		}
	}
	for _, name := range []string{"enforceRecorder", "recordInput"} {
		bm, ok := m[name]
		if !ok {
			continue
		}
		v, ok := b.boolean(bm.val, field+"."+name)
		if !ok {
			continue
		}
		if v && !hasRec {
			b.errf(bm.keyOff, field+"."+name, "%s requires \"recorder\": name the recorder nodes, e.g. [\"tag:recorder\"]", name)
			continue
		}
		if name == "enforceRecorder" {
			r.enforceRec = v
		} else {
			r.recordInput = v
		}
	}
}

// sshSrcDst enforces which sources may reach which destinations.
func (b *builder) sshSrcDst(r *sshRule, field string) {
	var tagged []alias
	for _, s := range r.src {
		if s.kind == akTag || s.kind == akTagged {
			tagged = append(tagged, s)
			if r.action == rules.Check {
				b.errf(s.off, field+".src", "%q cannot be the source of a check rule: no person can re-authenticate for a tagged device", s.text)
			}
		}
	}
	for _, d := range r.dst {
		switch d.kind {
		case akUser, akSelf, akMember:
			if len(tagged) > 0 {
				b.errf(d.off, field+".dst", "%q as source cannot reach a user's devices (%q): use tags or autogroup:tagged as destination", tagged[0].text, d.text)
				continue
			}
		}
		if d.kind == akUser {
			same := len(r.src) > 0
			for _, s := range r.src {
				if s.kind != akUser || !strings.EqualFold(s.name, d.name) {
					same = false
				}
			}
			if !same {
				b.errf(d.off, field+".dst", "user %q as destination requires src to be only %q; use autogroup:self for each user's own devices", d.text, d.text)
			}
		}
	}
}

func (b *builder) sshUsers(r *sshRule, m map[string]member, field string, objOff int) {
	um, ok := m["users"]
	if !ok {
		b.errf(objOff, field, "missing \"users\": list the local accounts, e.g. [\"autogroup:nonroot\"]")
		return
	}
	f := field + ".users"
	users, _ := b.strList(um.val, f)
	if len(users) == 0 && um.val.Value.Kind() == '[' {
		b.errf(um.val.StartOffset, f, "is empty: list the local accounts, e.g. [\"autogroup:nonroot\"]")
	}
	for _, u := range users {
		switch {
		case u.s == "root":
			r.root = true
		case u.s == "autogroup:nonroot":
			r.nonroot = true
		case strings.HasPrefix(u.s, "autogroup:"):
			b.errf(u.off, f, "unknown autogroup %q (users allow autogroup:nonroot)", u.s)
		case strings.HasPrefix(u.s, "localpart:"):
			dom, ok := strings.CutPrefix(u.s, "localpart:*@")
			if !ok || dom == "" || strings.ContainsAny(dom, "@*: ") {
				b.errf(u.off, f, "%q is not valid: want localpart:*@domain", u.s)
				continue
			}
			r.localparts = append(r.localparts, strings.ToLower(dom))
		case ValidLocalUser(u.s):
			r.names = append(r.names, u.s)
		case strings.Contains(u.s, "@"):
			b.errf(u.off, f, "%q is not a valid user: users are local account names (or localpart:*@domain)", u.s)
		default:
			b.errf(u.off, f, "%q is not a valid user", u.s)
		}
	}
}

func (b *builder) checkPeriod(r *sshRule, v *hujson.Value, field string) {
	s, ok := b.str(v, field)
	if !ok {
		return
	}
	if r.action != rules.Check {
		b.errf(s.off, field, "checkPeriod is only allowed on check rules")
		return
	}
	if s.s == "always" {
		r.checkPeriod = 0
		return
	}
	d, err := parseDuration(s.s)
	switch {
	case err != nil:
		b.errf(s.off, field, "%q is not a duration (e.g. \"12h\", \"7d\") or \"always\"", s.s)
	case d < 0:
		b.errf(s.off, field, "negative checkPeriod %q", s.s)
	case d < MinCheckPeriod || d > MaxCheckPeriod:
		b.errf(s.off, field, "checkPeriod %q out of range: want 1m to 168h, or \"always\"", s.s)
	default:
		r.checkPeriod = d
	}
}

// parseDuration reads Go durations plus whole days ("7d") and weeks ("1w").
func parseDuration(s string) (time.Duration, error) {
	for suffix, unit := range map[string]time.Duration{"d": 24 * time.Hour, "w": 7 * 24 * time.Hour} {
		if n, ok := strings.CutSuffix(s, suffix); ok {
			v, err := strconv.ParseInt(n, 10, 32)
			if err != nil {
				return 0, err
			}
			return time.Duration(v) * unit, nil
		}
	}
	return time.ParseDuration(s)
}

// ValidLocalUser reports whether s looks like a local account name (letters, digits, _ - .,
// at most 64 bytes, not starting with -, an ending $ allowed).
func ValidLocalUser(s string) bool {
	if s == "" || len(s) > 64 || s[0] == '-' {
		return false
	}
	for i, c := range s {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.' ||
			(c == '$' && i == len(s)-1)
		if !ok {
			return false
		}
	}
	return true
}

func validEnvPattern(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '*' || c == '?') {
			return false
		}
	}
	return true
}
