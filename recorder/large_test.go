package recorder

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// castBody generates an upload of about size bytes: the header, then output events of
// ~16 KiB of terminal text (escapes, UTF-8, newlines) at rising times, made as read.
type castBody struct {
	left  int64
	n     int
	event []byte
	buf   []byte
}

func newCastBody(size int64) *castBody {
	chunk := strings.Repeat("total 42\r\n-rw-r--r-- 1 root root  4096 Dec  3 \x1b[01;34mdir\x1b[0m ✓ \"q\"\r\n", 200)
	data, _ := json.Marshal(chunk)
	return &castBody{left: size, event: data, buf: []byte(testHeader + "\n")}
}

func (c *castBody) Read(p []byte) (int, error) {
	if len(c.buf) == 0 {
		if c.left <= 0 {
			return 0, io.EOF
		}
		c.n++
		c.buf = fmt.Appendf(c.buf[:0], "[%s, \"o\", %s]\n", strconv.FormatFloat(float64(c.n)*0.001, 'f', 3, 64), c.event)
		c.left -= int64(len(c.buf))
	}
	n := copy(p, c.buf)
	c.buf = c.buf[n:]
	return n, nil
}

// postCast uploads body whole and returns the final answer.
func postCast(tb testing.TB, url string, body io.Reader) UploadAnswer {
	tb.Helper()
	req, _ := http.NewRequest("POST", url+"/v1/recordings", body)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	var last UploadAnswer
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		json.Unmarshal(sc.Bytes(), &last)
	}
	return last
}

// rss is the process's resident set size, in bytes (0 where /proc is missing).
func rss() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

// heapInUse is the Go heap in use right after a collection: the base a test's peak is
// measured from.
func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// peakHeap samples the Go heap in use until stop is closed and returns its peak.
func peakHeap(stop <-chan struct{}) <-chan uint64 {
	out := make(chan uint64, 1)
	go func() {
		var peak uint64
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			select {
			case <-stop:
				out <- peak
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return out
}

// TestLargeRecordingStreams: a 128 MiB recording goes to disk whole while the heap (the
// recorder's and this test's uploader's together) grows by less than 16 MiB.
func TestLargeRecordingStreams(t *testing.T) {
	tr := newTestRecorder(t, "", Options{})
	base := heapInUse()
	stop := make(chan struct{})
	peak := peakHeap(stop)
	a := postCast(t, tr.url, newCastBody(128<<20))
	close(stop)
	growth := int64(<-peak) - int64(base)
	t.Logf("128 MiB recorded; heap in use grew by at most %.1f MiB", float64(growth)/(1<<20))
	if a.State != Ended || a.Size < 128<<20 {
		t.Fatalf("answer %+v", a)
	}
	if st, err := os.Stat(tr.dir + "/" + a.ID + ".cast"); err != nil || st.Size() != a.Size {
		t.Errorf("file %v, answer size %d", err, a.Size)
	}
	if growth > 16<<20 {
		t.Errorf("heap grew by %d MiB recording 128 MiB: the recording is held in memory", growth>>20)
	}
}

// BenchmarkRecord1GiB uploads 1 GiB of output over loopback HTTP into a Store on the
// test's temporary directory, and reports MB/s and how much the process's RSS grew.
// go test ./recorder -run '^$' -bench Record1GiB -benchtime 1x
func BenchmarkRecord1GiB(b *testing.B) {
	tr := newTestRecorder(b, "", Options{})
	runtime.GC()
	before := rss()
	b.SetBytes(1 << 30)
	b.ResetTimer()
	for range b.N {
		a := postCast(b, tr.url, newCastBody(1<<30))
		if a.State != Ended {
			b.Fatalf("answer %+v", a)
		}
		os.Remove(tr.dir + "/" + a.ID + ".cast")
	}
	b.StopTimer()
	growth := float64(rss()-before) / (1 << 20)
	b.ReportMetric(growth, "MiB-RSS-growth")
	b.Logf("RSS %d MiB before, grew by %.1f MiB", before>>20, growth)
}
