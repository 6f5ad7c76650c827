// Package recorder stores SSH session recordings (asciicast v2, one uncompressed .cast file
// and its metadata each) and serves them over HTTP: agents upload, the console lists and plays.
//
// Layout under the storage directory: ID.cast (mode 0600, the header line first, then one
// event line each, on disk within FlushDelay of arriving) and ID.json (Meta, replaced
// atomically). A recording is written as it arrives, never held whole in memory. Opening a
// Store closes the recordings a crash left open as ended "unknown", their last partial line cut.
//
// The upload format and the HTTP API are in docs/protocols.md ("Session recordings").
package recorder
