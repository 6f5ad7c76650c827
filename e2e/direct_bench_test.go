package e2e

import (
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"tsconnect/agent"
	"tsconnect/control"
)

// directBenchNet returns an SSH client from one agent to another on loopback: over a direct
// UDP path (direct), or through control's embedded relay (agents without --udp-port).
func directBenchNet(b *testing.B, direct bool) *ssh.Client {
	stunPC, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	tn := startTestNet(b, func(c *control.Config) { c.STUN = stunPC }, ownNodesPolicy)
	var x, y *agent.Agent
	if direct {
		x, y = tn.startDirectAgent("x"), tn.startDirectAgent("y")
	} else {
		x, y = tn.startAgent("x"), tn.startAgent("y")
	}
	cl := sshDial(b, x.Node(), "y")
	if direct {
		ky := y.Node().NodeKey()
		deadline := time.Now().Add(10 * time.Second)
		for !x.Paths().Path(ky).Direct.IsValid() {
			if time.Now().After(deadline) {
				b.Fatal("x never went direct to y")
			}
			x.Paths().Ping(ky)
			time.Sleep(100 * time.Millisecond)
		}
	}
	return cl
}

// benchPaths are the two ways a benchmark runs: direct, and through the relay.
var benchPaths = []struct {
	name   string
	direct bool
}{{"direct", true}, {"relayed", false}}

// BenchmarkDirectBulk measures bulk MiB/s over SSH between two agents on loopback, direct
// against relayed (issue 21, part 5).
func BenchmarkDirectBulk(b *testing.B) {
	for _, mode := range benchPaths {
		b.Run(mode.name, func(b *testing.B) {
			benchBulk(b, directBenchNet(b, mode.direct))
		})
	}
}

// BenchmarkDirectEcho measures one byte's round trip through `cat` in an SSH session
// between two agents on loopback, direct against relayed.
func BenchmarkDirectEcho(b *testing.B) {
	for _, mode := range benchPaths {
		b.Run(mode.name, func(b *testing.B) {
			in, out := catSession(b, directBenchNet(b, mode.direct))
			buf := []byte{'x'}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := in.Write(buf); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(out, buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
