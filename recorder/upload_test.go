package recorder

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

var loopbackDial DialFunc = (&net.Dialer{}).DialContext

func testUploadHeader() Header {
	return Header{Width: 80, Height: 24, Timestamp: time.Now().Unix(), SrcUser: "alice@example.com", SrcNode: "laptop", LocalUser: "root"}
}

// startTestUpload starts an Upload to tr as an agent does.
func startTestUpload(t *testing.T, tr *testRecorder) *Upload {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	u, err := StartUpload(ctx, loopbackDial, strings.TrimPrefix(tr.url, "http://"), testUploadHeader())
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// castEvents reads recording id back: its events' kinds and data.
func castEvents(t *testing.T, st *Store, id string) (kinds string, data []string) {
	t.Helper()
	f, _, err := st.OpenCast(id)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, _ := io.ReadAll(f)
	for i, l := range lines(string(b)) {
		if i == 0 {
			continue
		}
		var e [3]any
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		kinds += e[1].(string)
		data = append(data, e[2].(string))
	}
	return kinds, data
}

// TestUploadStreams: what an uploader sends is stored as the recorder's events: a UTF-8
// character cut between two writes arrives whole, a write longer than an event line is
// split (never inside a character), invalid UTF-8 becomes U+FFFD, resizes and input are
// events of their own, and the exit code ends it.
func TestUploadStreams(t *testing.T) {
	tr := newTestRecorder(t, "", Options{})
	u := startTestUpload(t, tr)
	euro := []byte("€")                      // 3 bytes
	big := strings.Repeat("é", maxEventData) // 2 bytes each: more than one event line
	steps := []error{
		u.Output(append([]byte("price: "), euro[:1]...)),
		u.Output(append(euro[1:], '\n')),
		u.Resize(120, 40),
		u.Input([]byte("ls\r")),
		u.Output([]byte(big)),
		u.Output([]byte{'x', 0xff, 'y', 0x1b}),
	}
	if err := errors.Join(steps...); err != nil {
		t.Fatal(err)
	}
	if err := u.Finish(7); err != nil {
		t.Fatal(err)
	}
	m, err := tr.store.Get(u.ID())
	if err != nil || m.State != Ended || m.ExitCode == nil || *m.ExitCode != 7 {
		t.Fatalf("stored %+v (%v)", m, err)
	}
	kinds, data := castEvents(t, tr.store, u.ID())
	var out strings.Builder
	for i, k := range kinds {
		if k == 'o' {
			out.WriteString(data[i])
		}
	}
	if want := "price: €\n" + big + "x\uFFFDy\x1b"; out.String() != want {
		t.Errorf("output %d bytes, want %d (%q…)", out.Len(), len(want), out.String()[:min(40, out.Len())])
	}
	if !strings.HasPrefix(kinds, "ooriooo") || data[2] != "120x40" || data[3] != "ls\r" {
		t.Errorf("events %q: %q", kinds, data[:4])
	}
}

// TestUploadRefused: a refusal names the recorder's status and sentence, and a recorder
// that answers nothing is given up when ctx ends.
func TestUploadRefused(t *testing.T) {
	tr := newTestRecorder(t, "", Options{})
	tr.refuse[Record] = errors.New("not one of mine")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := StartUpload(ctx, loopbackDial, strings.TrimPrefix(tr.url, "http://"), testUploadHeader())
	if err == nil || !strings.Contains(err.Error(), "403") || !strings.Contains(err.Error(), "not one of mine") {
		t.Errorf("refused upload: %v", err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0") // accepts, never answers
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	sctx, scancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer scancel()
	start := time.Now()
	_, err = StartUpload(sctx, loopbackDial, ln.Addr().String(), testUploadHeader())
	if err == nil || !strings.Contains(err.Error(), "no answer in time") || time.Since(start) > 2*time.Second {
		t.Errorf("silent recorder: %v after %v", err, time.Since(start))
	}
}

// TestUploadRecorderGone: the recorder stopping mid-upload breaks it (Failed, Err).
func TestUploadRecorderGone(t *testing.T) {
	tr := newTestRecorder(t, "", Options{})
	u := startTestUpload(t, tr)
	u.Output([]byte("hello\n"))
	tr.srv.Close()
	select {
	case <-u.Failed():
	case <-time.After(silenceTimeout + 5*time.Second):
		t.Fatal("the upload did not notice its recorder stopped")
	}
	if u.Err() == nil || u.Output([]byte("more")) == nil || u.Finish(0) == nil {
		t.Errorf("after the recorder stopped: %v", u.Err())
	}
}

// TestUploadLargeStreams: 64 MiB of output sent through an Upload (as an agent tees a
// session, 32 KiB reads) is stored whole while the heap (uploader and recorder together)
// grows by less than 16 MiB.
func TestUploadLargeStreams(t *testing.T) {
	tr := newTestRecorder(t, "", Options{})
	u := startTestUpload(t, tr)
	read := []byte(strings.Repeat("-rw-r--r-- 1 root root 4096 \x1b[01;34mdir\x1b[0m ✓\r\n", 32<<10/48)[:32<<10])
	base := heapInUse()
	stop := make(chan struct{})
	peak := peakHeap(stop)
	const total = 64 << 20
	for sent := 0; sent < total; sent += len(read) {
		if err := u.Output(read); err != nil {
			t.Fatal(err)
		}
	}
	if err := u.Finish(0); err != nil {
		t.Fatal(err)
	}
	close(stop)
	growth := int64(<-peak) - int64(base)
	t.Logf("64 MiB uploaded; heap in use grew by at most %.1f MiB", float64(growth)/(1<<20))
	if m, err := tr.store.Get(u.ID()); err != nil || m.State != Ended || m.Size < total {
		t.Fatalf("stored %+v (%v)", m, err)
	}
	if growth > 16<<20 {
		t.Errorf("heap grew by %d MiB uploading 64 MiB: the upload is held in memory", growth>>20)
	}
}

// TestUploadKeepalive: while an upload is idle the recorder repeats {"id"} every Keepalive,
// and the last answer still comes last.
func TestUploadKeepalive(t *testing.T) {
	tr := newTestRecorder(t, "", Options{})
	u, code, msg := tr.startUpload(testHeader)
	if u == nil {
		t.Fatalf("refused: %d %s", code, msg)
	}
	start := time.Now()
	var a UploadAnswer
	if err := json.Unmarshal(u.readAnswer(), &a); err != nil || a.ID != u.ID || a.State != "" {
		t.Fatalf("keepalive %+v (%v)", a, err)
	}
	if d := time.Since(start); d < Keepalive/2 {
		t.Errorf("keepalive after %v, want about %v", d, Keepalive)
	}
	if a := u.finish(0); a.State != Ended || !u.answerEnds() {
		t.Errorf("last answer %+v, or more after it", a)
	}
}
