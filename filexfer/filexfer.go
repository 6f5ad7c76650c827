// Package filexfer moves files over an SFTP channel for the page: list a directory, stream a
// download with flow control, an upload with backpressure that lands whole or not at all.
// Every value from the page is bounded here; the file wasm (wasmfiles) binds it to JavaScript.
package filexfer

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"sync"
	"time"

	"tsconnect/internal/flowcredit"
	"tsconnect/sftpclient"
)

// Limits on what the page may ask of file transfer (values from the page are bounded here).
const (
	// MaxPathLen bounds a remote path from the page.
	MaxPathLen = 4096
	// MaxTransfers is how many downloads and uploads one session runs at once.
	MaxTransfers = 8
	// MaxUploadChunk bounds one chunk of an upload from the page.
	MaxUploadChunk = 256 << 10
	// TransferWindow is a transfer's flow control: at most this many bytes of a download go to
	// the page unacknowledged, and an upload's page may send at most this many bytes ahead
	// of those the wasm has passed to the SSH channel (OnAck returns them).
	TransferWindow = 1 << 20
	// fileOpTimeout bounds a listing, and removing an abandoned upload.
	fileOpTimeout = 30 * time.Second
)

// The error codes of file transfer.
const (
	CodeNoSuchFile       = "no_such_file"
	CodePermissionDenied = "permission_denied"
	CodeFileExists       = "file_exists"
	CodeIsDirectory      = "is_directory"
	CodeCanceled         = "canceled"
	CodeTooManyTransfers = "too_many_transfers"
	CodeBadRequest       = "bad_request"
	CodeFileFailed       = "file_failed"   // the server refused or the SFTP channel broke
	CodeNotResumable     = "not_resumable" // an interrupted transfer cannot continue where it got to
)

// resumeMargin is how far before the remote size an interrupted upload continues: the
// writes a lost connection may have left undone, out of order, are all within the last
// Inflight requests, so every byte before size-resumeMargin is known written.
const resumeMargin = sftpclient.Inflight * sftpclient.ChunkSize

// resumeCheck is how many bytes before the point an upload continues from are read back
// and compared with the page's: a hidden file changed since (or not ours) is not continued.
const resumeCheck = 64 << 10

// Error is an error with the code the page switches on.
type Error struct {
	Code string
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

func withCode(code string, err error) error {
	var fe *Error
	if errors.As(err, &fe) {
		return err
	}
	return &Error{code, err}
}

// Code is err's code for the page: one of the Code constants, or "" for none.
func Code(err error) string {
	var fe *Error
	if errors.As(err, &fe) {
		return fe.Code
	}
	return ""
}

// Files is the file transfer of one SSH session. Its methods are safe for concurrent use.
type Files struct {
	ctx  context.Context
	open func() (io.ReadWriteCloser, error)

	// opening is held while a channel opens (network round trips): only by goroutines, never
	// by a call from JavaScript, which must not wait on the network it would deliver.
	opening sync.Mutex

	mu        sync.Mutex
	client    *sftpclient.Client
	transfers int
}

// New returns file transfer on the SFTP channels open returns (an "sftp" subsystem channel
// of the SSH connection, as the logged-in user); ending ctx ends every transfer.
func New(ctx context.Context, open func() (io.ReadWriteCloser, error)) *Files {
	return &Files{ctx: ctx, open: open}
}

// Close ends every transfer and the SFTP channel.
func (s *Files) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.client != nil {
		s.client.Close()
	}
}

// sftp returns the session's SFTP client, opening a channel if none is open.
func (s *Files) sftp() (*sftpclient.Client, error) {
	s.opening.Lock()
	defer s.opening.Unlock()
	s.mu.Lock()
	c := s.client
	s.mu.Unlock()
	if c != nil {
		select {
		case <-c.Done():
		default:
			return c, nil
		}
	}
	if s.ctx.Err() != nil {
		return nil, withCode(CodeCanceled, errors.New("the session has ended"))
	}
	ch, err := s.open()
	if err != nil {
		return nil, withCode(CodeFileFailed, fmt.Errorf("the server offers no file transfer: %w", err))
	}
	c, err = sftpclient.New(ch)
	if err != nil {
		return nil, withCode(CodeFileFailed, err)
	}
	s.mu.Lock()
	s.client = c
	s.mu.Unlock()
	if s.ctx.Err() != nil { // closed while it opened
		c.Close()
	}
	return c, nil
}

// checkPath validates a remote path from the page.
func checkPath(p string) error {
	switch {
	case p == "":
		return withCode(CodeBadRequest, errors.New("the path is empty"))
	case len(p) > MaxPathLen:
		return withCode(CodeBadRequest, fmt.Errorf("the path is %d bytes long (limit %d)", len(p), MaxPathLen))
	case strings.ContainsRune(p, 0):
		return withCode(CodeBadRequest, errors.New("the path contains a NUL byte"))
	}
	return nil
}

// fileError gives an SFTP error the code the page switches on.
func fileError(ctx context.Context, err error) error {
	var se *sftpclient.StatusError
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return withCode(CodeCanceled, errors.New("the transfer was canceled"))
	case errors.Is(err, fs.ErrNotExist):
		return withCode(CodeNoSuchFile, err)
	case errors.Is(err, fs.ErrPermission):
		return withCode(CodePermissionDenied, err)
	case errors.As(err, &se):
		return withCode(CodeFileFailed, err)
	}
	return withCode(CodeFileFailed, err)
}

// Listing is a directory as ListDir returns it.
type Listing struct {
	Path    string             `json:"path"` // absolute, as the server resolved it
	Entries []sftpclient.Entry `json:"entries"`
}

// ListDir lists directory dir on the remote; "" or "." is the login user's home.
func (s *Files) ListDir(ctx context.Context, dir string) (Listing, error) {
	if dir == "" {
		dir = "."
	}
	if err := checkPath(dir); err != nil {
		return Listing{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, fileOpTimeout)
	defer cancel()
	c, err := s.sftp()
	if err != nil {
		return Listing{}, err
	}
	abs, err := c.RealPath(ctx, dir)
	if err != nil {
		return Listing{}, fileError(ctx, err)
	}
	ents, err := c.ReadDir(ctx, abs)
	if err != nil {
		return Listing{}, fileError(ctx, err)
	}
	if ents == nil {
		ents = []sftpclient.Entry{}
	}
	return Listing{Path: abs, Entries: ents}, nil
}

// TransferCallbacks are a transfer's callbacks, called from Go goroutines; each must
// return quickly and not call back into Go synchronously.
type TransferCallbacks struct {
	// OnStart gives a download's size and modification time (Unix seconds) once the file is
	// open (before any OnData).
	OnStart func(size, mtime int64)
	// OnOpen gives an upload's hidden file once it is open, and the offset in the page's
	// file from which the page sends (0, or where a resumed upload continues).
	OnOpen func(hidden string, from int64)
	// OnData receives a download's next bytes, valid only during the call; at most
	// TransferWindow bytes not returned with Transfer.Ack.
	OnData func(p []byte)
	// OnAck returns n bytes of an upload's window: they went to the SSH channel.
	OnAck func(n int)
	// OnDone is called exactly once: with nil when the file is complete on the other side.
	OnDone func(err error)
}

// Transfer is one download or upload as the page holds it; its methods never block.
type Transfer struct {
	ctx    context.Context
	cancel context.CancelFunc
	out    *flowcredit.Credit // download

	mu     sync.Mutex
	chunks [][]byte // upload: from the page, not yet sent
	verify []byte   // upload resumed: the hidden file's bytes the page's first ones must equal
	queued int
	ended  bool
	failed error
	wake   chan struct{}
}

// startTransfer reserves a transfer slot and runs f in a goroutine; OnDone gets f's error.
func (s *Files) startTransfer(remote string, cb TransferCallbacks, f func(t *Transfer) error) *Transfer {
	ctx, cancel := context.WithCancel(s.ctx)
	t := &Transfer{ctx: ctx, cancel: cancel, out: flowcredit.New(TransferWindow), wake: make(chan struct{}, 1)}
	done := func(err error) {
		cancel()
		if cb.OnDone != nil {
			cb.OnDone(err)
		}
	}
	if err := checkPath(remote); err != nil {
		go done(err)
		return t
	}
	s.mu.Lock()
	full := s.transfers >= MaxTransfers
	if !full {
		s.transfers++
	}
	s.mu.Unlock()
	if full {
		go done(withCode(CodeTooManyTransfers, fmt.Errorf("at most %d file transfers at once", MaxTransfers)))
		return t
	}
	go func() {
		err := f(t)
		s.mu.Lock()
		s.transfers--
		s.mu.Unlock()
		done(err)
	}()
	return t
}

// DownloadOptions say where a download starts.
type DownloadOptions struct {
	// Offset continues an interrupted download from this byte, if the file still has the
	// Size and ModTime it had (else not_resumable).
	Offset, Size, ModTime int64
}

// Download streams remote file p to cb.OnStart and cb.OnData.
func (s *Files) Download(p string, o DownloadOptions, cb TransferCallbacks) *Transfer {
	return s.startTransfer(p, cb, func(t *Transfer) error {
		c, err := s.sftp()
		if err != nil {
			return err
		}
		st, err := c.Stat(t.ctx, p)
		if err != nil {
			return fileError(t.ctx, err)
		}
		if st.IsDir() {
			return withCode(CodeIsDirectory, fmt.Errorf("%s is a directory", p))
		}
		switch {
		case o.Offset < 0 || o.Offset > o.Size:
			return withCode(CodeBadRequest, fmt.Errorf("a download offset of %d in a file of %d bytes", o.Offset, o.Size))
		case o.Offset > 0 && (st.Size != o.Size || st.ModTime != o.ModTime):
			return withCode(CodeNotResumable, fmt.Errorf("%s changed on the remote since the download was interrupted (%d bytes, modified %d; was %d bytes, modified %d)",
				p, st.Size, st.ModTime, o.Size, o.ModTime))
		}
		// The size goes to the page only once the file is open: one it may not read fails
		// before the page has made a file to save it in.
		opened := func() error {
			if cb.OnStart != nil {
				cb.OnStart(st.Size, st.ModTime)
			}
			return nil
		}
		err = c.ReadFile(t.ctx, p, uint64(o.Offset), opened, func(b []byte) error {
			if !t.out.Acquire(t.ctx, len(b)) {
				return t.ctx.Err()
			}
			if cb.OnData != nil {
				cb.OnData(b)
			}
			return nil
		})
		return fileError(t.ctx, err)
	})
}

// UploadOptions say how an upload lands.
type UploadOptions struct {
	// Overwrite replaces an existing file; without it an existing file fails the upload
	// with file_exists before anything is sent.
	Overwrite bool
	// Mode is the new file's permission bits (before the remote umask); 0 means 0644.
	Mode uint32
	// Resume continues an interrupted upload in this hidden file (as OnOpen gave it) of a
	// file of Size bytes: from a little before the hidden file's size (resumeMargin), after
	// comparing the bytes before that point with the page's (OnOpen says where it sends from).
	Resume string
	Size   int64
}

// hiddenPrefix is what an upload's hidden file for p is named, before its random suffix.
func hiddenPrefix(p string) string {
	dir, base := path.Split(p)
	return dir + "." + base + ".tsconnect-upload-"
}

// Upload writes what the page passes to Transfer.Write, until Transfer.End, to remote file
// p. The bytes go to a hidden file next to p (".NAME.tsconnect-upload-RANDOM"), renamed
// to p only once all of them are written: a failed or canceled upload leaves p as it was,
// and the hidden file is removed (unless the connection itself is gone).
func (s *Files) Upload(p string, o UploadOptions, cb TransferCallbacks) *Transfer {
	return s.startTransfer(p, cb, func(t *Transfer) error {
		c, err := s.sftp()
		if err != nil {
			return err
		}
		if st, err := c.Stat(t.ctx, p); err == nil {
			if st.IsDir() {
				return withCode(CodeIsDirectory, fmt.Errorf("%s is a directory", p))
			}
			if !o.Overwrite {
				return withCode(CodeFileExists, fmt.Errorf("%s exists", p))
			}
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fileError(t.ctx, err)
		}
		var w *sftpclient.Writer
		var tmp string
		if o.Resume != "" {
			tmp = o.Resume
			w, err = t.resumeUpload(c, p, o, cb)
		} else {
			var rnd [6]byte
			rand.Read(rnd[:])
			tmp = hiddenPrefix(p) + hex.EncodeToString(rnd[:])
			mode := o.Mode & 0o777
			if mode == 0 {
				mode = 0o644
			}
			w, err = c.Create(t.ctx, tmp, mode, false)
			if err == nil && cb.OnOpen != nil {
				cb.OnOpen(tmp, 0)
			}
		}
		if err != nil {
			var se *sftpclient.StatusError
			if errors.As(err, &se) {
				se.Path = p // the user asked for p, not the hidden name
			}
			return fileError(t.ctx, err)
		}
		err = t.sendUpload(w, cb)
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = c.Rename(t.ctx, tmp, p)
		}
		if err != nil {
			// A session that ended (the connection dropped) keeps the hidden file for a resume.
			if s.ctx.Err() == nil {
				rctx, rcancel := context.WithTimeout(context.WithoutCancel(t.ctx), fileOpTimeout)
				c.Remove(rctx, tmp)
				rcancel()
			}
			return fileError(t.ctx, err)
		}
		return nil
	})
}

// resumeUpload opens an interrupted upload's hidden file to continue it and says with
// OnOpen where the page sends from; the first bytes the page sends are compared with the
// hidden file's (t.verify) rather than written.
func (t *Transfer) resumeUpload(c *sftpclient.Client, p string, o UploadOptions, cb TransferCallbacks) (*sftpclient.Writer, error) {
	rest, ok := strings.CutPrefix(o.Resume, hiddenPrefix(p))
	if _, err := hex.DecodeString(rest); !ok || err != nil || len(rest) != 12 {
		return nil, withCode(CodeBadRequest, fmt.Errorf("%q is not an upload's hidden file for %s", o.Resume, p))
	}
	st, err := c.Stat(t.ctx, o.Resume)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, withCode(CodeNotResumable, fmt.Errorf("the interrupted upload of %s is gone from the remote", p))
		}
		return nil, err
	}
	if st.Mode&0o170000 != 0o100000 || st.Size > o.Size || o.Size < 0 {
		return nil, withCode(CodeNotResumable, fmt.Errorf("the interrupted upload of %s has %d bytes on the remote, more than the file's %d", p, st.Size, o.Size))
	}
	at := max(0, st.Size-resumeMargin)
	from := max(0, at-resumeCheck)
	if from < at {
		var got []byte
		err := c.ReadFile(t.ctx, o.Resume, uint64(from), nil, func(b []byte) error {
			got = append(got, b[:min(len(b), int(at-from)-len(got))]...)
			if int64(len(got)) == at-from {
				return errEnough
			}
			return nil
		})
		if err != nil && !errors.Is(err, errEnough) {
			return nil, err
		}
		if int64(len(got)) != at-from {
			return nil, withCode(CodeNotResumable, fmt.Errorf("the interrupted upload of %s shrank on the remote", p))
		}
		t.verify = got
	}
	w, err := c.OpenWriter(t.ctx, o.Resume, uint64(at))
	if err != nil {
		return nil, err
	}
	if cb.OnOpen != nil {
		cb.OnOpen(o.Resume, from)
	}
	return w, nil
}

var errEnough = errors.New("read enough")

// sendUpload moves the page's chunks to w until End.
func (t *Transfer) sendUpload(w *sftpclient.Writer, cb TransferCallbacks) error {
	for {
		t.mu.Lock()
		batch, ended, failed := t.chunks, t.ended, t.failed
		t.chunks = nil
		t.mu.Unlock()
		if failed != nil {
			return failed
		}
		for _, b := range batch {
			if n := min(len(t.verify), len(b)); n > 0 {
				if !bytes.Equal(t.verify[:n], b[:n]) {
					return withCode(CodeNotResumable, errors.New("the interrupted upload's bytes on the remote differ from the file's: it changed since"))
				}
				t.verify = t.verify[n:]
				b = b[n:]
				if cb.OnAck != nil {
					cb.OnAck(n)
				}
				t.mu.Lock()
				t.queued -= n
				t.mu.Unlock()
			}
			if _, err := w.Write(b); err != nil {
				return err
			}
			t.mu.Lock()
			t.queued -= len(b)
			t.mu.Unlock()
			if cb.OnAck != nil {
				cb.OnAck(len(b))
			}
		}
		if ended && len(batch) == 0 {
			return nil
		}
		if len(batch) > 0 {
			continue
		}
		select {
		case <-t.ctx.Done():
			return t.ctx.Err()
		case <-t.wake:
		}
	}
}

// Write queues the next chunk of an upload (copied). A chunk over MaxUploadChunk, or more
// than TransferWindow bytes not yet acknowledged with OnAck, fails the upload.
func (t *Transfer) Write(p []byte) {
	t.mu.Lock()
	switch {
	case t.ended || t.failed != nil:
	case len(p) > MaxUploadChunk:
		t.failed = withCode(CodeBadRequest, fmt.Errorf("an upload chunk of %d bytes (limit %d)", len(p), MaxUploadChunk))
	case t.queued+len(p) > TransferWindow+MaxUploadChunk:
		t.failed = withCode(CodeBadRequest, fmt.Errorf("the page sent %d bytes past the upload window of %d", t.queued+len(p)-TransferWindow, TransferWindow))
	default:
		t.chunks = append(t.chunks, append([]byte(nil), p...))
		t.queued += len(p)
	}
	t.mu.Unlock()
	t.poke()
}

// End says the upload's last chunk was written.
func (t *Transfer) End() {
	t.mu.Lock()
	t.ended = true
	t.mu.Unlock()
	t.poke()
}

// Ack returns n bytes of a download's window: the page is done with them.
func (t *Transfer) Ack(n int) { t.out.Release(n) }

// Cancel stops the transfer; OnDone follows with canceled.
func (t *Transfer) Cancel() { t.cancel() }

func (t *Transfer) poke() {
	select {
	case t.wake <- struct{}{}:
	default:
	}
}
