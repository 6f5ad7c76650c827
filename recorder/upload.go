package recorder

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"tsconnect/internal/safetext"
)

// Limits of the uploading side (an agent sending a recording).
const (
	// uploadWriteTimeout bounds one write to the recorder's connection: a recorder that
	// stops reading for this long breaks the upload (rather than stall the session forever).
	uploadWriteTimeout = 10 * time.Second
	// maxEventData bounds the bytes of data in one event line: escaped (at most 6 bytes
	// each) the line stays under MaxEventLine.
	maxEventData = 32 << 10
	// finishTimeout bounds waiting for the recorder's last answer.
	finishTimeout = 5 * time.Second
	// maxAnswerLine bounds a line of the recorder's answer.
	maxAnswerLine = 16 << 10
	// silenceTimeout is how long the recorder may send nothing (it repeats {"id"} every
	// Keepalive) before the upload counts it gone.
	silenceTimeout = 5 * Keepalive
)

// DialFunc connects to a recorder (an overlay dialer, such as a node's Dial).
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Upload is a recording being streamed to a recorder: POST /v1/recordings as the upload API
// describes. Its methods are safe for concurrent use; an event blocks while the recorder is
// slow to read (up to 10 s), so it never buffers more than one line.
type Upload struct {
	id     string
	start  time.Time
	pw     *io.PipeWriter
	req    *http.Request
	cancel context.CancelFunc
	tr     *http.Transport

	mu       sync.Mutex // serializes writes
	carry    [2][]byte  // an incomplete UTF-8 sequence at the end of the last output, input
	finished bool       // Finish or Abort was called

	errMu  sync.Mutex // not held while writing: a failure unblocks a stuck write
	err    error
	failed chan struct{}
	final  chan UploadAnswer // the last answer, once the recorder sent it
}

// StartUpload posts the header h to the recorder at addr (host:port), dialing with dial,
// and returns once the recorder has accepted the recording. It fails, with an error
// naming the recorder's answer, when the recorder refuses or does not accept it before
// ctx ends.
func StartUpload(ctx context.Context, dial DialFunc, addr string, h Header) (*Upload, error) {
	h.Version = 2
	line, err := json.Marshal(h)
	if err != nil {
		return nil, err
	}
	if len(line)+1 > MaxHeaderLine {
		return nil, fmt.Errorf("the header line is %d bytes, more than %d", len(line)+1, MaxHeaderLine)
	}
	tr := &http.Transport{DisableKeepAlives: true, MaxResponseHeaderBytes: 16 << 10,
		DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
			c, err := dial(ctx, network, a)
			if err != nil {
				return nil, err
			}
			return &deadlineConn{Conn: c}, nil
		}}
	pr, pw := io.Pipe()
	rctx, cancel := context.WithCancel(context.Background()) // lives as long as the upload
	req, err := http.NewRequestWithContext(rctx, "POST", "http://"+addr+"/v1/recordings", pr)
	if err != nil {
		cancel()
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-asciicast")
	req.Trailer = http.Header{ExitCodeTrailer: nil}
	u := &Upload{start: time.Now(), pw: pw, req: req, cancel: cancel, tr: tr,
		failed: make(chan struct{}), final: make(chan UploadAnswer, 1)}
	type result struct {
		resp *http.Response
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := tr.RoundTrip(req)
		done <- result{resp, err}
	}()
	go pw.Write(append(line, '\n')) // ends with the pipe when the upload is given up
	abort := func(err error) (*Upload, error) {
		cancel()
		pw.CloseWithError(err)
		tr.CloseIdleConnections()
		return nil, err
	}
	var resp *http.Response
	select {
	case r := <-done:
		if r.err != nil {
			return abort(r.err)
		}
		resp = r.resp
	case <-ctx.Done():
		return abort(fmt.Errorf("no answer in time (%w)", context.Cause(ctx)))
	}
	br := bufio.NewReaderSize(io.LimitReader(resp.Body, 1<<40), maxAnswerLine)
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		json.NewDecoder(io.LimitReader(br, maxAnswerLine)).Decode(&e)
		resp.Body.Close()
		return abort(fmt.Errorf("refused (%s): %s", resp.Status, safetext.Bounded(e.Error, 512)))
	}
	first := make(chan error, 1)
	go func() {
		a, err := readAnswer(br)
		if err == nil && a.ID == "" {
			err = errors.New("its answer names no recording")
		}
		u.id = a.ID
		first <- err
		if err == nil {
			u.readAnswers(br)
		}
		resp.Body.Close()
	}()
	select {
	case err := <-first:
		if err != nil {
			return abort(err)
		}
	case <-ctx.Done():
		return abort(fmt.Errorf("no answer in time (%w)", context.Cause(ctx)))
	}
	return u, nil
}

// readAnswer reads one line of the recorder's answer.
func readAnswer(br *bufio.Reader) (UploadAnswer, error) {
	var a UploadAnswer
	line, err := br.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			err = fmt.Errorf("an answer line longer than %d bytes", maxAnswerLine)
		}
		return a, err
	}
	if err := json.Unmarshal(line, &a); err != nil {
		return a, fmt.Errorf("a bad answer line: %w", err)
	}
	return a, nil
}

// readAnswers waits for the recorder's last answer (skipping its keepalives): before
// Finish it means the recording broke (or the connection was lost).
func (u *Upload) readAnswers(br *bufio.Reader) {
	a, err := readAnswer(br)
	for err == nil && a.State == "" {
		a, err = readAnswer(br)
	}
	switch {
	case err != nil:
		u.fail(fmt.Errorf("the connection to the recorder broke: %v", err))
	case a.State != Ended:
		u.fail(fmt.Errorf("the recorder ended the recording as %s: %s", a.State, safetext.Bounded(a.Error, 512)))
	}
	if err == nil {
		u.final <- a
	}
}

// fail marks the upload broken (once) and unblocks its writers.
func (u *Upload) fail(err error) {
	u.errMu.Lock()
	defer u.errMu.Unlock()
	if u.err != nil {
		return
	}
	u.err = err
	close(u.failed)
	u.pw.CloseWithError(err)
}

// ID is the recording's ID on the recorder.
func (u *Upload) ID() string { return u.id }

// Failed is closed once the upload has broken; Err then says why.
func (u *Upload) Failed() <-chan struct{} { return u.failed }

// Err is why the upload broke, or nil.
func (u *Upload) Err() error {
	u.errMu.Lock()
	defer u.errMu.Unlock()
	return u.err
}

// Output sends data as an "o" event; a UTF-8 sequence cut at its end waits for the next.
func (u *Upload) Output(data []byte) error { return u.event('o', data) }

// Input sends data as an "i" event.
func (u *Upload) Input(data []byte) error { return u.event('i', data) }

// Resize sends an "r" event.
func (u *Upload) Resize(cols, rows uint32) error {
	if cols < 1 || rows < 1 || cols > MaxTermSize || rows > MaxTermSize {
		return nil // not a size a recording can hold: not recorded
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.writeLocked('r', fmt.Appendf(nil, "%dx%d", cols, rows))
}

func (u *Upload) event(kind byte, data []byte) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	c := &u.carry[0]
	if kind == 'i' {
		c = &u.carry[1]
	}
	buf := append(*c, data...)
	tail := incompleteTail(buf)
	*c = append([]byte(nil), buf[len(buf)-tail:]...)
	buf = buf[:len(buf)-tail]
	for len(buf) > 0 {
		n := len(buf)
		if n > maxEventData {
			n = maxEventData
			for n > maxEventData-utf8.UTFMax && !utf8.RuneStart(buf[n]) {
				n--
			}
		}
		if err := u.writeLocked(kind, buf[:n]); err != nil {
			return err
		}
		buf = buf[n:]
	}
	return nil
}

// incompleteTail is how many bytes at the end of b begin a UTF-8 sequence not yet complete.
func incompleteTail(b []byte) int {
	for i := 1; i <= utf8.UTFMax-1 && i <= len(b); i++ {
		if utf8.RuneStart(b[len(b)-i]) {
			if utf8.FullRune(b[len(b)-i:]) {
				return 0
			}
			return i
		}
	}
	return 0
}

// writeLocked sends one event line: [TIME, "KIND", DATA] (DATA as a JSON string, invalid
// UTF-8 replaced).
func (u *Upload) writeLocked(kind byte, data []byte) error {
	if err := u.Err(); err != nil {
		return err
	}
	if u.finished {
		return errors.New("the recording is finished")
	}
	var b bytes.Buffer
	b.WriteByte('[')
	b.WriteString(strconv.FormatFloat(time.Since(u.start).Seconds(), 'f', 6, 64))
	b.WriteString(`, "`)
	b.WriteByte(kind)
	b.WriteString(`", `)
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(string(data)) // ends the line with '\n'
	b.Truncate(b.Len() - 1)
	b.WriteString("]\n")
	if _, err := u.pw.Write(b.Bytes()); err != nil {
		u.fail(fmt.Errorf("sending to the recorder: %v", err))
		return u.Err()
	}
	return nil
}

// Finish ends the recording with the session's exit code (0 to 255; anything else:
// unknown) and waits (up to 5 s) for the recorder to confirm it stored it whole.
func (u *Upload) Finish(exitCode int) error {
	u.mu.Lock()
	if u.finished {
		u.mu.Unlock()
		return errors.New("the recording is finished")
	}
	u.finished = true
	if exitCode >= 0 && exitCode <= 255 {
		u.req.Trailer.Set(ExitCodeTrailer, strconv.Itoa(exitCode))
	}
	err := u.Err()
	if err == nil {
		u.pw.Close()
	}
	u.mu.Unlock()
	defer u.Abort()
	if err != nil {
		return err
	}
	select {
	case <-u.final:
	case <-u.failed:
	case <-time.After(finishTimeout):
		u.fail(fmt.Errorf("the recorder did not confirm the end of the recording within %v", finishTimeout))
	}
	return u.Err()
}

// Abort drops the upload (the recorder keeps what it got, as broken unless Finish ended it).
func (u *Upload) Abort() {
	u.mu.Lock()
	u.finished = true
	u.pw.CloseWithError(errors.New("recording aborted"))
	u.mu.Unlock()
	u.cancel()
	u.tr.CloseIdleConnections()
}

// deadlineConn bounds every write (see uploadWriteTimeout) and read (silenceTimeout).
type deadlineConn struct{ net.Conn }

func (c *deadlineConn) Write(p []byte) (int, error) {
	c.Conn.SetWriteDeadline(time.Now().Add(uploadWriteTimeout))
	return c.Conn.Write(p)
}

func (c *deadlineConn) Read(p []byte) (int, error) {
	c.Conn.SetReadDeadline(time.Now().Add(silenceTimeout))
	return c.Conn.Read(p)
}
