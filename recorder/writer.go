package recorder

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Writer is a recording in progress: it checks each event line and appends it to the
// .cast file, buffered for at most the store's FlushDelay. Its methods are safe for
// concurrent use; after Close or Abort, writes fail.
type Writer struct {
	s       *Store
	id      string
	source  string
	written atomic.Int64 // size, for List while recording

	mu       sync.Mutex
	f        *os.File
	bw       *bufio.Writer
	size     int64   // bytes written, buffered ones included
	last     float64 // the last event's time
	armed    bool    // a flush is scheduled
	finished bool
	err      error         // why writes fail now
	changed  chan struct{} // closed (and replaced) when more is on disk or the recording ends
}

func newWriter(s *Store, m *Meta, f *os.File) *Writer {
	return &Writer{s: s, id: m.ID, source: m.Source, f: f, bw: bufio.NewWriterSize(f, 64<<10), changed: make(chan struct{})}
}

// ID is the recording's ID.
func (w *Writer) ID() string { return w.id }

// writeHeader writes the header line, normalised, and flushes it.
func (w *Writer) writeHeader(h Header) error {
	b, err := json.Marshal(h)
	if err != nil {
		return err
	}
	n, err := w.bw.Write(append(b, '\n'))
	w.size += int64(n)
	w.written.Store(w.size)
	if err == nil {
		err = w.bw.Flush()
	}
	return err
}

// WriteEvent checks one event line (without its newline: see checkEvent; times never
// going back) and appends it. A source's recordings exceed its quota by at most the line
// that reached it. A bad line, a full disk or a used-up quota ends the
// recording (Broken, DiskFull, OverQuota) and is returned.
func (w *Writer) WriteEvent(line []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	if len(line)+1 > MaxEventLine {
		return w.failLocked(Broken, fmt.Errorf("recorder: event line of %d bytes, at most %d", len(line)+1, MaxEventLine))
	}
	ev, err := checkEvent(line)
	if err != nil {
		return w.failLocked(Broken, fmt.Errorf("recorder: %w", err))
	}
	if ev.time < w.last {
		return w.failLocked(Broken, fmt.Errorf("recorder: event time %g before the previous one (%g)", ev.time, w.last))
	}
	w.last = ev.time
	n := int64(len(line) + 1)
	s := w.s
	s.mu.Lock()
	// The line that reaches the quota is kept: a source exceeds it by at most one line.
	over := s.opts.SourceQuota > 0 && s.usage[w.source] >= s.opts.SourceQuota
	if !over {
		s.usage[w.source] += n
	}
	s.mu.Unlock()
	if over {
		return w.failLocked(OverQuota, fmt.Errorf("%w: %s reached its quota of %s", ErrQuota, w.source, sizeText(s.opts.SourceQuota)))
	}
	_, err = w.bw.Write(line)
	if err == nil {
		err = w.bw.WriteByte('\n')
	}
	if err != nil {
		return w.failLocked(w.writeState(err), s.storageErr(err))
	}
	w.size += n
	w.written.Store(w.size)
	if !w.armed {
		w.armed = true
		time.AfterFunc(s.opts.FlushDelay, w.timedFlush)
	}
	return nil
}

func (w *Writer) writeState(err error) State {
	if isNoSpace(err) {
		return DiskFull
	}
	return Broken
}

func isNoSpace(err error) bool { return errors.Is(err, syscall.ENOSPC) }

// timedFlush writes what waited FlushDelay in memory, and wakes followers.
func (w *Writer) timedFlush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.armed = false
	if w.finished {
		return
	}
	if err := w.bw.Flush(); err != nil {
		w.failLocked(w.writeState(err), w.s.storageErr(err))
		return
	}
	w.notifyLocked()
}

func (w *Writer) notifyLocked() {
	close(w.changed)
	w.changed = make(chan struct{})
}

// Close ends the recording normally, with the session's exit code if known.
func (w *Writer) Close(exitCode *int) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	return w.finishLocked(Ended, nil, exitCode)
}

// Abort ends the recording as state (Broken when the upload stopped) for reason err.
func (w *Writer) Abort(state State, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.failLocked(state, err)
	}
}

// failLocked ends the recording as state for err and returns err.
func (w *Writer) failLocked(state State, err error) error {
	w.finishLocked(state, err, nil)
	w.err = err
	return err
}

// finishLocked flushes and closes the file and saves the final metadata.
func (w *Writer) finishLocked(state State, cause error, exitCode *int) error {
	if w.finished {
		return w.err
	}
	w.finished = true
	ferr := w.bw.Flush()
	if ferr == nil {
		ferr = w.f.Sync()
	}
	if cerr := w.f.Close(); ferr == nil {
		ferr = cerr
	}
	if ferr != nil && state == Ended {
		state, cause = w.writeState(ferr), w.s.storageErr(ferr)
	}
	counted := w.size // what usage holds for this recording
	if st, err := os.Stat(w.f.Name()); err == nil {
		w.size = st.Size() // what is on disk, when a flush failed
	}
	s := w.s
	s.mu.Lock()
	e := s.recs[w.id]
	e.live = nil
	m := &e.meta
	s.usage[w.source] += w.size - counted
	m.End, m.State, m.ExitCode, m.Size = s.opts.Now(), state, exitCode, w.size
	if cause != nil {
		m.Error = cause.Error()
	}
	mcopy := *m
	s.active--
	s.activeBy[w.source]--
	s.mu.Unlock()
	w.notifyLocked()
	err := saveMeta(s.dir, &mcopy)
	s.opts.Logf("recorder: %s %s: %d bytes%s", w.id, state, w.size, errSuffix(cause))
	if cause != nil {
		return cause
	}
	return err
}

func errSuffix(err error) string {
	if err == nil {
		return ""
	}
	return " (" + err.Error() + ")"
}

// progress is what a follower needs: the channel closed at the next change, and whether
// the recording has ended (then the file is complete).
func (w *Writer) progress() (changed <-chan struct{}, finished bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.changed, w.finished
}
