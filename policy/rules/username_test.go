package rules

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestCheckUserName(t *testing.T) {
	for _, ok := range []string{"alice", "alice@corp.example", "ALICE", "svc_ci-1", "a.b", "deploy$", "jöran",
		strings.Repeat("a", MaxUserNameLen), "root", "*"} {
		if err := CheckUserName(ok); err != nil {
			t.Errorf("CheckUserName(%q) = %v, want nil", ok, err)
		}
	}
	for bad, want := range map[string]string{
		"":                                    "empty",
		"root\x00x":                           "NUL",
		"\x00":                                "NUL",
		"a\x01":                               "control character",
		"a\x1f":                               "control character",
		"a\x7f":                               "control character",
		"a\u0085":                             "whitespace", // NEL
		"a\u009b":                             "control character",
		"a\u202e":                             "control character",
		"a b":                                 "whitespace",
		"a\tb":                                "whitespace",
		"a\nb":                                "whitespace",
		"a\u00a0b":                            "whitespace",
		"../etc":                              "'/'",
		"a:b":                                 "':'",
		"-l":                                  "starts with '-'",
		".":                                   "not a name",
		"..":                                  "not a name",
		strings.Repeat("a", MaxUserNameLen+1): "more than 256",
		"\xc3":                                "invalid UTF-8",
	} {
		err := CheckUserName(bad)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckUserName(%q) = %v, want an error naming %q", bad, err, want)
		}
		if err != nil && strings.Contains(err.Error(), bad) && len(bad) > 2 {
			t.Errorf("CheckUserName(%q): the error %q repeats the name", bad, err)
		}
	}
}

// nonroot is the user map autogroup:nonroot compiles to.
var nonroot = map[string]string{"*": "=", "root": ""}

// TestNULInUserNameIsNotRootUnit: under autogroup:nonroot, names that libc would read as
// "root" (or that are not names at all) map to nothing, and Decide refuses them before
// it looks anything up.
func TestNULInUserNameIsNotRootUnit(t *testing.T) {
	for _, req := range []string{"root\x00x", "root\x00", "alice\x00root", "root\n", "../root"} {
		if local, ok := MapUser(nonroot, req); ok {
			t.Errorf("MapUser(nonroot, %q) = %q; want no mapping", req, local)
		}
		looked := false
		lookup := func(name string) (Account, bool) { looked = true; return Account{Name: "root", UID: 0}, true }
		v := Decide([]SSHRule{{Users: nonroot, Action: Accept, Rule: 0}}, req, lookup)
		if v.Action != Reject || v.LocalUser != "" || !strings.HasPrefix(v.Reason, "invalid SSH user name") {
			t.Errorf("Decide(nonroot, %q) = %+v; want a reject naming the invalid name", req, v)
		}
		if looked {
			t.Errorf("Decide(nonroot, %q) looked the name up", req)
		}
	}
	if v := Decide([]SSHRule{{Users: nonroot, Action: Accept}}, "alice", nil); v.Action != Accept || v.LocalUser != "alice" {
		t.Errorf("Decide(nonroot, alice) = %+v; want accept as alice", v)
	}
}

// TestSecondUIDZeroAccountIsRootUnit: a uid-0 account is root whatever its name; only a
// rule listing root or that name gives it, and first-match goes on to such a rule.
func TestSecondUIDZeroAccountIsRootUnit(t *testing.T) {
	accounts := map[string]Account{"toor": {Name: "toor", UID: 0}, "root": {Name: "root", UID: 0}, "alice": {Name: "alice", UID: 1000}}
	lookup := func(n string) (Account, bool) { a, ok := accounts[n]; return a, ok }
	nonrootRule := SSHRule{Users: nonroot, Action: Accept, Rule: 0, Origin: "ssh[0]"}
	for _, c := range []struct {
		name   string
		rules  []SSHRule
		req    string
		action Action
		reason string
	}{
		{"nonroot refuses toor", []SSHRule{nonrootRule}, "toor", Reject, `local user "toor" has uid 0 (root)`},
		{"nonroot still gives alice", []SSHRule{nonrootRule}, "alice", Accept, ""},
		{"toor by name", []SSHRule{{Users: map[string]string{"toor": "toor"}, Action: Accept, Rule: 0}}, "toor", Accept, ""},
		{"nonroot plus root", []SSHRule{{Users: map[string]string{"*": "=", "root": "root"}, Action: Accept, Rule: 0}}, "toor", Accept, ""},
		{"a later rule naming toor", []SSHRule{nonrootRule, {Users: map[string]string{"toor": "toor"}, Action: Check, Rule: 1}}, "toor", Check, ""},
		{"a star mapping to a fixed name is not root", []SSHRule{{Users: map[string]string{"*": "toor"}, Action: Accept, Rule: 0}}, "bob", Reject, "uid 0"},
	} {
		v := Decide(c.rules, c.req, lookup)
		if v.Action != c.action || (c.reason != "" && !strings.Contains(v.Reason, c.reason)) {
			t.Errorf("%s: Decide(%q) = %+v; want %s %q", c.name, c.req, v, c.action, c.reason)
		}
	}
}

// TestLookupMustReturnRequestedName: an account database that answers with another
// account (libc cutting at a NUL, NSS folding case) is refused.
func TestLookupMustReturnRequestedName(t *testing.T) {
	lookup := func(n string) (Account, bool) { return Account{Name: strings.ToLower(n), UID: 0}, true }
	v := Decide([]SSHRule{{Users: nonroot, Action: Accept}}, "ROOT", lookup)
	if v.Action != Reject || !strings.Contains(v.Reason, `resolves to an account named "root"`) {
		t.Errorf("Decide(ROOT) with a case-folding database = %+v; want a reject naming the mismatch", v)
	}
}

// FuzzCheckUserName: whatever CheckUserName accepts is a plain name, and MapUser under
// autogroup:nonroot gives exactly the accepted names other than root, themselves.
func FuzzCheckUserName(f *testing.F) {
	for _, s := range []string{"alice", "root", "root\x00x", "alice@corp.example", "-x", "..", "a/b", "a:b", "a b", "\u202e"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := CheckUserName(s)
		local, mapped := MapUser(nonroot, s)
		if err != nil {
			if mapped {
				t.Fatalf("MapUser mapped refused name %q to %q", s, local)
			}
			if strings.Contains(err.Error(), "\x00") {
				t.Fatalf("error for %q carries a NUL: %q", s, err)
			}
			return
		}
		if s == "" || len(s) > MaxUserNameLen || !utf8.ValidString(s) || s[0] == '-' || s == "." || s == ".." ||
			strings.ContainsAny(s, "/:") || strings.IndexFunc(s, func(r rune) bool { return unicode.IsControl(r) || unicode.IsSpace(r) }) >= 0 {
			t.Fatalf("CheckUserName accepted %q", s)
		}
		if mapped != (s != "root") || (mapped && local != s) {
			t.Fatalf("MapUser(nonroot, %q) = %q, %v", s, local, mapped)
		}
	})
}
