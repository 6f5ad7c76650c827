// Command termload is the load of the terminal benchmark's "echo during bulk output": it
// streams a file to its terminal inside a scroll region (all rows but the last two) and, while
// it does, shows every key it reads on the last row as "KEY n b" (n counting from 1, b the
// byte in hex), so a page can see a keystroke's round trip while output floods the screen.
//
// Usage:
//
//	termload FILE [TIMES]
//
// It streams FILE TIMES times over (default 1). The terminal is raw (no echo, no signals) while it runs; a Ctrl-C key (0x03) stops the
// stream. At the end it restores the terminal, resets the scroll region and prints
// "TERMLOAD DONE n" (n keys seen).
package main

import (
	"fmt"
	"io"
	"log"
	"os"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// chunk is the size of one write of the stream: small enough that a key's status line is
// not held behind a long write.
const chunk = 16 << 10

func main() {
	if len(os.Args) < 2 || len(os.Args) > 3 {
		log.Fatal("usage: termload FILE [TIMES]")
	}
	times := 1
	if len(os.Args) == 3 {
		t, err := strconv.Atoi(os.Args[2])
		if err != nil || t < 1 {
			log.Fatalf("termload: bad TIMES %q", os.Args[2])
		}
		times = t
	}
	f, err := os.Open(os.Args[1])
	if err != nil {
		log.Fatal(err)
	}
	fd := int(os.Stdin.Fd())
	saved, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		log.Fatal(err)
	}
	raw := *saved
	raw.Lflag &^= unix.ECHO | unix.ICANON | unix.ISIG | unix.IEXTEN
	raw.Iflag &^= unix.IXON | unix.ICRNL
	raw.Cc[unix.VMIN], raw.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &raw); err != nil {
		log.Fatal(err)
	}
	rows := 24
	if ws, err := unix.IoctlGetWinsize(fd, unix.TIOCGWINSZ); err == nil && ws.Row >= 4 {
		rows = int(ws.Row)
	}

	var mu sync.Mutex // one write at a time: the status line never splits a stream write
	write := func(b []byte) {
		mu.Lock()
		os.Stdout.Write(b)
		mu.Unlock()
	}
	write(fmt.Appendf(nil, "\033[2J\033[1;%dr\033[1;1H", rows-2))
	stop := make(chan struct{})
	keys := 0
	var keysMu sync.Mutex
	go func() {
		b := make([]byte, 1)
		for {
			if n, err := os.Stdin.Read(b); err != nil || n == 0 {
				return
			}
			keysMu.Lock()
			keys++
			n := keys
			keysMu.Unlock()
			write(fmt.Appendf(nil, "\0337\033[%d;1H\033[2KKEY %d %02x\0338", rows, n, b[0]))
			if b[0] == 3 {
				close(stop)
				return
			}
		}
	}()
	buf := make([]byte, chunk)
stream:
	for {
		select {
		case <-stop:
			break stream
		default:
		}
		n, err := f.Read(buf)
		if n > 0 {
			write(buf[:n])
		}
		if err == io.EOF {
			if times--; times == 0 {
				break
			}
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				log.Fatal(err)
			}
			continue
		}
		if err != nil {
			log.Fatal(err)
		}
	}
	unix.IoctlSetTermios(fd, unix.TCSETS, saved)
	keysMu.Lock()
	n := keys
	keysMu.Unlock()
	write(fmt.Appendf(nil, "\033[r\033[%d;1H\r\nTERMLOAD DONE %d\r\n", rows, n))
}
