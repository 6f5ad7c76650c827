//go:build !js

package controlws

import (
	"context"
	"fmt"
	"io"
	"net/http"
)

// defaultHTTPGet fetches url with net/http's default client.
func defaultHTTPGet(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %s", resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxKeyBody+1))
	if err != nil {
		return nil, err
	}
	if len(body) > maxKeyBody {
		return nil, fmt.Errorf("response over %d bytes", maxKeyBody)
	}
	return body, nil
}
