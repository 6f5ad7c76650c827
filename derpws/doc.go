// Package derpws speaks the DERP relay protocol: frame codec, relay server and client.
// Transports are the HTTP upgrade (native) and a WebSocket byte stream (browsers), both at /derp.
//
// # Protocol flow
//
// A client opens /derp either with "Upgrade: DERP" (the server answers 101 unless the client
// asked for fast start) or as a WebSocket with subprotocol "derp", whose binary messages form a
// byte stream. From then on both sides exchange frames (see frame.go for the byte layouts):
//
//  1. The server sends ServerKey: a magic string and its public key.
//  2. The client sends ClientInfo: its public key and a NaCl box, sealed from its private key to
//     the server's public key. A box that opens proves possession of the claimed key; that key is
//     the client's identity on the relay from then on.
//  3. The server answers with ServerInfo, sealed the other way.
//  4. The client sends SendPacket frames addressed to peers' keys; the server delivers each as a
//     RecvPacket stamped with the authenticated sender key. It sends PeerGone for destinations it
//     does not know, and when a sender leaves, to everyone that sender sent to.
//
// The server sends KeepAlive frames, answers Ping with Pong and, on a graceful shutdown,
// Restarting. Unknown frame types are skipped in both directions.
//
// Mesh: relays of one region share a mesh key (ServerOptions.MeshKey) and connect to each other
// (Server.MeshWith) as clients that show the key. Each sends WatchConns and learns the peer's
// clients from a flood of PeerPresent frames followed by PeerPresent/PeerGone as they come and go;
// a packet for a client of a peer goes there as ForwardPacket (source and destination keys), which
// the peer delivers to its local client only. WatchConns, ForwardPacket and ClosePeer from a client
// without the mesh key close its connection.
//
// Regions: a node measures each region's relay with GET /derp/probe (ProbeRegions), takes the
// fastest as home (PickHome), and uses a Multi: one Client per region, the home one announced
// with NotePreferred, others opened only for peers homed there and closed when idle.
//
// Fairness and limits: each destination's queue is kept per source, and when it is full the
// packet dropped is the oldest of the source holding most of it, so one sender's flood costs
// only that sender; the writer serves sources round robin. The relay reads each client at most
// ServerOptions.ClientBytesPerSecond and ClientFramesPerSecond (pausing, not dropping), closes a
// client that stalls mid-frame for FrameTimeout or breaks a frame's size rules (a packet over
// MaxPacketSize, NotePreferred not 1 byte, Ping not 8 to 1000 bytes, ClientInfo over 8 KiB,
// WatchConns not empty, ClosePeer not 32 bytes), and holds at most MaxConns connections. A new
// connection with a key replaces only that key's older one. Drops and closes are counted by
// reason in the metrics.
//
// Admission for a standalone relay: VerifyURL asks a control server (see control.RelayVerifyPath)
// with a shared bearer secret. Metrics: Server.Collector, a Prometheus collector.
package derpws
