package main

import (
	"context"
	"os"

	"tsconnect/sshd"
)

func init() {
	register(&command{
		name:   "sftp-server",
		hidden: true,
		usage:  "",
		short:  "(internal) serve SFTP on stdin/stdout for an SSH session",
		long: `Serves the SFTP protocol on stdin and stdout with the rights of whoever runs it.
The agent's SSH server starts it as the logged-in user for the "sftp" subsystem; it is
not meant to be run by hand.`,
		run: func(ctx context.Context, args []string) error {
			return sshd.ServeSFTP(os.Stdin, os.Stdout)
		},
	})
}
