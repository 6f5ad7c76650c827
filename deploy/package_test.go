// Package deploy_test checks what deploy/ ships: the Debian package (its contents, lintian's
// verdict), the systemd units (systemd-analyze), an install, upgrade and purge in a throwaway
// Debian root made by debootstrap, and the agent's restart waiting for dpkg.
package deploy_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// The two versions the tests build: the install and the upgrade.
const (
	v1 = "0.1.1"
	v2 = "0.1.2"
)

var (
	debsOnce sync.Once
	debs     map[string]string // version → .deb path
	debsErr  error
	debsDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if debsDir != "" {
		os.RemoveAll(debsDir)
	}
	os.Exit(code)
}

// deb builds (once per run) the package of version v with scripts/deb.sh and returns its path.
func deb(t *testing.T, v string) string {
	t.Helper()
	debsOnce.Do(func() {
		debsDir, debsErr = os.MkdirTemp("", "tsconnect-deb-")
		if debsErr != nil {
			return
		}
		debs = map[string]string{}
		for _, v := range []string{v1, v2} {
			cmd := exec.Command("bash", "scripts/deb.sh", v)
			cmd.Dir = ".."
			cmd.Env = append(os.Environ(), "DEB_OUT="+debsDir)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				debsErr = fmt.Errorf("scripts/deb.sh %s: %v\n%s", v, err, stderr.String())
				return
			}
			debs[v] = strings.TrimSpace(string(out))
			if !filepath.IsAbs(debs[v]) {
				debs[v] = filepath.Join("..", debs[v])
			}
		}
	})
	if debsErr != nil {
		t.Fatal(debsErr)
	}
	return debs[v]
}

// run runs a command and returns its combined output, failing the test on an error.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Fatal("this test needs root (chroot, dpkg into a throwaway root, PID namespaces): run it as root")
	}
}

func TestPackageContents(t *testing.T) {
	p := deb(t, v1)
	fields := run(t, "dpkg-deb", "--field", p, "Package", "Version", "Architecture", "Depends", "Section")
	for _, want := range []string{"Package: tsconnect", "Version: " + v1, "Depends: adduser, libc6 (>= 2.34)", "Section: net"} {
		if !strings.Contains(fields, want) {
			t.Errorf("control fields lack %q:\n%s", want, fields)
		}
	}
	listing := run(t, "dpkg-deb", "--contents", p)
	for _, want := range []string{
		"-rwxr-xr-x root/root", "./usr/bin/tsconnect",
		"./lib/systemd/system/tsconnect-control.service",
		"./lib/systemd/system/tsconnect-agent.service",
		"./lib/systemd/system/tsconnect-derp.service",
		"./etc/default/tsconnect-control", "./etc/default/tsconnect-agent", "./etc/default/tsconnect-derp",
		"./usr/lib/tsconnect/restart-agent-when-idle",
		"./usr/share/man/man1/tsconnect.1.gz",
		"./usr/share/doc/tsconnect/copyright", "./usr/share/doc/tsconnect/changelog.gz",
	} {
		if !strings.Contains(listing, want) {
			t.Errorf("the package lacks %s:\n%s", want, listing)
		}
	}
	ctl := t.TempDir()
	run(t, "dpkg-deb", "--control", p, ctl)
	conffiles, err := os.ReadFile(filepath.Join(ctl, "conffiles"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"/etc/default/tsconnect-control", "/etc/default/tsconnect-agent", "/etc/default/tsconnect-derp"} {
		if !strings.Contains(string(conffiles), f+"\n") {
			t.Errorf("%s is not a conffile (an upgrade would overwrite the admin's flags): conffiles =\n%s", f, conffiles)
		}
	}
	for _, s := range []string{"postinst", "prerm", "postrm"} {
		if _, err := os.Stat(filepath.Join(ctl, s)); err != nil {
			t.Errorf("no %s maintainer script: %v", s, err)
		}
	}
	t.Logf("package size: %d bytes", fileSize(t, p))
}

func fileSize(t *testing.T, p string) int64 {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func TestLintian(t *testing.T) {
	p := deb(t, v1)
	// Errors and warnings fail; info and pedantic tags are printed for the reader.
	out, err := exec.Command("lintian", "--fail-on", "error,warning", "--display-info", "--tag-display-limit", "0", p).CombinedOutput()
	t.Logf("lintian:\n%s", out)
	if err != nil {
		t.Fatalf("lintian refuses the package: %v", err)
	}
}

// extract unpacks the package into a fresh root and returns it.
func extract(t *testing.T, p string) string {
	t.Helper()
	root := t.TempDir()
	run(t, "dpkg-deb", "--extract", p, root)
	return root
}

func TestUnitsVerify(t *testing.T) {
	root := extract(t, deb(t, v1))
	// The targets the units name (multi-user.target, network-online.target, …) from this
	// machine's systemd, as an installed system has them.
	targets, err := filepath.Glob("/lib/systemd/system/*.target")
	if err != nil || len(targets) == 0 {
		t.Fatalf("no systemd targets in /lib/systemd/system (is systemd installed?): %v", err)
	}
	run(t, "cp", append(append([]string{"-n"}, targets...), filepath.Join(root, "lib/systemd/system"))...)
	units := []string{"tsconnect-control.service", "tsconnect-agent.service", "tsconnect-derp.service"}
	for _, u := range units {
		path := filepath.Join(root, "lib/systemd/system", u)
		out, err := exec.Command("systemd-analyze", "verify", "--man=no", "--root="+root, path).CombinedOutput()
		if err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Errorf("systemd-analyze verify %s: %v\n%s", u, err, out)
		}
	}
	// The exposure score of each unit (0 = fully sandboxed, 10 = not at all), for the reader: the
	// agent is high on purpose (its children are people's login shells; see its unit's comment).
	for _, u := range units {
		out, _ := exec.Command("systemd-analyze", "security", "--offline=yes", "--root="+root, "--no-pager", u).CombinedOutput()
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		t.Logf("%s: %s", u, lines[len(lines)-1])
	}
}
