//go:build !js

// Package httpget is the one plain HTTP GET of the native build (control's /key, relay probes).
// The browser build has none: there the caller passes a GET built on fetch.
package httpget

import (
	"context"
	"fmt"
	"io"
	"net/http"
)

// MaxBody is the most Get reads of a response body.
const MaxBody = 64 << 10

// Get fetches url with net/http's default client and returns the body of a 200 answer
// (at most MaxBody bytes; a longer body is an error).
func Get(ctx context.Context, url string) ([]byte, error) {
	return GetWith(ctx, http.DefaultClient, url)
}

// GetWith is Get with client c.
func GetWith(ctx context.Context, c *http.Client, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBody+1))
	if err != nil {
		return nil, err
	}
	if len(body) > MaxBody {
		return nil, fmt.Errorf("GET %s: response over %d bytes", url, MaxBody)
	}
	return body, nil
}
