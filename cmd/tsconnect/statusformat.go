package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"tsconnect/agent"
	"tsconnect/controlws"
	"tsconnect/internal/safetext"
)

// writeStatus prints the agent's view, one line a node. Every string in it came from
// control or a peer, so each goes through safetext: a terminal escape or a newline in a
// peer's OS or name is shown escaped and can never draw a line of its own.
func writeStatus(w io.Writer, st agent.Status) error {
	if st.Self == nil {
		_, err := fmt.Fprintf(w, "state: %s (no network map yet)\n", safetext.Bounded(st.State, 0))
		return err
	}
	users := map[int64]string{}
	for _, u := range st.Users {
		users[u.ID] = u.LoginName
	}
	now := time.Now()
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
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
		if n.KeyExpired(now) {
			flags = append(flags, "key-expired")
		}
		path := ""
		if pp, ok := st.Paths[n.Key.String()]; ok && !self {
			path = "\t" + fmtPath(pp)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s%s\n", strings.Join(addrs, ","),
			cell(n.Name), cell(owner), cell(n.OS), strings.Join(flags, " "), path)
	}
	row(*st.Self, true)
	for _, p := range st.Peers {
		row(p, false)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if st.KeyWarning != "" {
		_, err := fmt.Fprintf(w, "warning: %s\n", safetext.Bounded(st.KeyWarning, 0))
		return err
	}
	return nil
}

// fmtPath shows a peer's path: "direct 192.0.2.1:41641 0.4ms" or "relay DERP(tsc) 12ms"
// (the time is the last pong's round trip, absent before any).
func fmtPath(pp agent.PeerPath) string {
	var s string
	if pp.Direct != "" {
		s = "direct " + cell(pp.Direct)
	} else {
		region := cell(pp.RegionCode)
		if region == "" {
			region = fmt.Sprint(pp.Region)
		}
		s = "relay DERP(" + region + ")"
	}
	if pp.RTTMillis > 0 {
		s += " " + fmtMillis(pp.RTTMillis)
	}
	return s
}

// cell is a peer-supplied string fit for one tabwriter cell: escaped and bounded, with no
// tab (tabwriter's separator) left raw either.
func cell(s string) string { return safetext.Bounded(s, 0) }
