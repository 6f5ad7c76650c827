package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"tsconnect/controlws"
	"tsconnect/internal/sshtest"
	"tsconnect/node"
)

// recorder collects what a session reports to the page.
type recorder struct {
	mu        sync.Mutex
	progress  []string
	banners   []string
	out       strings.Builder
	connected bool
	more      chan struct{}
	done      chan struct{}
	code      int
	err       error
}

func newRecorder() *recorder {
	return &recorder{more: make(chan struct{}, 1), done: make(chan struct{})}
}

func (r *recorder) opts() SSHOptions {
	return SSHOptions{
		Rows: 30, Cols: 100,
		OnData: func(p []byte) {
			r.mu.Lock()
			r.out.Write(p)
			r.mu.Unlock()
			select {
			case r.more <- struct{}{}:
			default:
			}
		},
		OnBanner: func(text string) {
			r.mu.Lock()
			r.banners = append(r.banners, text)
			r.mu.Unlock()
		},
		OnProgress: func(text string) {
			r.mu.Lock()
			r.progress = append(r.progress, text)
			r.mu.Unlock()
		},
		OnConnected: func() {
			r.mu.Lock()
			r.connected = true
			r.mu.Unlock()
		},
		OnDone: func(code int, err error) {
			r.code, r.err = code, err
			close(r.done)
		},
	}
}

func (r *recorder) waitOutput(want string) {
	for {
		r.mu.Lock()
		got := r.out.String()
		r.mu.Unlock()
		if strings.Contains(got, want) {
			return
		}
		select {
		case <-r.more:
		case <-r.done:
			return
		}
	}
}

func TestSSHSessionThroughIPN(t *testing.T) {
	srv := sshtest.New(t)
	srv.Banner = "Please confirm at http://127.0.0.1:8080/check/abc123.\nOr not: http://evil.example/x\n"
	eng := &testEngine{server: srv.Listen(), nm: testMap(sshtest.AuthorizedKey(srv.Signer))}
	p := newTestIPN(t, eng)
	var mapJSON string
	p.Run(Notify{NetMap: func(s string) { mapJSON = s }})
	if err := p.Login(context.Background()); err != nil {
		t.Fatal(err)
	}

	r := newRecorder()
	s := p.SSH("agent", "alice", r.opts())
	s.Write([]byte("typed early\n")) // before the connection is up: queued
	r.waitOutput("typed early\r\n")
	s.Resize(50, 132)
	if got := <-srv.Resizes; got != [2]int{50, 132} {
		t.Errorf("window-change = %v, want [50 132]", got)
	}
	s.Write([]byte("exit 7\n"))
	<-r.done
	if r.code != 7 || r.err != nil {
		t.Errorf("OnDone(%d, %v), want (7, nil)", r.code, r.err)
	}
	if !r.connected {
		t.Error("OnConnected was not called")
	}
	if want := []string{"Joining the network…", "Connecting to agent (100.64.0.2)…", "Starting SSH as alice…"}; fmt.Sprint(r.progress) != fmt.Sprint(want) {
		t.Errorf("progress = %q, want %q", r.progress, want)
	}
	// The banner reaches the page whole and once; which link is acted on is npm/src/banner.ts's rule.
	if want := "Please confirm at http://127.0.0.1:8080/check/abc123.\nOr not: http://evil.example/x\n"; len(r.banners) != 1 || r.banners[0] != want {
		t.Errorf("banners = %q, want [%q]", r.banners, want)
	}
	if len(eng.dialed) != 1 || eng.dialed[0] != "100.64.0.2:22" {
		t.Errorf("dialed %q, want [100.64.0.2:22]", eng.dialed)
	}
	_ = mapJSON // the engine stand-in does not call OnNetMap; see TestNetMapJSON
}

func TestSSHFailuresHaveCodes(t *testing.T) {
	srv := sshtest.New(t)
	addr := srv.Listen()
	good := sshtest.AuthorizedKey(srv.Signer)
	for _, tc := range []struct {
		name, host, hostKey string
		dialErr             error
		code                string
	}{
		{"unknown host", "nosuch", good, nil, CodeUnknownHost},
		{"no ssh", "nossh", good, nil, CodeNoSSH},
		{"no host key", "nokey", good, nil, CodeNoHostKey},
		{"wrong host key", "agent", sshtest.AuthorizedKey(sshtest.Signer(t, 1)), nil, CodeHostKeyMismatch},
		{"unreachable", "agent", good, errors.New("i/o timeout"), CodeHostUnreachable},
		{"by address", "100.64.0.9", good, nil, CodeUnknownHost},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newTestIPN(t, &testEngine{server: addr, nm: testMap(tc.hostKey), dialErr: tc.dialErr})
			p.Run(Notify{})
			r := newRecorder()
			p.SSH(tc.host, "alice", r.opts())
			<-r.done
			if r.code != -1 || r.err == nil || errorCode(r.err) != tc.code {
				t.Fatalf("OnDone(%d, %v) code %q, want -1 and code %q", r.code, r.err, errorCode(r.err), tc.code)
			}
			if r.connected {
				t.Error("OnConnected called for a failed session")
			}
		})
	}
}

func TestStartFailuresHaveCodes(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code string
	}{
		{&controlws.Error{Code: controlws.CodeUsedKey, Message: "auth key already used"}, controlws.CodeUsedKey},
		{fmt.Errorf("wrapped: %w", &controlws.Error{Code: controlws.CodeExpiredKey, Message: "expired"}), controlws.CodeExpiredKey},
		{fmt.Errorf("%w: dial tcp 127.0.0.1:1: connection refused", node.ErrControlUnreachable), CodeControlUnreachable},
		{fmt.Errorf("%w: no connection to ws://127.0.0.1:1/derp within 10s", node.ErrRelayUnreachable), CodeRelayUnreachable},
	} {
		p := newTestIPN(t, &testEngine{startErr: tc.err})
		var states []string
		var mu sync.Mutex
		p.Run(Notify{State: func(s string) { mu.Lock(); states = append(states, s); mu.Unlock() }})
		err := p.Login(context.Background())
		if errorCode(err) != tc.code || err.Error() != tc.err.Error() {
			t.Errorf("Login = %v (code %q), want %v (code %q)", err, errorCode(err), tc.err, tc.code)
		}
		r := newRecorder()
		p.SSH("agent", "alice", r.opts())
		<-r.done
		if errorCode(r.err) != tc.code {
			t.Errorf("ssh after a failed start: %v (code %q), want code %q", r.err, errorCode(r.err), tc.code)
		}
		mu.Lock()
		if len(states) == 0 || states[len(states)-1] != "stopped" {
			t.Errorf("states = %q, want to end stopped", states)
		}
		mu.Unlock()
	}
}

func TestLoginBeforeRun(t *testing.T) {
	p := newTestIPN(t, &testEngine{})
	if err := p.Login(context.Background()); errorCode(err) != CodeNotStarted {
		t.Errorf("Login before Run = %v, want code %s", err, CodeNotStarted)
	}
}

func TestBadConfig(t *testing.T) {
	if _, err := NewIPN(Config{AuthKey: "k"}, nil); err == nil || !strings.Contains(err.Error(), "controlURL") {
		t.Errorf("NewIPN without controlURL: %v", err)
	}
	if _, err := NewIPN(Config{ControlURL: "http://x"}, nil); err != nil {
		t.Errorf("NewIPN without authKey (an interactive login): %v", err)
	}
}

func TestCloseAndLogout(t *testing.T) {
	srv := sshtest.New(t)
	eng := &testEngine{server: srv.Listen(), nm: testMap(sshtest.AuthorizedKey(srv.Signer))}
	p := newTestIPN(t, eng)
	p.Run(Notify{})

	r := newRecorder()
	s := p.SSH("agent", "alice", r.opts())
	s.Write([]byte("hello\n"))
	r.waitOutput("hello\r\n")
	s.Close()
	<-r.done
	if r.code != -1 || errorCode(r.err) != CodeClosed {
		t.Errorf("after Close: OnDone(%d, %v), want -1, code closed", r.code, r.err)
	}

	r2 := newRecorder()
	s2 := p.SSH("agent", "alice", r2.opts())
	s2.Write([]byte("still here\n"))
	r2.waitOutput("still here\r\n")
	if err := p.Logout(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-r2.done // logout ends every session
	if !eng.loggedOut {
		t.Error("Logout did not reach the node")
	}
	r3 := newRecorder()
	p.SSH("agent", "alice", r3.opts())
	<-r3.done
	if errorCode(r3.err) != CodeClosed {
		t.Errorf("ssh after logout: %v, want code closed", r3.err)
	}
}

func TestNetMapJSON(t *testing.T) {
	p := newTestIPN(t, &testEngine{})
	var got string
	p.notify.NetMap = func(s string) { got = s }
	p.setNetMap(testMap("ssh-ed25519 AAAA"))
	var m struct {
		Peers []struct {
			Name        string   `json:"name"`
			Addresses   []string `json:"addresses"`
			SSHHostKeys []string `json:"sshHostKeys"`
		} `json:"peers"`
	}
	if err := json.Unmarshal([]byte(got), &m); err != nil {
		t.Fatal(err)
	}
	if len(m.Peers) != 3 || m.Peers[0].Name != "agent" || m.Peers[0].Addresses[1] != "100.64.0.2/32" || m.Peers[0].SSHHostKeys[0] != "ssh-ed25519 AAAA" {
		t.Errorf("netmap JSON = %s", got)
	}
}
