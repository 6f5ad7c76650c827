package control

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"tsconnect/controlws"
	"tsconnect/derpws"
	"tsconnect/internal/eventually"
	"tsconnect/key"
)

func TestHTTPRoutes(t *testing.T) {
	e := newEnv(t, nil)
	get := func(path string) (*http.Response, string) {
		resp, err := http.Get(e.hs.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, body := get(controlws.KeyPath)
	var kr controlws.KeyResponse
	if err := json.Unmarshal([]byte(body), &kr); err != nil || kr.Key != e.s.PublicKey() || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("GET /key: %s %v", body, err)
	}
	resp, _ = get("/derp/probe")
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("/derp/probe: %v", resp.Status)
	}
	resp, body = get("/")
	if resp.StatusCode != 200 || !strings.Contains(body, "tsconnect control") {
		t.Fatalf("/: %v %q", resp.Status, body)
	}
}

func TestWebHandler(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Web = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "console "+r.URL.Path) })
	})
	resp, err := http.Get(e.hs.URL + "/admin/x")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "console /admin/x" {
		t.Fatalf("web: %q", b)
	}
}

func TestExternalDERPMap(t *testing.T) {
	ext := &derpws.Map{Regions: map[int]*derpws.Region{1: {RegionID: 1, RegionCode: "ext", Nodes: []*derpws.Node{{Name: "1a", RegionID: 1, HostName: "derp.example.net"}}}}}
	e := newEnv(t, func(c *Config) { c.DERPMap = ext })
	if m := e.s.DERPMap(); len(m.Regions) != 1 || m.Regions[1].RegionCode != "ext" {
		t.Fatalf("external only: %+v", m.Regions)
	}
	e2 := newEnv(t, func(c *Config) { c.DERPMap = ext; c.EmbeddedDERP = true })
	if m := e2.s.DERPMap(); len(m.Regions) != 2 || m.Regions[2].RegionCode != EmbeddedRegionCode {
		t.Fatalf("external plus embedded: %+v", m.Regions)
	}
}

// TestRelayAdmission runs real DERP clients against the embedded relay: registered node
// keys relay packets, an unknown key is refused, a deleted node is dropped and kept out.
func TestRelayAdmission(t *testing.T) {
	e := newEnv(t, nil)
	u := e.user("rita@example.com")
	secret := e.authKey(AuthKeyOptions{User: u.ID, Reusable: true})
	a, _ := e.mustRegister(secret, "a")
	b, nb := e.mustRegister(secret, "b")
	url := derpws.NodeURL(e.s.DERPMap().Regions[1].Nodes[0])

	type health struct {
		mu   sync.Mutex
		msgs []string
	}
	client := func(k key.Private, h *health) *derpws.Client {
		c := derpws.NewClient(k, url, &derpws.ClientOptions{UseWebSocket: true, OnHealth: func(p string) {
			h.mu.Lock()
			h.msgs = append(h.msgs, p)
			h.mu.Unlock()
		}})
		t.Cleanup(func() { c.Close() })
		return c
	}
	var ha, hb, hx health
	ca, cb := client(a.nk, &ha), client(b.nk, &hb)
	recv := make(chan key.Public, 16)
	go func() {
		for {
			src, _, err := cb.Recv()
			if err != nil {
				return
			}
			recv <- src
		}
	}()
	// Packets flow once both are connected (resend until one arrives: connects are lazy).
	got := false
	for deadline := time.Now().Add(20 * time.Second); !got && time.Now().Before(deadline); {
		ca.Send(b.nk.Public(), []byte("hello"))
		select {
		case src := <-recv:
			if src != a.nk.Public() {
				t.Fatalf("packet from %v, want a", src)
			}
			got = true
		case <-time.After(50 * time.Millisecond):
		}
	}
	if !got {
		t.Fatal("no packet relayed between registered nodes")
	}
	refused := func(h *health) func() bool {
		return func() bool {
			h.mu.Lock()
			defer h.mu.Unlock()
			for _, m := range h.msgs {
				if strings.Contains(m, "not admit") {
					return true
				}
			}
			return false
		}
	}
	x := client(key.NewPrivate(), &hx)
	x.Send(a.nk.Public(), []byte("let me in"))
	eventually.True(t, "unknown key refused by the relay", refused(&hx))

	if err := e.s.DeleteNode(context.Background(), nb.ID); err != nil {
		t.Fatal(err)
	}
	cb.Send(a.nk.Public(), []byte("still here?"))
	eventually.True(t, "deleted node refused by the relay", refused(&hb))
}

// TestHugeHeadersAndBodiesAreRefused: the public server (NewHTTPServer) answers 431 to
// headers past MaxHeaderBytes and control's routes 413 to bodies past MaxRouteBody, and
// both keep serving afterwards.
func TestHugeHeadersAndBodiesAreRefused(t *testing.T) {
	e := newEnv(t, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := NewHTTPServer(e.s.Handler())
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	base := "http://" + ln.Addr().String()
	do := func(method, path string, header http.Header, body io.Reader) int {
		t.Helper()
		req, err := http.NewRequest(method, base+path, body)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range header {
			req.Header[k] = v
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	big := http.Header{"X-Filler": {strings.Repeat("a", 1<<20)}}
	for _, path := range []string{controlws.KeyPath, controlws.Path, "/derp", "/"} {
		if code := do("GET", path, big, nil); code != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("GET %s with 1 MiB of headers: %d, want 431", path, code)
		}
	}
	for _, path := range []string{controlws.KeyPath, controlws.Path, "/derp", "/derp/probe"} {
		if code := do("POST", path, nil, bytes.NewReader(make([]byte, 8<<20))); code != http.StatusRequestEntityTooLarge {
			t.Errorf("POST %s with 8 MiB of body: %d, want 413", path, code)
		}
	}
	if code := do("GET", controlws.KeyPath, nil, nil); code != http.StatusOK {
		t.Fatalf("GET /key after the refusals: %d, want 200", code)
	}
}
