package recnode

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
	"tsconnect/control/controltest"
	"tsconnect/internal/eventually"
	"tsconnect/internal/nodetest"
	"tsconnect/node"
	"tsconnect/recorder"
)

const testPolicy = `{
	"tagOwners": {"tag:rec": ["alice@example.com"], "tag:server": ["alice@example.com"], "tag:other": ["alice@example.com"]},
	"acls": [
		{"action": "accept", "src": ["tag:server", "tag:other"], "dst": ["tag:rec:8410"]},
		{"action": "accept", "src": ["alice@example.com"], "dst": ["tag:server:22", "tag:other:22"]},
		{"action": "accept", "src": ["carol@example.com", "bob@example.com", "dave@example.com"], "dst": ["tag:rec:8410"]},
	],
	"ssh": [
		{"action": "accept", "src": ["alice@example.com"], "dst": ["tag:server"], "users": ["root"], "recorder": ["tag:rec"]},
		{"action": "accept", "src": ["alice@example.com"], "dst": ["tag:other"], "users": ["root"]},
	],
	"recordingViewers": ["carol@example.com"],
}`

func key(t *testing.T, cs *controltest.Server, o control.AuthKeyOptions) string {
	t.Helper()
	k, _, err := cs.Control.CreateAuthKey(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// client is an HTTP client whose connections go over n's overlay.
func client(n *node.Node) *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		return n.Dial(ctx, network, addr)
	}}}
}

// upload posts the recording body from n to the recorder at addr over the overlay: its
// status, its last answer line, and the whole answer.
func upload(t *testing.T, n *node.Node, addr, body string) (int, recorder.UploadAnswer, string) {
	t.Helper()
	resp, err := client(n).Post("http://"+addr+"/v1/recordings", "application/x-asciicast", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var last recorder.UploadAnswer
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		json.Unmarshal(sc.Bytes(), &last)
	}
	return resp.StatusCode, last, string(b)
}

// TestRecorderNode: a recorder joined as a tagged node takes a recording over the overlay
// from a node the acls let reach port 8410 and whose ssh rule names it, naming it as the
// target node; a node the acls let reach it but whose rules do not name it is refused,
// saying so; a node the acls do not let reach it gets nowhere; viewing over the overlay is
// for an admin's or a recordingViewer's node only.
func TestRecorderNode(t *testing.T) {
	cs := controltest.New(t, nil)
	alice := cs.User("alice@example.com", control.RoleAdmin)
	if _, err := cs.Control.SetPolicy(context.Background(), []byte(testPolicy), "test"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rec, err := Start(ctx, Config{ControlURL: cs.URL, AuthKey: key(t, cs, control.AuthKeyOptions{Tags: []string{"tag:rec"}}),
		Hostname: "rec", StateDir: t.TempDir(), Store: recorder.Options{MinFree: -1}, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close()
	web := nodetest.Join(t, cs.URL, key(t, cs, control.AuthKeyOptions{Tags: []string{"tag:server"}}), "web")
	laptop := nodetest.Join(t, cs.URL, key(t, cs, control.AuthKeyOptions{User: alice.ID, Ephemeral: true}), "laptop")
	var addr string
	eventually.True(t, "the recorder in web's map", func() bool {
		nm := web.NetMap()
		if nm == nil {
			return false
		}
		p, ok := nm.PeerByName("rec")
		if ok {
			addr = fmt.Sprintf("%s:%d", p.Addresses[0].Addr(), recorder.Port)
		}
		return ok
	})
	// web has rec as a peer, and rec has web (the acls let web reach it).
	eventually.True(t, "web in the recorder's map", func() bool {
		nm := rec.Node().NetMap()
		_, ok := nm.PeerByName("web")
		return nm != nil && ok
	})
	body := `{"version":2,"width":80,"height":24,"timestamp":1764739860,"srcUser":"alice@example.com","srcNode":"laptop","localUser":"root"}` + "\n" +
		`[0.1, "o", "hello over the overlay\r\n"]` + "\n"
	code, last, _ := upload(t, web, addr, body)
	if code != 200 || last.State != recorder.Ended {
		t.Fatalf("upload: %d %+v", code, last)
	}
	m, err := rec.Store().Get(last.ID)
	if err != nil || m.TargetNode != "web" || m.SrcUser != "alice@example.com" || m.Size != int64(len(body)) {
		t.Errorf("stored %+v (%v)", m, err)
	}
	// other may reach port 8410, but no ssh rule of its names the recorder.
	other := nodetest.Join(t, cs.URL, key(t, cs, control.AuthKeyOptions{Tags: []string{"tag:other"}}), "other")
	eventually.True(t, "other in the recorder's map", func() bool {
		nm := rec.Node().NetMap()
		_, ok := nm.PeerByName("other")
		return nm != nil && ok
	})
	if code, _, refusal := upload(t, other, addr, body); code != 403 || !strings.Contains(refusal, "no ssh rule of node other names this recorder") {
		t.Errorf("other's upload: %d %s; want 403 saying its rules do not name the recorder", code, refusal)
	}
	if n := len(rec.Store().List()); n != 1 {
		t.Errorf("%d recordings stored, want web's 1", n)
	}
	// Viewing over the overlay: an admin (dave) and a user recordingViewers names (carol)
	// list it; a member it does not name (bob) and a tagged node (web) are refused.
	dave := cs.User("dave@example.com", control.RoleAdmin)
	carol := cs.User("carol@example.com", control.RoleMember)
	bob := cs.User("bob@example.com", control.RoleMember)
	viewers := map[string]*node.Node{}
	for name, u := range map[string]control.User{"dave": dave, "carol": carol, "bob": bob} {
		viewers[name] = nodetest.Join(t, cs.URL, key(t, cs, control.AuthKeyOptions{User: u.ID, Ephemeral: true}), name+"-browser")
	}
	viewers["web"] = web
	for name, n := range viewers {
		eventually.True(t, name+" in the recorder's map", func() bool {
			_, ok := rec.Node().NetMap().PeerByName(n.NetMap().Self.Name)
			return ok
		})
	}
	for name, want := range map[string]string{"dave": "", "carol": "", "bob": "bob@example.com is a member the policy's recordingViewers does not name",
		"web": "node web is tagged: only a user's node may view recordings"} {
		resp, err := client(viewers[name]).Get("http://" + addr + "/v1/recordings?user=alice@example.com")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var page recorder.ListPage
		var e struct{ Error string }
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		json.Unmarshal(b, &page)
		json.Unmarshal(b, &e)
		switch {
		case want == "" && (resp.StatusCode != 200 || len(page.Recordings) != 1 || page.Recordings[0].ID != last.ID):
			t.Errorf("%s lists: %d %s", name, resp.StatusCode, b)
		case want != "" && (resp.StatusCode != 403 || !strings.Contains(e.Error, want)):
			t.Errorf("%s lists: %d %s, want 403 %q", name, resp.StatusCode, b, want)
		}
	}
	resp, err := client(viewers["carol"]).Get("http://" + addr + "/v1/recordings/" + last.ID + "/cast")
	if err != nil {
		t.Fatal(err)
	}
	cast, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(cast) != body {
		t.Errorf("carol reads %q", cast)
	}
	// Only a recorder node may ask control who may view.
	if _, err := web.RecordingViewer(ctx, viewers["carol"].NetMap().Self.ID); err == nil || !strings.Contains(err.Error(), "this node is not a recorder") {
		t.Errorf("web asked control about a viewer: %v", err)
	}
	// laptop may not reach port 8410 (not a peer of the recorder, and its filter drops it).
	dctx, dcancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer dcancel()
	if c, err := laptop.Dial(dctx, "tcp", addr); err == nil {
		c.Close()
		t.Error("laptop reached the recorder port")
	} else {
		t.Logf("laptop's dial: %v", err)
	}
}
