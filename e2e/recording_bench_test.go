//go:build linux

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"tsconnect/control"
	"tsconnect/internal/eventually"
	"tsconnect/internal/nodetest"
	"tsconnect/recorder"
)

// BenchmarkRecording1GiB records 1 GiB of session output (an exec printing it) from a real
// `tsconnect up --ssh` agent to a real `tsconnect recorder`, each its own process, and prints
// both processes' RSS before, at every eighth of the output and after, and their peak
// (VmHWM): the recording is streamed, so neither grows with it. Run once: go test ./e2e/ -run - -bench Recording1GiB -benchtime 1x
// (about 100 s on 2 cores; TSCONNECT_BENCH_RECORD_MIB=N records N MiB instead).
func BenchmarkRecording1GiB(b *testing.B) {
	total := 1 << 30
	if v, err := strconv.Atoi(os.Getenv("TSCONNECT_BENCH_RECORD_MIB")); err == nil && v > 0 {
		total = v << 20
	}
	// enforceRecorder: a recording that breaks cuts the session, so the output is all recorded.
	tn := startTestNet(b, nil, strings.Replace(recordViewPolicy, `"recorder": ["tag:rec"]`, `"recorder": ["tag:rec"], "enforceRecorder": true`, 1))
	dir := b.TempDir()
	start := func(name string, args ...string) *exec.Cmd {
		cmd := exec.Command(tsconnectBin, append([]string{"--socket", filepath.Join(dir, name+".sock")}, args...)...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() {
			cmd.Process.Signal(syscall.SIGTERM)
			cmd.Wait()
			if b.Failed() {
				b.Logf("%s:\n%s", name, out.String())
			}
		})
		return cmd
	}
	rec := start("rec", "recorder", "--login-server", tn.url, "--auth-key", tn.authKey(control.AuthKeyOptions{Tags: []string{"tag:rec"}}),
		"--hostname", "rec", "--state", filepath.Join(dir, "rec"), "--min-free-mib", "0")
	agent := start("srv", "up", "--login-server", tn.url, "--auth-key", tn.authKey(control.AuthKeyOptions{}),
		"--hostname", "srv", "--state", filepath.Join(dir, "srv"), "--ssh")
	client := nodetest.Join(b, tn.url, tn.authKey(control.AuthKeyOptions{Ephemeral: true}), "client")
	p := waitPeer(b, client, "srv")
	eventually.True(b, "rec in client's map", func() bool { _, ok := client.NetMap().PeerByName("rec"); return ok })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	nc, err := client.Dial(ctx, "tcp", p.Addresses[0].Addr().String()+":22")
	if err != nil {
		b.Fatal(err)
	}
	me, _ := user.Current()
	c, chans, reqs, err := ssh.NewClientConn(nc, "srv:22", &ssh.ClientConfig{User: me.Username, HostKeyCallback: pinnedHostKeys(p), Timeout: 20 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	cl := ssh.NewClient(c, chans, reqs)
	defer cl.Close()
	rss := func(cmd *exec.Cmd, f string) int { return readStatusKiB(cmd.Process.Pid, f) >> 10 }
	// Short sessions first, until one is recorded: the agent's rule names the recorder (its
	// map has it), and both have done one recording before the baseline.
	eventually.True(b, "a short session recorded", func() bool {
		if s, err := cl.NewSession(); err == nil {
			s.Run("true")
			s.Close()
		}
		metas, _ := filepath.Glob(filepath.Join(dir, "rec", "recordings", "*.json"))
		return len(metas) > 0
	})
	time.Sleep(time.Second)
	agentBefore, recBefore := rss(agent, "VmRSS"), rss(rec, "VmRSS")
	s, err := cl.NewSession()
	if err != nil {
		b.Fatal(err)
	}
	out, _ := s.StdoutPipe()
	b.ResetTimer()
	t0 := time.Now()
	if err := s.Start(fmt.Sprintf("head -c %d /dev/zero | tr '\\0' x", total)); err != nil {
		b.Fatal(err)
	}
	// Both RSSes at every eighth of the output: a recording held anywhere would grow them with it.
	samples := &rssSampler{every: int64(total / 8), sample: func() [2]int { return [2]int{rss(agent, "VmRSS"), rss(rec, "VmRSS")} }}
	n, err := io.Copy(samples, out)
	if err != nil || n != int64(total) {
		b.Fatalf("read %d bytes of output: %v", n, err)
	}
	s.Wait()
	took := time.Since(t0)
	b.StopTimer()
	var m recorder.Meta
	eventually.True(b, "the recording finished", func() bool {
		metas, _ := filepath.Glob(filepath.Join(dir, "rec", "recordings", "*.json"))
		for _, f := range metas {
			if j, err := os.ReadFile(f); err == nil && json.Unmarshal(j, &m) == nil && m.Size > 1<<20 {
				return m.State != recorder.Recording
			}
		}
		return false
	})
	if m.State != recorder.Ended || m.Size < int64(total) {
		b.Fatalf("the recording %s: %s, %d bytes (%s)", m.ID, m.State, m.Size, m.Error)
	}
	size := m.Size
	time.Sleep(time.Second)
	fmt.Printf("%d MiB of output in %v (%.0f MiB/s), recorded %.2f GiB on disk\n", total>>20, took.Round(time.Millisecond), float64(total>>20)/took.Seconds(), float64(size)/(1<<30))
	fmt.Printf("agent RSS %d MiB before, %d MiB after, peak (VmHWM) %d MiB\n", agentBefore, rss(agent, "VmRSS"), rss(agent, "VmHWM"))
	fmt.Printf("recorder RSS %d MiB before, %d MiB after, peak (VmHWM) %d MiB\n", recBefore, rss(rec, "VmRSS"), rss(rec, "VmHWM"))
	for i, v := range samples.got {
		fmt.Printf("after %4d MiB of output: agent RSS %d MiB, recorder RSS %d MiB\n", int64(i+1)*samples.every>>20, v[0], v[1])
	}
}

// rssSampler is an io.Writer that discards what it is given and calls sample after each
// every bytes, keeping what it returned.
type rssSampler struct {
	every, n int64
	sample   func() [2]int
	got      [][2]int
}

func (r *rssSampler) Write(p []byte) (int, error) {
	for left := int64(len(p)); left > 0; {
		step := min(left, r.every-r.n%r.every)
		r.n += step
		left -= step
		if r.n%r.every == 0 {
			r.got = append(r.got, r.sample())
		}
	}
	return len(p), nil
}
