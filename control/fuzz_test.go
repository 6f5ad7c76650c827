package control

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"testing"

	"tsconnect/controlws"
	"tsconnect/key"
)

// discardConn is a control connection whose writes go nowhere, for driving a nodeConn's
// handler directly.
type discardConn struct{ peer key.Public }

func (discardConn) ReadEnvelope() (*controlws.Envelope, error) { return nil, io.EOF }
func (discardConn) WriteEnvelope(*controlws.Envelope) error    { return nil }
func (c discardConn) PeerKey() key.Public                      { return c.peer }
func (discardConn) Version() int                               { return controlws.Version }
func (discardConn) Close() error                               { return nil }

// nodeTypes are the message types a node may send; the fuzzer picks one by index, or uses
// its own string.
var nodeTypes = []string{controlws.TypeRegister, controlws.TypeMapRequest, controlws.TypeUpdate, controlws.TypeLogout,
	controlws.TypeSSHCheck, controlws.TypeSSHCheckCancel}

// FuzzNodeMessage hands control's nodeConn handler (a real server on a real SQLite file)
// a message of every type a node can send, with any body, version and ID, on a fresh
// connection each time: it must answer or refuse with a protocol error of bounded size,
// never panic, and leave no goroutine behind once the connection ends.
func FuzzNodeMessage(f *testing.F) {
	s, err := New(Config{StateDir: f.TempDir(), ServerURL: "http://127.0.0.1:1"})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })
	ctx := context.Background()
	u, err := s.CreateUser(ctx, "fuzz@example.com", RoleMember)
	if err != nil {
		f.Fatal(err)
	}
	authKey, _, err := s.CreateAuthKey(ctx, AuthKeyOptions{User: u.ID, Reusable: true})
	if err != nil {
		f.Fatal(err)
	}
	machine := key.NewPrivate().Public()
	nk := key.NewPrivate().Public()
	seed := func(typ int, body any) {
		b, _ := json.Marshal(body)
		f.Add(uint8(typ), "", controlws.Version, uint64(1), b)
	}
	seed(0, controlws.RegisterRequest{AuthKey: authKey, NodeKey: nk, Hostinfo: controlws.Hostinfo{Hostname: "fuzz", OS: "linux"}})
	seed(0, controlws.RegisterRequest{NodeKey: nk, Interactive: true})
	seed(1, controlws.MapRequest{NodeKey: nk})
	seed(2, controlws.Update{Hostinfo: controlws.Hostinfo{Hostname: "fuzz-2", Endpoints: nil}})
	seed(3, nil)
	seed(4, controlws.SSHCheckRequest{SrcNode: 1, User: "root", LocalUser: "root"})
	seed(5, nil)
	f.Add(uint8(255), "mapResponse", 2, uint64(0), []byte(`{"full":{}}`))
	f.Fuzz(func(t *testing.T, typIdx uint8, typ string, v int, id uint64, body []byte) {
		if int(typIdx) < len(nodeTypes) {
			typ = nodeTypes[typIdx]
		}
		if typ == "" {
			return // the framing refuses an envelope without a type
		}
		nc := &nodeConn{s: s, conn: discardConn{machine}, machine: machine, version: controlws.Version, source: "192.0.2.1", done: make(chan struct{})}
		_, _, err := nc.handle(&controlws.Envelope{V: v, Type: typ, ID: id, Body: body})
		nc.close()
		nc.wg.Wait()
		if err == nil {
			return
		}
		var ce *controlws.Error
		if !errors.As(err, &ce) {
			return // an internal error: the nodeConn answers CodeInternal and logs it bounded
		}
		if ce.Code == "" || ce.Message == "" || len(ce.Message) > 2048 {
			t.Fatalf("%s: error code %q, message of %d bytes: %.200q", typ, ce.Code, len(ce.Message), ce.Message)
		}
	})
}
