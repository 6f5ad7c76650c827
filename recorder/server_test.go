package recorder

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestUploadStored: a streamed upload is stored as one .cast (mode 0600, the header line
// first, every event line as sent) with its metadata (who, from where, to which node, as
// whom, start, end, exit code, size), and listed and served back byte for byte.
func TestUploadStored(t *testing.T) {
	tr := newTestRecorder(t, "", Options{})
	before := time.Now()
	u, code, msg := tr.startUpload(testHeader)
	if u == nil {
		t.Fatalf("refused: %d %s", code, msg)
	}
	for i, ev := range []struct {
		kind, data string
	}{{"o", "$ "}, {"i", "ls\r"}, {"o", "ls\r\n\x1b[1mfile\x1b[0m \"q\" ✓\r\n"}, {"r", "100x30"}, {"o", "$ "}} {
		if err := u.event(0.25*float64(i), ev.kind, ev.data); err != nil {
			t.Fatal(err)
		}
	}
	a := u.finish(3)
	if a.State != Ended || a.ID != u.ID || a.Error != "" {
		t.Fatalf("final answer %+v, want ended", a)
	}
	path := filepath.Join(tr.dir, u.ID+".cast")
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
	b, _ := os.ReadFile(path)
	got := lines(string(b))
	want := []string{testHeader, `[0, "o", "$ "]`, `[0.25, "i", "ls\r"]`,
		`[0.5, "o", "ls\r\n\u001b[1mfile\u001b[0m \"q\" ✓\r\n"]`, `[0.75, "r", "100x30"]`, `[1, "o", "$ "]`}
	if len(got) != len(want) {
		t.Fatalf("cast:\n%s", b)
	}
	var h Header
	if err := json.Unmarshal([]byte(got[0]), &h); err != nil || h.SrcUser != "alice@example.com" || h.Width != 80 {
		t.Errorf("header line %s: %v", got[0], err)
	}
	for i := 1; i < len(want); i++ {
		if got[i] != want[i] {
			t.Errorf("line %d: %s, want %s", i, got[i], want[i])
		}
	}
	m, err := tr.store.Get(u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if m.SrcUser != "alice@example.com" || m.SrcNode != "laptop" || m.TargetNode != "web-1" || m.Source != "web-1" ||
		m.LocalUser != "root" || m.State != Ended || m.ExitCode == nil || *m.ExitCode != 3 || m.Size != st.Size() || a.Size != st.Size() ||
		m.Start.Before(before.Add(-time.Second)) || m.End.Before(m.Start) || m.Width != 80 || m.Height != 24 {
		t.Errorf("metadata %+v", m)
	}
	if st, _ := os.Stat(filepath.Join(tr.dir, u.ID+".json")); st.Mode().Perm() != 0o600 {
		t.Errorf("metadata file mode %v", st.Mode().Perm())
	}
	code, body := tr.get("/v1/recordings")
	var list struct{ Recordings []Meta }
	if json.Unmarshal([]byte(body), &list); code != 200 || len(list.Recordings) != 1 || list.Recordings[0].ID != u.ID {
		t.Errorf("list: %d %s", code, body)
	}
	if code, body := tr.get("/v1/recordings/" + u.ID + "/cast"); code != 200 || body != string(b) {
		t.Errorf("cast: %d %q", code, body)
	}
	if code, body := tr.get("/v1/recordings/" + u.ID); code != 200 || !strings.Contains(body, `"exitCode":3`) {
		t.Errorf("metadata: %d %s", code, body)
	}
	// asciinema's own optional header fields are taken.
	if u, code, msg := tr.startUpload(strings.Replace(testHeader, `"env"`, `"idle_time_limit":2.5,"duration":1,"env"`, 1)); u == nil {
		t.Errorf("header with idle_time_limit: %d %s", code, msg)
	} else {
		u.finish(0)
	}
	for _, p := range []string{"/v1/recordings/nope/cast", "/v1/recordings/..%2f..%2fetc/cast", "/v1/recordings/20261203T000000Z-00000000"} {
		if code, _ := tr.get(p); code != 404 {
			t.Errorf("%s: %d, want 404", p, code)
		}
	}
}

// TestOutputOnDiskWithinOneSecond: an event is in the file within 1 s of arriving, while
// the upload goes on.
func TestOutputOnDiskWithinOneSecond(t *testing.T) {
	tr := newTestRecorder(t, "", Options{})
	u, _, msg := tr.startUpload(testHeader)
	if u == nil {
		t.Fatal(msg)
	}
	for i := range 3 {
		sent := time.Now()
		if err := u.event(float64(i), "o", "line"+string(rune('a'+i))); err != nil {
			t.Fatal(err)
		}
		for {
			b, _ := os.ReadFile(filepath.Join(tr.dir, u.ID+".cast"))
			if strings.Contains(string(b), "line"+string(rune('a'+i))) {
				t.Logf("event %d on disk after %v", i, time.Since(sent).Round(time.Millisecond))
				break
			}
			if time.Since(sent) > time.Second {
				t.Fatalf("event %d not on disk 1 s after it was sent", i)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if m, _ := tr.store.Get(u.ID); m.State != Recording || m.Size == 0 {
		t.Errorf("in progress: %+v", m)
	}
	u.finish(0)
}

// TestFollowLive: GET …/cast?follow=1 streams a recording in progress as it arrives and
// ends with it.
func TestFollowLive(t *testing.T) {
	tr := newTestRecorder(t, "", Options{})
	u, _, msg := tr.startUpload(testHeader)
	if u == nil {
		t.Fatal(msg)
	}
	u.event(0, "o", "first")
	resp, err := http.Get(tr.url + "/v1/recordings/" + u.ID + "/cast?follow=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := newLineReader(resp.Body)
	if l := r.next(t); l != testHeader {
		t.Fatalf("first line %s", l)
	}
	if l := r.next(t); l != `[0, "o", "first"]` {
		t.Fatalf("second line %s", l)
	}
	u.event(1, "o", "second")
	if l := r.next(t); l != `[1, "o", "second"]` {
		t.Fatalf("live line %s", l)
	}
	u.finish(0)
	if rest := r.rest(t); rest != "" {
		t.Errorf("after the end: %q", rest)
	}
}

// TestAuthorizeRefuses: a peer refused recording or viewing gets 403 with the reason, and
// nothing is stored.
func TestAuthorizeRefuses(t *testing.T) {
	tr := newTestRecorder(t, "", Options{})
	tr.refuse[Record] = errTest("node db-2 is not named as recorder by any of its rules")
	tr.refuse[View] = errTest("not an admin")
	if u, code, msg := tr.startUpload(testHeader); u != nil || code != 403 ||
		msg != "may not record recordings: node db-2 is not named as recorder by any of its rules" {
		t.Errorf("upload: %d %q", code, msg)
	}
	for _, p := range []string{"/v1/recordings", "/v1/recordings/x", "/v1/recordings/x/cast"} {
		if code, body := tr.get(p); code != 403 || !strings.Contains(body, "may not view recordings: not an admin") {
			t.Errorf("%s: %d %s", p, code, body)
		}
	}
	if len(tr.store.List()) != 0 {
		t.Error("a refused upload was stored")
	}
	s := NewServer(tr.store, nil, nil) // no Authorize: everything refused
	rec := httptestGet(s, "/v1/recordings")
	if rec.Code != 403 {
		t.Errorf("nil Authorize: %d", rec.Code)
	}
}
