package main

// OutputWindow is how many bytes of terminal output a session may have handed to the page
// that the page has not acknowledged (SSHSession.Ack) yet. While the window is full the
// session stops reading its SSH channel, so the channel's window closes and the remote side
// blocks: nothing between the remote PTY and the screen buffers without bound, and a Ctrl-C
// reaches the screen after at most this much (plus the SSH and TCP windows) already in flight.
// 1 MiB is about 20 ms of what xterm.js parses per second, several acknowledgements deep.
const OutputWindow = 1 << 20
