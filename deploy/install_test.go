package deploy_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"tsconnect/internal/eventually"
)

// debianRoot returns a fresh minimal Debian root (debootstrap --variant=minbase, the host's
// release), unpacked from a tarball cached under ~/.cache/tsconnect so that only the first run
// on a machine downloads it.
func debianRoot(t *testing.T) string {
	t.Helper()
	needRoot(t)
	cache, err := os.UserCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	suite := hostSuite(t)
	tarball := filepath.Join(cache, "tsconnect", "debootstrap", suite+"-minbase.tar")
	if _, err := os.Stat(tarball); err != nil {
		if err := os.MkdirAll(filepath.Dir(tarball), 0o755); err != nil {
			t.Fatal(err)
		}
		build := filepath.Join(filepath.Dir(tarball), "build")
		os.RemoveAll(build)
		t0 := time.Now()
		run(t, "debootstrap", "--variant=minbase", suite, build, "http://deb.debian.org/debian")
		run(t, "tar", "-C", build, "-cf", tarball+".tmp", ".")
		if err := os.Rename(tarball+".tmp", tarball); err != nil {
			t.Fatal(err)
		}
		os.RemoveAll(build)
		t.Logf("debootstrap %s: %v (cached in %s)", suite, time.Since(t0).Round(time.Second), tarball)
	}
	root := t.TempDir()
	run(t, "tar", "-C", root, "-xf", tarball)
	return root
}

// hostSuite is this machine's Debian release codename (bookworm, say).
func hostSuite(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("/etc/os-release")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VERSION_CODENAME="); ok && v != "" {
			return strings.Trim(v, `"`)
		}
	}
	t.Fatal("no VERSION_CODENAME in /etc/os-release: not a Debian machine?")
	return ""
}

// chroot runs a command inside root and returns its output.
func chroot(t *testing.T, root string, args ...string) string {
	t.Helper()
	return run(t, "chroot", append([]string{root}, args...)...)
}

// installDeb copies a package into root and installs it with the root's own dpkg.
func installDeb(t *testing.T, root, p string) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "tmp/tsconnect.deb"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	chroot(t, root, "dpkg", "--force-confold", "-i", "/tmp/tsconnect.deb")
}

// owner returns the user owning path in root, by the root's /etc/passwd, and the mode.
func owner(t *testing.T, root, path string) (string, os.FileMode) {
	t.Helper()
	fi, err := os.Stat(filepath.Join(root, path))
	if err != nil {
		t.Fatal(err)
	}
	uid := fi.Sys().(*syscall.Stat_t).Uid
	f, err := os.Open(filepath.Join(root, "etc/passwd"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		fs := strings.Split(s.Text(), ":")
		if len(fs) > 2 && fs[2] == strconv.Itoa(int(uid)) {
			return fs[0], fi.Mode().Perm()
		}
	}
	return fmt.Sprintf("uid %d", uid), fi.Mode().Perm()
}

// startControl runs the packaged control inside root as the tsconnect user, on a loopback port,
// the way its unit does, and returns a function that stops it (SIGTERM).
func startControl(t *testing.T, root string) func() {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command("chroot", "--userspec=tsconnect:tsconnect", root,
		"/usr/bin/tsconnect", "control", "--state", "/var/lib/tsconnect/control", "--listen", addr)
	cmd.Env = []string{"HOME=/var/lib/tsconnect", "PATH=/usr/bin:/bin"}
	out, err := os.CreateTemp("", "control-log-")
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		log, _ := os.ReadFile(out.Name())
		os.Remove(out.Name())
		t.Logf("control in the root:\n%s", log)
	}
	t.Cleanup(stop)
	eventually.True(t, "control in the root answers", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == 200
	})
	return stop
}

// TestInstallUpgradePurge installs the package into a throwaway Debian root, runs control from
// it as its service user, upgrades, and checks that state, users, keys and the admin's edited
// flags survive the upgrade, and that a purge removes the state.
func TestInstallUpgradePurge(t *testing.T) {
	root := debianRoot(t)
	installDeb(t, root, deb(t, v1))

	if got := strings.TrimSpace(chroot(t, root, "tsconnect", "version")); got != v1 {
		t.Fatalf("tsconnect version = %q after installing %s", got, v1)
	}
	passwd := chroot(t, root, "getent", "passwd", "tsconnect")
	if f := strings.Split(strings.TrimSpace(passwd), ":"); len(f) < 7 || f[5] != "/var/lib/tsconnect" || !strings.HasSuffix(f[6], "nologin") {
		t.Errorf("the service user is %q, want a system user with home /var/lib/tsconnect and no login shell", passwd)
	}
	for path, want := range map[string]string{
		"var/lib/tsconnect/control":   "tsconnect 0700",
		"var/lib/tsconnect/derp":      "tsconnect 0700",
		"var/lib/tsconnect/agent":     "root 0700",
		"etc/default/tsconnect-agent": "root 0644",
	} {
		u, m := owner(t, root, path)
		if got := fmt.Sprintf("%s %04o", u, m); got != want {
			t.Errorf("/%s: %s, want %s", path, got, want)
		}
	}

	stop := startControl(t, root)
	admin := func(args ...string) string {
		return chroot(t, root, append([]string{"tsconnect"}, args...)...)
	}
	pw := exec.Command("chroot", root, "tsconnect", "users", "create", "--state", "/var/lib/tsconnect/control", "--admin", "--password-stdin", "ops@example.com")
	pw.Stdin = strings.NewReader("correct horse battery staple\n")
	if out, err := pw.CombinedOutput(); err != nil {
		t.Fatalf("users create: %v\n%s", err, out)
	}
	admin("keys", "create", "--state", "/var/lib/tsconnect/control", "--user", "ops@example.com", "--reusable")
	keyID := lineFields(t, admin("keys", "list", "--state", "/var/lib/tsconnect/control"), "reusable=true")[1]
	stop()
	if u, _ := owner(t, root, "var/lib/tsconnect/control/control.db"); u != "tsconnect" {
		t.Errorf("control.db belongs to %s, want tsconnect", u)
	}

	// The admin edits the flags; the upgrade must keep the edit.
	flags := filepath.Join(root, "etc/default/tsconnect-control")
	edited := "# edited by the admin\nTSCONNECT_CONTROL_FLAGS=\"--listen :8443\"\n"
	if err := os.WriteFile(flags, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}

	installDeb(t, root, deb(t, v2))
	if got := strings.TrimSpace(chroot(t, root, "tsconnect", "version")); got != v2 {
		t.Fatalf("tsconnect version = %q after upgrading to %s", got, v2)
	}
	if b, _ := os.ReadFile(flags); string(b) != edited {
		t.Errorf("the upgrade replaced the admin's /etc/default/tsconnect-control:\n%s", b)
	}
	stop = startControl(t, root)
	if users := admin("users", "list", "--state", "/var/lib/tsconnect/control"); !strings.Contains(users, "ops@example.com") {
		t.Errorf("after the upgrade the user is gone:\n%s", users)
	}
	if keys := admin("keys", "list", "--state", "/var/lib/tsconnect/control"); !strings.Contains(keys, keyID) {
		t.Errorf("after the upgrade key %s is gone:\n%s", keyID, keys)
	}
	stop()

	chroot(t, root, "dpkg", "--purge", "tsconnect")
	for _, gone := range []string{"var/lib/tsconnect", "usr/bin/tsconnect", "etc/default/tsconnect-control"} {
		if _, err := os.Stat(filepath.Join(root, gone)); !os.IsNotExist(err) {
			t.Errorf("/%s is still there after dpkg --purge (%v)", gone, err)
		}
	}
}

// lineFields returns the columns of the first line of a table that mentions what (at least two).
func lineFields(t *testing.T, table, what string) []string {
	t.Helper()
	for _, l := range strings.Split(table, "\n") {
		if f := strings.Fields(l); strings.Contains(l, what) && len(f) > 1 {
			return f
		}
	}
	t.Fatalf("no line with %q in:\n%s", what, table)
	return nil
}

// TestAgentRestartWaitsForDpkg runs the helper the package's postinst starts on an upgrade: it
// must not restart the agent (which ends every SSH session, the one running apt among them)
// while dpkg or apt runs, and must restart it once they are done. It runs in a PID namespace
// of its own, so the machine's other dpkg runs do not count; systemd is not PID 1 here, so a
// systemctl on PATH records what the helper asks of it.
func TestAgentRestartWaitsForDpkg(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	calls := filepath.Join(dir, "systemctl-calls")
	shim := "#!/bin/sh\necho \"$(date +%s.%N) $*\" >>" + calls + "\n"
	if err := os.WriteFile(filepath.Join(bin, "systemctl"), []byte(shim), 0o755); err != nil {
		t.Fatal(err)
	}
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Fatal(err)
	}
	// A process named dpkg that runs for 2 s, like an upgrade's last steps.
	run(t, "cp", sleep, filepath.Join(bin, "dpkg"))
	helper, _ := filepath.Abs("restart-agent-when-idle")
	script := fmt.Sprintf(`dpkg 2 & sleep 0.2; start=$(date +%%s.%%N); %s; echo "$start"`, helper)
	cmd := exec.Command("unshare", "--pid", "--fork", "--mount-proc", "sh", "-c", script)
	cmd.Env = []string{"PATH=" + bin + ":/usr/sbin:/usr/bin:/sbin:/bin"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("restart-agent-when-idle: %v\n%s", err, out)
	}
	b, err := os.ReadFile(calls)
	if err != nil {
		t.Fatalf("the helper never called systemctl: %v", err)
	}
	f := strings.Fields(string(b))
	if len(f) != 3 || f[1] != "try-restart" || f[2] != "tsconnect-agent.service" {
		t.Fatalf("systemctl calls = %q, want one `try-restart tsconnect-agent.service`", b)
	}
	start, _ := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	at, _ := strconv.ParseFloat(f[0], 64)
	if waited := at - start; waited < 1.5 || waited > 4 {
		t.Errorf("the agent was restarted %.1f s after the helper started; dpkg ran for 1.8 s more: want after it, within ~1 s", waited)
	}
}
