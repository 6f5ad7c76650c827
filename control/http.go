package control

import (
	"net/http"

	"tsconnect/controlws"
	"tsconnect/internal/safetext"
)

// routes builds the public HTTP handler.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle(controlws.KeyPath, controlws.KeyHandler(s.PublicKey()))
	mux.HandleFunc(controlws.Path, s.serveControl)
	if s.relay != nil {
		mux.Handle("/derp", s.relay)
		mux.Handle("/derp/", s.relay)
	}
	web := s.cfg.Web
	if web == nil {
		web = http.HandlerFunc(servePlaceholder)
	}
	mux.Handle("/", web)
	return mux
}

// serveControl upgrades to the control WebSocket and serves the connection until it ends.
func (s *Server) serveControl(w http.ResponseWriter, r *http.Request) {
	c, err := controlws.AcceptHTTP(w, r, s.priv)
	if err != nil {
		s.logf("control: %s", safetext.Bounded(err.Error(), 512)) // may quote request headers
		return
	}
	s.serveConn(c, sourceKey(r.RemoteAddr))
}

const placeholderPage = `<!doctype html>
<html><head><meta charset="utf-8"><title>tsconnect control</title></head>
<body><h1>tsconnect control</h1>
<p>This coordination server is running. No web console is built into this binary:
build the front end (see the repository's README) to serve the admin console here.</p>
</body></html>
`

func servePlaceholder(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write([]byte(placeholderPage))
}
