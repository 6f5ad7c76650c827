package recorder

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"tsconnect/internal/eventually"
	"tsconnect/internal/leakcheck"
)

// testRecorder is a Store in a temporary directory served on loopback; every connection
// is the node "web-1", allowed to record and view unless refuse says otherwise.
type testRecorder struct {
	t      testing.TB
	dir    string
	store  *Store
	srv    *Server
	url    string
	refuse map[Access]error
}

func newTestRecorder(t testing.TB, dir string, opts Options) *testRecorder {
	t.Helper()
	leakcheck.Check(t)
	if dir == "" {
		dir = t.TempDir()
	}
	if opts.MinFree == 0 {
		opts.MinFree = -1
	}
	opts.Logf = t.Logf
	st, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	tr := &testRecorder{t: t, dir: dir, store: st, refuse: map[Access]error{}}
	tr.srv = NewServer(st, func(_ context.Context, remote netip.AddrPort, a Access) (Peer, error) {
		if !remote.Addr().IsLoopback() {
			return Peer{}, errors.New("not loopback")
		}
		if err := tr.refuse[a]; err != nil {
			return Peer{}, err
		}
		return Peer{Node: "web-1"}, nil
	}, t.Logf)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tr.url = "http://" + ln.Addr().String()
	done := make(chan struct{})
	go func() { defer close(done); tr.srv.Serve(ln) }()
	t.Cleanup(func() {
		tr.srv.Close()
		<-done
		http.DefaultClient.CloseIdleConnections()
	})
	return tr
}

const testHeader = `{"version":2,"width":80,"height":24,"timestamp":1764739860,"env":{"TERM":"xterm-256color"},"srcUser":"alice@example.com","srcNode":"laptop","localUser":"root"}`

// upload is a streamed upload in progress, as an agent makes one.
type upload struct {
	t      testing.TB
	pw     *io.PipeWriter
	req    *http.Request
	resp   *http.Response
	answer *bufio.Reader
	errc   chan error
	ID     string
}

// startUpload posts header and waits for the answer: the recording's ID, or the refusal
// (status and error text) when the recorder did not accept it.
func (tr *testRecorder) startUpload(header string) (*upload, int, string) {
	tr.t.Helper()
	pr, pw := io.Pipe()
	req, _ := http.NewRequest("POST", tr.url+"/v1/recordings", pr)
	req.Trailer = http.Header{ExitCodeTrailer: nil}
	u := &upload{t: tr.t, pw: pw, req: req, errc: make(chan error, 1)}
	respc := make(chan *http.Response, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			u.errc <- err
			return
		}
		respc <- resp
	}()
	go pw.Write([]byte(header + "\n"))
	select {
	case resp := <-respc:
		u.resp = resp
	case err := <-u.errc:
		tr.t.Fatalf("upload: %v", err)
	case <-time.After(10 * time.Second):
		tr.t.Fatal("no answer to the upload in 10 s")
	}
	tr.t.Cleanup(func() { pw.CloseWithError(errors.New("test over")); u.resp.Body.Close() })
	if u.resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		json.NewDecoder(u.resp.Body).Decode(&e)
		pw.CloseWithError(errors.New("refused"))
		return nil, u.resp.StatusCode, e.Error
	}
	u.answer = bufio.NewReader(u.resp.Body)
	var a UploadAnswer
	if err := json.Unmarshal(u.readAnswer(), &a); err != nil || a.ID == "" {
		tr.t.Fatalf("first answer: %v %+v", err, a)
	}
	u.ID = a.ID
	return u, http.StatusOK, ""
}

func (u *upload) readAnswer() []byte {
	u.t.Helper()
	line, err := u.answer.ReadBytes('\n')
	if err != nil {
		u.t.Fatalf("reading the upload's answer: %v", err)
	}
	return line
}

// send writes raw bytes of the body.
func (u *upload) send(s string) error {
	_, err := u.pw.Write([]byte(s))
	return err
}

// event sends one output event line.
func (u *upload) event(t float64, kind, data string) error {
	b, _ := json.Marshal(data)
	return u.send(fmt.Sprintf("[%g, %q, %s]\n", t, kind, b))
}

// finish ends the body with the exit code trailer (exit < 0: none) and returns the final answer.
func (u *upload) finish(exit int) UploadAnswer {
	u.t.Helper()
	if exit >= 0 {
		u.req.Trailer.Set(ExitCodeTrailer, fmt.Sprint(exit))
	}
	u.pw.Close()
	return u.final()
}

// final reads the last answer line, skipping the keepalives before it.
func (u *upload) final() UploadAnswer {
	u.t.Helper()
	for {
		var a UploadAnswer
		if err := json.Unmarshal(u.readAnswer(), &a); err != nil {
			u.t.Fatalf("final answer: %v", err)
		}
		if a.State != "" {
			return a
		}
	}
}

// get fetches path and returns status and body.
func (tr *testRecorder) get(path string) (int, string) {
	tr.t.Helper()
	resp, err := http.Get(tr.url + path)
	if err != nil {
		tr.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// lines splits a .cast into its lines.
func lines(s string) []string { return strings.Split(strings.TrimSuffix(s, "\n"), "\n") }

type errTest string

func (e errTest) Error() string { return string(e) }

// httptestGet serves one GET of path from s's handler, from a loopback address.
func httptestGet(s *Server, path string) *httptest.ResponseRecorder {
	req := httptest.NewRequest("GET", path, nil)
	req.RemoteAddr = "127.0.0.1:1234"
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	return rec
}

// lineReader reads lines of a streamed body, each within the hang guard.
type lineReader struct {
	lines chan string
	errc  chan error
}

func newLineReader(r io.Reader) *lineReader {
	lr := &lineReader{lines: make(chan string, 64), errc: make(chan error, 1)}
	go func() {
		br := bufio.NewReader(r)
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				if l != "" {
					lr.lines <- l
				}
				lr.errc <- err
				close(lr.lines)
				return
			}
			lr.lines <- strings.TrimSuffix(l, "\n")
		}
	}()
	return lr
}

func (lr *lineReader) next(t *testing.T) string {
	t.Helper()
	select {
	case l, ok := <-lr.lines:
		if !ok {
			t.Fatalf("stream ended: %v", <-lr.errc)
		}
		return l
	case <-time.After(eventually.HangGuard):
		t.Fatal("no line in time")
	}
	return ""
}

// rest is what comes until the stream ends (which it must, within the hang guard).
func (lr *lineReader) rest(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for {
		select {
		case l, ok := <-lr.lines:
			if !ok {
				if err := <-lr.errc; err != io.EOF {
					t.Errorf("stream ended with %v", err)
				}
				return b.String()
			}
			b.WriteString(l)
		case <-time.After(eventually.HangGuard):
			t.Fatal("stream did not end")
		}
	}
}

// answerEnds reports whether the answer stream ends (the connection closed) within the
// hang guard, with nothing more in it.
func (u *upload) answerEnds() bool {
	done := make(chan bool, 1)
	go func() { _, err := u.answer.ReadByte(); done <- err != nil }()
	select {
	case ended := <-done:
		return ended
	case <-time.After(eventually.HangGuard):
		return false
	}
}
