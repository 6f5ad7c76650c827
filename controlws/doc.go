// Package controlws is the control protocol: its messages, the Noise-over-WebSocket transport both ends share,
// and the client nodes use to register and follow their network map; the server endpoint lives in files the wasm never sees.
//
// # Protocol flow
//
// The client fetches the server's static key from GET KeyPath (JSON KeyResponse, CORS-enabled) unless it
// has it pinned, then opens a WebSocket at Path: binary messages, compression off, no subprotocol (the
// version is bound by the Noise prologue instead). Every WebSocket message holds exactly one Noise message
// preceded by its length, so the transport runs over any byte stream (websocket.NetConn, net.Pipe):
//
//	+--------------------+----------------------------------+
//	| 2 bytes: length n  | n bytes: Noise message (≤ 65535) |
//	+--------------------+----------------------------------+
//
// The handshake is Noise_IK_25519_ChaChaPoly_BLAKE2s (github.com/flynn/noise). The client is the initiator,
// its static key is its long-lived machine key, and it knows the server's static key in advance. The
// prologue is "tsconnect control v<Version>", so a client and server of different versions fail the
// handshake. Both handshake payloads are empty:
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
// Requests carry an ID the response echoes. register → registerResponse | error; mapRequest → a stream of
// mapResponse, all with the request's ID: the first holds Full, later ones deltas (see NetworkMap.Apply),
// until the connection ends or an error with that ID ends the stream; update → ok | error; logout → ok | error.
//
// Check mode: sshCheck → [sshCheckVerdict "pending" with the URL] → sshCheckVerdict "accept" | "reject" | error;
// the node may send sshCheckCancel with the sshCheck's ID to give up (the final answer is then a reject).
// Interactive login: register with interactive set and no auth key → loginURL → registerResponse | error
// (CodeLoginExpired when nobody signed in in time). Requests are served in order except these two, whose
// final answers may come after answers to later requests.
package controlws
