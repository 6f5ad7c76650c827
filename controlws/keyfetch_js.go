package controlws

import (
	"context"
	"errors"
)

// defaultHTTPGet refuses: the js build links no HTTP client, so the caller passes one built on fetch.
func defaultHTTPGet(context.Context, string) ([]byte, error) {
	return nil, errors.New("DialOptions.HTTPGet is required under GOOS=js unless ServerKey is set")
}
