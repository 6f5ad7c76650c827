package control

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"tsconnect/controlws"
)

// TestMalformedControlMessagesGetClearErrors sends every message type a node can send,
// malformed, oversized, out of order or of an unknown type or version, on one connection:
// each gets an error naming the problem, nothing panics or hangs, the connection keeps
// serving, and another node's map stream is unaffected throughout.
func TestMalformedControlMessagesGetClearErrors(t *testing.T) {
	e := newEnv(t, nil)
	u := e.user("alice@example.com")
	k := e.authKey(AuthKeyOptions{User: u.ID, Reusable: true})
	honest, hn := e.mustRegister(k, "honest")
	w := honest.watch(t)
	w.waitFor(t, "the honest node's map", func(nm *controlws.NetworkMap) bool { return nm.Self.ID == hn.ID })

	r := e.rawConn()
	raw := func(s string) json.RawMessage { return json.RawMessage(s) }
	huge := `"` + strings.Repeat("A", 15<<20) + `"`
	cases := []struct {
		name, typ string
		v         int
		body      any
		code      string
		says      string
	}{
		{"unknown type", "pwn", controlws.Version, nil, controlws.CodeBadRequest, `unknown message type "pwn"`},
		{"huge unknown type", strings.Repeat("t", 1<<20), controlws.Version, nil, controlws.CodeBadRequest, "unknown message type"},
		{"wrong version", controlws.TypeRegister, controlws.Version + 1, nil, controlws.CodeUnsupportedVer, fmt.Sprintf("protocol version %d not supported", controlws.Version+1)},
		{"older version than negotiated", controlws.TypeRegister, controlws.MinVersion, nil, controlws.CodeUnsupportedVer, fmt.Sprintf("negotiated version %d", controlws.Version)},
		{"negative version", controlws.TypeMapRequest, -1, nil, controlws.CodeUnsupportedVer, "version -1"},
		{"register without body", controlws.TypeRegister, controlws.Version, nil, controlws.CodeBadRequest, "register:"},
		{"register wrong JSON types", controlws.TypeRegister, controlws.Version, raw(`{"nodeKey":12}`), controlws.CodeBadRequest, "register:"},
		{"register wrong shape", controlws.TypeRegister, controlws.Version, raw(`[1,2,3]`), controlws.CodeBadRequest, "register:"},
		{"register bad node key", controlws.TypeRegister, controlws.Version, raw(`{"nodeKey":"zz","authKey":"x"}`), controlws.CodeBadRequest, "register:"},
		{"register no node key", controlws.TypeRegister, controlws.Version, raw(`{"authKey":"x"}`), controlws.CodeBadRequest, "missing node key"},
		{"register huge auth key", controlws.TypeRegister, controlws.Version, raw(`{"authKey":` + huge + `,"nodeKey":"` + newKey().Public().String() + `"}`), controlws.CodeInvalidKey, "auth key of 15728640 bytes, over the limit of 256"},
		{"register endpoints not addresses", controlws.TypeRegister, controlws.Version, raw(`{"hostinfo":{"endpoints":["x"]}}`), controlws.CodeBadRequest, "register:"},
		{"mapRequest before register", controlws.TypeMapRequest, controlws.Version, controlws.MapRequest{NodeKey: newKey().Public()}, controlws.CodeNotRegistered, "register first"},
		{"mapRequest bad JSON", controlws.TypeMapRequest, controlws.Version, raw(`{"hostinfo":{"homeDERP":"one"}}`), controlws.CodeBadRequest, "mapRequest:"},
		{"update before register", controlws.TypeUpdate, controlws.Version, controlws.Update{}, controlws.CodeNotRegistered, "update before register"},
		{"update bad JSON", controlws.TypeUpdate, controlws.Version, raw(`{"hostinfo":{"ssh":"yes"}}`), controlws.CodeBadRequest, "update:"},
		{"logout before register", controlws.TypeLogout, controlws.Version, nil, controlws.CodeNotRegistered, "no node"},
		{"sshCheck before register", controlws.TypeSSHCheck, controlws.Version, controlws.SSHCheckRequest{SrcNode: hn.ID}, controlws.CodeNotRegistered, "sshCheck before"},
		{"sshCheck bad JSON", controlws.TypeSSHCheck, controlws.Version, raw(`{"srcAddr":"not an address"}`), controlws.CodeBadRequest, "sshCheck:"},
		{"sshSessions too many peers", controlws.TypeSSHSessions, controlws.Version, raw(`{"logins":[],"peers":[` + strings.TrimSuffix(strings.Repeat(`{"peer":"100.64.0.1"},`, controlws.MaxPeerPaths+1), ",") + `]}`), controlws.CodeBadRequest, "sshSessions: 65 peers, over the limit of 64"},
		{"sshSessions bad peer path", controlws.TypeSSHSessions, controlws.Version, raw(`{"logins":[],"peers":[{"peer":"100.64.0.1","direct":"0.0.0.0:41641"}]}`), controlws.CodeBadRequest, "sshSessions: peers[0]: path: direct is not a unicast address and port"},
		{"sshSessions peer not an address", controlws.TypeSSHSessions, controlws.Version, raw(`{"logins":[],"peers":[{"peer":"pwn"}]}`), controlws.CodeBadRequest, "sshSessions:"},
		{"server-only type", controlws.TypeMapResponse, controlws.Version, raw(`{}`), controlws.CodeBadRequest, "unknown message type"},
	}
	for i, c := range cases {
		id := uint64(100 + i)
		env := &controlws.Envelope{V: c.v, Type: c.typ, ID: id}
		switch b := c.body.(type) {
		case nil:
		case json.RawMessage:
			env.Body = b
		default:
			env.Body, _ = json.Marshal(b)
		}
		if err := r.c.WriteEnvelope(env); err != nil {
			t.Fatalf("%s: send: %v", c.name, err)
		}
		ce := r.wantError(id, c.code, c.says)
		if len(ce.Message) > 512 {
			t.Errorf("%s: error of %d bytes quotes the input: %.80q…", c.name, len(ce.Message), ce.Message)
		}
	}
	// A cancel for a check that does not exist, and the same request ID used twice: no
	// answer to the first, an answer to each of the rest, in order.
	r.send(controlws.TypeSSHCheckCancel, 5, nil)
	r.send(controlws.TypeRegister, 7, controlws.RegisterRequest{NodeKey: newKey().Public(), AuthKey: "nope"})
	r.send(controlws.TypeRegister, 7, controlws.RegisterRequest{NodeKey: newKey().Public(), AuthKey: "nope"})
	r.wantError(7, controlws.CodeInvalidKey, "")
	r.wantError(7, controlws.CodeInvalidKey, "")

	// The connection still works: it registers and gets its map, which holds the honest node.
	nk := newKey().Public()
	r.send(controlws.TypeRegister, 1, controlws.RegisterRequest{AuthKey: k, NodeKey: nk, Hostinfo: controlws.Hostinfo{Hostname: "late"}})
	r.want(1, controlws.TypeRegisterResponse)
	r.send(controlws.TypeMapRequest, 2, controlws.MapRequest{NodeKey: nk})
	var resp controlws.MapResponse
	if err := r.want(2, controlws.TypeMapResponse).DecodeBody(&resp); err != nil || resp.Full == nil || !hasPeer(resp.Full, hn.ID) {
		t.Fatalf("map after the hostile messages: %+v %v", resp.Full, err)
	}
	r.send(controlws.TypeMapRequest, 3, controlws.MapRequest{NodeKey: nk})
	r.wantError(3, controlws.CodeBadRequest, "a map stream already runs")
	// The honest node saw the new node join, its stream never broken.
	w.waitFor(t, "the late node in the honest node's map", func(nm *controlws.NetworkMap) bool { return len(nm.Peers) == 1 })
}
