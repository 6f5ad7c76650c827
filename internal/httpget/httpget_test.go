//go:build !js

package httpget

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestGet(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			w.Write([]byte("hello"))
		case "/big":
			w.Write(make([]byte, MaxBody+1))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	ctx := context.Background()
	if b, err := Get(ctx, srv.URL+"/ok"); err != nil || string(b) != "hello" {
		t.Fatalf("Get /ok = %q, %v", b, err)
	}
	if _, err := Get(ctx, srv.URL+"/missing"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("Get /missing: err = %v, want the 404 named", err)
	}
	if _, err := Get(ctx, srv.URL+"/big"); err == nil || !strings.Contains(err.Error(), "over") {
		t.Fatalf("Get /big: err = %v, want a size error", err)
	}
}
