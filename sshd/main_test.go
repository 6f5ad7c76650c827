//go:build linux

package sshd

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// sftpServerArg makes the test binary act as Server.SFTPServer's program.
const sftpServerArg = "tsconnect-test-sftp-server"

// testSFTPServer is the argv of the SFTP child: a copy of this test binary that every
// user can run (go's build directory is private to the user running the tests).
var testSFTPServer []string

func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == sftpServerArg {
		if err := ServeSFTP(os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "sftp server:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "sshd-test-bin")
	if err == nil {
		os.Chmod(dir, 0o755)
		bin := filepath.Join(dir, "sshd.test")
		if err = copyFile(os.Args[0], bin, 0o755); err == nil {
			testSFTPServer = []string{bin, sftpServerArg}
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "preparing the sftp server binary:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
