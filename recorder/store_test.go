package recorder

import (
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func testHeaderValue(t *testing.T) Header {
	t.Helper()
	h, err := parseHeader([]byte(testHeader))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestRestart: a store opened again keeps every finished recording as it was, and closes
// one a crash left in progress as ended "unknown", its partial last line cut, its usage
// counted.
func TestRestart(t *testing.T) {
	dir := t.TempDir()
	tr := newTestRecorder(t, dir, Options{})
	u, _, _ := tr.startUpload(testHeader)
	u.event(0, "o", "done")
	u.finish(0)
	finished, _ := tr.store.Get(u.ID)

	// A recording in progress when the recorder "crashes": written and flushed, then a
	// partial line at the end of the file, and the store never closed.
	w, err := tr.store.Create(testHeaderValue(t), "db-1")
	if err != nil {
		t.Fatal(err)
	}
	w.WriteEvent([]byte(`[0, "o", "kept"]`))
	w.mu.Lock()
	w.bw.Flush()
	w.f.WriteString(`[1, "o", "cut of`)
	w.mu.Unlock()
	os.WriteFile(filepath.Join(dir, "x.json.tmp"), []byte("{"), 0o600) // an interrupted metadata write

	st, err := Open(dir, Options{MinFree: -1, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := st.Get(u.ID); !sameMeta(got, finished) {
		t.Errorf("finished recording after restart %+v, was %+v", got, finished)
	}
	m, err := st.Get(w.ID())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, w.ID()+".cast"))
	if m.State != Unknown || m.End.IsZero() || m.Size != int64(len(b)) || !strings.HasSuffix(string(b), `[0, "o", "kept"]`+"\n") {
		t.Errorf("unfinished recording after restart: %+v\n%s", m, b)
	}
	if st.Usage("db-1") != m.Size || st.Usage("web-1") != finished.Size {
		t.Errorf("usage db-1 %d web-1 %d, want %d %d", st.Usage("db-1"), st.Usage("web-1"), m.Size, finished.Size)
	}
	if _, err := os.Stat(filepath.Join(dir, "x.json.tmp")); !os.IsNotExist(err) {
		t.Errorf("leftover temporary file: %v", err)
	}
	w.Abort(Broken, errors.New("test over")) // the old store's writer, so its file closes
}

func sameMeta(a, b Meta) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// TestSourceQuota: a source whose recordings reach its quota has the one in progress cut
// (overQuota) and new ones refused with 507 and a sentence; other sources record on.
func TestSourceQuota(t *testing.T) {
	tr := newTestRecorder(t, "", Options{SourceQuota: 4 << 10})
	u, _, _ := tr.startUpload(testHeader)
	data := strings.Repeat("x", 500)
	var err error
	for i := 0; err == nil && i < 100; i++ {
		err = u.event(float64(i), "o", data)
	}
	a := u.final()
	if a.State != OverQuota || !strings.Contains(a.Error, "web-1 reached its quota of 4 KiB") {
		t.Errorf("answer %+v, want overQuota", a)
	}
	m, _ := tr.store.Get(u.ID)
	if m.Size < 4<<10 || m.Size > 4<<10+520 || tr.store.Usage("web-1") != m.Size {
		t.Errorf("size %d, usage %d, quota 4096", m.Size, tr.store.Usage("web-1"))
	}
	if u, code, msg := tr.startUpload(testHeader); u != nil || code != http.StatusInsufficientStorage ||
		!strings.HasPrefix(msg, "recorder: the source's recording quota is used up: web-1 keeps 4 KiB of recordings, its quota is 4 KiB") {
		t.Errorf("new recording over quota: %d %q", code, msg)
	}
	if _, err := tr.store.Create(testHeaderValue(t), "db-1"); err != nil {
		t.Errorf("another source: %v", err)
	} // left in progress: the test's end does not need it closed
}

// TestActiveBound: at most MaxActivePerSource recordings run at once per source.
func TestActiveBound(t *testing.T) {
	tr := newTestRecorder(t, "", Options{MaxActivePerSource: 2})
	var us []*upload
	for range 2 {
		u, _, msg := tr.startUpload(testHeader)
		if u == nil {
			t.Fatal(msg)
		}
		us = append(us, u)
	}
	if u, code, msg := tr.startUpload(testHeader); u != nil || code != 503 || msg != "recorder: too many recordings in progress: 2 in progress from web-1" {
		t.Errorf("third: %d %q", code, msg)
	}
	us[0].finish(0)
	if u, _, msg := tr.startUpload(testHeader); u == nil {
		t.Errorf("after one ended: %s", msg)
	} else {
		u.finish(0)
	}
	us[1].finish(0)
}

// TestRetention: Sweep deletes the recordings that ended more than Retention ago, files
// and all, and gives back their quota; recent and running ones stay.
func TestRetention(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	dir := t.TempDir()
	tr := newTestRecorder(t, dir, Options{Retention: 48 * time.Hour, Now: clock})
	old, _, _ := tr.startUpload(testHeader)
	old.finish(0)
	advance(24 * time.Hour)
	recent, _, _ := tr.startUpload(testHeader)
	recent.finish(0)
	running, _, _ := tr.startUpload(testHeader)
	advance(25 * time.Hour)
	if n := tr.store.Sweep(); n != 1 {
		t.Errorf("swept %d, want 1", n)
	}
	if _, err := tr.store.Get(old.ID); err != ErrNotFound {
		t.Errorf("old recording: %v", err)
	}
	for _, ext := range []string{".cast", ".json"} {
		if _, err := os.Stat(filepath.Join(dir, old.ID+ext)); !os.IsNotExist(err) {
			t.Errorf("old %s still there: %v", ext, err)
		}
	}
	r, _ := tr.store.Get(recent.ID)
	if _, err := tr.store.Get(running.ID); err != nil {
		t.Errorf("running recording swept: %v", err)
	}
	if u := tr.store.Usage("web-1"); u != r.Size+int64(len(testHeader)+1) {
		t.Errorf("usage %d after the sweep, want %d", u, r.Size+int64(len(testHeader)+1))
	}
	if got := tr.store.SweepEvery(); got != 2*time.Hour/1 && got != time.Hour {
		t.Errorf("SweepEvery %v", got)
	}
	running.finish(0)
}

// TestDiskFull: on a small tmpfs, a recording that fills the disk is cut as diskFull, and
// below the free-space floor new recordings are refused with 507 and a sentence.
func TestDiskFull(t *testing.T) {
	dir := t.TempDir()
	if os.Getuid() != 0 {
		t.Skip("needs root to mount a tmpfs (TestSourceQuota covers the quota)")
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", dir).Run() })
	tr := newTestRecorder(t, dir, Options{MinFree: -1})
	u, _, msg := tr.startUpload(testHeader)
	if u == nil {
		t.Fatal(msg)
	}
	data := strings.Repeat("y", 60<<10)
	var err error
	for i := 0; err == nil && i < 100; i++ {
		err = u.event(float64(i), "o", data)
	}
	a := u.final()
	if a.State != DiskFull || !strings.Contains(a.Error, "recorder: storage is full") || !strings.Contains(a.Error, "no space left on device") {
		t.Errorf("answer %+v, want diskFull", a)
	}
	m, _ := tr.store.Get(u.ID)
	if st, err := os.Stat(filepath.Join(dir, u.ID+".cast")); err != nil || m.Size != st.Size() || m.State != DiskFull {
		t.Errorf("metadata %+v, file %v", m, err)
	}
	tr.store.opts.MinFree = 512 << 10
	if u, code, msg := tr.startUpload(testHeader); u != nil || code != http.StatusInsufficientStorage ||
		!strings.HasPrefix(msg, "recorder: storage is full: 0 KiB free, new recordings need 512 KiB") {
		t.Errorf("new recording on a full disk: %d %q", code, msg)
	}
}
