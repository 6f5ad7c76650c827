// Package controlws is the control protocol: its messages, the Noise-over-WebSocket transport both ends share,
// and the client nodes use to register and follow their network map; the server endpoint lives in files the wasm never sees.
//
// # Protocol flow
//
// The client fetches the server's static key and protocol versions from GET KeyPath (JSON KeyResponse,
// CORS-enabled: {"key":…,"version":MinVersion,"maxVersion":Version}) unless it has the key pinned, then
// opens a WebSocket at Path: binary messages, compression off, no subprotocol. Every WebSocket message
// holds exactly one message preceded by its length, so the transport runs over any byte stream
// (websocket.NetConn, net.Pipe):
//
//	+--------------------+----------------------------------+
//	| 2 bytes: length n  | n bytes: Noise message (≤ 65535) |
//	+--------------------+----------------------------------+
//
// # Versions
//
// A client of version 2 on offers the newest version it speaks in the URL, Path?v=N (VersionParam; the
// browser's WebSocket sets no headers); a URL without it is a version 1 client. To an offer the server
// first answers in plain, one message as above holding JSON {"version":V,"min":…,"max":…}: V is the
// newest version both speak, and the client goes on only if V is one of its own. A client newer than the
// server thus falls back to the server's newest; one whose oldest is newer than that stops with an *Error
// (CodeUnsupportedVer) saying to upgrade control. A client older than MinVersion is refused readably:
// an offering client gets {"min":…,"max":…,"error":"<sentence naming the version to run>"}; every refused
// client gets a WebSocket close with code CloseVersionRefused and that sentence as the reason (what a
// version 1 client shows); a client that fetched GET KeyPath already knows before it dials.
// A client whose key is pinned cannot tell a version 1 server (which answers nothing) until it times out.
//
// The handshake is Noise_IK_25519_ChaChaPoly_BLAKE2s (github.com/flynn/noise). The client is the initiator,
// its static key is its long-lived machine key, and it knows the server's static key in advance. The
// prologue binds the negotiation: "tsconnect control v1" for version 1, and from version 2
// "tsconnect control vV\noffer N\nhello <the answer's bytes>", so a man in the middle who rewrote the offer
// or the answer (to force an older version) makes the handshake fail. Both handshake payloads are empty:
//
//	C→S  e, es, s, ss   (96 bytes)   may be a replay: nothing is acted on yet
//	S→C  e, ee, se      (48 bytes)   the client now knows it speaks to the server
//	C→S  transport message           empty; once it decrypts, the server knows the machine key
//
// Accept returns only after that third message decrypted, so a replayed first message never yields a Conn.
// After the handshake each direction carries a byte stream split over Noise transport messages of at most
// 65,535 bytes (16 of them the tag). The stream is a sequence of frames, each a JSON Envelope:
//
//	+------------------------------+-----------------------------+
//	| 4 bytes: big-endian length n | n bytes: JSON Envelope      |
//	+------------------------------+-----------------------------+
//
// n is at most MaxEnvelopeSize (16 MiB); a large map spans several Noise messages.
//
// # Messages
//
// Every envelope's V is the connection's version; control answers any other with CodeUnsupportedVer.
// Requests carry an ID the response echoes. register → registerResponse | error; mapRequest → a stream of
// mapResponse, all with the request's ID: the first holds Full, later ones deltas (see NetworkMap.Apply),
// until the connection ends or an error with that ID ends the stream; update → ok | error; logout → ok | error.
//
// Check mode: sshCheck → [sshCheckVerdict "pending" with the URL] → sshCheckVerdict "accept" | "reject" | error;
// the node may send sshCheckCancel with the sshCheck's ID to give up (the final answer is then a reject).
// Interactive login: register with interactive set and no auth key → loginURL → registerResponse | error
// (CodeLoginExpired when nobody signed in in time). Requests are served in order except these two, whose
// final answers may come after answers to later requests.
//
// # Adding a version
//
// Version 2 is version 1's messages plus the negotiation. A change to a message's form that an older
// peer would misread (a new message type, a field whose absence means something else, a changed
// meaning) gets a new Version, and both ends switch on Conn.Version: control keeps serving every
// version from MinVersion with the forms that version knows (a new field stays unsent, a new message
// type unused, a new behaviour off), and the client sends nothing its peer's version lacks. A field
// an older peer may ignore (encoding/json drops unknown fields) needs no new version. Raising
// MinVersion drops clients: do it only with a release note naming the version to run. When Version
// moves to N+1, the version N client is frozen beside controlws/internal/v1client (vNclient) and the
// compatibility tests in controlws/internal/compat run it too. docs/versions.md has the full rules.
package controlws
