package derpws

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"tsconnect/key"
)

// ProtocolVersion is the DERP protocol version this package speaks (RecvPacket carries the source key).
const ProtocolVersion = 2

// KeyLen is the length of a public key on the wire.
const KeyLen = 32

// MaxPacketSize is the largest packet a client may send through the relay.
const MaxPacketSize = 64 << 10

// frameHeaderLen is the length of a frame header: 1 byte type, 4 bytes big-endian payload length.
const frameHeaderLen = 5

// maxFrameLen is the largest payload either side accepts; a longer frame is refused before
// reading it. The room above MaxPacketSize covers the keys of ForwardPacket.
const maxFrameLen = MaxPacketSize + 1024

// magic opens the ServerKey frame: "DERP🔑".
const magic = "DERP\xf0\x9f\x94\x91"

// nonceLen is the length of a NaCl box nonce.
const nonceLen = 24

// FrameType is the first byte of every frame.
//
// Every frame is laid out as
//
//	type    (1 byte)
//	length  (4 bytes, big-endian: the length of payload)
//	payload (length bytes)
type FrameType byte

// Frame types with their payloads. S = server, C = client.
const (
	// FrameServerKey, S→C, first frame on a connection:
	//	magic "DERP🔑" (8 bytes: 44 45 52 50 f0 9f 94 91)
	//	server public key (32 bytes)
	//	[future bytes, ignored]
	FrameServerKey FrameType = 0x01
	// FrameClientInfo, C→S, answers ServerKey:
	//	client public key (32 bytes)
	//	nonce (24 bytes)
	//	NaCl box of ClientInfo JSON, sealed client private → server public
	FrameClientInfo FrameType = 0x02
	// FrameServerInfo, S→C, completes the handshake:
	//	nonce (24 bytes)
	//	NaCl box of ServerInfo JSON, sealed server private → client public
	FrameServerInfo FrameType = 0x03
	// FrameSendPacket, C→S:
	//	destination public key (32 bytes)
	//	packet (at most MaxPacketSize bytes)
	FrameSendPacket FrameType = 0x04
	// FrameRecvPacket, S→C (protocol version 2):
	//	source public key (32 bytes), the authenticated sender
	//	packet
	FrameRecvPacket FrameType = 0x05
	// FrameKeepAlive, S→C: empty payload, at least every 60 s.
	FrameKeepAlive FrameType = 0x06
	// FrameNotePreferred, C→S:
	//	1 byte: 1 if this relay is the client's home, else 0
	FrameNotePreferred FrameType = 0x07
	// FramePeerGone, S→C:
	//	public key (32 bytes)
	//	reason (1 byte): PeerGoneDisconnected or PeerGoneNotHere
	FramePeerGone FrameType = 0x08
	// FramePeerPresent, S→mesh:
	//	public key (32 bytes)
	//	[IP (16 bytes) + port (2 bytes, big-endian) [+ flags (1 byte)]]
	FramePeerPresent FrameType = 0x09
	// FrameForwardPacket, mesh→S:
	//	source public key (32 bytes)
	//	destination public key (32 bytes)
	//	packet
	FrameForwardPacket FrameType = 0x0a
	// FrameWatchConns, mesh→S: empty payload; needs the mesh key.
	FrameWatchConns FrameType = 0x10
	// FrameClosePeer, mesh→S: public key (32 bytes); needs the mesh key.
	FrameClosePeer FrameType = 0x11
	// FramePing, both directions: 8 bytes, echoed in Pong.
	FramePing FrameType = 0x12
	// FramePong, both directions: the 8 bytes of the Ping.
	FramePong FrameType = 0x13
	// FrameHealth, S→C: UTF-8 problem text; empty clears it.
	FrameHealth FrameType = 0x14
	// FrameRestarting, S→C:
	//	reconnect after (4 bytes, big-endian milliseconds)
	//	keep trying for (4 bytes, big-endian milliseconds)
	FrameRestarting FrameType = 0x15
)

// Reasons in a PeerGone frame.
const (
	// PeerGoneDisconnected: the peer was connected and left.
	PeerGoneDisconnected byte = 0x00
	// PeerGoneNotHere: the relay has no connection for that key.
	PeerGoneNotHere byte = 0x01
)

// errFrameTooLong reports a frame whose announced length is over maxFrameLen.
var errFrameTooLong = errors.New("derpws: frame too long")

// readFrameHeader reads a frame header and refuses a length over maxFrameLen before the
// payload is read.
func readFrameHeader(br *bufio.Reader) (FrameType, uint32, error) {
	h, err := br.Peek(frameHeaderLen)
	if err != nil {
		if err == io.EOF && len(h) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return 0, 0, err
	}
	t, n := FrameType(h[0]), binary.BigEndian.Uint32(h[1:])
	br.Discard(frameHeaderLen)
	if n > maxFrameLen {
		return t, n, fmt.Errorf("%w: type 0x%02x announces %d bytes, limit %d", errFrameTooLong, byte(t), n, maxFrameLen)
	}
	return t, n, nil
}

// readKey reads one public key from br.
func readKey(br *bufio.Reader) (key.Public, error) {
	var k key.Public
	b, err := br.Peek(KeyLen)
	if err != nil {
		return k, unexpectedEOF(err)
	}
	copy(k[:], b)
	br.Discard(KeyLen)
	return k, nil
}

// readSmallPayload reads an n-byte payload into scratch (grown if needed) and returns it.
func readSmallPayload(br *bufio.Reader, n uint32, scratch []byte) ([]byte, error) {
	if uint32(cap(scratch)) < n {
		scratch = make([]byte, n)
	}
	b := scratch[:n]
	if _, err := io.ReadFull(br, b); err != nil {
		return nil, unexpectedEOF(err)
	}
	return b, nil
}

// discard skips n payload bytes.
func discard(br *bufio.Reader, n uint32) error {
	_, err := br.Discard(int(n))
	return unexpectedEOF(err)
}

func unexpectedEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// writeFrameHeader writes a frame header for a payload of n bytes.
func writeFrameHeader(bw *bufio.Writer, t FrameType, n int) error {
	return writeHeadAndKey(bw, t, n, nil)
}

// writeHeadAndKey writes a frame header and, if k is non-nil, a key. It builds them in the
// writer's own buffer, so nothing escapes to the heap.
func writeHeadAndKey(bw *bufio.Writer, t FrameType, n int, k *key.Public) error {
	if bw.Available() < frameHeaderLen+KeyLen {
		if err := bw.Flush(); err != nil {
			return err
		}
	}
	b := append(bw.AvailableBuffer(), byte(t), 0, 0, 0, 0)
	binary.BigEndian.PutUint32(b[1:], uint32(n))
	if k != nil {
		b = append(b, k[:]...)
	}
	_, err := bw.Write(b)
	return err
}

// writeFrame writes a whole frame whose payload is the concatenation of parts.
func writeFrame(bw *bufio.Writer, t FrameType, parts ...[]byte) error {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	if err := writeFrameHeader(bw, t, n); err != nil {
		return err
	}
	for _, p := range parts {
		if _, err := bw.Write(p); err != nil {
			return err
		}
	}
	return nil
}

// writePacketFrame writes a SendPacket or RecvPacket frame: a key then the packet.
// It is the hot path and does not allocate.
func writePacketFrame(bw *bufio.Writer, t FrameType, k *key.Public, pkt []byte) error {
	if err := writeHeadAndKey(bw, t, KeyLen+len(pkt), k); err != nil {
		return err
	}
	_, err := bw.Write(pkt)
	return err
}

// writeForwardFrame writes a ForwardPacket frame: source key, destination key, packet.
func writeForwardFrame(bw *bufio.Writer, src, dst *key.Public, pkt []byte) error {
	if err := writeHeadAndKey(bw, FrameForwardPacket, 2*KeyLen+len(pkt), src); err != nil {
		return err
	}
	if _, err := bw.Write(dst[:]); err != nil {
		return err
	}
	_, err := bw.Write(pkt)
	return err
}

// writePeerGone writes a PeerGone frame.
func writePeerGone(bw *bufio.Writer, k *key.Public, reason byte) error {
	if err := writeHeadAndKey(bw, FramePeerGone, KeyLen+1, k); err != nil {
		return err
	}
	return bw.WriteByte(reason)
}

// serverKeyPayload returns the payload of a ServerKey frame for pub.
func serverKeyPayload(pub key.Public) []byte {
	return append([]byte(magic), pub[:]...)
}

// parseServerKey checks the magic of a ServerKey payload and returns the key; bytes after it are ignored.
func parseServerKey(b []byte) (key.Public, error) {
	var k key.Public
	if len(b) < len(magic)+KeyLen {
		return k, fmt.Errorf("derpws: ServerKey frame of %d bytes, want at least %d", len(b), len(magic)+KeyLen)
	}
	if string(b[:len(magic)]) != magic {
		return k, errors.New("derpws: ServerKey frame without the DERP magic: not a DERP server")
	}
	copy(k[:], b[len(magic):])
	return k, nil
}

// restartingPayload encodes a Restarting frame's payload.
func restartingPayload(reconnectInMs, tryForMs uint32) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint32(b, reconnectInMs)
	binary.BigEndian.PutUint32(b[4:], tryForMs)
	return b
}
