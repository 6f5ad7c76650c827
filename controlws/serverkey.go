package controlws

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"tsconnect/key"
)

// Path is where the control WebSocket is served.
const Path = "/ts/control"

// KeyPath is where the server publishes its static key (GET, JSON KeyResponse, CORS-enabled).
const KeyPath = "/key"

// KeyResponse is the JSON body of GET KeyPath: {"key":"<64 hex digits>","version":1,"maxVersion":2}.
type KeyResponse struct {
	Key key.Public `json:"key"`
	// MinVersion is the oldest protocol version the server speaks. Its JSON name is "version"
	// because version 1 clients refuse a server whose "version" is not 1: they read a server
	// that dropped version 1 as one they cannot speak to, and say so.
	MinVersion int `json:"version"`
	// MaxVersion is the newest version the server speaks; absent (a server of version 1) means MinVersion.
	MaxVersion int `json:"maxVersion,omitempty"`
}

// versions returns the range kr announces.
func (kr KeyResponse) versions() versionRange {
	return versionRange{kr.MinVersion, max(kr.MinVersion, kr.MaxVersion)}
}

// fetchServerKey gets the server's static key and protocol versions from base+KeyPath.
func fetchServerKey(ctx context.Context, base *url.URL, get func(context.Context, string) ([]byte, error)) (key.Public, versionRange, error) {
	u := endpointURL(base, KeyPath, false)
	body, err := get(ctx, u)
	if err != nil {
		return key.Public{}, versionRange{}, fmt.Errorf("controlws: fetching server key from %s: %w", u, err)
	}
	var kr KeyResponse
	if err := json.Unmarshal(body, &kr); err != nil {
		return key.Public{}, versionRange{}, fmt.Errorf("controlws: server key from %s: bad JSON: %w", u, err)
	}
	if kr.Key.IsZero() {
		return key.Public{}, versionRange{}, fmt.Errorf("controlws: server key from %s: no key", u)
	}
	if kr.MinVersion < 1 {
		return key.Public{}, versionRange{}, fmt.Errorf("controlws: server key from %s: no protocol version", u)
	}
	return kr.Key, kr.versions(), nil
}

// pickOffer returns the version a client speaking cli offers a server announcing srv: cli's
// newest unless the server is older (1 means a server of version 1: no offer, no answer), or
// an *Error saying which side to upgrade when the ranges do not meet.
func pickOffer(srv, cli versionRange) (int, error) {
	switch {
	case srv.max < cli.min:
		return 0, tooNew(srv, cli)
	case srv.min > cli.max:
		return 0, tooOld(srv, cli)
	case srv.max == 1:
		return 1, nil
	}
	return cli.max, nil
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

// controlURL is the control WebSocket's URL under base, carrying offer from version 2 on.
func controlURL(base *url.URL, offer int) string {
	u := endpointURL(base, Path, true)
	if offer > 1 {
		u += "?" + url.Values{VersionParam: {strconv.Itoa(offer)}}.Encode()
	}
	return u
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
