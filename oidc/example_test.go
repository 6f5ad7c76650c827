package oidc_test

import (
	"context"
	"log"
	"net/http"

	"tsconnect/oidc"
)

// A server signs users in with its provider: /auth/login starts, /auth/callback finishes.
func Example() {
	rp, err := oidc.New(context.Background(), oidc.Config{
		Issuer:         "https://accounts.example.com",
		ClientID:       "tsconnect",
		ClientSecret:   "from the provider's console",
		RedirectURL:    "https://control.example.com/auth/callback",
		AllowedDomains: []string{"example.com"},
	})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /auth/login", func(w http.ResponseWriter, r *http.Request) {
		rp.Start(w, r, r.URL.Query().Get("next"))
	})
	mux.HandleFunc("GET /auth/callback", func(w http.ResponseWriter, r *http.Request) {
		id, next, err := rp.Finish(w, r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		// Find or create the user id.Email, record the sign-in, start a session...
		_ = id
		http.Redirect(w, r, next, http.StatusSeeOther)
	})
	log.Fatal(http.ListenAndServe(":8080", mux))
}
