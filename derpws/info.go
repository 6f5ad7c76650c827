package derpws

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"

	"golang.org/x/crypto/curve25519"
	"golang.org/x/crypto/nacl/box"

	"tsconnect/key"
)

// ClientInfo is the JSON a client seals into its ClientInfo frame.
type ClientInfo struct {
	// Version is the protocol version the client speaks (ProtocolVersion).
	Version int `json:"version,omitempty"`
	// MeshKey, hex, is set only by relays of the same region meshing with each other.
	MeshKey string `json:"meshKey,omitempty"`
	// CanAckPings says the client answers Ping frames with Pong.
	CanAckPings bool `json:"CanAckPings"`
	// IsProber marks monitoring clients.
	IsProber bool `json:"IsProber,omitempty"`
	// AppName optionally names the client program.
	AppName string `json:"AppName,omitempty"`
}

// ServerInfo is the JSON a server seals into its ServerInfo frame.
type ServerInfo struct {
	// Version is the protocol version the server speaks.
	Version int `json:"version,omitempty"`
	// TokenBucketBytesPerSecond, if non-zero, is the rate the server limits the client's sending to.
	TokenBucketBytesPerSecond int `json:",omitempty"`
	// TokenBucketBytesBurst, if non-zero, is the burst of that limit.
	TokenBucketBytesBurst int `json:",omitempty"`
}

// sealJSON marshals v and seals it from priv to peer, returning nonce followed by box.
func sealJSON(v any, priv key.Private, peer key.Public) ([]byte, error) {
	msg, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var nonce [nonceLen]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return nil, err
	}
	pk, sk := [32]byte(peer), [32]byte(priv)
	return box.Seal(nonce[:], msg, &nonce, &pk, &sk), nil
}

// openJSON opens nonce+box sealed by peer to priv and unmarshals the JSON into v.
func openJSON(sealed []byte, priv key.Private, peer key.Public, v any, what string) error {
	if len(sealed) < nonceLen+box.Overhead {
		return fmt.Errorf("derpws: %s of %d bytes is too short for a sealed box", what, len(sealed))
	}
	nonce := [nonceLen]byte(sealed[:nonceLen])
	pk, sk := [32]byte(peer), [32]byte(priv)
	msg, ok := box.Open(nil, sealed[nonceLen:], &nonce, &pk, &sk)
	if !ok {
		return fmt.Errorf("derpws: %s box does not open with the claimed key", what)
	}
	if err := json.Unmarshal(msg, v); err != nil {
		return fmt.Errorf("derpws: %s JSON: %v", what, err)
	}
	return nil
}

// clientInfoPayload builds a ClientInfo frame payload: the client's public key, then the sealed JSON.
func clientInfoPayload(priv key.Private, serverPub key.Public, info *ClientInfo) ([]byte, error) {
	pub := priv.Public()
	sealed, err := sealJSON(info, priv, serverPub)
	if err != nil {
		return nil, err
	}
	return append(pub[:], sealed...), nil
}

// parseClientInfo reads a ClientInfo payload with the server's private key. It returns the
// client's key only if the box opens with it, which proves the client holds the private key.
func parseClientInfo(b []byte, serverPriv key.Private) (key.Public, *ClientInfo, error) {
	var k key.Public
	if len(b) < KeyLen {
		return k, nil, errors.New("derpws: ClientInfo frame shorter than a key")
	}
	copy(k[:], b)
	if err := checkClaimedKey(k, serverPriv); err != nil {
		return key.Public{}, nil, err
	}
	info := new(ClientInfo)
	if err := openJSON(b[KeyLen:], serverPriv, k, info, "ClientInfo"); err != nil {
		return key.Public{}, nil, err
	}
	return k, info, nil
}

// checkClaimedKey refuses a claimed key that is not a canonical curve point encoding (bit 255
// set, or a value of at least 2^255-19: another spelling of some real key's point, whose box
// would open too) or that is of low order (its shared secret is all zeros, so anyone could seal
// a box "from" it). No key made from a private key is either.
func checkClaimedKey(k key.Public, serverPriv key.Private) error {
	nonCanonical := k[31]&0x80 != 0
	if k[31] == 0x7f && k[0] >= 0xed {
		nonCanonical = true
		for _, c := range k[1:31] {
			if c != 0xff {
				nonCanonical = false
				break
			}
		}
	}
	if nonCanonical {
		return errors.New("derpws: ClientInfo claims a key that is not a canonical curve25519 encoding")
	}
	if _, err := curve25519.X25519(serverPriv[:], k[:]); err != nil {
		return errors.New("derpws: ClientInfo claims a low-order key")
	}
	return nil
}

// serverInfoPayload builds a ServerInfo frame payload for the client clientPub.
func serverInfoPayload(priv key.Private, clientPub key.Public, info *ServerInfo) ([]byte, error) {
	return sealJSON(info, priv, clientPub)
}

// parseServerInfo opens a ServerInfo payload sealed by the server serverPub to clientPriv.
func parseServerInfo(b []byte, clientPriv key.Private, serverPub key.Public) (*ServerInfo, error) {
	info := new(ServerInfo)
	if err := openJSON(b, clientPriv, serverPub, info, "ServerInfo"); err != nil {
		return nil, err
	}
	return info, nil
}
