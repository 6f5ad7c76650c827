package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"

	"tsconnect/agent"
	"tsconnect/controlws"
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
			if st.Self == nil {
				fmt.Printf("state: %s (no network map yet)\n", st.State)
				return nil
			}
			users := map[int64]string{}
			for _, u := range st.Users {
				users[u.ID] = u.LoginName
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			row := func(n controlws.Node, self bool) {
				owner := users[n.User]
				if len(n.Tags) > 0 {
					owner = strings.Join(n.Tags, ",")
				}
				var addrs []string
				for _, a := range n.Addresses {
					addrs = append(addrs, a.Addr().String())
				}
				flags := []string{}
				if self {
					flags = append(flags, "self")
				} else if n.Online {
					flags = append(flags, "online")
				} else {
					flags = append(flags, "offline")
				}
				if n.SSH {
					flags = append(flags, "ssh")
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", strings.Join(addrs, ","), n.Name, owner, n.OS, strings.Join(flags, " "))
			}
			row(*st.Self, true)
			for _, p := range st.Peers {
				row(p, false)
			}
			return tw.Flush()
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
		return fmt.Errorf("agent: %s: %s", resp.Status, e.Error)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}
