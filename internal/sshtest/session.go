package sshtest

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"strings"

	"golang.org/x/crypto/ssh"
)

// session answers one session channel's requests until the client closes it.
func (s *Server) session(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	exit := func(code uint32) {
		ch.SendRequest("exit-status", false, binary.BigEndian.AppendUint32(nil, code))
		ch.Close()
	}
	for req := range reqs {
		switch req.Type {
		case "pty-req":
			var p struct {
				Term             string
				Cols, Rows, W, H uint32
				Modes            string
			}
			ssh.Unmarshal(req.Payload, &p)
			s.mu.Lock()
			s.ptyTerm, s.ptyRows, s.ptyCols = p.Term, int(p.Rows), int(p.Cols)
			s.mu.Unlock()
			req.Reply(true, nil)
		case "window-change":
			var p struct{ Cols, Rows, W, H uint32 }
			ssh.Unmarshal(req.Payload, &p)
			s.Resizes <- [2]int{int(p.Rows), int(p.Cols)}
		case "shell":
			req.Reply(true, nil)
			go func() {
				sc := bufio.NewScanner(ch)
				for sc.Scan() {
					var code uint32
					if _, err := fmt.Sscanf(sc.Text(), "exit %d", &code); err == nil {
						exit(code)
						return
					}
					fmt.Fprintf(ch, "%s\r\n", sc.Text())
				}
			}()
		case "exec":
			var p struct{ Command string }
			ssh.Unmarshal(req.Payload, &p)
			req.Reply(true, nil)
			var code uint32
			if msg, ok := strings.CutPrefix(p.Command, "stderr "); ok {
				fmt.Fprint(ch.Stderr(), msg)
				fmt.Fprint(ch, "out")
			} else if _, err := fmt.Sscanf(p.Command, "exit %d", &code); err != nil {
				code = 127
			}
			exit(code)
		default:
			if req.WantReply {
				req.Reply(false, nil)
			}
		}
	}
}
