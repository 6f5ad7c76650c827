package control

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"tsconnect/controlws"
	"tsconnect/key"
)

// rawConn is a bare control connection, for the messages no well-behaved client sends.
type rawConn struct {
	t    *testing.T
	mk   key.Private
	c    *controlws.Conn
	envs chan *controlws.Envelope
	err  chan error
}

func (e *env) rawConn() *rawConn {
	e.t.Helper()
	mk := key.NewPrivate()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := controlws.DialConn(ctx, controlws.DialOptions{ServerURL: e.hs.URL, MachineKey: mk})
	if err != nil {
		e.t.Fatal(err)
	}
	r := &rawConn{t: e.t, mk: mk, c: c, envs: make(chan *controlws.Envelope, 64), err: make(chan error, 1)}
	go func() {
		for {
			env, err := c.ReadEnvelope()
			if err != nil {
				r.err <- err
				close(r.envs)
				return
			}
			r.envs <- env
		}
	}()
	e.t.Cleanup(func() { c.Close() })
	return r
}

// send sends one envelope; body is JSON-encoded unless it is json.RawMessage.
func (r *rawConn) send(typ string, id uint64, body any) {
	r.t.Helper()
	env := &controlws.Envelope{V: controlws.Version, Type: typ, ID: id}
	switch b := body.(type) {
	case nil:
	case json.RawMessage:
		env.Body = b
	default:
		js, err := json.Marshal(b)
		if err != nil {
			r.t.Fatal(err)
		}
		env.Body = js
	}
	if err := r.c.WriteEnvelope(env); err != nil {
		r.t.Fatalf("send %s: %v", typ, err)
	}
}

// next returns the next envelope, failing the test if none comes within 20 s (a hang guard).
func (r *rawConn) next() *controlws.Envelope {
	r.t.Helper()
	select {
	case env, ok := <-r.envs:
		if !ok {
			r.t.Fatalf("connection ended: %v", <-r.err)
		}
		return env
	case <-time.After(20 * time.Second):
		r.t.Fatal("no answer from control within 20 s")
		return nil
	}
}

// wantError reads the next envelope and checks it is an error answering id with code, its
// message containing every one of parts.
func (r *rawConn) wantError(id uint64, code string, parts ...string) *controlws.Error {
	r.t.Helper()
	env := r.next()
	ce, _ := env.Err().(*controlws.Error)
	if ce == nil || env.ID != id || ce.Code != code {
		r.t.Fatalf("got %s id %d body %.300s; want error %s answering %d", env.Type, env.ID, env.Body, code, id)
	}
	for _, p := range parts {
		if !strings.Contains(ce.Message, p) {
			r.t.Fatalf("error %q does not say %q", ce.Message, p)
		}
	}
	return ce
}

// want reads the next envelope and checks its type and ID.
func (r *rawConn) want(id uint64, typ string) *controlws.Envelope {
	r.t.Helper()
	env := r.next()
	if env.Type != typ || env.ID != id {
		r.t.Fatalf("got %s id %d body %.300s; want %s answering %d", env.Type, env.ID, env.Body, typ, id)
	}
	return env
}

// testHostKey is a real Ed25519 SSH host key in the form nodes publish.
func testHostKey(t testing.TB) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pk)))
}
