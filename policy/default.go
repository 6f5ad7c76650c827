package policy

// DefaultText is the policy in force when none was ever set: all traffic is
// allowed and every user may SSH to their own devices, as root or not, after
// re-authenticating (check mode).
const DefaultText = `// The default policy: used until a policy is set.
{
	"acls": [
		// Every device may reach every device on every port.
		{"action": "accept", "src": ["*"], "dst": ["*:*"]},
	],
	"ssh": [
		// Each user may SSH to their own devices, as root or not, in check mode.
		{
			"action": "check",
			"src":    ["autogroup:member"],
			"dst":    ["autogroup:self"],
			"users":  ["autogroup:nonroot", "root"],
		},
	],
}
`

// Default returns the parsed DefaultText.
func Default() *Policy {
	p, err := Parse("default policy", []byte(DefaultText))
	if err != nil {
		panic("policy: default policy does not parse: " + err.Error())
	}
	return p
}
