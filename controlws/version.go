package controlws

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"

	"tsconnect/internal/safetext"
)

// Version is the newest control protocol version this package speaks, at both ends.
// Version 2 is version 1's messages plus the version negotiation; version 3 adds rules
// deltas (MapResponse.Rules) to the map stream; version 4 filter deltas
// (MapResponse.FilterDelta); version 5 session recording's and the login audit's
// (VersionRecording); version 6 recordFrom deltas (VersionRecordFromDelta) (docs/versions.md).
const Version = 6

// VersionRulesDelta is the first version whose clients apply MapResponse.Rules; control
// sends older ones a full map when their rules change.
const VersionRulesDelta = 3

// VersionFilterDelta is the first version whose clients apply MapResponse.FilterDelta;
// control sends older ones the whole rules (or, before VersionRulesDelta, a full map).
const VersionFilterDelta = 4

// VersionRecording is the first version that knows session recording and the login audit:
// recorder nodes get NetworkMap.RecordFrom (the nodes they may accept recordings from),
// agents send TypeSSHAudit, and they apply enforceRecorder rules. Control sends an older
// connection, in place of an SSH rule with EnforceRecorder, the same rule refusing (an
// older agent would let the login in unrecorded).
const VersionRecording = 5

// VersionRecordFromDelta is the first version whose clients apply
// MapResponse.RecordFromDelta; control sends older recorders their whole RecordFrom in
// Rules when it changes.
const VersionRecordFromDelta = 6

// MinVersion is the oldest version this package still speaks: control serves clients from
// MinVersion on, and the client falls back to servers as old as it.
const MinVersion = 1

// VersionParam is the query parameter of the control WebSocket's URL in which a client of
// version 2 or later offers the newest version it speaks (Path?v=2). A request without it
// comes from a version 1 client.
const VersionParam = "v"

// CloseVersionRefused is the WebSocket close code with which control refuses a client older
// than its MinVersion; the close reason says which version to run (a browser's WebSocket
// shows a close reason, never an HTTP error body).
const CloseVersionRefused = 4426

// maxHelloLen bounds the server's version answer; a real one is under 100 bytes.
const maxHelloLen = 1024

// versionRange is the versions one end speaks, min ≤ max.
type versionRange struct{ min, max int }

// supported is what this package speaks.
var supported = versionRange{MinVersion, Version}

func (vr versionRange) String() string {
	if vr.min == vr.max {
		return fmt.Sprintf("version %d", vr.min)
	}
	return fmt.Sprintf("versions %d–%d", vr.min, vr.max)
}

// hello is the server's plain answer to a client's offer (version 2 on): one wire message
// (2-byte length, then this JSON) before the Noise handshake. Its bytes are bound into the
// prologue, so a rewritten answer fails the handshake.
type hello struct {
	// Version is what both ends speak from now on; 0 when Error is set.
	Version int `json:"version,omitempty"`
	// Min and Max are the versions the server speaks.
	Min int `json:"min"`
	Max int `json:"max"`
	// Error, when set, refuses the offer: a sentence for a person, naming the version to run.
	Error string `json:"error,omitempty"`
}

// ParseOffer reads the version a client offered from its WebSocket URL's query: 1 when the
// parameter is absent (a version 1 client), else a decimal ≥ 2.
func ParseOffer(q url.Values) (int, error) {
	vs, ok := q[VersionParam]
	if !ok {
		return 1, nil
	}
	if len(vs) != 1 {
		return 0, fmt.Errorf("controlws: %d %q parameters in the control URL, want one", len(vs), VersionParam)
	}
	v, err := strconv.Atoi(vs[0])
	if err != nil || v < 2 || v > 1<<20 || strconv.Itoa(v) != vs[0] {
		return 0, fmt.Errorf("controlws: protocol version offer \"%s\" is not a decimal from 2 on", safetext.Bounded(vs[0], 32))
	}
	return v, nil
}

// refusal is the sentence control sends a client whose newest version, offer, is older than
// the oldest vr holds. It fits a WebSocket close reason (123 bytes).
func refusal(offer int, vr versionRange) string {
	return fmt.Sprintf("this server speaks control protocol %s, yours up to %d: upgrade tsconnect to a release speaking %d or later", vr, offer, vr.min)
}

// tooNew is the error of a client whose oldest version is newer than the server's newest.
func tooNew(srv, cli versionRange) error {
	return &Error{Code: CodeUnsupportedVer, Message: fmt.Sprintf("this server speaks control protocol %s, this client %s: "+
		"upgrade the control server (tsconnect control) to a release speaking %d or later", srv, cli, cli.min)}
}

// tooOld is the error of a client whose newest version is older than the server's oldest, as
// the client finds it from GET KeyPath: the server's refusal in the client's words.
func tooOld(srv, cli versionRange) error {
	return &Error{Code: CodeUnsupportedVer, Message: refusal(cli.max, srv)}
}

// marshalHello encodes h as the server sends it.
func marshalHello(h hello) []byte {
	b, _ := json.Marshal(h) // cannot fail: ints and a string
	return b
}

// parseHello decodes the server's answer to an offer and checks its shape. Fields it does not
// know are ignored, so a later server may add some without breaking this client.
func parseHello(b []byte) (hello, error) {
	var h hello
	if len(b) > maxHelloLen {
		return h, fmt.Errorf("version answer of %d bytes, over the %d-byte limit", len(b), maxHelloLen)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&h); err != nil {
		return h, fmt.Errorf("version answer is not the expected JSON: %v", err)
	}
	if dec.More() {
		return h, errors.New("version answer has bytes after its JSON object")
	}
	if h.Min < 1 || h.Max < h.Min {
		return h, fmt.Errorf("version answer names a bad range %d–%d", h.Min, h.Max)
	}
	switch {
	case h.Error != "" && h.Version != 0:
		return h, errors.New("version answer both refuses and picks a version")
	case h.Error == "" && (h.Version < h.Min || h.Version > h.Max):
		return h, fmt.Errorf("version answer picks %d, outside its own range %d–%d", h.Version, h.Min, h.Max)
	}
	return h, nil
}

// prologue binds the protocol name, the version and how it was negotiated into the
// handshake hash: version 1 is exactly "tsconnect control v1"; from version 2 the client's
// offer and the server's answer follow byte for byte, so a man in the middle who rewrote
// either (to force an older version) makes the handshake fail.
func prologue(version, offer int, helloMsg []byte) []byte {
	p := fmt.Appendf(nil, "tsconnect control v%d", version)
	if offer <= 1 {
		return p
	}
	p = fmt.Appendf(p, "\noffer %d\nhello ", offer)
	return append(p, helloMsg...)
}
