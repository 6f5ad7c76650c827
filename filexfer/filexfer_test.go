package filexfer

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pkg/sftp"
)

// newFiles is file transfer on a real github.com/pkg/sftp server in dir, over an in-memory pipe.
func newFiles(t *testing.T, dir string) *Files {
	fx := New(context.Background(), func() (io.ReadWriteCloser, error) {
		c, s := net.Pipe()
		srv, err := sftp.NewServer(s, sftp.WithServerWorkingDirectory(dir))
		if err != nil {
			return nil, err
		}
		go srv.Serve()
		return c, nil
	})
	t.Cleanup(fx.Close)
	return fx
}

type outcome struct {
	acked int
	data  bytes.Buffer
	done  chan error
}

func callbacks(o *outcome, tr **Transfer) TransferCallbacks {
	return TransferCallbacks{
		OnAck:  func(n int) { o.acked += n },
		OnData: func(p []byte) { o.data.Write(p); (*tr).Ack(len(p)) },
		OnDone: func(err error) { o.done <- err },
	}
}

func wait(t *testing.T, o *outcome) error {
	select {
	case err := <-o.done:
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("the transfer did not end")
		return nil
	}
}

func TestUploadLandsWholeAndDownloadsBack(t *testing.T) {
	dir := t.TempDir()
	fx := newFiles(t, dir)
	o := &outcome{done: make(chan error, 1)}
	var tr *Transfer
	tr = fx.Upload("a.bin", UploadOptions{}, callbacks(o, &tr))
	want := bytes.Repeat([]byte("0123456789abcdef"), 40000) // 640,000 bytes
	for off := 0; off < len(want); off += MaxUploadChunk {
		tr.Write(want[off:min(off+MaxUploadChunk, len(want))])
	}
	tr.End()
	if err := wait(t, o); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "a.bin")); !bytes.Equal(got, want) {
		t.Fatalf("the uploaded file has %d bytes, want the %d sent", len(got), len(want))
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("after the upload %s holds %d entries, want just a.bin", dir, len(ents))
	}
	o = &outcome{done: make(chan error, 1)}
	tr = fx.Download("a.bin", DownloadOptions{}, callbacks(o, &tr))
	if err := wait(t, o); err != nil || !bytes.Equal(o.data.Bytes(), want) {
		t.Fatalf("download: %v, %d bytes", err, o.data.Len())
	}
	l, err := fx.ListDir(context.Background(), "")
	if err != nil || l.Path != dir || len(l.Entries) != 1 || l.Entries[0].Name != "a.bin" {
		t.Fatalf("ListDir(home) = %+v, %v", l, err)
	}
}

func TestCanceledUploadLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "keep.txt"), []byte("old"), 0o644)
	fx := newFiles(t, dir)
	o := &outcome{done: make(chan error, 1)}
	var tr *Transfer
	tr = fx.Upload("keep.txt", UploadOptions{Overwrite: true}, callbacks(o, &tr))
	tr.Write(make([]byte, MaxUploadChunk))
	for o.acked == 0 {
		time.Sleep(time.Millisecond)
	}
	tr.Cancel()
	if err := wait(t, o); Code(err) != CodeCanceled {
		t.Fatalf("canceled upload: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "keep.txt")); string(b) != "old" {
		t.Fatalf("the target changed to %d bytes", len(b))
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("a canceled upload left %d entries in %s", len(ents), dir)
	}
}

func TestPageValuesAreBounded(t *testing.T) {
	dir := t.TempDir()
	fx := newFiles(t, dir)
	o := &outcome{done: make(chan error, 1)}
	var tr *Transfer
	tr = fx.Upload(strings.Repeat("x", MaxPathLen+1), UploadOptions{}, callbacks(o, &tr))
	if err := wait(t, o); Code(err) != CodeBadRequest {
		t.Fatalf("an over-long path: %v", err)
	}
	// A chunk over MaxUploadChunk fails the upload, and nothing lands.
	o = &outcome{done: make(chan error, 1)}
	tr = fx.Upload("big-chunk", UploadOptions{}, callbacks(o, &tr))
	tr.Write(make([]byte, MaxUploadChunk+1))
	tr.End()
	if err := wait(t, o); Code(err) != CodeBadRequest || !strings.Contains(err.Error(), "chunk") {
		t.Fatalf("an oversized chunk: %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("a refused upload left %d entries", len(ents))
	}
	// At most MaxTransfers at once.
	var open []*Transfer
	for range MaxTransfers {
		open = append(open, fx.Upload("slot", UploadOptions{Overwrite: true}, TransferCallbacks{}))
	}
	o = &outcome{done: make(chan error, 1)}
	fx.Download("slot", DownloadOptions{}, callbacks(o, &tr))
	if err := wait(t, o); Code(err) != CodeTooManyTransfers {
		t.Fatalf("transfer %d: %v", MaxTransfers+1, err)
	}
	for _, x := range open {
		x.Cancel()
	}
}

// A transfer started while the SFTP channel is still opening returns at once: in the browser
// its caller is the JavaScript event loop, which delivers the server's reply it would wait for.
func TestStartWhileOpeningDoesNotBlock(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "f"), []byte("data"), 0o644)
	release := make(chan struct{})
	fx := New(context.Background(), func() (io.ReadWriteCloser, error) {
		c, s := net.Pipe()
		go func() {
			<-release // the server answers only once Download returned
			srv, err := sftp.NewServer(s, sftp.WithServerWorkingDirectory(dir))
			if err == nil {
				srv.Serve()
			}
		}()
		return c, nil
	})
	t.Cleanup(fx.Close)
	go fx.ListDir(context.Background(), "")
	time.Sleep(50 * time.Millisecond) // the listing is opening the channel
	o := &outcome{done: make(chan error, 1)}
	var tr *Transfer
	returned := make(chan struct{})
	go func() {
		tr = fx.Download("f", DownloadOptions{}, callbacks(o, &tr))
		close(returned)
	}()
	select {
	case <-returned:
	case <-time.After(5 * time.Second):
		t.Fatal("Download blocked while the channel opened")
	}
	close(release)
	if err := wait(t, o); err != nil || o.data.String() != "data" {
		t.Fatalf("download after the open: %v, %q", err, o.data.String())
	}
}

// An interrupted upload continues in its hidden file from a little before its size, after
// the bytes before that point match; one whose bytes differ, or a name not an upload's, is refused.
func TestResumeUpload(t *testing.T) {
	dir := t.TempDir()
	fx := newFiles(t, dir)
	want := make([]byte, 3<<20+4321)
	for i := range want {
		want[i] = byte(i * 7 / 3)
	}
	hidden := ".r.bin.tsconnect-upload-0123456789ab"
	resume := func(size int, onDisk []byte) (int64, error) {
		os.WriteFile(filepath.Join(dir, hidden), onDisk, 0o600)
		o := &outcome{done: make(chan error, 1)}
		var from int64 = -1
		opened := make(chan struct{})
		cb := callbacks(o, nil)
		cb.OnOpen = func(h string, f int64) { from = f; close(opened) }
		tr := fx.Upload("r.bin", UploadOptions{Resume: hidden, Size: int64(len(want))}, cb)
		select {
		case <-opened:
		case err := <-o.done:
			return -1, err
		}
		for off := int(from); off < len(want); off += MaxUploadChunk {
			for off-int(from)-o.acked > TransferWindow-MaxUploadChunk { // the page's window
				select {
				case err := <-o.done:
					return from, err
				case <-time.After(time.Millisecond):
				}
			}
			tr.Write(want[off:min(off+MaxUploadChunk, len(want))])
		}
		tr.End()
		return from, wait(t, o)
	}
	from, err := resume(0, want[:2<<20+99])
	if err != nil || from != 2<<20+99-resumeMargin-resumeCheck {
		t.Fatalf("resume: from %d, %v", from, err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "r.bin")); !bytes.Equal(got, want) {
		t.Fatalf("the resumed upload has %d bytes, differing from the %d of the file", len(got), len(want))
	}
	changed := append([]byte(nil), want[:2<<20]...)
	changed[2<<20-resumeMargin-100] ^= 1
	os.Remove(filepath.Join(dir, "r.bin"))
	if _, err := resume(0, changed); Code(err) != CodeNotResumable {
		t.Fatalf("a hidden file whose bytes changed: %v", err)
	}
	if _, err := resume(0, make([]byte, len(want)+1)); Code(err) != CodeNotResumable {
		t.Fatalf("a hidden file larger than the file: %v", err)
	}
	o := &outcome{done: make(chan error, 1)}
	fx.Upload("r.bin", UploadOptions{Resume: "../etc/passwd", Size: 10}, callbacks(o, nil))
	if err := wait(t, o); Code(err) != CodeBadRequest {
		t.Fatalf("a resume of a file not an upload's: %v", err)
	}
}

// An interrupted download continues from an offset if the file is as it was.
func TestResumeDownload(t *testing.T) {
	dir := t.TempDir()
	data := bytes.Repeat([]byte("abcdefghij"), 100_000)
	os.WriteFile(filepath.Join(dir, "d"), data, 0o644)
	st, _ := os.Stat(filepath.Join(dir, "d"))
	fx := newFiles(t, dir)
	var tr *Transfer
	o := &outcome{done: make(chan error, 1)}
	tr = fx.Download("d", DownloadOptions{Offset: 123_457, Size: int64(len(data)), ModTime: st.ModTime().Unix()}, callbacks(o, &tr))
	if err := wait(t, o); err != nil || !bytes.Equal(o.data.Bytes(), data[123_457:]) {
		t.Fatalf("resumed download: %v, %d bytes", err, o.data.Len())
	}
	o = &outcome{done: make(chan error, 1)}
	tr = fx.Download("d", DownloadOptions{Offset: 5, Size: int64(len(data)), ModTime: st.ModTime().Unix() - 60}, callbacks(o, &tr))
	if err := wait(t, o); Code(err) != CodeNotResumable {
		t.Fatalf("a file modified since: %v", err)
	}
}

// A session that ends mid-upload (its connection dropped) keeps the hidden file for a resume.
func TestEndedSessionKeepsHiddenFile(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	fx := New(ctx, func() (io.ReadWriteCloser, error) {
		c, s := net.Pipe()
		srv, _ := sftp.NewServer(s, sftp.WithServerWorkingDirectory(dir))
		go srv.Serve()
		return c, nil
	})
	o := &outcome{done: make(chan error, 1)}
	var hidden string
	cb := callbacks(o, nil)
	cb.OnOpen = func(h string, _ int64) { hidden = h }
	tr := fx.Upload("k.bin", UploadOptions{}, cb)
	tr.Write(make([]byte, MaxUploadChunk))
	for o.acked == 0 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	wait(t, o)
	fx.Close()
	if _, err := os.Stat(filepath.Join(dir, hidden)); hidden == "" || err != nil {
		t.Fatalf("the hidden file %q: %v", hidden, err)
	}
}
