package e2e

import (
	"io"
	"strconv"
	"testing"

	"golang.org/x/crypto/ssh"
)

// BenchmarkNativeBulk measures bulk MiB/s from the agent to a native client node over SSH
// through the embedded relay (the browser path, natively). `make bench` prints it.
func BenchmarkNativeBulk(b *testing.B) {
	tn := newTestNet(b)
	tn.startAgent("server")
	client := tn.startNode("laptop")
	benchBulk(b, sshDial(b, client, "server"))
}

// benchBulk times b.N reads of 32 MiB from `head -c` over cl.
func benchBulk(b *testing.B, cl *ssh.Client) {
	const size = 32 << 20
	b.SetBytes(size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if n := bulkRead(b, cl, size); n != size {
			b.Fatalf("read %d bytes, want %d", n, size)
		}
	}
}

// bulkRead runs `head -c size /dev/zero` on the agent and counts what arrives.
func bulkRead(b *testing.B, cl *ssh.Client, size int) int64 {
	s, err := cl.NewSession()
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	out, err := s.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Start("head -c " + strconv.Itoa(size) + " /dev/zero"); err != nil {
		b.Fatal(err)
	}
	n, err := io.Copy(io.Discard, out)
	if err != nil {
		b.Fatal(err)
	}
	s.Wait()
	return n
}
