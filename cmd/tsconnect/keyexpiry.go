package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"tsconnect/console/api"
	"tsconnect/control/adminclient"
)

// keyExpiryText is how the CLI shows a node's key expiry.
func keyExpiryText(n api.Node, now time.Time) string {
	switch {
	case n.KeyExpiryDisabled:
		return "expiry disabled"
	case n.KeyExpired:
		return "key expired"
	case n.KeyExpiry == nil:
		return "no key expiry"
	}
	return "key expires " + n.KeyExpiry.Format(time.RFC3339) + " (in " + roughDuration(n.KeyExpiry.Sub(now)) + ")"
}

// roughDuration is d in its largest whole unit: days, hours, minutes or seconds.
func roughDuration(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%d days", d/(24*time.Hour))
	case d >= 2*time.Hour:
		return fmt.Sprintf("%d hours", d/time.Hour)
	case d >= 2*time.Minute:
		return fmt.Sprintf("%d minutes", d/time.Minute)
	}
	return fmt.Sprintf("%d s", d/time.Second)
}

// parseLifetime reads a Go duration ("720h", "90s") or a number of days ("180d").
func parseLifetime(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseUint(days, 10, 16)
		if err != nil {
			return 0, fmt.Errorf("bad lifetime %q: want days (180d) or a duration (720h)", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("bad lifetime %q: want days (180d) or a duration (720h)", s)
	}
	return d, nil
}

func init() {
	adminCommand(&command{
		name: "nodes key-expiry", usage: "[--state DIR] ID on|off", short: "disable or enable a node's key expiry",
		long: `"off" makes the node's key never expire (for servers); an expired node is back in its peers'
maps at once. "on" makes it expire again at the expiry it had: a key past it expires now.`,
	}, nil, func(ctx context.Context, ac *adminclient.Client, args []string) error {
		if err := wantArgs(args, 2, "a node ID and on or off"); err != nil {
			return err
		}
		id, err := parseID(args[0], "node")
		if err != nil {
			return err
		}
		var disabled bool
		switch args[1] {
		case "on":
		case "off":
			disabled = true
		default:
			return fmt.Errorf("bad %q: want on or off", args[1])
		}
		n, err := ac.SetNodeKeyExpiryDisabled(ctx, id, disabled)
		if err != nil {
			return err
		}
		fmt.Printf("node %d (%s): %s\n", n.ID, n.Name, keyExpiryText(n, time.Now()))
		return nil
	})
	adminCommand(&command{
		name: "settings node-key-expiry", usage: "[--state DIR] [LIFETIME]", short: "show or set the network's node-key lifetime",
		long: `Without LIFETIME, prints how long node keys last after a node (re)authenticates (default
180 days). With it (180d, 720h, 90s; at least 5s, at most 3650d) sets it; it applies from each
node's next authentication (tsconnect login), keys issued before keep their expiry.`,
	}, nil, func(ctx context.Context, ac *adminclient.Client, args []string) error {
		if len(args) > 1 {
			return wantArgs(args, 1, "at most one LIFETIME")
		}
		if len(args) == 1 {
			d, err := parseLifetime(args[0])
			if err != nil {
				return err
			}
			if err := ac.SetNodeKeyExpiry(ctx, d); err != nil {
				return err
			}
		}
		d, err := ac.NodeKeyExpiry(ctx)
		if err != nil {
			return err
		}
		fmt.Printf("node keys expire %s (%v) after authentication\n", roughDuration(d), d)
		return nil
	})
}
