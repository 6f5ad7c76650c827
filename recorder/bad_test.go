package recorder

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBadHeaderRefused: an upload whose first line is not a valid header is refused with
// 400 naming the problem, and nothing is stored.
func TestBadHeaderRefused(t *testing.T) {
	tr := newTestRecorder(t, "", Options{})
	for _, c := range []struct{ header, want string }{
		{strings.Replace(testHeader, `"version":2`, `"version":1`, 1), "header line: version 1, want 2 (asciicast v2)"},
		{strings.Replace(testHeader, `"width":80`, `"width":0`, 1), "header line: terminal size 0x24 out of range (1 to 10000)"},
		{strings.Replace(testHeader, `"localUser":"root"`, `"localUser":"a b"`, 1), "header line: localUser: the user name"},
		{strings.Replace(testHeader, `"srcNode":"laptop"`, `"srcNode":"lap\u001btop"`, 1), "header line: srcNode: holds a control character"},
		{strings.Replace(testHeader, `"srcUser":"alice@example.com",`, ``, 1), "header line: srcUser: want 1 to 256 bytes, got 0"},
		{strings.Replace(testHeader, `"env"`, `"extra":1,"env"`, 1), `header line: json: unknown field "extra"`},
		{`[0, "o", "x"]`, "header line: json: cannot unmarshal array"},
		{strings.Replace(testHeader, `"env"`, `"idle_time_limit":-2,"env"`, 1), "header line: negative idle_time_limit or duration"},
		{`{"version":2,"title":"` + strings.Repeat("x", MaxHeaderLine) + `"}`, "header line: line longer than 8192 bytes"},
	} {
		u, code, msg := tr.startUpload(c.header)
		if u != nil || code != 400 || !strings.HasPrefix(msg, c.want) {
			t.Errorf("header %.60s…: %d %q, want 400 %q", c.header, code, msg, c.want)
		}
	}
	if n := len(tr.store.List()); n != 0 {
		t.Errorf("%d recordings stored", n)
	}
}

// TestBadEventBreaksRecording: an event line that is not [time, "o"|"i"|"r", string] with
// times never going back, or too long, ends the recording as broken, naming the problem;
// the lines before it stay, the bad one is not written, and the connection is cut.
func TestBadEventBreaksRecording(t *testing.T) {
	tr := newTestRecorder(t, "", Options{})
	good := `[0.5, "o", "ok"]` + "\n"
	for _, c := range []struct{ line, want string }{
		{`[0.4, "o", "back"]`, "recorder: event time 0.4 before the previous one (0.5)"},
		{`[1, "x", "y"]`, `recorder: event: type must be "o", "i" or "r"`},
		{`[-1, "o", "y"]`, "recorder: event: time is not a non-negative number"},
		{`[1e9, "o", "y"]`, `recorder: event: time "1e9" is not a number from 0 to 1e+08`},
		{`[1, "o", "y", 2]`, "recorder: event: want exactly three elements"},
		{`[1, "o", 5]`, "recorder: event: data: not a JSON string"},
		{"[1, \"o\", \"a\x01\"]", "recorder: event: data: control character 0x01 in a string"},
		{"[1, \"o\", \"\xff\"]", "recorder: event: data: invalid UTF-8"},
		{`[1, "o", "\q"]`, `recorder: event: data: bad escape \q`},
		{`[1, "r", "80"]`, `recorder: event: "r" data: want COLSxROWS, each 1 to 10000`},
		{`{"t": 1}`, "recorder: event: not a JSON list"},
		{`[1, "o", "` + strings.Repeat("x", MaxEventLine) + `"]`, "line longer than 262144 bytes"},
		{`[1, "o", "unterminated`, "the upload ended inside a line"},
	} {
		u, _, msg := tr.startUpload(testHeader)
		if u == nil {
			t.Fatal(msg)
		}
		u.send(good)
		if strings.Contains(c.want, "ended inside") {
			u.send(c.line)
			u.pw.Close()
		} else {
			u.send(c.line + "\n")
		}
		a := u.final()
		if a.State != Broken || !strings.HasPrefix(a.Error, c.want) {
			t.Errorf("%.40s: answer %+v, want broken: %s", c.line, a, c.want)
			continue
		}
		if !u.answerEnds() {
			t.Errorf("%.40s: the connection was not cut after the bad line", c.line)
		}
		b, _ := os.ReadFile(filepath.Join(tr.dir, u.ID+".cast"))
		if got := lines(string(b)); len(got) != 2 || got[1] != strings.TrimSuffix(good, "\n") {
			t.Errorf("%.40s: cast %q, want the header and the good line", c.line, b)
		}
		if m, _ := tr.store.Get(u.ID); m.State != Broken || m.Error == "" || m.Size != int64(len(b)) {
			t.Errorf("%.40s: metadata %+v", c.line, m)
		}
	}
}

// TestBadExitCode: an exit code trailer that is not 0 to 255 breaks the recording.
func TestBadExitCode(t *testing.T) {
	tr := newTestRecorder(t, "", Options{})
	u, _, _ := tr.startUpload(testHeader)
	u.req.Trailer.Set(ExitCodeTrailer, "999")
	u.pw.Close()
	if a := u.final(); a.State != Broken || a.Error != `Tsconnect-Exit-Code "999" is not an exit code (0 to 255)` {
		t.Errorf("answer %+v", a)
	}
}
