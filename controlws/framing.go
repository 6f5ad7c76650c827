package controlws

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// MaxEnvelopeSize is the largest JSON envelope either end sends or accepts: 16 MiB.
const MaxEnvelopeSize = 16 << 20

// frameHeaderLen is the size of an envelope frame's big-endian length prefix.
const frameHeaderLen = 4

// appendFrame appends env as one frame (4-byte big-endian length, then JSON) to dst.
func appendFrame(dst []byte, env *Envelope) ([]byte, error) {
	if env.Type == "" {
		return dst, errors.New("controlws: envelope without type")
	}
	// The envelope is written by hand so that Body, already JSON, is copied as it is:
	// json.Marshal would scan and re-compact it, a third of a full map's cost at scale.
	typ, err := json.Marshal(env.Type)
	if err != nil {
		return dst, fmt.Errorf("controlws: encoding %s envelope: %w", env.Type, err)
	}
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = strconv.AppendInt(append(dst, `{"v":`...), int64(env.V), 10)
	dst = append(append(dst, `,"type":`...), typ...)
	if env.ID != 0 {
		dst = strconv.AppendUint(append(dst, `,"id":`...), env.ID, 10)
	}
	if len(env.Body) > 0 {
		dst = append(append(dst, `,"body":`...), env.Body...)
	}
	dst = append(dst, '}')
	n := len(dst) - start - frameHeaderLen
	if n > MaxEnvelopeSize {
		return dst[:start], fmt.Errorf("controlws: %s envelope of %d bytes exceeds the %d-byte limit", env.Type, n, MaxEnvelopeSize)
	}
	binary.BigEndian.PutUint32(dst[start:], uint32(n))
	return dst, nil
}

// readFrame reads one envelope frame from the plaintext stream r.
// A stream that ends cleanly between frames gives io.EOF; one that ends inside a frame gives io.ErrUnexpectedEOF.
func readFrame(r io.Reader) (*Envelope, error) {
	var hdr [frameHeaderLen]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > MaxEnvelopeSize {
		return nil, fmt.Errorf("controlws: peer announced an envelope of %d bytes, over the %d-byte limit", n, MaxEnvelopeSize)
	}
	// Grow the buffer as bytes arrive rather than trusting n up front.
	var buf bytes.Buffer
	buf.Grow(int(min(n, 64<<10)))
	if _, err := io.CopyN(&buf, r, int64(n)); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("controlws: reading %d-byte envelope: %w", n, err)
	}
	return decodeEnvelope(buf.Bytes())
}

// decodeEnvelope parses one envelope's JSON. It checks shape only: the version is the handler's to judge.
func decodeEnvelope(b []byte) (*Envelope, error) {
	var env Envelope
	if err := json.Unmarshal(b, &env); err != nil {
		return nil, fmt.Errorf("controlws: bad envelope: %w", err)
	}
	if env.Type == "" {
		return nil, errors.New("controlws: bad envelope: no type")
	}
	return &env, nil
}

// NewEnvelope returns an envelope of type typ answering (or asking) id, with body encoded as its JSON Body.
// A nil body leaves Body empty; V stays 0, so Conn.WriteEnvelope stamps the connection's version.
// Servers use it to answer: NewEnvelope(TypeMapResponse, req.ID, &resp).
func NewEnvelope(typ string, id uint64, body any) (*Envelope, error) {
	env := &Envelope{Type: typ, ID: id}
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("controlws: encoding %s: %w", typ, err)
		}
		env.Body = b
	}
	return env, nil
}

// ErrorEnvelope returns a TypeError envelope answering id with code and message.
func ErrorEnvelope(id uint64, code, message string) *Envelope {
	env, _ := NewEnvelope(TypeError, id, &Error{Code: code, Message: message}) // cannot fail: two strings
	return env
}

// DecodeBody unmarshals env's Body into v, naming the message type in the error.
func (env *Envelope) DecodeBody(v any) error {
	if len(env.Body) == 0 {
		return fmt.Errorf("controlws: %s message has no body", env.Type)
	}
	if err := json.Unmarshal(env.Body, v); err != nil {
		return fmt.Errorf("controlws: bad %s body: %w", env.Type, err)
	}
	return nil
}

// Err returns the *Error a TypeError envelope carries, or nil for any other type.
// A malformed error body still yields an *Error (CodeInternal) so callers never lose the failure.
func (env *Envelope) Err() error {
	if env.Type != TypeError {
		return nil
	}
	var e Error
	if err := json.Unmarshal(env.Body, &e); err != nil || e.Code == "" {
		return &Error{Code: CodeInternal, Message: "server sent a malformed error: " + string(truncate(env.Body, 200))}
	}
	return &e
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}
