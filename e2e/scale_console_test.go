package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// scaleConsole measures what the console's Machines page costs at this size: a page of 50,
// a search, the whole list (what the page fetched before it paged), and what one change
// sends on the events WebSocket with ?changes=1 and without, with n nodes registered
// (named n0, n1, …). change makes one change.
func scaleConsole(b *testing.B, url, token string, n int, change func()) {
	get := func(path string) (time.Duration, int) {
		var best time.Duration
		var n int
		for range 5 {
			req, _ := http.NewRequest("GET", url+"/api/v1"+path, nil)
			req.Header.Set("Authorization", "Bearer "+token)
			t0 := time.Now()
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			d := time.Since(t0)
			if err != nil || resp.StatusCode != http.StatusOK {
				b.Fatalf("GET %s: %d %s %v", path, resp.StatusCode, body, err)
			}
			if best == 0 || d < best {
				best = d
			}
			n = len(body)
		}
		return best, n
	}
	for _, p := range []string{"/nodes?limit=50", fmt.Sprintf("/nodes?limit=50&after=%d", n/2), fmt.Sprintf("/nodes?limit=50&q=n%d", n-1), "/nodes"} {
		d, size := get(p)
		b.Logf("console: GET %s best of 5 %v, %d bytes", p, d.Round(100*time.Microsecond), size)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dial := func(query string) *websocket.Conn {
		c, _, err := websocket.Dial(ctx, strings.Replace(url, "http", "ws", 1)+"/api/v1/events"+query,
			&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + token}}})
		if err != nil {
			b.Fatal(err)
		}
		c.SetReadLimit(64 << 20)
		if _, _, err := c.Read(ctx); err != nil { // the first message
			b.Fatal(err)
		}
		return c
	}
	changes, list := dial("?changes=1"), dial("")
	defer changes.CloseNow()
	defer list.CloseNow()
	t0 := time.Now()
	change()
	for _, w := range []struct {
		what string
		c    *websocket.Conn
	}{{"?changes=1", changes}, {"(whole list)", list}} {
		for {
			_, msg, err := w.c.Read(ctx)
			if err != nil {
				b.Fatal(err)
			}
			var m struct {
				Changed []int64 `json:"changed"`
				Nodes   []json.RawMessage
			}
			if json.Unmarshal(msg, &m) != nil {
				b.Fatalf("events message %.200s", msg)
			}
			if w.c == changes && len(m.Changed) == 0 {
				continue
			}
			b.Logf("console: events %s after a change: %v, %d bytes (changed %v)", w.what, time.Since(t0).Round(time.Millisecond), len(msg), m.Changed)
			break
		}
	}
}

// apiToken mints a read token for email with the admin CLI on control's state dir.
func apiToken(admin func(...string) string, dir, email string) string {
	return lastLine(admin("api-tokens", "create", "--state", dir, "--user", email, "--scope", "read"))
}
