package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// DialUpgrade is the Upgrade protocol of the local API's dial endpoint: after
// "POST /localapi/v1/dial?host=H&port=P" with "Upgrade: tsconnect-dial" the agent answers
// 101 Switching Protocols and the socket carries the overlay TCP connection to H:P.
const DialUpgrade = "tsconnect-dial"

// dialTimeout bounds connecting through the overlay for `tsconnect nc`.
const dialTimeout = 30 * time.Second

// serveDial connects to host:port through the node and hands the caller's socket over to it.
func (a *Agent) serveDial(w http.ResponseWriter, r *http.Request) {
	host, port := r.URL.Query().Get("host"), r.URL.Query().Get("port")
	if r.Header.Get("Upgrade") != DialUpgrade {
		httpError(w, http.StatusBadRequest, "dial needs the header Upgrade: "+DialUpgrade)
		return
	}
	if p, err := strconv.ParseUint(port, 10, 16); host == "" || err != nil || p == 0 {
		httpError(w, http.StatusBadRequest, fmt.Sprintf("dial needs a host and a port from 1 to 65535 (got %q, %q)", host, port))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), dialTimeout)
	defer cancel()
	oc, err := a.node.Dial(ctx, "tcp", net.JoinHostPort(host, port))
	if err != nil {
		httpError(w, http.StatusBadGateway, err.Error())
		return
	}
	defer oc.Close()
	hj, ok := w.(http.Hijacker)
	if !ok {
		httpError(w, http.StatusInternalServerError, "connection cannot be taken over")
		return
	}
	lc, brw, err := hj.Hijack()
	if err != nil {
		return
	}
	defer lc.Close()
	if _, err := io.WriteString(lc, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: "+DialUpgrade+"\r\nConnection: Upgrade\r\n\r\n"); err != nil {
		return
	}
	done := make(chan struct{}, 2)
	go func() { // caller → overlay, starting with what the HTTP reader already buffered
		io.Copy(oc, io.MultiReader(io.LimitReader(brw.Reader, int64(brw.Reader.Buffered())), lc))
		closeWrite(oc)
		done <- struct{}{}
	}()
	go func() {
		io.Copy(lc, oc)
		closeWrite(lc)
		done <- struct{}{}
	}()
	<-done
	<-done
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	} else {
		c.Close()
	}
}

// httpError answers with the local API's error form, {"error": msg}.
func httpError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(struct {
		Error string `json:"error"`
	}{msg})
}
