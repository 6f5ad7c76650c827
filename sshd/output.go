package sshd

import (
	"io"
	"os"
	"sync/atomic"
	"time"
)

// drainIdle is how long output keeps being read after the process exits when no
// end-of-file comes: a background job may hold the terminal or pipe open forever,
// while what the process itself wrote is already buffered and reads at once.
const drainIdle = 250 * time.Millisecond

// output copies a process's stdout or stderr (a PTY master or a pipe) to the channel.
type output struct {
	r      *os.File
	w      io.Writer
	exited atomic.Bool
	done   chan struct{}
}

func newOutput(r *os.File, w io.Writer) *output {
	o := &output{r: r, w: w, done: make(chan struct{})}
	go o.copy()
	return o
}

func (o *output) copy() {
	defer close(o.done)
	buf := make([]byte, 32<<10)
	for {
		if o.exited.Load() {
			o.r.SetReadDeadline(time.Now().Add(drainIdle))
		}
		n, err := o.r.Read(buf)
		if n > 0 {
			if _, werr := o.w.Write(buf[:n]); werr != nil {
				return // channel gone; the process sees EPIPE or a hang-up
			}
		}
		if err != nil {
			return // EOF (pipe), EIO (PTY with no slave left) or the drain deadline
		}
	}
}

// processExited switches to draining: reading stops at EOF or after drainIdle without data.
func (o *output) processExited() {
	o.exited.Store(true)
	o.r.SetReadDeadline(time.Now().Add(drainIdle))
}
