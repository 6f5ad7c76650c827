package sshd

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
)

// account is a resolved local account: its ids, groups and login shell.
type account struct {
	*user.User
	Shell    string
	UID, GID uint32
	Groups   []uint32 // supplementary groups, from the group database
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
	a := &account{User: u, Shell: shell}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("account %q has non-numeric ids %s:%s", name, u.Uid, u.Gid)
	}
	a.UID, a.GID = uint32(uid), uint32(gid)
	gids, err := u.GroupIds()
	if err != nil {
		return nil, fmt.Errorf("groups of %q: %w", name, err)
	}
	for _, g := range gids {
		if n, err := strconv.ParseUint(g, 10, 32); err == nil {
			a.Groups = append(a.Groups, uint32(n))
		}
	}
	return a, nil
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
