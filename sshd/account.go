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

	"tsconnect/internal/safetext"
	"tsconnect/policy/rules"
)

// account is a resolved local account: its ids, groups and login shell.
type account struct {
	*user.User
	Shell    string
	UID, GID uint32
	Groups   []uint32 // supplementary groups, from the group database
}

// lookupAccount resolves a local account by name; its shell comes from the passwd
// database (/etc/passwd, then getent for NSS sources), /bin/sh when none is set. A name
// rules.CheckUserName refuses is never looked up, and the account found must carry exactly
// that name (libc stops at a NUL; NSS modules may fold case).
func lookupAccount(name string) (*account, error) {
	if err := rules.CheckUserName(name); err != nil {
		return nil, err
	}
	return resolveAccount(name)
}

// resolveAccount is lookupAccount after the name check.
func resolveAccount(name string) (*account, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, err
	}
	if u.Username != name {
		return nil, fmt.Errorf("the account database answered %q with the account %q", safetext.Bounded(name, 0), safetext.Bounded(u.Username, 0))
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
