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

	"tsconnect/internal/safetext"
	"tsconnect/key"
)

// The Noise parameters: Noise_IK_25519_ChaChaPoly_BLAKE2s.
var cipherSuite = noise.NewCipherSuite(dh25519{}, noise.CipherChaChaPoly, noise.HashBLAKE2s)

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

func dhKey(k key.Private) noise.DHKey {
	pub := k.Public()
	return noise.DHKey{Private: append([]byte(nil), k[:]...), Public: pub[:]}
}

// errServerKeyMismatch explains every way the first handshake message can fail at the server.
var errServerKeyMismatch = errors.New("the server key did not match: the server could not decrypt the handshake " +
	"(the client pinned or fetched another server key, or speaks another protocol version)")

// initiate runs the client side of the handshake over nc and returns the established Conn.
// offer is what the client put in VersionParam: from 2 on it first reads the server's
// version answer, and picks a version of vr from it; 1 speaks version 1 at once, as a
// version 1 client does.
func initiate(ctx context.Context, nc net.Conn, machine key.Private, server key.Public, offer int, vr versionRange) (_ *Conn, err error) {
	if machine.IsZero() {
		return nil, errors.New("controlws: no machine key")
	}
	if server.IsZero() {
		return nil, errors.New("controlws: no server key")
	}
	defer watchDeadline(ctx, nc)(&err)
	br := bufio.NewReaderSize(nc, 4096)
	version, pro := 1, prologue(1, 1, nil)
	if offer > 1 {
		if version, pro, err = readHello(br, offer, vr); err != nil {
			return nil, err
		}
	}
	hs, err := noise.NewHandshakeState(noise.Config{
		CipherSuite:   cipherSuite,
		Pattern:       noise.HandshakeIK,
		Initiator:     true,
		Prologue:      pro,
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
	c := newConn(nc, br, server, tx, rx, version)
	// The confirmation: an empty transport message proves to the server that we hold the machine key
	// (a replayed first message cannot produce it).
	if err := c.writeNoise(nil); err != nil {
		return nil, fmt.Errorf("controlws: confirming handshake: %w", err)
	}
	return c, nil
}

// respond runs the server side of the handshake over nc. offer is the newest version the
// client offered (1: none, a version 1 client); from 2 on respond first answers with the
// version picked from vr, or refuses an offer older than vr (an *Error, CodeUnsupportedVer).
// It returns only once a transport message from the client decrypted, so the client's
// machine key is proven.
func respond(ctx context.Context, nc net.Conn, serverKey key.Private, offer int, vr versionRange) (_ *Conn, err error) {
	if serverKey.IsZero() {
		return nil, errors.New("controlws: no server key")
	}
	defer watchDeadline(ctx, nc)(&err)
	if offer < vr.min {
		msg := refusal(offer, vr)
		if offer > 1 {
			writeWire(nc, marshalHello(hello{Min: vr.min, Max: vr.max, Error: msg})) // best effort: we refuse either way
		}
		return nil, &Error{Code: CodeUnsupportedVer, Message: msg}
	}
	version, pro := 1, prologue(1, 1, nil)
	if offer > 1 {
		version = min(offer, vr.max)
		h := marshalHello(hello{Version: version, Min: vr.min, Max: vr.max})
		if err := writeWire(nc, h); err != nil {
			return nil, fmt.Errorf("controlws: sending the version answer: %w", err)
		}
		pro = prologue(version, offer, h)
	}
	hs, err := noise.NewHandshakeState(noise.Config{
		CipherSuite:   cipherSuite,
		Pattern:       noise.HandshakeIK,
		Initiator:     false,
		Prologue:      pro,
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
	c := newConn(nc, br, peer, tx, rx, version)
	// Until a transport message decrypts, the first message may have been a replay.
	if err := c.readNoise(); err != nil {
		return nil, fmt.Errorf("controlws: client %s did not confirm the handshake: %w", peer.ShortString(), err)
	}
	return c, nil
}

// readHello reads the server's answer to offer and returns the version to speak (one of vr,
// at most offer) and the prologue binding it. A refusal, or an answer outside vr, is an
// *Error (CodeUnsupportedVer) whose message says which side to upgrade.
func readHello(br *bufio.Reader, offer int, vr versionRange) (int, []byte, error) {
	b, err := readWire(br)
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return 0, nil, fmt.Errorf("controlws: the server closed the connection before answering the version offer " +
				"(a control server of version 1 answers nothing and waits: pin no server key, so that the client reads its version from GET /key)")
		}
		return 0, nil, fmt.Errorf("controlws: reading the version answer: %w", err)
	}
	h, err := parseHello(b)
	if err != nil {
		return 0, nil, fmt.Errorf("controlws: %w", err)
	}
	srv := versionRange{h.Min, h.Max}
	switch {
	case h.Error != "":
		return 0, nil, &Error{Code: CodeUnsupportedVer, Message: safetext.Bounded(h.Error, 300)}
	case h.Version > offer:
		return 0, nil, fmt.Errorf("controlws: the server picked version %d, over the %d offered", h.Version, offer)
	case h.Version < vr.min:
		return 0, nil, tooNew(srv, vr)
	}
	return h.Version, prologue(h.Version, offer, b), nil
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
