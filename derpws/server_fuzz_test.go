//go:build !js

package derpws

import (
	"bufio"
	"bytes"
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
		if err := cl.readLoop(); err == nil {
			t.Fatal("readLoop ended without an error")
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
