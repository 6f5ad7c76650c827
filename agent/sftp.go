package agent

import "os"

// sftpServerArgv is the SFTP child of the SSH server: Config.SFTPServer, else this
// executable's hidden `sftp-server` subcommand (the tsconnect binary).
func (a *Agent) sftpServerArgv() []string {
	if len(a.cfg.SFTPServer) > 0 {
		return a.cfg.SFTPServer
	}
	exe, err := os.Executable()
	if err != nil {
		a.logf("agent: sftp unavailable: cannot find this executable: %v", err)
		return nil
	}
	return []string{exe, "sftp-server"}
}
