package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"tsconnect/control"
	"tsconnect/internal/casttest"
	"tsconnect/internal/eventually"
	"tsconnect/internal/nodetest"
	"tsconnect/node"
	"tsconnect/recorder"
)

// viewPolicy is recordPolicy with alice's and bob's nodes let reach the recorders (to view)
// and carol named by recordingViewers.
func viewPolicy(local string) string {
	return fmt.Sprintf(`{
	"tagOwners": {"tag:rec1": ["alice@example.com"], "tag:rec2": ["alice@example.com"], "tag:server": ["alice@example.com"]},
	"acls": [
		{"action": "accept", "src": ["tag:server", "alice@example.com", "bob@example.com", "carol@example.com"], "dst": ["tag:rec1:8410", "tag:rec2:8410"]},
		{"action": "accept", "src": ["alice@example.com"], "dst": ["tag:server:22"]},
	],
	"ssh": [{"action": "accept", "src": ["alice@example.com"], "dst": ["tag:server"], "users": [%q],
		"recorder": ["tag:rec1", "tag:rec2"], "enforceRecorder": true}],
	"recordingViewers": ["carol@example.com"],
}`, local)
}

// overlayClient is an HTTP client whose connections go over n's overlay.
func overlayClient(n *node.Node) *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		return n.Dial(ctx, network, addr)
	}}}
}

// TestRecordingViewedOverOverlay: a session recorded by a real agent to a real recorder is
// listed to its viewers over the overlay (alice an admin, carol named by recordingViewers) as
// live while it runs, followed with new output within a second of the user seeing it, and as
// ended with what the user saw afterwards; bob, a member not named, is refused.
func TestRecordingViewedOverOverlay(t *testing.T) {
	rn := startRecordNet(t)
	if _, err := rn.cs.Control.SetPolicy(context.Background(), []byte(viewPolicy(rn.local)), "test"); err != nil {
		t.Fatal(err)
	}
	key := func(email string, role control.Role) *node.Node {
		u := rn.cs.User(email, role)
		k, _, err := rn.cs.Control.CreateAuthKey(context.Background(), control.AuthKeyOptions{User: u.ID, Ephemeral: true})
		if err != nil {
			t.Fatal(err)
		}
		return nodetest.Join(t, rn.cs.URL, k, strings.Split(email, "@")[0]+"-browser")
	}
	carol, bob := key("carol@example.com", control.RoleMember), key("bob@example.com", control.RoleMember)
	var recAddr string
	eventually.True(t, "rec1 in the viewers' maps", func() bool {
		for _, n := range []*node.Node{rn.laptop, carol, bob} {
			nm := n.NetMap()
			if nm == nil {
				return false
			}
			p, ok := nm.PeerByName("rec1")
			if !ok {
				return false
			}
			recAddr = net.JoinHostPort(p.Addresses[0].Addr().String(), fmt.Sprint(recorder.Port))
		}
		return true
	})
	get := func(n *node.Node, path string) (*http.Response, error) {
		return overlayClient(n).Get("http://" + recAddr + path)
	}
	list := func(n *node.Node) (int, recorder.ListPage, string) {
		t.Helper()
		resp, err := get(n, "/v1/recordings?user=alice@example.com&machine=web")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var p recorder.ListPage
		json.Unmarshal(b, &p)
		return resp.StatusCode, p, string(b)
	}

	cl := rn.ssh()
	sh := startShell(t, cl, 80, 24)
	sh.run("echo view-$((6*7))", "view-42")
	var live recorder.Meta
	for _, n := range []*node.Node{rn.laptop, carol} {
		code, p, body := list(n)
		if code != 200 || len(p.Recordings) != 1 || p.Recordings[0].State != recorder.Recording || p.Recordings[0].LocalUser != rn.local {
			t.Fatalf("%s lists: %d %s", n.NetMap().Self.Name, code, body)
		}
		live = p.Recordings[0]
	}
	if code, _, body := list(bob); code != 403 || !strings.Contains(body, "bob@example.com is a member the policy's recordingViewers does not name") {
		t.Errorf("bob lists: %d %s", code, body)
	}

	// Follow it live from carol's node: what the user sees next arrives within a second.
	resp, err := get(carol, "/v1/recordings/"+live.ID+"/cast?follow=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get(recorder.LiveHeader) != "1" {
		t.Fatalf("follow: %d %v", resp.StatusCode, resp.Header)
	}
	lines := make(chan string, 1024)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, recorder.MaxEventLine)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	followed := ""
	io.WriteString(sh.stdin, "echo next-$((7*8))\n")
	eventually.True(t, "the user sees next-56", func() bool { return strings.Contains(sh.seen(), "next-56") })
	seenAt := time.Now()
	deadline := time.After(time.Second)
	for !strings.Contains(followed, "next-56") {
		select {
		case l := <-lines:
			var e [3]any
			if json.Unmarshal([]byte(l), &e) == nil {
				if s, ok := e[2].(string); ok {
					followed += s
				}
			}
		case <-deadline:
			t.Fatalf("the follower did not get next-56 within 1 s of the user seeing it (got %q)", followed)
		}
	}
	t.Logf("followed output arrived %v after the user saw it", time.Since(seenAt))
	io.WriteString(sh.stdin, "exit\n")
	sh.wait()
	for range lines { // the follow ends with the recording
	}

	c := only(t, rn.rec[0], 1)
	code, p, body := list(carol)
	if code != 200 || len(p.Recordings) != 1 || p.Recordings[0].State != recorder.Ended {
		t.Fatalf("after the session: %d %s", code, body)
	}
	resp2, err := get(rn.laptop, "/v1/recordings/"+live.ID+"/cast")
	if err != nil {
		t.Fatal(err)
	}
	whole, _ := io.ReadAll(resp2.Body)
	resp2.Body.Close()
	out := casttest.Output(whole)
	if out != sh.seen() || c.output() != sh.seen() {
		t.Errorf("read over the overlay %q\nthe user saw %q", out, sh.seen())
	}
}
