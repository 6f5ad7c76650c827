package controlws

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/flynn/noise"

	"tsconnect/key"
)

// FuzzReadFrame feeds arbitrary plaintext streams to the envelope decoder: it must return envelopes or
// errors, never panic, and whatever it accepts must survive re-encoding.
func FuzzReadFrame(f *testing.F) {
	for _, seed := range fuzzSeeds(f) {
		f.Add(seed)
	}
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Add(frame(`{"type":"x","body":`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		for {
			env, err := readFrame(r)
			if err != nil {
				return
			}
			again, err := appendFrame(nil, env)
			if err != nil {
				t.Fatalf("re-encoding an accepted envelope: %v", err)
			}
			env2, err := readFrame(bytes.NewReader(again))
			if err != nil {
				t.Fatalf("re-decoding: %v", err)
			}
			// Bodies compare as values: encoding may compact and escape (& becomes \u0026).
			var b1, b2 any
			json.Unmarshal(env.Body, &b1)
			json.Unmarshal(env2.Body, &b2)
			if env.V != env2.V || env.Type != env2.Type || env.ID != env2.ID || !reflect.DeepEqual(b1, b2) {
				t.Fatalf("round trip changed %+v into %+v", env, env2)
			}
			// Typed bodies decode or fail cleanly too.
			var mr MapResponse
			if env.DecodeBody(&mr) == nil {
				var nm NetworkMap
				nm.Apply(&mr)
			}
			env.Err()
			checkAnswer(env)
			registerAnswer(env)
		}
	})
}

// fuzzKey is the fixed transport key FuzzConnRead decrypts with, so seeds can be valid ciphertext.
var fuzzKey = [32]byte{1, 2, 3}

// FuzzConnRead feeds arbitrary wire bytes (length-prefixed Noise messages) to an established Conn.
func FuzzConnRead(f *testing.F) {
	for _, seed := range fuzzSeeds(f) {
		tx := noise.UnsafeNewCipherState(cipherSuite, fuzzKey, 0)
		var wire []byte
		for len(seed) > 0 {
			n := min(len(seed), 100) // several Noise messages per envelope
			msg, _ := tx.Encrypt(nil, nil, seed[:n])
			wire = append(append(wire, byte(len(msg)>>8), byte(len(msg))), msg...)
			seed = seed[n:]
		}
		f.Add(wire)
	}
	f.Add([]byte{0, 0})
	f.Add([]byte{0xff, 0xff, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		rx := noise.UnsafeNewCipherState(cipherSuite, fuzzKey, 0)
		c := newConn(nil, bufio.NewReader(bytes.NewReader(data)), [32]byte{}, nil, rx, Version)
		for {
			_, err := c.ReadEnvelope()
			if err != nil {
				if !errors.Is(err, io.EOF) && err.Error() == "" {
					t.Fatal("error without text")
				}
				return
			}
		}
	})
}

// fuzzSeeds are frame streams of every message type.
func fuzzSeeds(f *testing.F) [][]byte {
	var seeds [][]byte
	p := testPeer(5)
	bodies := []struct {
		typ  string
		body any
	}{
		{TypeRegister, &RegisterRequest{AuthKey: "k", Hostinfo: Hostinfo{Hostname: "h"}}},
		{TypeRegisterResponse, &RegisterResponse{Node: p}},
		{TypeMapRequest, &MapRequest{}},
		{TypeMapResponse, &MapResponse{Full: &NetworkMap{Self: p, Peers: []Node{p}}}},
		{TypeMapResponse, &MapResponse{PeersChanged: []Node{p}, PeersRemoved: []int64{5}, Users: []UserProfile{{ID: 1}}}},
		{TypeUpdate, &Update{}},
		{TypeLogout, nil},
		{TypeOK, nil},
		{TypeError, &Error{Code: CodeInvalidKey, Message: "m"}},
		{TypeRegister, &RegisterRequest{Hostinfo: Hostinfo{Hostname: "h"}, Interactive: true, Ephemeral: true}},
		{TypeLoginURL, &LoginURL{URL: "https://c.example/login/0f", Expires: time.Unix(1e9, 0).UTC()}},
		{TypeSSHCheck, &SSHCheckRequest{SrcNode: 5, SrcAddr: netip.MustParseAddr("100.64.0.5"), User: "u", LocalUser: "u", CheckPeriod: time.Hour}},
		{TypeSSHCheckVerdict, &SSHCheckVerdict{Verdict: CheckPending, User: "u@example.com", URL: "https://c.example/check/0f", Expires: time.Unix(1e9, 0).UTC()}},
		{TypeSSHCheckVerdict, &SSHCheckVerdict{Verdict: CheckReject, Message: "m"}},
		{TypeSSHCheckCancel, nil},
	}
	var all []byte
	for i, b := range bodies {
		env, err := NewEnvelope(b.typ, uint64(i), b.body)
		if err != nil {
			f.Fatal(err)
		}
		fr, err := appendFrame(nil, env)
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, fr)
		all = append(all, fr...)
	}
	return append(seeds, all)
}

// frame is body as one envelope frame.
func frame(body string) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
}

// testPeer is a plausible peer entry of a few hundred bytes of JSON.
func testPeer(id int64) Node {
	var k key.Public
	k[0], k[1] = byte(id), byte(id>>8)
	a4 := netip.AddrFrom4([4]byte{100, 64, byte(id >> 8), byte(id)})
	return Node{
		ID: id, Name: fmt.Sprintf("peer-%d", id), Key: k, MachineKey: k, User: 1, SSH: true, OS: "linux",
		Addresses:   []netip.Prefix{netip.PrefixFrom(a4, 32)},
		HomeDERP:    1,
		Endpoints:   []netip.AddrPort{netip.AddrPortFrom(netip.MustParseAddr("192.0.2.7"), uint16(40000+id%20000))},
		SSHHostKeys: []string{"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDlCp6G1nqUCXVaAy9kRVN3D1wS5sQ1KsRu6QUp7W7mL"},
	}
}
