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
	tr = fx.Download("a.bin", callbacks(o, &tr))
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
	fx.Download("slot", callbacks(o, &tr))
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
		tr = fx.Download("f", callbacks(o, &tr))
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
