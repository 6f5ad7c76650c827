package policy

import "testing"

// Each invalid policy names the documented rule it breaks and the exact error.
var invalidPolicies = []struct {
	rule string
	src  string
	want string
}{
	{"unknown ssh action", `{
  "acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}],
  "ssh": [{"action": "allow", "src": ["autogroup:member"], "dst": ["autogroup:self"], "users": ["root"]}],
}`, `policy.hujson:3:22: ssh[0].action: unknown action "allow": want "accept" or "check"`},
	{"unknown acl action", `{
  "acls": [
    {"action": "deny", "src": ["*"], "dst": ["*:*"]},
  ],
}`, `policy.hujson:3:16: acls[0].action: unknown action "deny": acls allow only "accept"`},
	{"missing users", `{
  "ssh": [
    {"action": "accept", "src": ["autogroup:member"], "dst": ["autogroup:self"]},
  ],
}`, `policy.hujson:3:5: ssh[0]: missing "users": list the local accounts, e.g. ["autogroup:nonroot"]`},
	{"empty users", `{
  "ssh": [{
    "action": "accept",
    "src": ["autogroup:member"],
    "dst": ["autogroup:self"],
    "users": [],
  }],
}`, `policy.hujson:6:14: ssh[0].users: is empty: list the local accounts, e.g. ["autogroup:nonroot"]`},
	{"* is not a user", `{
  "ssh": [{
    "action": "accept",
    "src": ["autogroup:member"],
    "dst": ["autogroup:self"],
    // any user? no: name them
    "users": ["alice", "*"],
  }],
}`, `policy.hujson:7:24: ssh[0].users: "*" is not a valid user`},
	{"empty user", `{"ssh": [{"action": "accept", "src": ["autogroup:member"], "dst": ["autogroup:self"], "users": [""]}]}`,
		`policy.hujson:1:97: ssh[0].users: "" is not a valid user`},
	{"checkPeriod above 168h", `{
  "ssh": [{"action": "check", "src": ["autogroup:member"], "dst": ["autogroup:self"], "users": ["root"],
           "checkPeriod": "200h"}],
}`, `policy.hujson:3:27: ssh[0].checkPeriod: checkPeriod "200h" out of range: want 1m to 168h, or "always"`},
	{"negative checkPeriod", `{
  "ssh": [{"action": "check", "src": ["autogroup:member"], "dst": ["autogroup:self"], "users": ["root"],
           "checkPeriod": "-1h"}],
}`, `policy.hujson:3:27: ssh[0].checkPeriod: negative checkPeriod "-1h"`},
	{"a tag as source cannot reach a user's device", `{
  "tagOwners": {"tag:ci": ["alice@example.com"]},
  "ssh": [{"action": "accept", "src": ["tag:ci"], "dst": ["autogroup:self"], "users": ["deploy"]}],
}`, `policy.hujson:3:59: ssh[0].dst: "tag:ci" as source cannot reach a user's devices ("autogroup:self"): use tags or autogroup:tagged as destination`},
	{"tags may not be the source of a check rule", `{
  "tagOwners": {"tag:ci": ["alice@example.com"], "tag:prod": []},
  "ssh": [{"action": "check", "src": ["tag:ci"], "dst": ["tag:prod"], "users": ["deploy"]}],
}`, `policy.hujson:3:39: ssh[0].src: "tag:ci" cannot be the source of a check rule: no person can re-authenticate for a tagged device`},
	{"hosts alias as SSH destination", `{
  "hosts": {"db": "100.64.0.20"},
  "ssh": [{"action": "accept", "src": ["autogroup:member"], "dst": ["db"], "users": ["root"]}],
}`, `policy.hujson:3:69: ssh[0].dst: hosts alias "db" cannot be an SSH destination; use a tag, a user or autogroup:self`},
	{"nested groups", `{
  "groups": {
    "group:eng": ["alice@example.com"],
    "group:all": ["group:eng", "bob@example.com"],
  },
}`, `policy.hujson:4:19: groups.group:all: nested groups are not allowed: "group:eng"`},
	{"unknown group", `{
  "acls": [{"action": "accept", "src": ["group:ops"], "dst": ["*:22"]}],
}`, `policy.hujson:2:41: acls[0].src: unknown group "group:ops"`},
	{"tags without owner", `{
  "tagOwners": {"tag:web": []},
  "acls": [{"action": "accept", "src": ["*"], "dst": ["tag:web:443", "tag:db:5432"]}],
}`, `policy.hujson:3:70: acls[0].dst: tag "tag:db" has no owner in tagOwners`},
	{"unknown autogroup", `{
  "ssh": [{"action": "accept", "src": ["autogroup:everyone"], "dst": ["autogroup:self"], "users": ["root"]}],
}`, `policy.hujson:2:40: ssh[0].src: unknown autogroup "autogroup:everyone"`},
	{"bad port", `{
  "acls": [{"action": "accept", "src": ["*"], "dst": ["*:22,99999"]}],
}`, `policy.hujson:2:55: acls[0].dst: "*:22,99999": bad port "99999": want a number 0-65535, a range a-b or *`},
	{"reversed port range", `{"acls": [{"action": "accept", "src": ["*"], "dst": ["*:2000-1000"]}]}`,
		`policy.hujson:1:54: acls[0].dst: "*:2000-1000": bad port range "2000-1000": 2000 is above 1000`},
	{"unsupported section", `{
  "acls": [],
  // attributes are a later feature
  "nodeAttrs": [{"target": ["*"], "attr": ["funnel"]}],
}`, `policy.hujson:4:3: nodeAttrs: section "nodeAttrs" is not supported`},
	{"unknown section", `{"aclz": []}`, `policy.hujson:1:2: aclz: unknown section (known: groups, tagOwners, hosts, acls, grants, tests, ssh, sshTests, recordingViewers)`},
	{"application grants", `{
  "grants": [{"src": ["*"], "dst": ["*"], "app": {"example.com/cap/x": [{}]}}],
}`, `policy.hujson:2:43: grants[0].app: application grants (app) are not supported: only network grants (ip)`},
	{"unknown field in an ssh rule", `{
  "ssh": [{"action": "accept", "src": ["autogroup:member"], "dst": ["autogroup:self"], "users": ["root"], "user": ["x"]}],
}`, `policy.hujson:2:107: ssh[0].user: unknown field (known: action, src, dst, users, checkPeriod, acceptEnv, recorder, enforceRecorder, recordInput)`},
	{"enforceRecorder without a recorder", `{
  "ssh": [{"action": "accept", "src": ["autogroup:member"], "dst": ["autogroup:self"], "users": ["root"],
           "enforceRecorder": true}],
}`, `policy.hujson:3:12: ssh[0].enforceRecorder: enforceRecorder requires "recorder": name the recorder nodes, e.g. ["tag:recorder"]`},
	{"recordInput without a recorder", `{
  "ssh": [{"action": "accept", "src": ["autogroup:member"], "dst": ["autogroup:self"], "users": ["root"], "recordInput": true}],
}`, `policy.hujson:2:107: ssh[0].recordInput: recordInput requires "recorder": name the recorder nodes, e.g. ["tag:recorder"]`},
	{"enforceRecorder not a boolean", `{
  "tagOwners": {"tag:rec": []},
  "ssh": [{"action": "accept", "src": ["autogroup:member"], "dst": ["autogroup:self"], "users": ["root"],
           "recorder": ["tag:rec"], "enforceRecorder": "yes"}],
}`, `policy.hujson:4:56: ssh[0].enforceRecorder: must be true or false, not a string`},
	{"empty recorder", `{
  "ssh": [{"action": "accept", "src": ["autogroup:member"], "dst": ["autogroup:self"], "users": ["root"], "recorder": []}],
}`, `policy.hujson:2:119: ssh[0].recorder: is empty: name the recorder nodes, e.g. ["tag:recorder"]`},
	{"a user as recorder", `{
  "ssh": [{"action": "accept", "src": ["autogroup:member"], "dst": ["autogroup:self"], "users": ["root"],
           "recorder": ["alice@example.com"]}],
}`, `policy.hujson:3:25: ssh[0].recorder: "alice@example.com" cannot be used as a recorder`},
	{"recorder tag without owner", `{
  "ssh": [{"action": "accept", "src": ["autogroup:member"], "dst": ["autogroup:self"], "users": ["root"],
           "recorder": ["tag:rec"]}],
}`, `policy.hujson:3:25: ssh[0].recorder: tag "tag:rec" has no owner in tagOwners`},
	{"too many recorders", `{
  "ssh": [{"action": "accept", "src": ["autogroup:member"], "dst": ["autogroup:self"], "users": ["root"],
           "recorder": ["100.64.0.1", "100.64.0.2", "100.64.0.3", "100.64.0.4", "100.64.0.5", "100.64.0.6",
             "100.64.0.7", "100.64.0.8", "100.64.0.9", "100.64.0.10", "100.64.0.11", "100.64.0.12",
             "100.64.0.13", "100.64.0.14", "100.64.0.15", "100.64.0.16", "100.64.0.17"]}],
}`, `policy.hujson:5:74: ssh[0].recorder: more than 16 recorders`},
	{"user destination from another user", `{
  "ssh": [{"action": "accept", "src": ["autogroup:member"], "dst": ["bob@example.com"], "users": ["root"]}],
}`, `policy.hujson:2:69: ssh[0].dst: user "bob@example.com" as destination requires src to be only "bob@example.com"; use autogroup:self for each user's own devices`},
	{"* as SSH destination", `{
  "ssh": [{"action": "accept", "src": ["autogroup:member"], "dst": ["*"], "users": ["root"]}],
}`, `policy.hujson:2:69: ssh[0].dst: "*" cannot be an SSH destination; use autogroup:member, autogroup:tagged, tags or users`},
	{"checkPeriod on an accept rule", `{
  "ssh": [{"action": "accept", "src": ["autogroup:member"], "dst": ["autogroup:self"], "users": ["root"], "checkPeriod": "1h"}],
}`, `policy.hujson:2:122: ssh[0].checkPeriod: checkPeriod is only allowed on check rules`},
	{"empty idpgroup", `{"groups": {"group:eng": ["idpgroup:"]}}`,
		`policy.hujson:1:27: groups.group:eng: "idpgroup:" is not an identity-provider group: want idpgroup:NAME, NAME as the provider sends it`},
	{"idpgroup used outside groups", `{
  "acls": [{"action": "accept", "src": ["idpgroup:eng"], "dst": ["*:*"]}],
}`, `policy.hujson:2:41: acls[0].src: "idpgroup:eng" can only be a member in groups: map it to a group ("group:NAME": ["idpgroup:eng"]) and use that`},
	{"a tag as recording viewer", `{
  "tagOwners": {"tag:ci": []},
  "recordingViewers": ["group:sec", "tag:ci"],
  "groups": {"group:sec": ["sam@example.com"]},
}`, `policy.hujson:3:37: recordingViewers: "tag:ci" cannot be used as a recording viewer`},
	{"unknown group as recording viewer", `{"recordingViewers": ["group:nobody"]}`,
		`policy.hujson:1:23: recordingViewers: unknown group "group:nobody"`},
	{"recordingViewers not a list", `{"recordingViewers": "sam@example.com"}`,
		`policy.hujson:1:22: recordingViewers: must be a list of strings, not a string`},
	{"syntax error", "{\n  \"acls\": [\n    {\"action\": \"accept\",, }\n  ]\n}",
		`policy.hujson:3:25: syntax error: invalid character ',' at start of value`},
	{"failing sshTest", `{
  "acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}],
  "ssh": [{"action": "accept", "src": ["autogroup:member"], "dst": ["autogroup:self"], "users": ["autogroup:nonroot"]}],
  "sshTests": [{
    "src": "alice@example.com",
    "dst": ["alice@example.com"],
    "accept": ["alice", "root"],
  }],
}`, `policy.hujson:7:25: sshTests[0].accept: "alice@example.com" -> "alice@example.com" as "root": expected accept, got reject (policy does not permit SSH as user "root")`},
	{"failing network test", `{
  "tagOwners": {"tag:web": []},
  "acls": [{"action": "accept", "src": ["*"], "dst": ["tag:web:443"]}],
  "tests": [{"src": "alice@example.com", "accept": ["tag:web:443", "tag:web:80"]}],
}`, `policy.hujson:4:68: tests[0].accept: "alice@example.com" -> "tag:web:80": expected accept, got deny`},
}

func TestInvalidPolicies(t *testing.T) {
	if len(invalidPolicies) < 15 {
		t.Errorf("only %d invalid policies", len(invalidPolicies))
	}
	for _, c := range invalidPolicies {
		t.Run(c.rule, func(t *testing.T) {
			_, err := Parse("policy.hujson", []byte(c.src))
			if err == nil {
				t.Fatalf("accepted; want %s", c.want)
			}
			if err.Error() != c.want {
				t.Errorf("got  %s\nwant %s", err, c.want)
			}
		})
	}
}
