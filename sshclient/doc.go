// Package sshclient is the SSH client of a browser session: it runs over any net.Conn,
// pins the target's host keys from the network map and relays a PTY shell or a command.
package sshclient
