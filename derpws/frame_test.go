package derpws

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"golang.org/x/crypto/nacl/box"

	"tsconnect/key"
)

// Fixed keys for fuzzing, so seeds that open a box keep opening.
var (
	fuzzServer = mustPriv("a0c2d3e4f5061728394a5b6c7d8e9fa0b1c2d3e4f5061728394a5b6c7d8e9f40")
	fuzzClient = mustPriv("b0c2d3e4f5061728394a5b6c7d8e9fa0b1c2d3e4f5061728394a5b6c7d8e9f50")
)

func mustPriv(s string) key.Private {
	k, err := key.ParsePrivate(s)
	if err != nil {
		panic(err)
	}
	return k
}

// TestFrameTooLongRefusedBeforeReading: an oversized length fails at the header, with no payload sent.
func TestFrameTooLongRefusedBeforeReading(t *testing.T) {
	br := bufio.NewReader(io.MultiReader(bytes.NewReader([]byte{byte(FrameSendPacket), 0x40, 0, 0, 0}), blockingReader{}))
	_, n, err := readFrameHeader(br)
	if !errors.Is(err, errFrameTooLong) || n != 0x40000000 {
		t.Fatalf("err = %v, n = %d; want errFrameTooLong", err, n)
	}
	if !strings.Contains(err.Error(), "limit") {
		t.Errorf("error does not name the limit: %v", err)
	}
}

// blockingReader fails the test by panicking if anything reads past the header.
type blockingReader struct{}

func (blockingReader) Read([]byte) (int, error) { panic("read past a refused header") }

// TestFrameLayouts pins the bytes of frames to docs/protocols.md.
func TestFrameLayouts(t *testing.T) {
	var buf bytes.Buffer
	bw := bufio.NewWriter(&buf)
	k := key.Public{1, 2, 3}
	writePacketFrame(bw, FrameRecvPacket, &k, []byte("pkt"))
	writePeerGone(bw, &k, PeerGoneNotHere)
	writeFrame(bw, FrameRestarting, restartingPayload(500, 60000))
	bw.Flush()
	want := append([]byte{0x05, 0, 0, 0, 35}, k[:]...)
	want = append(want, "pkt"...)
	want = append(want, 0x08, 0, 0, 0, 33)
	want = append(want, k[:]...)
	want = append(want, 0x01)
	want = append(want, 0x15, 0, 0, 0, 8, 0, 0, 0x01, 0xf4, 0, 0, 0xea, 0x60)
	if !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("frames\n%x\nwant\n%x", buf.Bytes(), want)
	}
	if magic != string([]byte{0x44, 0x45, 0x52, 0x50, 0xf0, 0x9f, 0x94, 0x91}) {
		t.Fatal("magic differs from the protocol's")
	}
}

// TestInfoRoundTrip: ClientInfo and ServerInfo seal and open, with the JSON field names of the protocol.
func TestInfoRoundTrip(t *testing.T) {
	p, err := clientInfoPayload(fuzzClient, fuzzServer.Public(), &ClientInfo{Version: 2, CanAckPings: true})
	if err != nil {
		t.Fatal(err)
	}
	k, ci, err := parseClientInfo(p, fuzzServer)
	if err != nil || k != fuzzClient.Public() || ci.Version != 2 || !ci.CanAckPings {
		t.Fatalf("ClientInfo: %v %+v %v", k, ci, err)
	}
	js, _ := json.Marshal(ClientInfo{Version: 2, CanAckPings: true})
	if string(js) != `{"version":2,"CanAckPings":true}` {
		t.Errorf("ClientInfo JSON %s", js)
	}
	sp, _ := serverInfoPayload(fuzzServer, fuzzClient.Public(), &ServerInfo{Version: 2})
	if si, err := parseServerInfo(sp, fuzzClient, fuzzServer.Public()); err != nil || si.Version != 2 {
		t.Fatalf("ServerInfo: %+v %v", si, err)
	}
	// Sealed for someone else: refused.
	if _, err := parseServerInfo(sp, key.NewPrivate(), fuzzServer.Public()); err == nil {
		t.Fatal("ServerInfo for another client opened")
	}
}

// FuzzFrameReader feeds arbitrary bytes to the frame reader the server and client use: it
// must never panic, never accept a frame over the limit, and stop at the first error.
func FuzzFrameReader(f *testing.F) {
	f.Add([]byte{0x06, 0, 0, 0, 0})
	f.Add([]byte{0x04, 0, 0, 0, 3, 1, 2})
	f.Add([]byte{0x04, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		br := bufio.NewReaderSize(bytes.NewReader(data), 16)
		var scratch [64]byte
		for {
			ft, n, err := readFrameHeader(br)
			if err != nil {
				if n > maxFrameLen && !errors.Is(err, errFrameTooLong) {
					t.Fatalf("oversized frame not refused: %v", err)
				}
				return
			}
			if n > maxFrameLen {
				t.Fatalf("frame of %d bytes accepted", n)
			}
			switch ft {
			case FrameSendPacket, FrameRecvPacket:
				if n < KeyLen {
					return
				}
				if _, err := readKey(br); err != nil {
					return
				}
				pb := getBuf(int(n - KeyLen))
				_, err = io.ReadFull(br, pb.b)
				putBuf(pb)
			case FrameServerKey:
				var b []byte
				if b, err = readSmallPayload(br, n, scratch[:]); err == nil {
					parseServerKey(b)
				}
			default:
				err = discard(br, n)
			}
			if err != nil {
				return
			}
		}
	})
}

// FuzzClientInfo parses arbitrary ClientInfo payloads, and arbitrary JSON properly sealed.
func FuzzClientInfo(f *testing.F) {
	f.Add([]byte{}, []byte(`{"version":2,"CanAckPings":true}`))
	f.Add(make([]byte, KeyLen+nonceLen+16), []byte(`{"version":2,"meshKey":"00","IsProber":true,"AppName":"x"}`))
	f.Add([]byte("short"), []byte(`[`))
	f.Fuzz(func(t *testing.T, raw, js []byte) {
		if k, ci, err := parseClientInfo(raw, fuzzServer); err == nil {
			// Only a box sealed by k opens; arbitrary bytes must not.
			t.Fatalf("random ClientInfo opened as %s: %+v", k, ci)
		}
		nonce := [nonceLen]byte{1}
		pk, sk := [32]byte(fuzzServer.Public()), [32]byte(fuzzClient)
		sealed := boxSeal(nonce, js, pk, sk)
		cp := fuzzClient.Public()
		k, ci, err := parseClientInfo(append(cp[:], sealed...), fuzzServer)
		if err == nil && (k != cp || ci == nil) {
			t.Fatalf("sealed ClientInfo opened as %s %+v", k, ci)
		}
		if err != nil && json.Valid(js) && bytes.HasPrefix(bytes.TrimSpace(js), []byte("{")) && !strings.Contains(err.Error(), "JSON") {
			t.Fatalf("valid sealed JSON object refused: %v", err)
		}
	})
}

// FuzzServerInfo parses arbitrary ServerInfo payloads, and arbitrary JSON properly sealed.
func FuzzServerInfo(f *testing.F) {
	f.Add([]byte{}, []byte(`{"version":2}`))
	f.Add(make([]byte, nonceLen+16), []byte(`{"version":2,"TokenBucketBytesPerSecond":1,"TokenBucketBytesBurst":2}`))
	f.Fuzz(func(t *testing.T, raw, js []byte) {
		if si, err := parseServerInfo(raw, fuzzClient, fuzzServer.Public()); err == nil {
			t.Fatalf("random ServerInfo opened: %+v", si)
		}
		pk, sk := [32]byte(fuzzClient.Public()), [32]byte(fuzzServer)
		sealed := boxSeal([nonceLen]byte{2}, js, pk, sk)
		si, err := parseServerInfo(sealed, fuzzClient, fuzzServer.Public())
		if err == nil && si == nil {
			t.Fatal("nil ServerInfo without error")
		}
	})
}

// boxSeal seals msg with a fixed nonce, returning nonce followed by box.
func boxSeal(nonce [nonceLen]byte, msg []byte, peer, priv [32]byte) []byte {
	return box.Seal(nonce[:], msg, &nonce, &peer, &priv)
}
