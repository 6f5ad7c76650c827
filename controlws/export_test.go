//go:build !js

package controlws

// StartExampleServer starts the test server for examples and returns its URL and a stop func.
func StartExampleServer() (url string, stop func()) {
	s := startTestServer()
	return s.url, s.Close
}
