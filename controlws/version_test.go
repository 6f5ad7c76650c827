//go:build !js

package controlws

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"tsconnect/controlws/internal/v1client"
	"tsconnect/internal/leakcheck"
	"tsconnect/key"
)

// TestVersionNegotiation dials test servers of other version ranges with clients of other ranges, the
// server key fetched (the client reads the server's range from GET /key first) and pinned (only the
// server's answer on the socket tells): both ends speak the newest version both know, or the client gets
// an *Error (CodeUnsupportedVer) saying in words which side to upgrade to which version.
func TestVersionNegotiation(t *testing.T) {
	leakcheck.Check(t)
	for _, tc := range []struct {
		name     string
		cli, srv versionRange
		want     int    // the version spoken, or 0 for a refusal
		refusal  string // what the refusal says, either way
	}{
		{"same", supported, supported, Version, ""},
		{"newer client falls back", versionRange{1, Version + 1}, supported, Version, ""},
		{"newer client without the server's version", versionRange{Version + 1, Version + 1}, supported, 0,
			"this server speaks control protocol versions 1–6, this client version 7: upgrade the control server (tsconnect control) to a release speaking 7 or later"},
		{"client older than the server's oldest", supported, versionRange{Version + 1, Version + 2}, 0,
			"this server speaks control protocol versions 7–8, yours up to 6: upgrade tsconnect to a release speaking 7 or later"},
		{"version 1 server", supported, versionRange{1, 1}, 1, ""},
		{"version 3 client (rules deltas, no filter deltas)", versionRange{1, 3}, supported, 3, ""},
		{"version 3 server", supported, versionRange{1, 3}, 3, ""},
		{"version 4 client (no session recording)", versionRange{1, 4}, supported, 4, ""},
		{"version 4 server", supported, versionRange{1, 4}, 4, ""},
		{"version 5 client (no recordFrom deltas)", versionRange{1, 5}, supported, 5, ""},
		{"version 5 server", supported, versionRange{1, 5}, 5, ""},
	} {
		for _, pinned := range []bool{false, true} {
			name := tc.name + map[bool]string{false: " (key fetched)", true: " (key pinned)"}[pinned]
			t.Run(name, func(t *testing.T) {
				s := startTestServerVersions(tc.srv)
				t.Cleanup(s.Close)
				opts := DialOptions{ServerURL: s.url, MachineKey: key.NewPrivate(), versions: tc.cli}
				if pinned {
					opts.ServerKey = s.key.Public()
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				c, err := Dial(ctx, opts)
				if tc.want == 0 {
					var ce *Error
					if err == nil {
						c.Close()
						t.Fatal("Dial succeeded; want a refusal")
					}
					if !errors.As(err, &ce) || ce.Code != CodeUnsupportedVer || !strings.Contains(ce.Message, tc.refusal) {
						t.Fatalf("Dial: %v; want an *Error %s saying %q", err, CodeUnsupportedVer, tc.refusal)
					}
					t.Logf("refused: %v", err)
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				if got := c.conn.Version(); got != tc.want {
					t.Fatalf("negotiated version %d, want %d", got, tc.want)
				}
				// The connection works at that version: the server checks every envelope's V against it.
				nodeKey := key.NewPrivate().Public()
				if _, err := c.Register(ctx, RegisterRequest{AuthKey: goodAuthKey, NodeKey: nodeKey, Hostinfo: Hostinfo{Hostname: "n"}}); err != nil {
					t.Fatalf("Register at version %d: %v", tc.want, err)
				}
			})
		}
	}
}

// TestV1ClientRefusedReadably: the frozen version 1 client, against a server whose oldest version is 2,
// gets an error that says in words which version to run: from GET /key when it fetches the key (version 1
// refuses a "version" other than 1), and from the WebSocket's close reason when it has the key pinned.
func TestV1ClientRefusedReadably(t *testing.T) {
	leakcheck.Check(t)
	s := startTestServerVersions(versionRange{2, Version})
	t.Cleanup(s.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	if _, err := v1client.FetchKey(ctx, s.url); err == nil || !strings.Contains(err.Error(), "speaks control protocol version 2, this client speaks 1") {
		t.Fatalf("v1 key fetch from a server of versions 2–%d: %v; want it to name version 2", Version, err)
	}

	c, err := v1client.Dial(ctx, s.url, v1client.Key(s.key.Public()), v1client.NewKeyPair())
	if err == nil {
		c.Close()
		t.Fatal("a version 1 client was served by a server whose oldest version is 2")
	}
	want := refusal(1, versionRange{2, Version})
	if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "4426") {
		t.Fatalf("v1 client's error: %v; want the close reason %q (code %d)", err, want, CloseVersionRefused)
	}
	t.Logf("v1 client refused: %v", err)
	var ce *Error
	if err := <-s.acceptEv; !errors.As(err, &ce) || ce.Code != CodeUnsupportedVer {
		t.Fatalf("server side: %v; want an *Error %s", err, CodeUnsupportedVer)
	}
	if accepted, _, handled := s.stats(); accepted != 0 || handled != 0 {
		t.Fatalf("a refused client got %d accepts, %d envelopes handled", accepted, handled)
	}
}

// TestRefusalFitsCloseReason: a close reason holds 123 bytes; the refusal must fit for versions up to 99.
func TestRefusalFitsCloseReason(t *testing.T) {
	for _, msg := range []string{refusal(98, versionRange{99, 99}), refusal(9, versionRange{10, 99})} {
		if len(msg) > 123 {
			t.Fatalf("refusal of %d bytes: %q", len(msg), msg)
		}
	}
}

// TestMalformedOffer: an offer that is not a version is refused with 400 before the upgrade, and says why.
func TestMalformedOffer(t *testing.T) {
	s := newTestServer(t)
	for _, q := range []string{"v=1", "v=0", "v=two", "v=02", "v=2&v=3", "v=", "v=99999999999"} {
		resp, err := http.Get(s.url + Path + "?" + q)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "controlws:") {
			t.Errorf("?%s: %d %q; want 400 saying why", q, resp.StatusCode, body)
		}
	}
	for q, want := range map[string]int{"": 1, "v=2": 2, "v=17": 17, "x=1": 1} {
		vs, _ := url.ParseQuery(q)
		if got, err := ParseOffer(vs); err != nil || got != want {
			t.Errorf("ParseOffer(%q) = %d, %v; want %d", q, got, err, want)
		}
	}
}

// TestNegotiationBound: the offer and the answer are bound into the prologue, so a man in the middle who
// rewrites either, to make both ends speak an older version than they share, breaks the handshake.
func TestNegotiationBound(t *testing.T) {
	both := versionRange{1, Version + 1} // both ends speak 1 to 3
	t.Run("answer rewritten", func(t *testing.T) {
		// The server answers 3; the relay tells the client 2 (which it would accept from an older server).
		cliErr, srvErr := relayed(t, both.max, both.max, both, func(h []byte) []byte {
			return marshalHello(hello{Version: both.max - 1, Min: both.min, Max: both.max - 1})
		})
		if srvErr == nil || !strings.Contains(srvErr.Error(), "did not decrypt") {
			t.Fatalf("server: %v; want a handshake that did not decrypt", srvErr)
		}
		if cliErr == nil || !strings.Contains(cliErr.Error(), "server key did not match") {
			t.Fatalf("client: %v", cliErr)
		}
	})
	t.Run("offer rewritten", func(t *testing.T) {
		// The client offers 3 in its URL; the relay shows the server 2.
		cliErr, srvErr := relayed(t, both.max, both.max-1, both, nil)
		if srvErr == nil || cliErr == nil {
			t.Fatalf("handshake with a rewritten offer: client %v, server %v; want both to fail", cliErr, srvErr)
		}
	})
	t.Run("untouched", func(t *testing.T) {
		if cliErr, srvErr := relayed(t, both.max, both.max, both, nil); cliErr != nil || srvErr != nil {
			t.Fatalf("client %v, server %v", cliErr, srvErr)
		}
	})
}

// relayed runs a handshake through a relay: the client offers cliOffer, the server sees srvOffer, and
// rewrite (if non-nil) replaces the server's version answer on its way to the client.
func relayed(t *testing.T, cliOffer, srvOffer int, vr versionRange, rewrite func([]byte) []byte) (cliErr, srvErr error) {
	cli, relayCli := net.Pipe()
	relaySrv, srv := net.Pipe()
	t.Cleanup(func() { cli.Close(); relayCli.Close(); relaySrv.Close(); srv.Close() })
	go io.Copy(relaySrv, relayCli)
	go func() {
		br := bufio.NewReader(relaySrv)
		h, err := readWire(br)
		if err != nil {
			return
		}
		if rewrite != nil {
			h = rewrite(h)
		}
		if writeWire(relayCli, h) != nil {
			return
		}
		io.Copy(relayCli, br)
		relayCli.Close()
	}()
	serverKey := key.NewPrivate()
	errc := make(chan error, 1)
	go func() {
		_, err := respond(context.Background(), srv, serverKey, srvOffer, vr)
		srv.Close() // what a server does after a failed handshake; harmless after a good one here
		errc <- err
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, cliErr = initiate(ctx, cli, key.NewPrivate(), serverKey.Public(), cliOffer, vr)
	cli.Close()
	return cliErr, <-errc
}

// TestParseHello: the answer's fields are checked; a field a later server adds is ignored.
func TestParseHello(t *testing.T) {
	for b, want := range map[string]string{
		`{"version":2,"min":1,"max":2,"features":["x"]}`: "",
		`{"version":2,"min":1,"max":2} {}`:               "bytes after",
		`{"version":5,"min":1,"max":2}`:                  "outside its own range",
		`{"min":2,"max":1,"error":"x"}`:                  "bad range",
		`{"version":2,"min":1,"max":2,"error":"x"}`:      "both refuses and picks",
		`[1]`: "not the expected JSON",
	} {
		_, err := parseHello([]byte(b))
		if (want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), want)) {
			t.Errorf("parseHello(%s) = %v; want %q", b, err, want)
		}
	}
	if _, err := parseHello([]byte(`{"min":1,"max":2,"error":"` + strings.Repeat("x", maxHelloLen) + `"}`)); err == nil {
		t.Error("an answer over the limit was accepted")
	}
}

// FuzzParseHello: the client's parser of the server's plain version answer never panics, and what it
// accepts is a consistent answer.
func FuzzParseHello(f *testing.F) {
	f.Add(marshalHello(hello{Version: 2, Min: 1, Max: 2}))
	f.Add(marshalHello(hello{Min: 3, Max: 4, Error: refusal(2, versionRange{3, 4})}))
	f.Add([]byte(`{"version":2,"min":1,"max":2,"x":1}`))
	f.Add([]byte(`{"version":2,"min":1,"max":2} {}`))
	f.Add([]byte(`{"version":5,"min":1,"max":2}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := parseHello(b)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("error without text")
			}
			return
		}
		if h.Min < 1 || h.Max < h.Min || (h.Error == "" && (h.Version < h.Min || h.Version > h.Max)) || (h.Error != "" && h.Version != 0) {
			t.Fatalf("accepted an inconsistent answer %+v from %q", h, b)
		}
	})
}

// FuzzParseOffer: the server's parser of the URL's offer never panics and accepts only 1 (absent) or a
// canonical decimal from 2 on.
func FuzzParseOffer(f *testing.F) {
	for _, q := range []string{"", "v=2", "v=3&x=1", "v=02", "v=-1", "v=2&v=2", "v=%32"} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, q string) {
		vs, err := url.ParseQuery(q)
		if err != nil {
			return
		}
		v, err := ParseOffer(vs)
		switch {
		case err != nil:
			if !strings.HasPrefix(err.Error(), "controlws: ") {
				t.Fatalf("error %q", err)
			}
		case v == 1 && vs.Has(VersionParam), v < 1:
			t.Fatalf("ParseOffer(%q) = %d", q, v)
		}
	})
}
