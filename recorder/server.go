package recorder

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"sync"
	"time"

	"tsconnect/internal/safetext"
	"tsconnect/policy/rules"
)

// Port is the overlay TCP port a recorder node serves on.
const Port = rules.RecorderPort

// ExitCodeTrailer is the upload's HTTP trailer carrying the session's exit code (0 to 255).
const ExitCodeTrailer = "Tsconnect-Exit-Code"

// Limits of the HTTP server.
const (
	headerTimeout = 10 * time.Second // to send the request headers and the cast header line
	maxFollowers  = 64               // GET …/cast?follow=1 at once
	maxListLimit  = 10000
	cutDrain      = 2 * time.Second // how long a cut upload's connection is drained
	cutDrainMax   = 8 << 20         // and how much of it at most
	// Keepalive is how often an upload's answer repeats {"id"} while the upload runs, so
	// that the uploader notices a recorder gone without a word (its node stopped).
	Keepalive = time.Second
)

// Access is what a peer asks to do.
type Access int

// Accesses.
const (
	Record Access = iota + 1 // upload recordings of logins to itself
	View                     // list and read recordings
)

// String names the access in refusals: "record" or "view".
func (a Access) String() string {
	if a == Record {
		return "record"
	}
	return "view"
}

// Peer is the identity Authorize found for a connection.
type Peer struct {
	// Node is the peer's node name: the source (for quotas) and target node of its uploads.
	Node string
	// User is the viewer's login name (View): who is named in the log of what was watched.
	User string
}

// Authorize decides from a connection's remote address (an overlay address, where the
// packet filter and WireGuard vouch for who sent it) whether its node may have access a,
// and names it. An error refuses, its text shown to the peer.
type Authorize func(ctx context.Context, remote netip.AddrPort, a Access) (Peer, error)

// Server serves a Store over HTTP. Create it with NewServer.
type Server struct {
	store     *Store
	authorize Authorize
	logf      func(format string, args ...any)
	srv       *http.Server
	mu        sync.Mutex
	followers int
}

// NewServer serves store, deciding every request with authorize (nil refuses every
// request); logf, if non-nil, logs refusals and broken uploads.
func NewServer(store *Store, authorize Authorize, logf func(format string, args ...any)) *Server {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	s := &Server{store: store, authorize: authorize, logf: logf}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/recordings", s.upload)
	mux.HandleFunc("GET /v1/recordings", s.list)
	mux.HandleFunc("GET /v1/recordings/{id}", s.meta)
	mux.HandleFunc("GET /v1/recordings/{id}/cast", s.cast)
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: headerTimeout, MaxHeaderBytes: 16 << 10, IdleTimeout: 2 * time.Minute}
	return s
}

// Handler is the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.srv.Handler }

// Serve serves on ln (on a recorder node: its overlay listener on Port) until Close.
func (s *Server) Serve(ln net.Listener) error {
	err := s.srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Close stops serving and cuts every connection: uploads in progress end as Broken.
func (s *Server) Close() error { return s.srv.Close() }

// allow authorizes r for a, answering 403 when refused.
func (s *Server) allow(w http.ResponseWriter, r *http.Request, a Access) (Peer, bool) {
	remote, err := netip.ParseAddrPort(r.RemoteAddr)
	if err == nil && s.authorize != nil {
		var p Peer
		if p, err = s.authorize(r.Context(), remote, a); err == nil {
			return p, true
		}
	} else if err == nil {
		err = errors.New("no authorization configured")
	}
	s.logf("recorder: %s refused to %s: %v", r.RemoteAddr, a, err)
	httpError(w, http.StatusForbidden, fmt.Sprintf("may not %s recordings: %v", a, err))
	return Peer{}, false
}

// httpError answers {"error": msg} with code.
func httpError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// UploadAnswer is one line of an upload's answer: first {id} once the recording is
// accepted, then, at the end, {id, state, size} or {id, state, error}.
type UploadAnswer struct {
	ID    string `json:"id"`
	State State  `json:"state,omitempty"`
	Size  int64  `json:"size,omitempty"`
	Error string `json:"error,omitempty"`
}

// upload stores a streamed asciicast v2 upload: the header line first, then event lines,
// the exit code in ExitCodeTrailer. It answers as soon as the recording is accepted, and
// goes on reading (full duplex) until the body ends.
func (s *Server) upload(w http.ResponseWriter, r *http.Request) {
	// Full duplex from the start: a refusal is answered at once, without the server first
	// waiting to discard the body (which an agent holds open until it hears the answer).
	rc := http.NewResponseController(w)
	if err := rc.EnableFullDuplex(); err != nil {
		httpError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Connection", "close") // a refused or broken upload leaves its body unread
	peer, ok := s.allow(w, r, Record)
	if !ok {
		return
	}
	rc.SetReadDeadline(time.Now().Add(headerTimeout))
	br := bufio.NewReaderSize(r.Body, MaxEventLine)
	line, err := readLine(br, MaxHeaderLine)
	if err != nil {
		httpError(w, http.StatusBadRequest, "header line: "+err.Error())
		return
	}
	h, err := parseHeader(line)
	if err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	rec, err := s.store.Create(h, peer.Node)
	if err != nil {
		code := http.StatusInternalServerError
		switch {
		case errors.Is(err, ErrStorageFull), errors.Is(err, ErrQuota):
			code = http.StatusInsufficientStorage
		case errors.Is(err, ErrBusy):
			code = http.StatusServiceUnavailable
		}
		s.logf("recorder: refused a recording from %s: %v", safetext.Bounded(peer.Node, 0), err)
		httpError(w, code, err.Error())
		return
	}
	rc.SetReadDeadline(time.Time{}) // a session may be idle for hours
	w.Header().Del("Connection")
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	enc.Encode(UploadAnswer{ID: rec.ID()})
	rc.Flush()
	stop := make(chan struct{})
	keptAlive := make(chan struct{})
	go func() {
		defer close(keptAlive)
		t := time.NewTicker(Keepalive)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				enc.Encode(UploadAnswer{ID: rec.ID()}) // the only writer until stopped
				rc.Flush()
			case <-stop:
				return
			}
		}
	}()
	stopKeepalive := sync.OnceFunc(func() { close(stop); <-keptAlive })
	defer stopKeepalive()
	ans := UploadAnswer{ID: rec.ID()}
	fail := func(err error) {
		stopKeepalive() // before the connection is hijacked
		rec.Abort(Broken, err)
		ans.State, ans.Error = Broken, err.Error()
		if m, gerr := s.store.Get(rec.ID()); gerr == nil {
			ans.State = m.State
		}
		s.logf("recorder: %s from %s: %v", rec.ID(), safetext.Bounded(peer.Node, 0), err)
		enc.Encode(ans)
		rc.Flush()
		if conn, _, err := rc.Hijack(); err == nil {
			cutUpload(conn)
		}
	}
	if err := s.copyEvents(br, rec); err != nil {
		fail(err)
		return
	}
	code, err := exitCode(r.Trailer.Get(ExitCodeTrailer))
	if err != nil {
		fail(err)
		return
	}
	if err := rec.Close(code); err != nil {
		fail(err)
		return
	}
	m, _ := s.store.Get(rec.ID())
	ans.State, ans.Size = m.State, m.Size
	stopKeepalive() // the last answer is last
	enc.Encode(ans)
}

// cutUpload ends a broken upload's connection: the answer goes out first (half-close),
// then what the uploader still sends is read and dropped for a moment, so that closing
// does not reset the connection and lose the answer.
func cutUpload(conn net.Conn) {
	defer conn.Close()
	if hc, ok := conn.(interface{ CloseWrite() error }); ok {
		hc.CloseWrite()
	}
	conn.SetReadDeadline(time.Now().Add(cutDrain))
	io.Copy(io.Discard, io.LimitReader(conn, cutDrainMax))
}

// copyEvents writes every event line of br to rec until the body ends.
func (s *Server) copyEvents(br *bufio.Reader, rec *Writer) error {
	for {
		line, err := readLine(br, MaxEventLine)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := rec.WriteEvent(line); err != nil {
			return err
		}
	}
}

// readLine reads one line of at most max bytes (newline included) and returns it without
// its newline; io.EOF only at the end of the body between lines.
func readLine(br *bufio.Reader, max int) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	switch {
	case err == nil && len(line) <= max:
		return line[:len(line)-1], nil
	case err == nil || errors.Is(err, bufio.ErrBufferFull):
		return nil, fmt.Errorf("line longer than %d bytes", max)
	case err == io.EOF && len(line) == 0:
		return nil, io.EOF
	case err == io.EOF:
		return nil, errors.New("the upload ended inside a line")
	}
	return nil, fmt.Errorf("upload cut: %w", err)
}

// exitCode reads the exit-code trailer: absent is unknown (nil), else 0 to 255.
func exitCode(v string) (*int, error) {
	if v == "" {
		return nil, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > 255 {
		return nil, fmt.Errorf("%s %q is not an exit code (0 to 255)", ExitCodeTrailer, safetext.Bounded(v, 16))
	}
	return &n, nil
}

// ListPage is the answer to GET /v1/recordings: one page of recordings, newest first, and
// Next, the cursor (?before=) of the next page when there is one.
type ListPage struct {
	Recordings []Meta `json:"recordings"`
	Next       string `json:"next,omitempty"`
}

// list answers a ListPage of the recordings that match the query's filters (see
// parseFilter).
func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.allow(w, r, View); !ok {
		return
	}
	f, err := parseFilter(r.URL.Query())
	if err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(f.page(s.store.List()))
}

// Filter selects recordings to list. The zero value lists the newest DefaultListLimit.
type Filter struct {
	User    string    // srcUser, exactly
	Machine string    // targetNode or srcNode, exactly
	From    time.Time // started at or after (zero: no bound)
	To      time.Time // started before (zero: no bound)
	Before  string    // only recordings older than this ID (the previous page's Next)
	Limit   int       // at most this many (1 to maxListLimit; 0: DefaultListLimit)
}

// DefaultListLimit is how many recordings a list answers without ?limit=.
const DefaultListLimit = 100

// maxFilterValue bounds each filter value of a list query.
const maxFilterValue = 256

// parseFilter reads a list query: user, machine, from and to (RFC 3339 times), before (a
// recording ID) and limit; anything else, a repeated or over-long value, is refused.
func parseFilter(q url.Values) (Filter, error) {
	var f Filter
	for k, vs := range q {
		if len(vs) != 1 {
			return f, fmt.Errorf("query parameter %q given %d times", safetext.Bounded(k, 32), len(vs))
		}
		v := vs[0]
		if len(v) > maxFilterValue {
			return f, fmt.Errorf("query parameter %q longer than %d bytes", safetext.Bounded(k, 32), maxFilterValue)
		}
		var err error
		switch k {
		case "user":
			f.User = v
		case "machine":
			f.Machine = v
		case "from", "to":
			var t time.Time
			if t, err = time.Parse(time.RFC3339, v); err != nil {
				return f, fmt.Errorf("%s %q is not an RFC 3339 time (2026-12-03T05:31:00Z)", k, safetext.Bounded(v, 40))
			}
			if k == "from" {
				f.From = t
			} else {
				f.To = t
			}
		case "before":
			if !validID(v) {
				return f, fmt.Errorf("before %q is not a recording ID", safetext.Bounded(v, 40))
			}
			f.Before = v
		case "limit":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > maxListLimit {
				return f, fmt.Errorf("limit must be 1 to %d", maxListLimit)
			}
			f.Limit = n
		default:
			return f, fmt.Errorf("unknown query parameter %q (user, machine, from, to, before, limit)", safetext.Bounded(k, 32))
		}
	}
	return f, nil
}

// page picks f's page of all (newest first).
func (f Filter) page(all []Meta) ListPage {
	limit := f.Limit
	if limit == 0 {
		limit = DefaultListLimit
	}
	p := ListPage{Recordings: []Meta{}}
	for _, m := range all {
		switch {
		case f.Before != "" && m.ID >= f.Before,
			f.User != "" && m.SrcUser != f.User,
			f.Machine != "" && m.TargetNode != f.Machine && m.SrcNode != f.Machine,
			!f.From.IsZero() && m.Start.Before(f.From),
			!f.To.IsZero() && !m.Start.Before(f.To):
			continue
		}
		if len(p.Recordings) == limit {
			p.Next = p.Recordings[limit-1].ID
			break
		}
		p.Recordings = append(p.Recordings, m)
	}
	return p
}

// lookup authorizes r to view and finds the recording {id} names, answering 403 or 404.
func (s *Server) lookup(w http.ResponseWriter, r *http.Request) (string, Peer, bool) {
	p, ok := s.allow(w, r, View)
	if !ok {
		return "", p, false
	}
	id := r.PathValue("id")
	if !validID(id) {
		httpError(w, http.StatusNotFound, "no such recording")
		return "", p, false
	}
	return id, p, true
}

func (s *Server) meta(w http.ResponseWriter, r *http.Request) {
	id, _, ok := s.lookup(w, r)
	if !ok {
		return
	}
	m, err := s.store.Get(id)
	if err != nil {
		httpError(w, http.StatusNotFound, "no such recording")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(m)
}

// LiveHeader is set ("1") on a .cast answer of a recording still in progress.
const LiveHeader = "Tsconnect-Live"

// cast answers the .cast file from byte ?offset= (default 0); with ?follow=1, a recording
// in progress is streamed as it is written, until it ends.
func (s *Server) cast(w http.ResponseWriter, r *http.Request) {
	id, viewer, ok := s.lookup(w, r)
	if !ok {
		return
	}
	follow := r.URL.Query().Get("follow") == "1"
	if follow {
		s.mu.Lock()
		busy := s.followers >= maxFollowers
		if !busy {
			s.followers++
		}
		s.mu.Unlock()
		if busy {
			httpError(w, http.StatusServiceUnavailable, fmt.Sprintf("%d recordings are being followed, the most at once", maxFollowers))
			return
		}
		defer func() { s.mu.Lock(); s.followers--; s.mu.Unlock() }()
	}
	f, live, err := s.store.OpenCast(id)
	if err != nil {
		httpError(w, http.StatusNotFound, "no such recording")
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		httpError(w, http.StatusInternalServerError, "recording unreadable")
		return
	}
	if v := r.URL.Query().Get("offset"); v != "" {
		off, err := strconv.ParseInt(v, 10, 64)
		if err != nil || off < 0 || off > st.Size() {
			httpError(w, http.StatusRequestedRangeNotSatisfiable, fmt.Sprintf("offset must be 0 to %d, the bytes written so far", st.Size()))
			return
		}
		if _, err := f.Seek(off, io.SeekStart); err != nil {
			httpError(w, http.StatusInternalServerError, "recording unreadable")
			return
		}
	}
	s.logf("recorder: %s on %s reads %s", safetext.Bounded(viewer.User, 0), safetext.Bounded(viewer.Node, 0), id)
	w.Header().Set("Content-Type", "application/x-asciicast")
	if live != nil {
		w.Header().Set(LiveHeader, "1")
	}
	if live == nil || !follow {
		if pos, err := f.Seek(0, io.SeekCurrent); err == nil && live == nil {
			w.Header().Set("Content-Length", strconv.FormatInt(st.Size()-pos, 10))
		}
		io.Copy(w, f)
		return
	}
	rc := http.NewResponseController(w)
	followCast(r.Context(), f, live, w, func() { rc.Flush() })
}

// followCast copies f to dst as live writes it, until the recording ends or ctx is done.
func followCast(ctx context.Context, f *os.File, live *Writer, dst io.Writer, flush func()) error {
	buf := make([]byte, 32<<10)
	for {
		changed, finished := live.progress() // before reading: no change is missed
		for {
			n, err := f.Read(buf)
			if n > 0 {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return werr
				}
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
		}
		flush()
		if finished {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
