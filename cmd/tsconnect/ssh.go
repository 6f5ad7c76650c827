package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"tsconnect/agent"
	"tsconnect/controlws"
	"tsconnect/internal/safetext"
)

func init() {
	register(&command{
		name:  "ssh",
		usage: "[user@]HOST [command...]",
		short: "run the system ssh to a node, host key from the map",
		long: `Runs the system's ssh to HOST (a node name or overlay address) through the local agent
(ProxyCommand 'tsconnect nc %h %p') with HOST's SSH host keys from the network map as its
only known host keys, so there is no trust-on-first-use prompt and no other key is accepted.
The command, if any, runs on HOST; ssh's exit code is passed through.`,
		run: func(ctx context.Context, args []string) error {
			if len(args) == 0 {
				return errors.New("usage: tsconnect ssh [user@]HOST [command...]")
			}
			target := args[0]
			host := target
			if i := strings.LastIndexByte(target, '@'); i >= 0 {
				host = target[i+1:]
			}
			var st agent.Status
			if err := localAPIGet(ctx, "/localapi/v1/status", &st); err != nil {
				return err
			}
			peer, ok := findPeer(st.Peers, host)
			if !ok {
				return fmt.Errorf("%q is not a node in this agent's network map (see `tsconnect status`)", host)
			}
			if !peer.SSH || len(peer.SSHHostKeys) == 0 {
				return fmt.Errorf("%s does not serve SSH (the map shows no SSH host keys for it)", safetext.Bounded(peer.Name, 0))
			}
			self, err := os.Executable()
			if err != nil {
				return fmt.Errorf("cannot find this program for ProxyCommand: %v", err)
			}
			sshPath, err := exec.LookPath("ssh")
			if err != nil {
				return fmt.Errorf("the OpenSSH client is required: %v", err)
			}
			dir, err := os.MkdirTemp("", "tsconnect-ssh-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			alias := "tsconnect-" + peer.Name
			var kh strings.Builder
			for _, k := range peer.SSHHostKeys {
				kh.WriteString(alias + " " + strings.TrimSpace(k) + "\n")
			}
			knownHosts := filepath.Join(dir, "known_hosts")
			if err := os.WriteFile(knownHosts, []byte(kh.String()), 0o600); err != nil {
				return err
			}
			sshArgs := []string{
				"-o", "ProxyCommand=" + shellQuote(self) + " --socket " + shellQuote(socketPath()) + " nc %h %p",
				"-o", "UserKnownHostsFile=" + knownHosts,
				"-o", "GlobalKnownHostsFile=/dev/null",
				"-o", "HostKeyAlias=" + alias,
				"-o", "StrictHostKeyChecking=yes",
				"-o", "CheckHostIP=no",
				"--", target,
			}
			cmd := exec.Command(sshPath, append(sshArgs, args[1:]...)...)
			cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
			err = cmd.Run() // Ctrl-C goes to ssh (same process group); main's signal context keeps us alive
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				return exitError(ee.ExitCode())
			}
			return err
		},
	})
}

// findPeer finds a peer by name (with or without a trailing dot) or overlay address.
func findPeer(peers []controlws.Node, host string) (controlws.Node, bool) {
	ip, ipErr := netip.ParseAddr(host)
	for _, p := range peers {
		name := strings.TrimSuffix(host, ".")
		if p.Name == name || strings.HasPrefix(name, p.Name+".") {
			return p, true
		}
		if ipErr == nil {
			for _, a := range p.Addresses {
				if a.Addr() == ip {
					return p, true
				}
			}
		}
	}
	return controlws.Node{}, false
}

// shellQuote quotes s for /bin/sh, which runs ssh's ProxyCommand.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
