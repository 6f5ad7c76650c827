package sshd

import (
	"errors"
	"io"
	"os"

	"github.com/pkg/sftp"
)

// ServeSFTP serves the SFTP protocol on r and w until the client ends it, with the
// caller's own rights and working directory. It is meant for the child process that
// Server.SFTPServer names, started as the logged-in user; it never runs inside the agent.
func ServeSFTP(r io.Reader, w io.WriteCloser) error {
	rw := struct {
		io.Reader
		io.WriteCloser
	}{r, w}
	opts := []sftp.ServerOption{}
	if wd, err := os.Getwd(); err == nil {
		opts = append(opts, sftp.WithServerWorkingDirectory(wd))
	}
	srv, err := sftp.NewServer(rw, opts...)
	if err != nil {
		return err
	}
	if err := srv.Serve(); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}
