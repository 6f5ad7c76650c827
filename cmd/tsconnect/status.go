package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"

	"tsconnect/agent"
	"tsconnect/internal/safetext"
)

func init() {
	var asJSON bool
	register(&command{
		name:  "status",
		usage: "[--json]",
		short: "show this node and its peers",
		long:  `Asks the local agent (see --socket) for its network map and prints one line a node.`,
		flags: func(fs *flag.FlagSet) { fs.BoolVar(&asJSON, "json", false, "print JSON") },
		run: func(ctx context.Context, args []string) error {
			var st agent.Status
			if err := localAPIGet(ctx, "/localapi/v1/status", &st); err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(os.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(st)
			}
			return writeStatus(os.Stdout, st)
		},
	})
}

// localAPIClient talks HTTP to the agent over its unix socket.
func localAPIClient() *http.Client {
	path := socketPath()
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			c, err := d.DialContext(ctx, "unix", path)
			if err != nil {
				return nil, fmt.Errorf("no agent at %s (is `tsconnect up` running? --socket or $TSCONNECT_SOCKET pick another): %w", path, err)
			}
			return c, nil
		},
	}}
}

func localAPIGet(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, "GET", "http://agent"+path, nil)
	if err != nil {
		return err
	}
	resp, err := localAPIClient().Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		var e struct{ Error string }
		json.NewDecoder(resp.Body).Decode(&e)
		return fmt.Errorf("agent: %s: %s", resp.Status, safetext.Bounded(e.Error, 1024))
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// localAPIPost sends body as JSON to the agent's path and returns the 200 answer for the
// caller to read and close; another status is an error carrying the agent's message.
func localAPIPost(ctx context.Context, path string, body any) (*http.Response, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, "POST", "http://agent"+path, bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := localAPIClient().Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		var e struct{ Error string }
		json.NewDecoder(resp.Body).Decode(&e)
		return nil, errors.New(safetext.Bounded(e.Error, 1024))
	}
	return resp, nil
}
