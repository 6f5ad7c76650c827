package controlws

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	"tsconnect/key"
)

// Path is where the control WebSocket is served.
const Path = "/ts/control"

// KeyPath is where the server publishes its static key (GET, JSON KeyResponse, CORS-enabled).
const KeyPath = "/key"

// KeyResponse is the JSON body of GET KeyPath: {"key":"<64 hex digits>","version":1}.
type KeyResponse struct {
	Key     key.Public `json:"key"`
	Version int        `json:"version"`
}

// fetchServerKey gets the server's static key from base+KeyPath and checks the protocol version.
func fetchServerKey(ctx context.Context, base *url.URL, get func(context.Context, string) ([]byte, error)) (key.Public, error) {
	u := endpointURL(base, KeyPath, false)
	body, err := get(ctx, u)
	if err != nil {
		return key.Public{}, fmt.Errorf("controlws: fetching server key from %s: %w", u, err)
	}
	var kr KeyResponse
	if err := json.Unmarshal(body, &kr); err != nil {
		return key.Public{}, fmt.Errorf("controlws: server key from %s: bad JSON: %w", u, err)
	}
	if kr.Key.IsZero() {
		return key.Public{}, fmt.Errorf("controlws: server key from %s: no key", u)
	}
	if kr.Version != Version {
		return key.Public{}, fmt.Errorf("controlws: server at %s speaks control protocol version %d, this client speaks %d", base, kr.Version, Version)
	}
	return kr.Key, nil
}

// parseServerURL accepts http(s) and ws(s) base URLs.
func parseServerURL(s string) (*url.URL, error) {
	if s == "" {
		return nil, fmt.Errorf("controlws: no server URL")
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("controlws: bad server URL: %w", err)
	}
	switch u.Scheme {
	case "http", "https", "ws", "wss":
	default:
		return nil, fmt.Errorf("controlws: server URL %q: scheme must be http or https", s)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("controlws: server URL %q has no host", s)
	}
	return u, nil
}

// endpointURL joins base and path, with a ws(s) scheme if ws, else http(s).
func endpointURL(base *url.URL, path string, ws bool) string {
	u := *base
	u.Path = strings.TrimSuffix(u.Path, "/") + path
	u.RawPath, u.RawQuery, u.Fragment = "", "", ""
	secure := u.Scheme == "https" || u.Scheme == "wss"
	switch {
	case ws && secure:
		u.Scheme = "wss"
	case ws:
		u.Scheme = "ws"
	case secure:
		u.Scheme = "https"
	default:
		u.Scheme = "http"
	}
	return u.String()
}
