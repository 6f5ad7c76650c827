package web

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
)

func get(t *testing.T, h http.Handler, method, path, acceptEncoding string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	if acceptEncoding != "" {
		req.Header.Set("Accept-Encoding", acceptEncoding)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, r *http.Response) string {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestServesBuiltAssets(t *testing.T) {
	h := newHandler(fstest.MapFS{
		".gitkeep":                     {},
		"index.html":                   {Data: []byte("<!doctype html><title>demo</title>")},
		"admin/index.html":             {Data: []byte("<!doctype html><title>console</title>")},
		"admin/term.html":              {Data: []byte("<!doctype html><title>term</title>")},
		"assets/main-ABC.js":           {Data: []byte("console.log(1)")},
		"assets/tsconnect-123.wasm":    {Data: []byte("\x00asm raw")},
		"assets/tsconnect-123.wasm.br": {Data: []byte("brotli bytes")},
		"assets/tsconnect-123.wasm.gz": {Data: []byte("gzip bytes")},
	})

	r := get(t, h, "GET", "/", "")
	if r.StatusCode != 200 || !strings.Contains(body(t, r), "<title>demo") || r.Header.Get("Cache-Control") != "no-cache" {
		t.Errorf("GET /: %d %q cache %q", r.StatusCode, r.Header.Get("Content-Type"), r.Header.Get("Cache-Control"))
	}

	r = get(t, h, "GET", "/assets/tsconnect-123.wasm", "gzip, deflate, br")
	if ct, ce := r.Header.Get("Content-Type"), r.Header.Get("Content-Encoding"); ct != "application/wasm" || ce != "br" || body(t, r) != "brotli bytes" {
		t.Errorf("wasm with br accepted: type %q encoding %q", ct, ce)
	}
	if !strings.Contains(r.Header.Get("Cache-Control"), "immutable") {
		t.Errorf("hashed asset cache-control %q", r.Header.Get("Cache-Control"))
	}
	r = get(t, h, "GET", "/assets/tsconnect-123.wasm", "gzip;q=1, br;q=0")
	if r.Header.Get("Content-Encoding") != "gzip" || body(t, r) != "gzip bytes" {
		t.Errorf("br refused: got encoding %q", r.Header.Get("Content-Encoding"))
	}
	r = get(t, h, "GET", "/assets/tsconnect-123.wasm", "")
	if r.Header.Get("Content-Encoding") != "" || body(t, r) != "\x00asm raw" || r.Header.Get("Content-Type") != "application/wasm" {
		t.Errorf("no encoding accepted: got %q", r.Header.Get("Content-Encoding"))
	}
	r = get(t, h, "GET", "/assets/main-ABC.js", "")
	if r.Header.Get("Content-Type") != "text/javascript; charset=utf-8" {
		t.Errorf("js content type %q", r.Header.Get("Content-Type"))
	}

	r = get(t, h, "GET", "/admin/", "")
	if r.StatusCode != 200 || body(t, r) != "<!doctype html><title>console</title>" || r.Header.Get("Cache-Control") != "no-cache" {
		t.Errorf("GET /admin/: %d cache %q", r.StatusCode, r.Header.Get("Cache-Control"))
	}
	if r := get(t, h, "GET", "/admin/term.html", ""); r.StatusCode != 200 || body(t, r) != "<!doctype html><title>term</title>" {
		t.Errorf("GET /admin/term.html: %d", r.StatusCode)
	}
	if r := get(t, h, "GET", "/admin", ""); r.StatusCode != http.StatusMovedPermanently || r.Header.Get("Location") != "/admin/" {
		t.Errorf("GET /admin: %d to %q, want a redirect to /admin/", r.StatusCode, r.Header.Get("Location"))
	}

	for _, p := range []string{"/.gitkeep", "/assets/", "/admin/index.html/", "/assets/tsconnect-123.wasm.br", "/nope", "/../embed.go"} {
		if r := get(t, h, "GET", p, ""); r.StatusCode != 404 {
			t.Errorf("GET %s = %d, want 404", p, r.StatusCode)
		}
	}
	if r := get(t, h, "POST", "/", ""); r.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST / = %d", r.StatusCode)
	}
}

func TestNotBuiltPage(t *testing.T) {
	h := newHandler(fstest.MapFS{".gitkeep": {}})
	r := get(t, h, "GET", "/", "")
	if b := body(t, r); r.StatusCode != 200 || !strings.Contains(b, "npm ci &amp;&amp; npm run build") && !strings.Contains(b, "npm ci && npm run build") {
		t.Errorf("GET / without a build: %d %q", r.StatusCode, b)
	}
}

// TestEmbeddedHandler runs the real embedded directory: built or not, "/" answers.
func TestEmbeddedHandler(t *testing.T) {
	r := get(t, Handler(), "GET", "/", "")
	if r.StatusCode != 200 || !strings.Contains(r.Header.Get("Content-Type"), "text/html") {
		t.Errorf("GET / = %d %q", r.StatusCode, r.Header.Get("Content-Type"))
	}
}
