package sshclient

import (
	"io"
	"testing"

	"golang.org/x/crypto/ssh"

	"tsconnect/internal/sshtest"
)

// BenchmarkCipher moves 4 MiB per op through one SSH channel over sshtest.Pipe (buffered: both sides write their version first) with each
// cipher the wasm client may negotiate, to compare them where it matters (GOOS=js GOARCH=wasm:
// go test -exec "$(go env GOROOT)/lib/wasm/go_js_wasm_exec" -run '^$' -bench Cipher ./sshclient).
func BenchmarkCipher(b *testing.B) {
	for _, c := range []string{ssh.CipherChaCha20Poly1305, ssh.CipherAES128GCM, ssh.CipherAES256GCM, "aes128-ctr"} {
		b.Run(c, func(b *testing.B) { benchCipher(b, c) })
	}
}

func benchCipher(b *testing.B, cipher string) {
	const chunk, perOp = 32 << 10, 4 << 20
	signer := sshtest.Signer(b, 1)
	scfg := &ssh.ServerConfig{NoClientAuth: true, Config: ssh.Config{Ciphers: []string{cipher}}}
	scfg.AddHostKey(signer)
	cnc, snc := sshtest.Pipe()
	defer cnc.Close()
	defer snc.Close()
	go func() {
		_, chans, reqs, err := ssh.NewServerConn(snc, scfg)
		if err != nil {
			b.Log(err)
			snc.Close()
			return
		}
		go ssh.DiscardRequests(reqs)
		for nch := range chans {
			ch, creqs, err := nch.Accept()
			if err != nil {
				return
			}
			go ssh.DiscardRequests(creqs)
			go func() {
				buf := make([]byte, chunk)
				for {
					if _, err := ch.Write(buf); err != nil {
						return
					}
				}
			}()
		}
	}()
	ccfg := &ssh.ClientConfig{User: "bench", HostKeyCallback: ssh.FixedHostKey(signer.PublicKey()), Config: ssh.Config{Ciphers: []string{cipher}}}
	conn, chans, reqs, err := ssh.NewClientConn(cnc, "pipe", ccfg)
	if err != nil {
		b.Fatal(err)
	}
	client := ssh.NewClient(conn, chans, reqs)
	defer client.Close()
	ch, creqs, err := client.OpenChannel("bench", nil)
	if err != nil {
		b.Fatal(err)
	}
	go ssh.DiscardRequests(creqs)
	b.SetBytes(perOp)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := io.CopyN(io.Discard, ch, perOp); err != nil {
			b.Fatal(err)
		}
	}
}
