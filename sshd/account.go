package sshd

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"os/user"
	"strings"
)

// account is a resolved local account and its login shell.
type account struct {
	*user.User
	Shell string
}

// lookupAccount resolves a local account by name; its shell comes from the passwd
// database (/etc/passwd, then getent for NSS sources), /bin/sh when none is set.
func lookupAccount(name string) (*account, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, err
	}
	shell := passwdShell(name)
	if shell == "" {
		shell = "/bin/sh"
	}
	return &account{User: u, Shell: shell}, nil
}

func passwdShell(name string) string {
	if f, err := os.Open("/etc/passwd"); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if sh, ok := shellField(sc.Text(), name); ok {
				return sh
			}
		}
	}
	out, err := exec.Command("getent", "passwd", name).Output()
	if err != nil {
		return ""
	}
	sh, _ := shellField(string(bytes.TrimSpace(out)), name)
	return sh
}

// shellField returns the shell of a passwd line (name:pw:uid:gid:gecos:home:shell) for name.
func shellField(line, name string) (string, bool) {
	f := strings.Split(line, ":")
	if len(f) != 7 || f[0] != name {
		return "", false
	}
	return f[6], true
}
