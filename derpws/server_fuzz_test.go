//go:build !js

package derpws

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"testing"
)

// fuzzLocal is a client registered on the fuzzed relay, so frames can address it.
var fuzzLocal = mustPriv("c0c2d3e4f5061728394a5b6c7d8e9fa0b1c2d3e4f5061728394a5b6c7d8e9f60").Public()

func frameBytes(t FrameType, parts ...[]byte) []byte {
	var b bytes.Buffer
	bw := bufio.NewWriter(&b)
	writeFrame(bw, t, parts...)
	bw.Flush()
	return b.Bytes()
}

// FuzzServerFrames feeds arbitrary frames from an authenticated client, plain or mesh peer,
// to the relay's reader: it must never panic, must end with an error at the end of the
// input, and a plain client's mesh frames must end its connection.
func FuzzServerFrames(f *testing.F) {
	lk, src := fuzzLocal, fuzzClient.Public()
	f.Add(frameBytes(FrameSendPacket, lk[:], []byte("hello")), false)
	f.Add(frameBytes(FrameForwardPacket, src[:], lk[:], []byte("fwd")), true)
	f.Add(append(frameBytes(FrameWatchConns), frameBytes(FrameClosePeer, lk[:])...), true)
	f.Add(append(frameBytes(FrameNotePreferred, []byte{1}), frameBytes(FramePing, []byte("12345678"))...), false)
	f.Add(frameBytes(0x7f, []byte("future")), false)
	f.Add([]byte{byte(FrameSendPacket), 0, 0, 0, 31}, true)
	// Every client frame type at and past its limits (headers announcing the largest packets,
	// without their bodies: small inputs keep the fuzzer fast).
	f.Add(append(header(FrameSendPacket, KeyLen+MaxPacketSize), lk[:]...), false)
	f.Add(append(header(FrameSendPacket, KeyLen+MaxPacketSize+1), lk[:]...), false)
	f.Add(frameBytes(FrameSendPacket, lk[:]), false)
	f.Add(append(header(FrameForwardPacket, 2*KeyLen+MaxPacketSize+1), src[:]...), true)
	f.Add(frameBytes(FrameForwardPacket, src[:]), true)
	f.Add(frameBytes(FrameWatchConns, []byte{0}), true)
	f.Add(frameBytes(FrameClosePeer, lk[:31]), true)
	f.Add(frameBytes(FrameClosePeer, lk[:], []byte{0}), true)
	f.Add(frameBytes(FrameWatchConns), false)
	f.Add(frameBytes(FrameClosePeer, lk[:]), false)
	f.Add(frameBytes(FrameNotePreferred), false)
	f.Add(frameBytes(FrameNotePreferred, []byte{1, 1}), false)
	f.Add(frameBytes(FramePing, make([]byte, maxPingLen)), false)
	f.Add(frameBytes(FramePing, make([]byte, maxPingLen+1)), false)
	f.Add(frameBytes(FramePing, make([]byte, 7)), false)
	f.Add(frameBytes(FramePong, []byte("12345678")), false)
	f.Add(frameBytes(FrameClientInfo, []byte("again")), false)
	f.Add([]byte{0x7f, 0xff, 0xff, 0xff, 0xff}, false)
	f.Add([]byte{byte(FrameSendPacket), 0, 1, 4, 1}, false) // maxFrameLen+1
	f.Fuzz(func(t *testing.T, data []byte, mesh bool) {
		s := NewServer(fuzzServer, &ServerOptions{MeshKey: testMeshKey})
		a, b := net.Pipe()
		defer a.Close()
		defer b.Close()
		local := newSclient(s, lk, a, nil, nil)
		if err := s.register(local); err != nil {
			t.Fatal(err)
		}
		c, d := net.Pipe()
		defer c.Close()
		defer d.Close()
		cl := newSclient(s, src, c, bufio.NewReaderSize(bytes.NewReader(data), 64), nil)
		cl.canMesh = mesh
		if err := s.register(cl); err != nil {
			t.Fatal(err)
		}
		err := cl.readLoop()
		if err == nil {
			t.Fatal("readLoop ended without an error")
		}
		if len(err.Error()) > 300 {
			t.Fatalf("error of %d bytes: a client controls its length", len(err.Error()))
		}
		if !mesh && s.m.meshRefused.Load() > 0 && len(s.watchers) != 0 {
			t.Fatal("a plain client became a watcher")
		}
		for _, p := range local.q.take(nil, sendQueueDepth) {
			if p.peer != src && !mesh {
				t.Fatalf("a plain client's packet arrived stamped %s", p.peer.ShortString())
			}
			putBuf(p.buf)
		}
	})
}

// FuzzHandshake feeds arbitrary bytes to the relay as a client's first frames: it must never
// panic, and only a ClientInfo sealed by its claimed key may pass.
func FuzzHandshake(f *testing.F) {
	ci, err := clientInfoPayload(fuzzClient, fuzzServer.Public(), &ClientInfo{Version: ProtocolVersion})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(frameBytes(FrameClientInfo, ci))
	f.Add(frameBytes(FrameClientInfo, ci[:40]))
	f.Add(frameBytes(FrameClientInfo))
	f.Add(frameBytes(FrameClientInfo, make([]byte, maxClientInfoLen+1)))
	f.Add(frameBytes(FrameSendPacket, make([]byte, 40)))
	f.Add([]byte{byte(FrameClientInfo), 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		s := NewServer(fuzzServer, nil)
		a, b := net.Pipe()
		defer a.Close()
		go io.Copy(io.Discard, b) // the ServerKey frame
		bw := bufio.NewWriter(a)
		k, _, err := s.handshake(context.Background(), a, bufio.NewReader(bytes.NewReader(data)), bw)
		if err == nil && k != fuzzClient.Public() {
			t.Fatalf("admitted %s", k.ShortString())
		}
	})
}
