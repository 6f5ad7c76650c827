//go:build js && e2efiles

package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"tsconnect/filexfer"
)

// These tests run inside node (GOOS=js, -tags e2efiles) against a real agent through the real
// relay: e2e's TestWasmFiles starts the network, sets E2E_* and runs them. They drive the file wasm's Go side
// (filexfer) over this wasm's SFTP channel (IPN.OpenSFTP) on the terminal session's own
// connection, as the file wasm does through the page's Worker.

func filesEnv(t *testing.T, name string) string {
	v := os.Getenv(name)
	if v == "" {
		t.Fatalf("%s is not set: run through e2e's TestWasmFiles", name)
	}
	return v
}

// startFiles joins the network, opens a terminal session to E2E_HOST and returns file
// transfer on it.
func startFiles(t *testing.T) *filexfer.Files {
	p, err := NewIPN(Config{ControlURL: filesEnv(t, "E2E_CONTROL_URL"), AuthKey: filesEnv(t, "E2E_AUTH_KEY"), Hostname: "wasmfiles"}, fetchGet)
	if err != nil {
		t.Fatal(err)
	}
	p.Run(Notify{})
	t.Cleanup(p.cancel)
	connected, done := make(chan struct{}), make(chan error, 1)
	s := p.SSH(filesEnv(t, "E2E_HOST"), filesEnv(t, "E2E_USER"), SSHOptions{
		OnConnected: func() { close(connected) },
		OnDone:      func(code int, err error) { done <- err },
	})
	t.Cleanup(s.Close)
	select {
	case <-connected:
	case err := <-done:
		t.Fatalf("ssh: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("ssh: not connected after 60 s")
	}
	open := func() (io.ReadWriteCloser, error) {
		var sub *SSHSession
		ch := filexfer.NewChannel(func(b []byte) { sub.Write(b) }, func(n int) { sub.Ack(n) }, func() { sub.Close() })
		sub = p.OpenSFTP(s, SSHOptions{OutputWindow: OutputWindow, OnData: ch.Deliver, OnDone: func(_ int, err error) { ch.End(err) }})
		return ch, nil
	}
	fx := filexfer.New(context.Background(), open)
	t.Cleanup(fx.Close)
	return fx
}

// result collects a transfer's outcome.
type result struct {
	mu    sync.Mutex
	size  int64
	data  bytes.Buffer
	acked int
	done  chan error
}

func newResult() *result { return &result{done: make(chan error, 1), size: -1} }

func (r *result) callbacks(tr **filexfer.Transfer) filexfer.TransferCallbacks {
	return filexfer.TransferCallbacks{
		OnStart: func(size, _ int64) { r.mu.Lock(); r.size = size; r.mu.Unlock() },
		OnData: func(p []byte) {
			r.mu.Lock()
			r.data.Write(p)
			r.mu.Unlock()
			(*tr).Ack(len(p))
		},
		OnAck:  func(n int) { r.mu.Lock(); r.acked += n; r.mu.Unlock() },
		OnDone: func(err error) { r.done <- err },
	}
}

func (r *result) wait(t *testing.T) error {
	select {
	case err := <-r.done:
		return err
	case <-time.After(120 * time.Second):
		t.Fatal("transfer did not end in 120 s")
		return nil
	}
}

// upload sends data in chunks of 256 KiB, keeping within the window, calling after(n) after
// each chunk (n bytes sent so far); it returns the transfer's outcome.
func upload(t *testing.T, fx *filexfer.Files, path string, data []byte, after func(sent int) bool) error {
	r := newResult()
	var tr *filexfer.Transfer
	tr = fx.Upload(path, filexfer.UploadOptions{}, r.callbacks(&tr))
	sent := 0
	for sent < len(data) {
		r.mu.Lock()
		ahead := sent - r.acked
		r.mu.Unlock()
		if ahead+filexfer.MaxUploadChunk > filexfer.TransferWindow {
			select {
			case err := <-r.done:
				return err
			case <-time.After(time.Millisecond):
			}
			continue
		}
		n := min(filexfer.MaxUploadChunk, len(data)-sent)
		tr.Write(data[sent : sent+n])
		sent += n
		if after != nil && !after(sent) {
			tr.Cancel()
			return r.wait(t)
		}
	}
	tr.End()
	return r.wait(t)
}

func TestFilesUploadDownload(t *testing.T) {
	fx := startFiles(t)
	dir := filesEnv(t, "E2E_DIR")
	l, err := fx.ListDir(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Entries) != 1 || l.Entries[0].Name != "hello.txt" || l.Entries[0].Size != 6 {
		t.Fatalf("listing of %s: %+v", dir, l)
	}
	home, err := fx.ListDir(context.Background(), "")
	if err != nil || home.Path != filesEnv(t, "E2E_HOME") {
		t.Fatalf("listing of the home directory: %s, %v; want %s", home.Path, err, filesEnv(t, "E2E_HOME"))
	}

	data := make([]byte, 8<<20+777)
	rand.Read(data)
	target := filepath.Join(dir, "up.bin")
	start := time.Now()
	if err := upload(t, fx, target, data, nil); err != nil {
		t.Fatalf("upload: %v", err)
	}
	upRate := float64(len(data)) / (1 << 20) / time.Since(start).Seconds()
	if got, err := os.ReadFile(target); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("the uploaded file: %d bytes (%v), want the %d sent", len(got), err, len(data))
	}
	// Without Overwrite an existing file is refused before anything is sent.
	if err := upload(t, fx, target, []byte("x"), nil); filexfer.Code(err) != filexfer.CodeFileExists {
		t.Fatalf("upload onto an existing file: %v; want %s", err, filexfer.CodeFileExists)
	}

	// Three downloads at once, each byte for byte.
	var rs [3]*result
	start = time.Now()
	for i := range rs {
		rs[i] = newResult()
		var tr *filexfer.Transfer
		tr = fx.Download(target, filexfer.DownloadOptions{}, rs[i].callbacks(&tr))
		_ = tr
	}
	for i, r := range rs {
		if err := r.wait(t); err != nil {
			t.Fatalf("download %d: %v", i, err)
		}
		if r.size != int64(len(data)) || !bytes.Equal(r.data.Bytes(), data) {
			t.Fatalf("download %d: size %d, %d bytes, differing from the file (%d)", i, r.size, r.data.Len(), len(data))
		}
	}
	downRate := 3 * float64(len(data)) / (1 << 20) / time.Since(start).Seconds()
	t.Logf("wasm files via relay: upload %.1f MiB/s, three downloads at once %.1f MiB/s (8 MiB each, byte-for-byte)", upRate, downRate)

	r := newResult()
	var tr *filexfer.Transfer
	tr = fx.Download(filepath.Join(dir, "missing"), filexfer.DownloadOptions{}, r.callbacks(&tr))
	if err := r.wait(t); filexfer.Code(err) != filexfer.CodeNoSuchFile || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("download of a missing file: %v", err)
	}
}

// A canceled upload leaves neither the target nor its hidden part file; a canceled download
// ends with canceled.
func TestFilesCancel(t *testing.T) {
	fx := startFiles(t)
	dir := filesEnv(t, "E2E_DIR")
	data := make([]byte, 16<<20)
	target := filepath.Join(dir, "canceled.bin")
	err := upload(t, fx, target, data, func(sent int) bool {
		if sent >= 2<<20 {
			time.Sleep(200 * time.Millisecond) // let some of it land in the part file
			return false
		}
		return true
	})
	if filexfer.Code(err) != filexfer.CodeCanceled {
		t.Fatalf("canceled upload: %v; want %s", err, filexfer.CodeCanceled)
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.Contains(e.Name(), "canceled.bin") {
			t.Fatalf("after a canceled upload %s holds %s", dir, e.Name())
		}
	}

	os.WriteFile(filepath.Join(dir, "big.bin"), data, 0o644)
	r := newResult()
	var tr *filexfer.Transfer
	tr = fx.Download(filepath.Join(dir, "big.bin"), filexfer.DownloadOptions{}, filexfer.TransferCallbacks{
		OnData: func(p []byte) { r.data.Write(p); tr.Cancel() }, // no Ack: the window would stop it too
		OnDone: func(err error) { r.done <- err },
	})
	if err := r.wait(t); filexfer.Code(err) != filexfer.CodeCanceled || r.data.Len() >= len(data) {
		t.Fatalf("canceled download: %v after %d bytes", err, r.data.Len())
	}
	// The session still works after both.
	if _, err := fx.ListDir(context.Background(), dir); err != nil {
		t.Fatal(err)
	}
}

// A path the user may not write, and bad values from the page, fail with a clear error.
func TestFilesRefused(t *testing.T) {
	fx := startFiles(t)
	denied := filesEnv(t, "E2E_DENIED") // a directory the user may not write
	target := filepath.Join(denied, "nope.txt")
	err := upload(t, fx, target, []byte("hello"), nil)
	if filexfer.Code(err) != filexfer.CodePermissionDenied || !strings.Contains(err.Error(), target) || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("upload into %s: %v; want %s naming the path", denied, err, filexfer.CodePermissionDenied)
	}
	r := newResult()
	var tr *filexfer.Transfer
	tr = fx.Download(strings.Repeat("a", filexfer.MaxPathLen+1), filexfer.DownloadOptions{}, r.callbacks(&tr))
	if err := r.wait(t); filexfer.Code(err) != filexfer.CodeBadRequest || !strings.Contains(err.Error(), "path is") {
		t.Fatalf("download of an over-long path: %v", err)
	}
	// An oversized chunk from the page fails the upload.
	r = newResult()
	tr = fx.Upload(filepath.Join(filesEnv(t, "E2E_DIR"), "oversized"), filexfer.UploadOptions{}, r.callbacks(&tr))
	tr.Write(make([]byte, filexfer.MaxUploadChunk+1))
	tr.End()
	if err := r.wait(t); filexfer.Code(err) != filexfer.CodeBadRequest || !strings.Contains(err.Error(), "chunk") {
		t.Fatalf("an oversized upload chunk: %v", err)
	}
	// At most MaxTransfers at once.
	var trs []*filexfer.Transfer
	var results []*result
	for range filexfer.MaxTransfers + 1 {
		r := newResult()
		var tr *filexfer.Transfer
		tr = fx.Upload(filepath.Join(filesEnv(t, "E2E_DIR"), "many-"+strings.Repeat("x", len(trs))), filexfer.UploadOptions{}, r.callbacks(&tr))
		trs, results = append(trs, tr), append(results, r)
	}
	if err := results[filexfer.MaxTransfers].wait(t); filexfer.Code(err) != filexfer.CodeTooManyTransfers {
		t.Fatalf("transfer %d: %v; want %s", filexfer.MaxTransfers+1, err, filexfer.CodeTooManyTransfers)
	}
	for i, tr := range trs[:filexfer.MaxTransfers] {
		tr.End()
		if err := results[i].wait(t); err != nil {
			t.Fatalf("empty upload %d: %v", i, err)
		}
	}
}

// TestFilesBench is the file-transfer benchmark (not a test): with E2E_FILES_BENCH_MIB set
// (e2e's BenchmarkWasmFiles), it uploads that many MiB, generated as it goes, and downloads
// them again hashing as they arrive, and prints MiB/s and this node process's RSS.
func TestFilesBench(t *testing.T) {
	mibs, _ := strconv.Atoi(os.Getenv("E2E_FILES_BENCH_MIB"))
	if mibs <= 0 {
		t.Skip("E2E_FILES_BENCH_MIB is not set: run through e2e's BenchmarkWasmFiles")
	}
	fx := startFiles(t)
	target := filepath.Join(filesEnv(t, "E2E_DIR"), "bench.bin")
	size := mibs << 20
	chunk := make([]byte, filexfer.MaxUploadChunk)
	rand.Read(chunk)
	sent := sha256.New()
	r := newResult()
	var tr *filexfer.Transfer
	tr = fx.Upload(target, filexfer.UploadOptions{}, r.callbacks(&tr))
	start := time.Now()
	for off := 0; off < size; off += len(chunk) {
		for {
			r.mu.Lock()
			ahead := off - r.acked
			r.mu.Unlock()
			if ahead+len(chunk) <= filexfer.TransferWindow {
				break
			}
			time.Sleep(200 * time.Microsecond)
		}
		chunk[0] = byte(off >> 18) // not the same chunk over and over
		sent.Write(chunk)
		tr.Write(chunk)
	}
	tr.End()
	if err := r.wait(t); err != nil {
		t.Fatal(err)
	}
	up := time.Since(start)
	got := sha256.New()
	var n int64
	done := make(chan error, 1)
	start = time.Now()
	tr = fx.Download(target, filexfer.DownloadOptions{}, filexfer.TransferCallbacks{
		OnData: func(p []byte) { got.Write(p); n += int64(len(p)); tr.Ack(len(p)) },
		OnDone: func(err error) { done <- err },
	})
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	down := time.Since(start)
	if n != int64(size) || !bytes.Equal(got.Sum(nil), sent.Sum(nil)) {
		t.Fatalf("downloaded %d bytes, sha256 %x; uploaded %d, %x", n, got.Sum(nil), size, sent.Sum(nil))
	}
	t.Logf("wasm files bench: %d MiB up %.1f MiB/s, down %.1f MiB/s, sha256 equal; node VmRSS %s, VmHWM %s",
		mibs, float64(mibs)/up.Seconds(), float64(mibs)/down.Seconds(), procStatus("VmRSS"), procStatus("VmHWM"))
}

// procStatus is a field of /proc/self/status (node's, read through its fs), or "?".
func procStatus(field string) string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "?"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}
