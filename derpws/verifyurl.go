//go:build !js

package derpws

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"tsconnect/key"
)

// VerifyRequest is what a relay posts to a client-verification URL: may this key connect?
type VerifyRequest struct {
	// NodePublic is the client's key, 64 hex digits.
	NodePublic key.Public `json:"NodePublic"`
}

// VerifyResponse is the verification URL's answer.
type VerifyResponse struct {
	// Allow admits the key.
	Allow bool `json:"Allow"`
	// Reason, optional, says why a key is refused.
	Reason string `json:"Reason,omitempty"`
}

// verifyTimeout bounds one verification request.
const verifyTimeout = 5 * time.Second

// VerifyURL returns a ServerOptions.VerifyClient that asks url (a control server's relay
// verification endpoint) whether a key may connect: a POST of VerifyRequest as JSON with
// "Authorization: Bearer <secret>", answered 200 with a VerifyResponse. Anything else refuses
// the key (fail closed). hc nil means http.DefaultClient.
func VerifyURL(url, secret string, hc *http.Client) func(context.Context, key.Public) error {
	if hc == nil {
		hc = http.DefaultClient
	}
	return func(ctx context.Context, k key.Public) error {
		ctx, cancel := context.WithTimeout(ctx, verifyTimeout)
		defer cancel()
		body, _ := json.Marshal(VerifyRequest{NodePublic: k})
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return fmt.Errorf("derpws: verification URL: %w", err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+secret)
		resp, err := hc.Do(req)
		if err != nil {
			return fmt.Errorf("derpws: asking %s about %s: %w", url, k.ShortString(), err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("derpws: verification URL %s answered %s: %s", url, resp.Status, bytes.TrimSpace(b))
		}
		var vr VerifyResponse
		if err := json.Unmarshal(b, &vr); err != nil {
			return fmt.Errorf("derpws: verification URL %s: bad answer: %v", url, err)
		}
		if !vr.Allow {
			return fmt.Errorf("derpws: control refused %s: %s", k.ShortString(), vr.Reason)
		}
		return nil
	}
}
