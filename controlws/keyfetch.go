//go:build !js

package controlws

import "tsconnect/internal/httpget"

// defaultHTTPGet fetches url with net/http's default client.
var defaultHTTPGet = httpget.Get
