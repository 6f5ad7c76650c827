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
	],
	"ssh": [
		{"action": "accept", "src": ["alice@example.com"], "dst": ["tag:server"], "users": ["root"], "recorder": ["tag:rec"]},
		{"action": "accept", "src": ["alice@example.com"], "dst": ["tag:other"], "users": ["root"]},
	],
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

// TestRecorderNode: a recorder joined as a tagged node takes a recording over the overlay
// from a node the acls let reach port 8410 and whose ssh rule names it, naming it as the
// target node; a node the acls let reach it but whose rules do not name it is refused,
// saying so; a node the acls do not let reach it gets nowhere; and viewing over the
// overlay is refused.
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
	resp, err := client(web).Post("http://"+addr+"/v1/recordings", "application/x-asciicast", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var last recorder.UploadAnswer
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		json.Unmarshal(sc.Bytes(), &last)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || last.State != recorder.Ended {
		t.Fatalf("upload: %d %+v", resp.StatusCode, last)
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
	resp, err = client(other).Post("http://"+addr+"/v1/recordings", "application/x-asciicast", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	refusal, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 403 || !strings.Contains(string(refusal), "no ssh rule of node other names this recorder") {
		t.Errorf("other's upload: %d %s; want 403 saying its rules do not name the recorder", resp.StatusCode, refusal)
	}
	if n := len(rec.Store().List()); n != 1 {
		t.Errorf("%d recordings stored, want web's 1", n)
	}
	// Viewing over the overlay: refused for now.
	resp, err = client(web).Get("http://" + addr + "/v1/recordings")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Errorf("list over the overlay: %d, want 403", resp.StatusCode)
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
