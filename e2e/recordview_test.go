//go:build linux

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/user"
	"strings"
	"testing"
	"time"

	"tsconnect/controlws"
	"tsconnect/internal/casttest"
	"tsconnect/internal/eventually"
	"tsconnect/recorder"
)

const recordViewPolicy = `{
  "tagOwners": {"tag:rec": ["alice@example.com"]},
  "acls": [
    {"action": "accept", "src": ["autogroup:member"], "dst": ["autogroup:self:*", "tag:rec:8410"]},
  ],
  "ssh": [{"action": "accept", "src": ["autogroup:member"], "dst": ["autogroup:self"], "users": ["root", "autogroup:nonroot"],
    "recorder": ["tag:rec"]}],
}`

// TestOpenSSHRecordingViewed: a real OpenSSH session (ssh -tt through `tsconnect nc`) to a
// real agent is recorded to a real recorder node, and its owner, an admin, lists it by
// machine and reads it back over the overlay from another node of theirs: the recorded
// output is what OpenSSH printed.
func TestOpenSSHRecordingViewed(t *testing.T) {
	tn := startTestNet(t, nil, recordViewPolicy)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tn.startRecorder(ctx)
	client := tn.startAgent("client")
	srv := tn.startAgent("srv")
	eventually.True(t, "srv's rule naming the recorder", func() bool {
		nm := srv.Node().NetMap()
		return nm != nil && len(nm.SSHRules) > 0 && len(nm.SSHRules[0].Recorders) == 1
	})
	o := newOpenSSH(t, tn, client, "client", "srv")
	me, _ := user.Current()
	out, stderr, code := o.ssh(me.Username+"@srv", "-tt", "echo openssh-$((3*4))")
	if code != 0 || !strings.Contains(out, "openssh-12") {
		t.Fatalf("ssh -tt: exit %d, %q, %q", code, out, stderr)
	}

	var p controlws.Node
	eventually.True(t, "rec in client's map", func() bool {
		var ok bool
		p, ok = client.Node().NetMap().PeerByName("rec")
		return ok
	})
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		return client.Node().Dial(ctx, network, addr)
	}}}
	base := fmt.Sprintf("http://%s", net.JoinHostPort(p.Addresses[0].Addr().String(), fmt.Sprint(recorder.Port)))
	var m recorder.Meta
	eventually.True(t, "the recording listed as ended", func() bool {
		resp, err := hc.Get(base + "/v1/recordings?machine=srv&user=alice@example.com")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var page recorder.ListPage
		if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&page) != nil || len(page.Recordings) != 1 {
			return false
		}
		m = page.Recordings[0]
		return m.State == recorder.Ended
	})
	if m.TargetNode != "srv" || m.SrcNode != "client" || m.LocalUser != me.Username || m.ExitCode == nil || *m.ExitCode != 0 {
		t.Errorf("metadata %+v", m)
	}
	resp, err := hc.Get(base + "/v1/recordings/" + m.ID + "/cast")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	got := casttest.Output(b)
	if got != out {
		t.Errorf("recorded %q\nOpenSSH printed %q", got, out)
	}
}
