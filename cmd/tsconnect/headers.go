package main

import (
	"net/http"

	"tsconnect/console"
)

// withSecurityHeaders gives every answer of h the console's security headers (its
// Content-Security-Policy with frame-ancestors 'none', nosniff, the referrer policy):
// the demo page at /, term.html and every other page are held to the console's rules.
func withSecurityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		console.SetSecurityHeaders(w.Header())
		h.ServeHTTP(w, r)
	})
}
