package control

import (
	"testing"

	"tsconnect/policy"
	"tsconnect/policy/rules"
)

// TestNULInUserNameIsNotAllowedByConsole: the console's user picker check refuses names
// the validator refuses, even where "*" (any non-root account) is allowed.
func TestNULInUserNameIsNotAllowedByConsole(t *testing.T) {
	logins := []policy.Login{{User: "*", Action: rules.Accept}}
	for _, bad := range []string{"root\x00x", "-oProxyCommand=x", "a/b", "a b", ".."} {
		if LoginAllowed(logins, bad) {
			t.Errorf("LoginAllowed(*, %q) = true; want false", bad)
		}
	}
	if !LoginAllowed(logins, "alice@corp.example") || LoginAllowed(logins, "root") {
		t.Error("LoginAllowed(*): want alice@corp.example allowed and root refused")
	}
}
