// Package web serves the front end (demo page, bundles, tsconnect.wasm) embedded from
// web/dist, which `npm run build` fills; without that build it serves a page saying so.
package web

import (
	"embed"
	"io"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed all:dist
var dist embed.FS

// contentTypes are set explicitly: the host's MIME table may lack .wasm, and
// WebAssembly.compileStreaming requires application/wasm.
var contentTypes = map[string]string{
	".html":  "text/html; charset=utf-8",
	".js":    "text/javascript; charset=utf-8",
	".css":   "text/css; charset=utf-8",
	".wasm":  "application/wasm",
	".json":  "application/json",
	".svg":   "image/svg+xml",
	".woff2": "font/woff2",
	".map":   "application/json",
}

// Handler serves the built front end: a path ending in "/" is that directory's index.html
// ("/" is index.html, "/admin/" admin/index.html; never cached); files under
// /assets/ have content-hashed names and are cached for good. A precompressed .br or .gz
// sibling is served when the client accepts it.
func Handler() http.Handler {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err) // the embed pattern guarantees the directory
	}
	return newHandler(sub)
}

// pages are the build's entry pages: without a build they say so instead of 404.
var pages = map[string]bool{"index.html": true, "admin/index.html": true}

func newHandler(fsys fs.FS) http.Handler { return &handler{fsys: fsys} }

type handler struct {
	fsys fs.FS
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
	if strings.HasSuffix(r.URL.Path, "/") {
		name = path.Join(name, "index.html")
	}
	if strings.HasPrefix(path.Base(name), ".") || strings.HasSuffix(name, ".gz") || strings.HasSuffix(name, ".br") {
		http.NotFound(w, r)
		return
	}
	fi, err := fs.Stat(h.fsys, name)
	if err != nil {
		if pages[name] {
			notBuilt(w)
			return
		}
		http.NotFound(w, r)
		return
	}
	if fi.IsDir() {
		// A directory is served as its index.html at the path with a slash, so that
		// relative links on that page resolve inside it.
		http.Redirect(w, r, "/"+name+"/", http.StatusMovedPermanently)
		return
	}
	hdr := w.Header()
	if ct, ok := contentTypes[path.Ext(name)]; ok {
		hdr.Set("Content-Type", ct)
	}
	if strings.HasPrefix(name, "assets/") {
		hdr.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		hdr.Set("Cache-Control", "no-cache")
	}
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Add("Vary", "Accept-Encoding")
	served := name
	for _, enc := range []struct{ token, ext string }{{"br", ".br"}, {"gzip", ".gz"}} {
		if !accepts(r.Header.Get("Accept-Encoding"), enc.token) {
			continue
		}
		if _, err := fs.Stat(h.fsys, name+enc.ext); err == nil {
			hdr.Set("Content-Encoding", enc.token)
			served = name + enc.ext
			break
		}
	}
	f, err := h.fsys.Open(served)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	defer f.Close()
	// Embedded files carry no modification time; hashed names and no-cache do the caching.
	http.ServeContent(w, r, name, time.Time{}, f.(io.ReadSeeker))
}

// accepts reports whether an Accept-Encoding header allows token (q=0 refuses it).
func accepts(header, token string) bool {
	for _, part := range strings.Split(header, ",") {
		enc, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(enc), token) {
			q := strings.ReplaceAll(params, " ", "")
			return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
		}
	}
	return false
}

func notBuilt(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	io.WriteString(w, notBuiltPage)
}

const notBuiltPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tsconnect: front end not built</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40em; margin: 3em auto">
<h1>The front end is not built</h1>
<p>This binary was built without the web pages and the wasm. From the repository root run</p>
<pre>npm ci && npm run build
go build ./cmd/tsconnect</pre>
<p>(or <code>make build</code>), then start the server again.</p>
</body></html>
`
