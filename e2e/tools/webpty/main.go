// Command webpty is the reference web terminal of the browser benchmarks: a page with the
// project's xterm.js over a WebSocket to a shell on a local PTY, on loopback only.
//
// Usage:
//
//	webpty --assets DIR [--listen 127.0.0.1:0] [--shell /bin/bash]
//
// DIR holds the page (index.html and what it loads; e2e/browser/webpty.mjs builds it with
// the project's esbuild). It prints "URL: http://127.0.0.1:PORT/?t=TOKEN" once listening;
// the WebSocket /pty needs that token. Binary messages carry terminal bytes both ways; a text
// message {"cols":C,"rows":R} resizes the PTY. Every connection gets its own shell, hung up
// when the connection ends. It is a test tool, built only by the benchmarks and tests.
package main

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"github.com/coder/websocket"

	"tsconnect/internal/pty"
)

// maxMessage bounds one message from the page (keystrokes, pastes, resizes).
const maxMessage = 1 << 20

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "loopback address to listen on")
	assets := flag.String("assets", "", "directory with the page (index.html …)")
	shell := flag.String("shell", "/bin/bash", "shell to run on the PTY")
	flag.Parse()
	if *assets == "" {
		log.Fatal("webpty: --assets is required")
	}
	host, _, err := net.SplitHostPort(*listen)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		log.Fatalf("webpty: --listen %q is not a loopback address", *listen)
	}
	tok := make([]byte, 16)
	rand.Read(tok)
	token := hex.EncodeToString(tok)

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/", http.FileServer(http.Dir(*assets)))
	mux.HandleFunc("/pty", func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.URL.Query().Get("t")), []byte(token)) != 1 {
			http.Error(w, "bad token", http.StatusForbidden)
			return
		}
		c, err := websocket.Accept(w, r, nil) // same-origin only (the default)
		if err != nil {
			return
		}
		c.SetReadLimit(maxMessage)
		if err := serve(r.Context(), c, *shell); err != nil {
			log.Printf("webpty: session: %v", err)
		}
	})
	fmt.Printf("URL: http://%s/?t=%s\n", ln.Addr(), token)
	srv := &http.Server{Handler: mux}
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		<-sig
		srv.Close()
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}

// resize is the text message that sets the PTY's size.
type resize struct {
	Cols uint16 `json:"cols"`
	Rows uint16 `json:"rows"`
}

// serve runs one shell on a fresh PTY for c until either side ends.
func serve(ctx context.Context, c *websocket.Conn, shell string) error {
	defer c.CloseNow()
	master, slave, err := pty.Open()
	if err != nil {
		return err
	}
	defer master.Close()
	cmd := exec.Command(shell, "-l")
	cmd.Env = append(os.Environ(), "TERM=xterm-256color")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	err = cmd.Start()
	slave.Close()
	if err != nil {
		return err
	}
	defer func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGHUP)
		cmd.Wait()
	}()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { // PTY → page: each read one binary message, as plain web terminals do.
		defer cancel()
		buf := make([]byte, 32<<10)
		for {
			n, err := master.Read(buf)
			if err != nil {
				return
			}
			if c.Write(ctx, websocket.MessageBinary, buf[:n]) != nil {
				return
			}
		}
	}()
	for {
		typ, msg, err := c.Read(ctx)
		if err != nil {
			return nil
		}
		if typ == websocket.MessageText {
			var rs resize
			if json.Unmarshal(msg, &rs) != nil || rs.Cols == 0 || rs.Rows == 0 || rs.Cols > 1000 || rs.Rows > 1000 {
				return fmt.Errorf("bad resize message %.80q", msg)
			}
			if err := pty.SetSize(master, uint32(rs.Cols), uint32(rs.Rows), 0, 0); err != nil {
				return err
			}
			continue
		}
		if _, err := master.Write(msg); err != nil {
			return nil
		}
	}
}
