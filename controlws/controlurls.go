package controlws

import (
	"fmt"
	"net/url"
	"slices"
)

// Bounds of NetworkMap.ControlURLs: control lists at most MaxControlURLs replicas, each URL
// at most MaxControlURLLen bytes; a node ignores a list over either bound.
const (
	MaxControlURLs   = 32
	MaxControlURLLen = 512
)

// CheckControlURL reports why u is not a control base URL a node may dial: an http or https
// URL with a host and nothing but an optional path (no user, query or fragment), within
// MaxControlURLLen bytes.
func CheckControlURL(u string) error {
	if len(u) > MaxControlURLLen {
		return fmt.Errorf("control URL of %d bytes, over the %d-byte limit", len(u), MaxControlURLLen)
	}
	p, err := url.Parse(u)
	switch {
	case err != nil:
		return fmt.Errorf("control URL %q: %v", u, err)
	case p.Scheme != "http" && p.Scheme != "https":
		return fmt.Errorf("control URL %q is not http:// or https://", u)
	case p.Host == "" || p.Hostname() == "":
		return fmt.Errorf("control URL %q has no host", u)
	case p.User != nil || p.RawQuery != "" || p.Fragment != "" || p.Opaque != "":
		return fmt.Errorf("control URL %q has a user, query or fragment", u)
	}
	return nil
}

// CheckControlURLs reports why urls is not a list of control replicas a node may keep: more
// than MaxControlURLs, a URL CheckControlURL refuses, or a URL listed twice.
func CheckControlURLs(urls []string) error {
	if len(urls) > MaxControlURLs {
		return fmt.Errorf("%d control URLs, over the limit of %d", len(urls), MaxControlURLs)
	}
	for i, u := range urls {
		if err := CheckControlURL(u); err != nil {
			return err
		}
		if slices.Contains(urls[:i], u) {
			return fmt.Errorf("control URL %q listed twice", u)
		}
	}
	return nil
}
