package main

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"tsconnect/internal/testop"
)

// adminHandler serves the admin endpoint (see the package doc) to requests that carry the
// bearer token.
func adminHandler(op *testop.OP, token string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /users", func(w http.ResponseWriter, r *http.Request) {
		var uj userJSON
		if !readBody(w, r, &uj) {
			return
		}
		u, err := uj.user()
		if err != nil {
			http.Error(w, "user "+err.Error(), http.StatusBadRequest)
			return
		}
		op.AddUser(u)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /clients", func(w http.ResponseWriter, r *http.Request) {
		var cj clientJSON
		if !readBody(w, r, &cj) {
			return
		}
		if err := op.AddClient(cj.client()); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /logins", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]int{"logins": op.Logins()})
	})
	mux.HandleFunc("POST /backdate", func(w http.ResponseWriter, r *http.Request) {
		var b struct {
			By string `json:"by"`
		}
		if !readBody(w, r, &b) {
			return
		}
		d, err := time.ParseDuration(b.By)
		if err != nil || d < 0 {
			http.Error(w, fmt.Sprintf(`"by" must be a duration such as "2h", not %q`, b.By), http.StatusBadRequest)
			return
		}
		op.BackdateSignIns(d)
		w.WriteHeader(http.StatusNoContent)
	})
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			http.Error(w, "admin requests need the bearer token testop printed", http.StatusUnauthorized)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// readBody decodes the request's JSON body into v, answering 400 naming the problem if it
// cannot.
func readBody(w http.ResponseWriter, r *http.Request, v any) bool {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<16))
	if err == nil {
		err = decodeStrict(data, v)
	}
	if err != nil {
		http.Error(w, "request body: "+strings.TrimPrefix(err.Error(), "json: "), http.StatusBadRequest)
		return false
	}
	return true
}
