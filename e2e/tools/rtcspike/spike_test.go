//go:build !nortc

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"tsconnect/derpws"
	"tsconnect/key"
)

// startSpike starts a real relay and the agent on loopback; it returns the agent's base URL.
func startSpike(t *testing.T) (*agent, string) {
	t.Helper()
	srv := derpws.NewServer(key.NewPrivate(), nil)
	rs := httptest.NewServer(relayHandler(srv))
	t.Cleanup(func() { rs.Close(); srv.Close() })
	a, err := newAgent(context.Background(), rs.URL+"/derp", 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	as := httptest.NewServer(a.handler(t.TempDir()))
	t.Cleanup(as.Close)
	return a, as.URL
}

// rawFrame reads one DERP frame.
func rawFrame(br *bufio.Reader) (byte, []byte, error) {
	var h [5]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		return 0, nil, err
	}
	b := make([]byte, binary.BigEndian.Uint32(h[1:]))
	_, err := io.ReadFull(br, b)
	return h[0], b, err
}

// writeFrame writes one DERP frame of type t.
func writeFrame(w io.Writer, t byte, parts ...[]byte) error {
	p := bytes.Join(parts, nil)
	h := []byte{t, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(h[1:], uint32(len(p)))
	_, err := w.Write(append(h, p...))
	return err
}

// TestRelayPathWithSealedClientInfo does what the page's Worker does over the relay (the same
// byte stream, over the native upgrade): the ClientInfo that /relay/info hands out is accepted by
// the real relay, a ping comes back from the agent's key, and data packets are counted.
func TestRelayPathWithSealedClientInfo(t *testing.T) {
	_, base := startSpike(t)
	resp, err := http.Get(base + "/relay/info")
	if err != nil {
		t.Fatal(err)
	}
	var info relayInfo
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !strings.HasPrefix(info.URL, "ws://127.0.0.1:") || !strings.HasSuffix(info.URL, "/derp") {
		t.Fatalf("relay URL %q, want ws://127.0.0.1:PORT/derp", info.URL)
	}
	agentKey, err := key.ParsePublic(info.AgentKey)
	if err != nil {
		t.Fatal(err)
	}
	ci, err := base64.StdEncoding.DecodeString(info.ClientInfo)
	if err != nil {
		t.Fatal(err)
	}

	host := strings.TrimSuffix(strings.TrimPrefix(info.URL, "ws://"), "/derp")
	c, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(15 * time.Second))
	fmt.Fprintf(c, "GET /derp HTTP/1.1\r\nHost: %s\r\nUpgrade: DERP\r\nConnection: Upgrade\r\n\r\n", host)
	br := bufio.NewReader(c)
	if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	if ft, _, err := rawFrame(br); err != nil || ft != 0x01 {
		t.Fatalf("first frame %#x %v, want ServerKey", ft, err)
	}
	if err := writeFrame(c, 0x02, ci); err != nil {
		t.Fatal(err)
	}
	if ft, _, err := rawFrame(br); err != nil || ft != 0x03 {
		t.Fatalf("after ClientInfo frame %#x %v, want ServerInfo: the relay refused the sealed ClientInfo", ft, err)
	}

	got := make(chan []byte, 16)
	go func() {
		defer close(got)
		for {
			ft, b, err := rawFrame(br)
			if err != nil {
				return
			}
			if ft == 0x05 && len(b) > 32 {
				if !bytes.Equal(b[:32], agentKey[:]) {
					t.Errorf("packet from %x, want the agent's key", b[:32])
					return
				}
				got <- b[32:]
			}
		}
	}()
	send := func(pkt []byte) { writeFrame(c, 0x04, agentKey[:], pkt) }
	checkEcho(t, "Pping-through-the-relay", send, got)
	checkCounting(t, send, asker(t, send, got))
}

// asker returns a function that sends pkt until a reply of the kind want arrives on got (the
// path may still be connecting, and either path may drop a packet).
func asker(t *testing.T, send func([]byte), got <-chan []byte) func(pkt []byte, want byte) []byte {
	return func(pkt []byte, want byte) []byte {
		t.Helper()
		for range 50 {
			send(pkt)
			select {
			case b, ok := <-got:
				if !ok {
					t.Fatal("the path closed")
				}
				if len(b) > 0 && b[0] == want {
					return b
				}
			case <-time.After(200 * time.Millisecond):
			}
		}
		t.Fatalf("no %q reply", want)
		return nil
	}
}

// checkEcho sends a ping and wants it back unchanged.
func checkEcho(t *testing.T, ping string, send func([]byte), got <-chan []byte) {
	t.Helper()
	if b := asker(t, send, got)([]byte(ping), kindPing); string(b) != ping {
		t.Fatalf("echo %q, want %q", b, ping)
	}
}

// checkCounting resets the counters, sends three data packets and checks the stats reply.
func checkCounting(t *testing.T, send func([]byte), ask func([]byte, byte) []byte) {
	t.Helper()
	ask([]byte{kindReset}, kindReset)
	data := append([]byte{kindData}, make([]byte, 1399)...)
	for range 3 {
		send(data)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		var st stats
		if err := json.Unmarshal(ask([]byte{kindStats}, kindStats)[1:], &st); err != nil {
			t.Fatal(err)
		}
		if st.Packets == 3 && st.Bytes == 3*1400 && st.LastNs >= st.FirstNs && st.FirstNs > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v, want 3 packets of 1,400 bytes", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestDataChannelEcho offers an unordered, maxRetransmits:0 channel as the page does (from a
// pion peer here) through POST /rtc/offer: the answer connects, pings are echoed, data counted.
func TestDataChannelEcho(t *testing.T) {
	_, base := startSpike(t)
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	pc, err := webrtc.NewAPI(webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	ordered, retrans := false, uint16(0)
	dc, err := pc.CreateDataChannel("wg", &webrtc.DataChannelInit{Ordered: &ordered, MaxRetransmits: &retrans})
	if err != nil {
		t.Fatal(err)
	}
	open := make(chan struct{})
	got := make(chan []byte, 16)
	dc.OnOpen(func() { close(open) })
	dc.OnMessage(func(m webrtc.DataChannelMessage) { got <- m.Data })
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	body, _ := json.Marshal(sdp{Type: "offer", SDP: pc.LocalDescription().SDP})
	resp, err := http.Post(base+"/rtc/offer", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var answer sdp
	err = json.NewDecoder(resp.Body).Decode(&answer)
	resp.Body.Close()
	if err != nil || answer.Type != "answer" {
		t.Fatalf("answer %+v %v", answer, err)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer.SDP}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-open:
	case <-time.After(15 * time.Second):
		t.Fatal("the data channel did not open in 15 s")
	}
	send := func(pkt []byte) { dc.Send(pkt) }
	checkEcho(t, "Pping-over-the-channel", send, got)
	checkCounting(t, send, asker(t, send, got))
}

// TestOfferRefused: what is not an offer, or is over the size bound, gets 400 naming the problem.
func TestOfferRefused(t *testing.T) {
	_, base := startSpike(t)
	for _, c := range []struct{ body, want string }{
		{`{"type":"answer","sdp":"v=0"}`, "want an offer"},
		{`{"type":"offer","sdp":"` + strings.Repeat("a", maxOffer) + `"}`, "too large"},
		{`{"type":"offer","sdp":"not sdp"}`, "answer:"},
	} {
		resp, err := http.Post(base+"/rtc/offer", "application/json", strings.NewReader(c.body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), c.want) {
			t.Errorf("offer %.40q: %d %q, want 400 with %q", c.body, resp.StatusCode, b, c.want)
		}
	}
	if _, err := listenLoopback("0.0.0.0:0"); err == nil || !strings.Contains(err.Error(), "not a loopback address") {
		t.Errorf("listenLoopback(0.0.0.0:0) = %v, want a refusal", err)
	}
}
