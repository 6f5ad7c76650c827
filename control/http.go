package control

import (
	"fmt"
	"net/http"
	"time"

	"tsconnect/controlws"
	"tsconnect/internal/safetext"
)

// Limits of the public HTTP server (NewHTTPServer) and of control's own routes.
const (
	// ReadHeaderTimeout bounds how long a client may take to send its request headers.
	ReadHeaderTimeout = 10 * time.Second
	// IdleTimeout bounds how long an idle keep-alive connection stays open.
	IdleTimeout = 2 * time.Minute
	// MaxHeaderBytes bounds a request's headers; past it the server answers 431.
	MaxHeaderBytes = 64 << 10
	// MaxRouteBody bounds the body of a request to control's own routes (the key, the
	// control WebSocket, the relay), none of which reads one; past it they answer 413.
	MaxRouteBody = 4 << 10
)

// NewHTTPServer returns the public HTTP server for h (Handler, or the console in front of
// it) with the limits above; the caller serves it on its listener.
func NewHTTPServer(h http.Handler) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: ReadHeaderTimeout, IdleTimeout: IdleTimeout, MaxHeaderBytes: MaxHeaderBytes}
}

// limitBody answers 413 to a request whose announced body is over max, and cuts off one
// that sends more than it announced.
func limitBody(max int64, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > max {
			http.Error(w, fmt.Sprintf("request body of %d bytes is over this route's limit of %d", r.ContentLength, max), http.StatusRequestEntityTooLarge)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, max)
		h.ServeHTTP(w, r)
	})
}

// routes builds the public HTTP handler.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle(controlws.KeyPath, limitBody(MaxRouteBody, controlws.KeyHandler(s.PublicKey())))
	mux.Handle(controlws.Path, limitBody(MaxRouteBody, http.HandlerFunc(s.serveControl)))
	if s.relay != nil {
		mux.Handle("/derp", limitBody(MaxRouteBody, s.relay))
		mux.Handle("/derp/", limitBody(MaxRouteBody, s.relay))
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
