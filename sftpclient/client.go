// Package sftpclient is a small SFTP version 3 client (draft-ietf-secsh-filexfer-02) for the
// browser build, where github.com/pkg/sftp's client does not fit the wasm budget
// (docs/architecture.md "Budgets"): list, stat, stream a file in or out, remove, rename.
// Requests are pipelined; every reply is bounded and checked before it is used.
package sftpclient

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sync"
)

// Limits on what a server may send, and how a file moves.
const (
	// MaxPacket is the largest reply accepted (a READ reply carries at most ChunkSize).
	MaxPacket = 256 << 10
	// ChunkSize is the length of one READ or WRITE request: 32 KiB, which every server takes.
	ChunkSize = 32 << 10
	// Inflight is how many READ or WRITE requests of one file may be outstanding.
	Inflight = 16
	// MaxEntries bounds one directory listing.
	MaxEntries = 20000
)

// Packet types (draft-ietf-secsh-filexfer-02 section 3).
const (
	fxpInit     = 1
	fxpVersion  = 2
	fxpOpen     = 3
	fxpClose    = 4
	fxpRead     = 5
	fxpWrite    = 6
	fxpOpendir  = 11
	fxpReaddir  = 12
	fxpRemove   = 13
	fxpRealpath = 16
	fxpStat     = 17
	fxpRename   = 18
	fxpStatus   = 101
	fxpHandle   = 102
	fxpData     = 103
	fxpName     = 104
	fxpAttrs    = 105
	fxpExtended = 200
)

// Status codes.
const (
	StatusEOF              = 1
	StatusNoSuchFile       = 2
	StatusPermissionDenied = 3
	StatusFailure          = 4
	StatusBadMessage       = 5
	StatusOpUnsupported    = 8
)

// Open flags.
const (
	flagRead  = 0x01
	flagWrite = 0x02
	flagCreat = 0x08
	flagTrunc = 0x10
	flagExcl  = 0x20
)

const (
	attrSize     = 0x1
	attrUIDGID   = 0x2
	attrPerm     = 0x4
	attrTime     = 0x8
	attrExtended = 0x80000000
)

// ErrClosed is returned by calls on a client whose connection has ended.
var ErrClosed = errors.New("sftp: connection closed")

// StatusError is a request the server refused.
type StatusError struct {
	Op, Path string
	Code     uint32
	Message  string // the server's text, if any
}

func (e *StatusError) Error() string {
	what := map[uint32]string{
		StatusEOF: "end of file", StatusNoSuchFile: "no such file or directory",
		StatusPermissionDenied: "permission denied", StatusFailure: "failed",
		StatusBadMessage: "bad message", StatusOpUnsupported: "not supported by the server",
	}[e.Code]
	if what == "" {
		what = fmt.Sprintf("status %d", e.Code)
	}
	if e.Message != "" && e.Message != what {
		what += " (" + e.Message + ")"
	}
	return fmt.Sprintf("sftp %s %s: %s", e.Op, e.Path, what)
}

// Is makes errors.Is(err, fs.ErrNotExist) and fs.ErrPermission work.
func (e *StatusError) Is(target error) bool {
	return (target == fs.ErrNotExist && e.Code == StatusNoSuchFile) ||
		(target == fs.ErrPermission && e.Code == StatusPermissionDenied)
}

// Entry is a file's name and attributes as the server reports them.
type Entry struct {
	Name    string `json:"name"`
	Size    int64  `json:"size"`
	Mode    uint32 `json:"mode"`  // POSIX st_mode, type bits included (0 if not reported)
	ModTime int64  `json:"mtime"` // Unix seconds (0 if not reported)
}

// IsDir reports whether the entry is a directory.
func (e Entry) IsDir() bool { return e.Mode&0o170000 == 0o040000 }

type reply struct {
	typ  byte
	data []byte // after the request id
}

// Client is one SFTP session on a channel. Its methods are safe for concurrent use.
type Client struct {
	rw   io.ReadWriteCloser
	wmu  sync.Mutex
	mu   sync.Mutex
	next uint32
	wait map[uint32]chan reply
	err  error
	done chan struct{}
	exts map[string]bool
}

// New starts SFTP version 3 on rw (an "sftp" subsystem channel) and returns the client.
// Closing the client closes rw.
func New(rw io.ReadWriteCloser) (*Client, error) {
	c := &Client{rw: rw, wait: map[uint32]chan reply{}, done: make(chan struct{}), exts: map[string]bool{}}
	if err := c.writePacket(fxpInit, binary.BigEndian.AppendUint32(nil, 3)); err != nil {
		rw.Close()
		return nil, fmt.Errorf("sftp: sending init: %w", err)
	}
	typ, body, err := readPacket(rw)
	if err != nil {
		rw.Close()
		return nil, fmt.Errorf("sftp: reading the server's version: %w", err)
	}
	if typ != fxpVersion || len(body) < 4 {
		rw.Close()
		return nil, fmt.Errorf("sftp: the server answered init with packet type %d", typ)
	}
	if v := binary.BigEndian.Uint32(body); v != 3 {
		rw.Close()
		return nil, fmt.Errorf("sftp: the server speaks version %d, not 3", v)
	}
	b := buf(body[4:])
	for len(b) > 0 && len(c.exts) < 64 {
		name, ok1 := b.str()
		_, ok2 := b.str()
		if !ok1 || !ok2 {
			break
		}
		c.exts[name] = true
	}
	go c.recv()
	return c, nil
}

// Close ends the session and its channel.
func (c *Client) Close() error {
	c.fail(ErrClosed)
	return c.rw.Close()
}

// Done is closed when the connection has ended.
func (c *Client) Done() <-chan struct{} { return c.done }

func (c *Client) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return
	}
	c.err = err
	close(c.done)
}

func readPacket(r io.Reader) (byte, []byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:4])
	if n < 1 || n > MaxPacket+64 {
		return 0, nil, fmt.Errorf("sftp: the server sent a packet of %d bytes (limit %d)", n, MaxPacket+64)
	}
	body := make([]byte, n-1)
	if _, err := io.ReadFull(r, body); err != nil {
		return 0, nil, err
	}
	return hdr[4], body, nil
}

func (c *Client) writePacket(typ byte, payload ...[]byte) error {
	n := 1
	for _, p := range payload {
		n += len(p)
	}
	b := make([]byte, 0, 4+n)
	b = binary.BigEndian.AppendUint32(b, uint32(n))
	b = append(b, typ)
	for _, p := range payload {
		b = append(b, p...)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err := c.rw.Write(b)
	return err
}

// recv hands each reply to the request that waits for it, until the connection ends.
func (c *Client) recv() {
	for {
		typ, body, err := readPacket(c.rw)
		if err == nil && len(body) < 4 {
			err = fmt.Errorf("sftp: the server sent a %d byte reply without a request id", len(body))
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = ErrClosed
			}
			c.fail(err)
			c.rw.Close()
			return
		}
		id := binary.BigEndian.Uint32(body)
		c.mu.Lock()
		ch, ok := c.wait[id]
		delete(c.wait, id)
		c.mu.Unlock()
		if !ok {
			c.fail(fmt.Errorf("sftp: the server answered request %d, which was not asked", id))
			c.rw.Close()
			return
		}
		ch <- reply{typ, body[4:]}
	}
}

// send sends one request and returns where its reply will arrive.
func (c *Client) send(typ byte, payload ...[]byte) (<-chan reply, error) {
	ch := make(chan reply, 1)
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return nil, err
	}
	c.next++
	id := c.next
	c.wait[id] = ch
	c.mu.Unlock()
	err := c.writePacket(typ, append([][]byte{binary.BigEndian.AppendUint32(nil, id)}, payload...)...)
	if err != nil {
		c.fail(err)
		return nil, err
	}
	return ch, nil
}

func (c *Client) await(ctx context.Context, ch <-chan reply) (reply, error) {
	select {
	case r := <-ch:
		return r, nil
	case <-ctx.Done():
		return reply{}, ctx.Err()
	case <-c.done:
		select {
		case r := <-ch:
			return r, nil
		default:
		}
		return reply{}, c.err
	}
}

func (c *Client) call(ctx context.Context, typ byte, payload ...[]byte) (reply, error) {
	ch, err := c.send(typ, payload...)
	if err != nil {
		return reply{}, err
	}
	return c.await(ctx, ch)
}

// check turns a reply into nil (want received), a *StatusError, or a protocol error.
func check(r reply, want byte, op, path string) error {
	if r.typ == want {
		return nil
	}
	if r.typ == fxpStatus {
		b := buf(r.data)
		code, ok := b.u32()
		if !ok {
			return fmt.Errorf("sftp %s %s: a status reply without a code", op, path)
		}
		if code == 0 && want == fxpStatus {
			return nil
		}
		msg, _ := b.str()
		if len(msg) > 200 {
			msg = msg[:200]
		}
		return &StatusError{Op: op, Path: path, Code: code, Message: msg}
	}
	return fmt.Errorf("sftp %s %s: the server answered with packet type %d", op, path, r.typ)
}

func (c *Client) handleCall(ctx context.Context, typ byte, op, path string, payload ...[]byte) (string, error) {
	r, err := c.call(ctx, typ, payload...)
	if err != nil {
		return "", err
	}
	if err := check(r, fxpHandle, op, path); err != nil {
		return "", err
	}
	b := buf(r.data)
	h, ok := b.str()
	if !ok || len(h) > 256 {
		return "", fmt.Errorf("sftp %s %s: a bad handle", op, path)
	}
	return h, nil
}

func (c *Client) statusCall(ctx context.Context, typ byte, op, path string, payload ...[]byte) error {
	r, err := c.call(ctx, typ, payload...)
	if err != nil {
		return err
	}
	return check(r, fxpStatus, op, path)
}

func (c *Client) closeHandle(ctx context.Context, h, path string) error {
	return c.statusCall(ctx, fxpClose, "close", path, sshString(h))
}

// Stat returns path's attributes (following symbolic links).
func (c *Client) Stat(ctx context.Context, path string) (Entry, error) {
	r, err := c.call(ctx, fxpStat, sshString(path))
	if err != nil {
		return Entry{}, err
	}
	if err := check(r, fxpAttrs, "stat", path); err != nil {
		return Entry{}, err
	}
	b := buf(r.data)
	e, ok := b.attrs()
	if !ok {
		return Entry{}, fmt.Errorf("sftp stat %s: bad attributes", path)
	}
	e.Name = path
	return e, nil
}

// RealPath returns the server's absolute, canonical form of path ("." is the home directory).
func (c *Client) RealPath(ctx context.Context, path string) (string, error) {
	r, err := c.call(ctx, fxpRealpath, sshString(path))
	if err != nil {
		return "", err
	}
	if err := check(r, fxpName, "realpath", path); err != nil {
		return "", err
	}
	b := buf(r.data)
	if n, ok := b.u32(); !ok || n != 1 {
		return "", fmt.Errorf("sftp realpath %s: %d names in the reply, want 1", path, n)
	}
	name, ok := b.str()
	if !ok {
		return "", fmt.Errorf("sftp realpath %s: a bad name", path)
	}
	return name, nil
}

// ReadDir lists directory path (without "." and ".."), in the server's order.
func (c *Client) ReadDir(ctx context.Context, path string) ([]Entry, error) {
	h, err := c.handleCall(ctx, fxpOpendir, "opendir", path, sshString(path))
	if err != nil {
		return nil, err
	}
	defer c.closeHandle(context.WithoutCancel(ctx), h, path)
	var out []Entry
	for {
		r, err := c.call(ctx, fxpReaddir, sshString(h))
		if err != nil {
			return nil, err
		}
		if err := check(r, fxpName, "readdir", path); err != nil {
			var se *StatusError
			if errors.As(err, &se) && se.Code == StatusEOF {
				return out, nil
			}
			return nil, err
		}
		b := buf(r.data)
		n, ok := b.u32()
		if !ok || int(n) > MaxEntries-len(out) {
			return nil, fmt.Errorf("sftp readdir %s: more than %d entries", path, MaxEntries)
		}
		for range n {
			name, ok1 := b.str()
			_, ok2 := b.str() // long name
			e, ok3 := b.attrs()
			if !ok1 || !ok2 || !ok3 {
				return nil, fmt.Errorf("sftp readdir %s: a bad entry", path)
			}
			if name == "." || name == ".." {
				continue
			}
			e.Name = name
			out = append(out, e)
		}
	}
}

// Remove deletes file path.
func (c *Client) Remove(ctx context.Context, path string) error {
	return c.statusCall(ctx, fxpRemove, "remove", path, sshString(path))
}

// Rename moves from to to, replacing to if it exists when the server has the
// posix-rename@openssh.com extension (else the server decides; most refuse).
func (c *Client) Rename(ctx context.Context, from, to string) error {
	if c.exts["posix-rename@openssh.com"] {
		return c.statusCall(ctx, fxpExtended, "rename", to, sshString("posix-rename@openssh.com"), sshString(from), sshString(to))
	}
	return c.statusCall(ctx, fxpRename, "rename", to, sshString(from), sshString(to))
}

type pendingRead struct {
	off uint64
	n   uint32
	ch  <-chan reply
}

// ReadFile streams file path to fn from byte off on, in order, with Inflight requests
// outstanding; fn's slice is valid only during the call, and an error from fn stops the read.
// opened, if not nil, is called once the file is open, before any read (its error stops it).
func (c *Client) ReadFile(ctx context.Context, path string, off uint64, opened func() error, fn func(p []byte) error) error {
	h, err := c.handleCall(ctx, fxpOpen, "open", path, sshString(path), u32(flagRead), u32(0))
	if err != nil {
		return err
	}
	defer c.closeHandle(context.WithoutCancel(ctx), h, path)
	if opened != nil {
		if err := opened(); err != nil {
			return err
		}
	}
	var queue []pendingRead
	next := off
	eof := false
	issue := func(off uint64, n uint32, front bool) error {
		ch, err := c.send(fxpRead, sshString(h), u64(off), u32(n))
		if err != nil {
			return err
		}
		p := pendingRead{off, n, ch}
		if front {
			queue = append([]pendingRead{p}, queue...)
		} else {
			queue = append(queue, p)
		}
		return nil
	}
	for {
		for !eof && len(queue) < Inflight {
			if err := issue(next, ChunkSize, false); err != nil {
				return err
			}
			next += ChunkSize
		}
		if len(queue) == 0 {
			return nil
		}
		p := queue[0]
		queue = queue[1:]
		r, err := c.await(ctx, p.ch)
		if err != nil {
			return err
		}
		if err := check(r, fxpData, "read", path); err != nil {
			var se *StatusError
			if errors.As(err, &se) && se.Code == StatusEOF {
				eof = true
				queue = nil // later offsets are past the end too; their replies are dropped
				continue
			}
			return err
		}
		b := buf(r.data)
		data, ok := b.bytes()
		if !ok || len(data) > int(p.n) {
			return fmt.Errorf("sftp read %s: a bad data reply (%d bytes for %d asked)", path, len(data), p.n)
		}
		if len(data) == 0 {
			return fmt.Errorf("sftp read %s: the server sent no data and no end of file", path)
		}
		if err := fn(data); err != nil {
			return err
		}
		if k := uint32(len(data)); k < p.n {
			// A short read: ask for the rest before what is already queued.
			if err := issue(p.off+uint64(k), p.n-k, true); err != nil {
				return err
			}
		}
	}
}

// Writer writes a new file; see Create.
type pendingWrite struct {
	n  int
	ch <-chan reply
}

type Writer struct {
	c      *Client
	ctx    context.Context
	h      string
	path   string
	off    uint64 // bytes sent
	done   uint64 // bytes the server confirmed
	queue  []pendingWrite
	err    error
	closed bool
}

// OpenWriter opens the existing file path for writing from byte off on (nothing truncated):
// continuing a file that Create began.
func (c *Client) OpenWriter(ctx context.Context, path string, off uint64) (*Writer, error) {
	h, err := c.handleCall(ctx, fxpOpen, "open", path, sshString(path), u32(flagWrite), u32(0))
	if err != nil {
		return nil, err
	}
	return &Writer{c: c, ctx: ctx, h: h, path: path, off: off}, nil
}

// Create opens path for writing: a new file only, unless truncate (then an existing one is
// emptied), with permissions perm (before the remote umask).
func (c *Client) Create(ctx context.Context, path string, perm uint32, truncate bool) (*Writer, error) {
	flags := uint32(flagWrite | flagCreat | flagExcl)
	if truncate {
		flags = flagWrite | flagCreat | flagTrunc
	}
	h, err := c.handleCall(ctx, fxpOpen, "open", path, sshString(path), u32(flags), u32(attrPerm), u32(perm))
	if err != nil {
		return nil, err
	}
	return &Writer{c: c, ctx: ctx, h: h, path: path}, nil
}

// Write sends p in ChunkSize requests, waiting while Inflight are outstanding. It returns
// once p is sent (not necessarily written); Close reports the outcome of all of them.
func (w *Writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	n := 0
	for len(p) > 0 {
		k := min(len(p), ChunkSize)
		for len(w.queue) >= Inflight {
			if err := w.reap(); err != nil {
				return n, err
			}
		}
		ch, err := w.c.send(fxpWrite, sshString(w.h), u64(w.off), u32(uint32(k)), p[:k])
		if err != nil {
			w.err = err
			return n, err
		}
		w.queue = append(w.queue, pendingWrite{k, ch})
		w.off += uint64(k)
		n += k
		p = p[k:]
	}
	return n, nil
}

// Written is how many bytes the server has confirmed.
func (w *Writer) Written() uint64 { return w.done }

func (w *Writer) reap() error {
	p := w.queue[0]
	w.queue = w.queue[1:]
	r, err := w.c.await(w.ctx, p.ch)
	if err == nil {
		err = check(r, fxpStatus, "write", w.path)
	}
	if err != nil {
		w.err = err
		return err
	}
	w.done += uint64(p.n)
	return nil
}

// Close waits for every write and closes the file; the first error of any wins.
func (w *Writer) Close() error {
	if w.closed {
		return w.err
	}
	w.closed = true
	for len(w.queue) > 0 && w.err == nil {
		w.reap()
	}
	if err := w.c.closeHandle(context.WithoutCancel(w.ctx), w.h, w.path); err != nil && w.err == nil {
		w.err = err
	}
	return w.err
}

// Wire encoding.

func u32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func sshString(s string) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(s))), s...)
}

// buf reads big-endian values; each method reports false when the data is short.
type buf []byte

func (b *buf) u32() (uint32, bool) {
	if len(*b) < 4 {
		return 0, false
	}
	v := binary.BigEndian.Uint32(*b)
	*b = (*b)[4:]
	return v, true
}

func (b *buf) u64() (uint64, bool) {
	if len(*b) < 8 {
		return 0, false
	}
	v := binary.BigEndian.Uint64(*b)
	*b = (*b)[8:]
	return v, true
}

func (b *buf) bytes() ([]byte, bool) {
	n, ok := b.u32()
	if !ok || uint64(n) > uint64(len(*b)) {
		return nil, false
	}
	v := (*b)[:n]
	*b = (*b)[n:]
	return v, true
}

func (b *buf) str() (string, bool) {
	v, ok := b.bytes()
	return string(v), ok
}

func (b *buf) attrs() (Entry, bool) {
	var e Entry
	flags, ok := b.u32()
	if !ok {
		return e, false
	}
	if flags&attrSize != 0 {
		v, ok := b.u64()
		if !ok || v > 1<<62 {
			return e, false
		}
		e.Size = int64(v)
	}
	if flags&attrUIDGID != 0 {
		if _, ok := b.u64(); !ok {
			return e, false
		}
	}
	if flags&attrPerm != 0 {
		if e.Mode, ok = b.u32(); !ok {
			return e, false
		}
	}
	if flags&attrTime != 0 {
		if _, ok := b.u32(); !ok { // atime
			return e, false
		}
		mt, ok := b.u32()
		if !ok {
			return e, false
		}
		e.ModTime = int64(mt)
	}
	if flags&attrExtended != 0 {
		n, ok := b.u32()
		if !ok || n > 64 {
			return e, false
		}
		for range 2 * n {
			if _, ok := b.bytes(); !ok {
				return e, false
			}
		}
	}
	return e, true
}
