package sftpclient

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pkg/sftp"
)

// pipeRW joins two pipes into one end of a duplex stream.
type pipeRW struct {
	io.Reader
	io.WriteCloser
	closeR func() error
}

func (p pipeRW) Close() error { p.closeR(); return p.WriteCloser.Close() }

// duplex returns the two ends of an in-memory byte stream.
func duplex() (a, b io.ReadWriteCloser) {
	ar, bw := io.Pipe()
	br, aw := io.Pipe()
	return pipeRW{ar, aw, ar.Close}, pipeRW{br, bw, br.Close}
}

// newTestClient starts a real github.com/pkg/sftp server in dir and a client on it.
func newTestClient(t *testing.T, dir string) *Client {
	t.Helper()
	ce, se := duplex()
	srv, err := sftp.NewServer(se, sftp.WithServerWorkingDirectory(dir))
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve()
	c, err := New(ce)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); srv.Close() })
	return c
}

func TestReadDirStatRealPath(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.txt"), []byte("hello"), 0o640)
	os.Mkdir(filepath.Join(dir, "sub"), 0o755)
	c := newTestClient(t, dir)
	ctx := context.Background()
	home, err := c.RealPath(ctx, ".")
	if err != nil || home != dir {
		t.Fatalf("RealPath(.) = %q, %v; want %q", home, err, dir)
	}
	ents, err := c.ReadDir(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Entry{}
	for _, e := range ents {
		got[e.Name] = e
	}
	if len(got) != 2 || got["a.txt"].Size != 5 || got["a.txt"].Mode&0o777 != 0o640 || got["a.txt"].IsDir() || !got["sub"].IsDir() || got["a.txt"].ModTime == 0 {
		t.Fatalf("ReadDir = %+v", ents)
	}
	e, err := c.Stat(ctx, filepath.Join(dir, "a.txt"))
	if err != nil || e.Size != 5 {
		t.Fatalf("Stat = %+v, %v", e, err)
	}
	_, err = c.Stat(ctx, filepath.Join(dir, "missing"))
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("Stat of a missing file: %v", err)
	}
}

func TestWriteThenReadBack(t *testing.T) {
	dir := t.TempDir()
	c := newTestClient(t, dir)
	ctx := context.Background()
	data := make([]byte, 5<<20+12345) // not a multiple of ChunkSize
	rand.Read(data)
	path := filepath.Join(dir, "up.bin")
	w, err := c.Create(ctx, path, 0o600, false)
	if err != nil {
		t.Fatal(err)
	}
	for off := 0; off < len(data); off += 100_000 {
		if _, err := w.Write(data[off:min(off+100_000, len(data))]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if w.Written() != uint64(len(data)) {
		t.Fatalf("Written = %d, want %d", w.Written(), len(data))
	}
	onDisk, _ := os.ReadFile(path)
	if !bytes.Equal(onDisk, data) {
		t.Fatalf("the file on disk (%d bytes) differs from what was written (%d)", len(onDisk), len(data))
	}
	var back bytes.Buffer
	if err := c.ReadFile(ctx, path, 0, nil, func(p []byte) error { back.Write(p); return nil }); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back.Bytes(), data) {
		t.Fatalf("read back %d bytes, differing from the %d written", back.Len(), len(data))
	}
	// A new file only: Create without truncate refuses an existing one.
	if _, err := c.Create(ctx, path, 0o600, false); err == nil {
		t.Fatal("Create of an existing file without truncate succeeded")
	}
	// Rename replaces (posix-rename), Remove deletes.
	other := filepath.Join(dir, "other")
	os.WriteFile(other, []byte("x"), 0o600)
	if err := c.Rename(ctx, path, other); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(other); !bytes.Equal(b, data) {
		t.Fatal("rename did not replace the target")
	}
	if err := c.Remove(ctx, other); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(other); !os.IsNotExist(err) {
		t.Fatalf("after Remove: %v", err)
	}
}

func TestReadFileStopsOnCallbackError(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "f"), make([]byte, 1<<20), 0o600)
	c := newTestClient(t, dir)
	stop := errors.New("stop")
	n := 0
	err := c.ReadFile(context.Background(), filepath.Join(dir, "f"), 0, nil, func(p []byte) error { n += len(p); return stop })
	if !errors.Is(err, stop) || n != ChunkSize {
		t.Fatalf("ReadFile = %v after %d bytes; want the callback's error after one chunk", err, n)
	}
	// The client still works after an abandoned read.
	if _, err := c.Stat(context.Background(), dir); err != nil {
		t.Fatal(err)
	}
}

func TestPermissionDenied(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root may write anywhere")
	}
	dir := t.TempDir()
	ro := filepath.Join(dir, "ro")
	os.Mkdir(ro, 0o555)
	c := newTestClient(t, dir)
	_, err := c.Create(context.Background(), filepath.Join(ro, "x"), 0o600, false)
	if !errors.Is(err, fs.ErrPermission) || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("Create in a read-only directory: %v", err)
	}
}

// A server that breaks the protocol: the client fails with a clear error, not a hang or panic.
func TestHostileServer(t *testing.T) {
	version := func() []byte {
		return append(binary.BigEndian.AppendUint32(nil, 5), fxpVersion, 0, 0, 0, 3)
	}
	cases := map[string]struct {
		reply []byte
		want  string
	}{
		"oversized": {append(binary.BigEndian.AppendUint32(nil, 1<<30), fxpData), "packet of"},
		"unasked":   {append(binary.BigEndian.AppendUint32(nil, 9), fxpStatus, 0, 0, 0, 99, 0, 0, 0, 0), "not asked"},
		"no id":     {append(binary.BigEndian.AppendUint32(nil, 3), fxpStatus, 0, 0), "without a request id"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ce, se := duplex()
			go func() {
				var b [9]byte
				io.ReadFull(se, b[:]) // init
				se.Write(version())
				var hdr [4]byte
				io.ReadFull(se, hdr[:])
				io.CopyN(io.Discard, se, int64(binary.BigEndian.Uint32(hdr[:])))
				se.Write(tc.reply)
				io.Copy(io.Discard, se)
			}()
			c, err := New(ce)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_, err = c.Stat(context.Background(), "/")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Stat against a hostile server: %v; want %q", err, tc.want)
			}
		})
	}
}

func TestOffsets(t *testing.T) {
	dir := t.TempDir()
	c := newTestClient(t, dir)
	ctx := context.Background()
	data := make([]byte, 3<<20+777)
	rand.Read(data)
	path := filepath.Join(dir, "f")
	// A file begun, then continued from a byte offset with OpenWriter (nothing truncated).
	os.WriteFile(path, data[:1<<20+5], 0o600)
	w, err := c.OpenWriter(ctx, path, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data[1<<20:]); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); !bytes.Equal(b, data) {
		t.Fatalf("the continued file (%d bytes) differs from the data (%d)", len(b), len(data))
	}
	// A read from an offset gets the rest, after opened.
	var back bytes.Buffer
	opened := false
	err = c.ReadFile(ctx, path, 2<<20+3, func() error { opened = true; return nil }, func(p []byte) error {
		if !opened {
			t.Fatal("data before opened")
		}
		back.Write(p)
		return nil
	})
	if err != nil || !bytes.Equal(back.Bytes(), data[2<<20+3:]) {
		t.Fatalf("ReadFile from an offset: %v, %d bytes (want %d)", err, back.Len(), len(data)-(2<<20+3))
	}
	// OpenWriter does not create a file.
	if _, err := c.OpenWriter(ctx, filepath.Join(dir, "none"), 0); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("OpenWriter of a missing file: %v, want not exist", err)
	}
}
