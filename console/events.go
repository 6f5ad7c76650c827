package console

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/coder/websocket"

	"tsconnect/console/api"
	"tsconnect/control"
)

// events serves the WebSocket that pushes {"type":"nodes","nodes":[…]} (api.NodeList) at
// once and after every change, coalesced and at most one message per EventInterval; with
// ?changes=1 it pushes api.NodeChanges instead (the IDs of the nodes that changed, were added
// or removed, and the total), so a client showing one page of a large network refetches that
// page only when it must. It needs a caller and, when the browser sends one, the console's
// own Origin; it ends when the caller's sign-in or API token ends.
func (c *Console) events(w http.ResponseWriter, r *http.Request, s *caller) {
	if o := r.Header.Get("Origin"); o != "" && !strings.EqualFold(o, c.origin) {
		writeError(w, http.StatusForbidden, codeCSRF, "refused: Origin "+o+" is not "+c.origin)
		return
	}
	// coder/websocket also checks that Origin matches the Host (its default).
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		// Compression off: small messages, and compressing attacker-influenced node names
		// next to nothing secret gains little for its memory cost.
		CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		return // Accept answered the client
	}
	var seen nodeDigests
	if r.URL.Query().Get("changes") == "1" {
		seen = nodeDigests{}
	}
	c.wg.Add(1)
	defer c.wg.Done()
	defer conn.CloseNow()
	// The client sends nothing; CloseRead answers pings and ends ctx when it goes away.
	ctx := conn.CloseRead(c.ctx)
	changed := make(chan struct{}, 1)
	changed <- struct{}{} // the first message goes at once
	c.srv.WatchChanges(ctx, func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	})
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			conn.Close(websocket.StatusGoingAway, "console closing")
			return
		case <-changed:
		}
		if wait := c.o.EventInterval - time.Since(last); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				conn.Close(websocket.StatusGoingAway, "console closing")
				return
			case <-t.C:
			}
		}
		if err := c.stillValid(ctx, s); err != nil {
			if errors.Is(err, control.ErrNotFound) {
				conn.Close(websocket.StatusPolicyViolation, "your login has ended")
			}
			return
		}
		if err := c.sendNodes(ctx, conn, seen, last.IsZero()); err != nil {
			if ctx.Err() == nil {
				c.logf("console: events for %s: %v", s.name(), err)
			}
			return
		}
		last = time.Now()
	}
}

// sendNodes writes the node list, or, when seen is not nil, what changed since the last
// message (nothing when nothing did; the first message lists no IDs).
func (c *Console) sendNodes(ctx context.Context, conn *websocket.Conn, seen nodeDigests, first bool) error {
	ns, err := c.nodeList(ctx)
	if err != nil {
		return err
	}
	var b []byte
	if seen == nil {
		b, err = json.Marshal(api.NodeList{Type: "nodes", Nodes: ns})
	} else {
		ch, werr := seen.update(ns)
		if werr != nil {
			return werr
		}
		if first {
			ch = api.NodeChanges{Changed: []int64{}, Removed: []int64{}, Total: ch.Total}
		} else if len(ch.Changed)+len(ch.Removed) == 0 {
			return nil
		}
		ch.Type = "changes"
		b, err = json.Marshal(ch)
	}
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return conn.Write(wctx, websocket.MessageText, b)
}
