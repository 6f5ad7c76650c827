package agent

import (
	"os"
	"path/filepath"
)

// knownSSHTools are the terminal multiplexers a browser session can offer to attach to, in
// the order they are offered.
var knownSSHTools = []string{"tmux", "screen"}

// toolDirs are where sshTools looks: the PATH a session gets (sshd's default), not the agent's.
var toolDirs = []string{"/usr/local/bin", "/usr/bin", "/bin"}

// sshTools lists the known multiplexers installed on this machine, when it serves SSH.
func sshTools(ssh bool) []string {
	if !ssh {
		return nil
	}
	var out []string
	for _, t := range knownSSHTools {
		for _, d := range toolDirs {
			if fi, err := os.Stat(filepath.Join(d, t)); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
				out = append(out, t)
				break
			}
		}
	}
	return out
}
