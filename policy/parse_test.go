package policy

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"tsconnect/policy/rules"
)

func TestHuJSONCommentsAndTrailingCommas(t *testing.T) {
	src := `/* a pasted policy, old spelling of section names */
{
	"Groups": {"group:eng": ["alice@example.com",],}, // trailing commas
	"TagOwners": {"tag:prod": ["group:eng"]},
	"ACLs": [
		// engineers reach prod over SSH
		{"Action": "accept", "Src": ["group:eng"], "Dst": ["tag:prod:22"],},
	],
	"ssh": [{"action": "accept", "src": ["group:eng"], "dst": ["tag:prod"], "users": ["ubuntu"],},],
}`
	p, err := Parse("pasted.hujson", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if v := p.SSHAccess(aliceLaptop, prodServer, "ubuntu", nil); v.Action != rules.Accept {
		t.Errorf("verdict %+v", v)
	}
}

func TestPassingAssertions(t *testing.T) {
	src := `{
	"tagOwners": {"tag:prod": [], "tag:ci": []},
	"acls": [
		{"action": "accept", "src": ["autogroup:member"], "dst": ["autogroup:self:*", "tag:prod:22"]},
		{"action": "accept", "src": ["tag:ci"], "dst": ["tag:prod:22"]},
	],
	"ssh": [
		{"action": "check", "src": ["autogroup:member"], "dst": ["autogroup:self"], "users": ["root"]},
		{"action": "accept", "src": ["autogroup:member"], "dst": ["autogroup:self"], "users": ["autogroup:nonroot"]},
		{"action": "accept", "src": ["tag:ci"], "dst": ["tag:prod"], "users": ["deploy"]},
	],
	"tests": [
		{"src": "alice@example.com", "accept": ["tag:prod:22", "alice@example.com:8080"], "deny": ["tag:prod:80", "bob@example.com:22"]},
		{"src": "tag:ci", "proto": "sctp", "deny": ["tag:prod:22"]},
	],
	"sshTests": [
		{"src": "alice@example.com", "dst": ["alice@example.com"], "accept": ["alice", "root"], "check": ["root"], "deny": []},
		{"src": "bob@example.com", "dst": ["alice@example.com", "tag:prod"], "deny": ["bob", "root"]},
		{"src": "tag:ci", "dst": ["tag:prod"], "accept": ["deploy"], "deny": ["root", "ubuntu"]},
	],
}`
	if _, err := Parse("ok.hujson", []byte(src)); err != nil {
		t.Fatal(err)
	}
}

func TestCheckAssertionFailsOnAccept(t *testing.T) {
	src := `{
	"acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}],
	"ssh": [{"action": "accept", "src": ["autogroup:member"], "dst": ["autogroup:self"], "users": ["root"]}],
	"sshTests": [{"src": "alice@example.com", "dst": ["alice@example.com"], "check": ["root"]}],
}`
	_, err := Parse("p.hujson", []byte(src))
	want := `p.hujson:4:84: sshTests[0].check: "alice@example.com" -> "alice@example.com" as "root": expected check, got accept`
	if err == nil || err.Error() != want {
		t.Errorf("got  %v\nwant %s", err, want)
	}
}

func TestAllErrorsInFileOrder(t *testing.T) {
	src := `{
	"ssh": [{"action": "nope", "src": ["autogroup:member"], "dst": ["autogroup:self"], "users": ["*"]}],
	"groups": {"group:a": ["group:b"]},
}`
	_, err := Parse("p.hujson", []byte(src))
	var list ErrorList
	if !errors.As(err, &list) || len(list) != 3 {
		t.Fatalf("want 3 errors, got %v", err)
	}
	want := []string{
		`p.hujson:2:21: ssh[0].action: unknown action "nope": want "accept" or "check"`,
		`p.hujson:2:95: ssh[0].users: "*" is not a valid user`,
		`p.hujson:3:25: groups.group:a: nested groups are not allowed: "group:b"`,
	}
	if got := strings.Split(err.Error(), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", err, strings.Join(want, "\n"))
	}
	if list[0].Line != 2 || list[0].Column != 21 || list[0].Field != "ssh[0].action" {
		t.Errorf("first error fields: %+v", list[0])
	}
}

func TestDefaultPolicy(t *testing.T) {
	p := Default()
	r := p.Compile(testNetwork, aliceDesktop)
	if len(r.SSH) != 1 || r.SSH[0].Action != rules.Check || r.SSH[0].CheckPeriod != DefaultCheckPeriod {
		t.Fatalf("default ssh rules for alice's desktop: %+v", r.SSH)
	}
	if r := p.Compile(testNetwork, prodServer); len(r.SSH) != 0 {
		t.Errorf("tagged node got default ssh rules: %+v", r.SSH)
	}
}

// Every policy file in testdata (the fuzz seeds among them) parses or fails
// with positioned errors, never a panic; the good ones parse.
func TestTestdataPolicies(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.hujson")
	if len(files) == 0 {
		t.Fatal("no testdata policies")
	}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		_, err = Parse(filepath.Base(f), src)
		if strings.HasPrefix(filepath.Base(f), "good-") && err != nil {
			t.Errorf("%s: %v", f, err)
		}
		if strings.HasPrefix(filepath.Base(f), "bad-") && err == nil {
			t.Errorf("%s: accepted", f)
		}
	}
}
