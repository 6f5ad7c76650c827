package controlws

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/flynn/noise"

	"tsconnect/key"
)

// The Noise parameters: Noise_IK_25519_ChaChaPoly_BLAKE2s.
var cipherSuite = noise.NewCipherSuite(noise.DH25519, noise.CipherChaChaPoly, noise.HashBLAKE2s)

const (
	// maxNoiseMsg is the largest Noise message, tag included.
	maxNoiseMsg = noise.MaxMsgLen
	// tagLen is the ChaCha20-Poly1305 tag every transport message carries.
	tagLen = 16
	// maxChunk is the most plaintext one transport message carries.
	maxChunk = maxNoiseMsg - tagLen
	// wireHeaderLen is the size of the big-endian length before each Noise message.
	wireHeaderLen = 2
	// maxWireMsg is the largest WebSocket message the transport produces.
	maxWireMsg = wireHeaderLen + maxNoiseMsg
	// msg1Len is the size of the initiator's IK message with an empty payload: e, encrypted s, tag.
	msg1Len = 32 + (32 + tagLen) + tagLen
)

// prologue binds the protocol name and version into the handshake hash.
func prologue(version int) []byte { return fmt.Appendf(nil, "tsconnect control v%d", version) }

func dhKey(k key.Private) noise.DHKey {
	pub := k.Public()
	return noise.DHKey{Private: append([]byte(nil), k[:]...), Public: pub[:]}
}

// errServerKeyMismatch explains every way the first handshake message can fail at the server.
var errServerKeyMismatch = errors.New("the server key did not match: the server could not decrypt the handshake " +
	"(the client pinned or fetched another server key, or speaks another protocol version)")

// initiate runs the client side of the handshake over nc and returns the established Conn.
func initiate(ctx context.Context, nc net.Conn, machine key.Private, server key.Public, version int) (_ *Conn, err error) {
	if machine.IsZero() {
		return nil, errors.New("controlws: no machine key")
	}
	if server.IsZero() {
		return nil, errors.New("controlws: no server key")
	}
	defer watchDeadline(ctx, nc)(&err)
	hs, err := noise.NewHandshakeState(noise.Config{
		CipherSuite:   cipherSuite,
		Pattern:       noise.HandshakeIK,
		Initiator:     true,
		Prologue:      prologue(version),
		StaticKeypair: dhKey(machine),
		PeerStatic:    server[:],
	})
	if err != nil {
		return nil, fmt.Errorf("controlws: handshake setup: %w", err)
	}
	msg1, _, _, err := hs.WriteMessage(nil, nil)
	if err != nil {
		return nil, fmt.Errorf("controlws: handshake: %w", err)
	}
	br := bufio.NewReaderSize(nc, 4096)
	if err := writeWire(nc, msg1); err != nil {
		return nil, fmt.Errorf("controlws: sending handshake: %w", err)
	}
	msg2, err := readWire(br)
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			// The server hangs up on a first message it cannot decrypt.
			return nil, fmt.Errorf("controlws: server closed the connection during the handshake; %w", errServerKeyMismatch)
		}
		return nil, fmt.Errorf("controlws: reading handshake reply: %w", err)
	}
	payload, tx, rx, err := hs.ReadMessage(nil, msg2)
	if err != nil {
		return nil, fmt.Errorf("controlws: handshake reply did not authenticate as server %s: %w", server.ShortString(), err)
	}
	if len(payload) != 0 || tx == nil {
		return nil, errors.New("controlws: malformed handshake reply")
	}
	c := newConn(nc, br, server, tx, rx)
	// The confirmation: an empty transport message proves to the server that we hold the machine key
	// (a replayed first message cannot produce it).
	if err := c.writeNoise(nil); err != nil {
		return nil, fmt.Errorf("controlws: confirming handshake: %w", err)
	}
	return c, nil
}

// respond runs the server side of the handshake over nc. It returns only once a transport message from the
// client decrypted, so the client's machine key is proven.
func respond(ctx context.Context, nc net.Conn, serverKey key.Private, version int) (_ *Conn, err error) {
	if serverKey.IsZero() {
		return nil, errors.New("controlws: no server key")
	}
	defer watchDeadline(ctx, nc)(&err)
	hs, err := noise.NewHandshakeState(noise.Config{
		CipherSuite:   cipherSuite,
		Pattern:       noise.HandshakeIK,
		Initiator:     false,
		Prologue:      prologue(version),
		StaticKeypair: dhKey(serverKey),
	})
	if err != nil {
		return nil, fmt.Errorf("controlws: handshake setup: %w", err)
	}
	br := bufio.NewReaderSize(nc, 4096)
	msg1, err := readWire(br)
	if err != nil {
		return nil, fmt.Errorf("controlws: reading handshake: %w", err)
	}
	if len(msg1) != msg1Len {
		return nil, fmt.Errorf("controlws: handshake message of %d bytes, want %d (not a v%d control client?)", len(msg1), msg1Len, version)
	}
	payload, _, _, err := hs.ReadMessage(nil, msg1)
	if err != nil {
		return nil, fmt.Errorf("controlws: client handshake did not decrypt (it expects another server key or protocol version than v%d): %w", version, err)
	}
	if len(payload) != 0 {
		return nil, errors.New("controlws: handshake payload must be empty")
	}
	var peer key.Public
	copy(peer[:], hs.PeerStatic())
	msg2, rx, tx, err := hs.WriteMessage(nil, nil)
	if err != nil {
		return nil, fmt.Errorf("controlws: handshake: %w", err)
	}
	if err := writeWire(nc, msg2); err != nil {
		return nil, fmt.Errorf("controlws: sending handshake reply: %w", err)
	}
	c := newConn(nc, br, peer, tx, rx)
	// Until a transport message decrypts, the first message may have been a replay.
	if err := c.readNoise(); err != nil {
		return nil, fmt.Errorf("controlws: client %s did not confirm the handshake: %w", peer.ShortString(), err)
	}
	return c, nil
}

// watchDeadline makes ctx's end interrupt nc's I/O until the returned func runs; that func clears the
// deadline again and, if ctx ended, turns *errp into ctx's error.
func watchDeadline(ctx context.Context, nc net.Conn) func(errp *error) {
	if d, ok := ctx.Deadline(); ok {
		nc.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	return func(errp *error) {
		if !stop() && *errp != nil {
			*errp = fmt.Errorf("controlws: handshake: %w (%v)", context.Cause(ctx), *errp)
		}
		nc.SetDeadline(time.Time{})
	}
}

// writeWire writes one Noise message with its length prefix as a single Write (one WebSocket message).
func writeWire(w io.Writer, msg []byte) error {
	buf := make([]byte, wireHeaderLen, wireHeaderLen+len(msg))
	binary.BigEndian.PutUint16(buf, uint16(len(msg)))
	_, err := w.Write(append(buf, msg...))
	return err
}

// readWire reads one length-prefixed Noise message.
func readWire(r io.Reader) ([]byte, error) {
	var hdr [wireHeaderLen]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	msg := make([]byte, binary.BigEndian.Uint16(hdr[:]))
	if _, err := io.ReadFull(r, msg); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return msg, nil
}
