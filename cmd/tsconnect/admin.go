package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"tsconnect/control"
	"tsconnect/control/adminclient"
)

// The admin commands reach a running control server through its admin socket in --state;
// they never open the database behind the server's back.

func stateFlag(fs *flag.FlagSet, dir *string) {
	fs.StringVar(dir, "state", filepath.Join(defaultStateRoot(), "control"), "the control server's state directory (its admin socket is DIR/admin.sock)")
}

func init() {
	var (
		dir   string
		admin bool
	)
	register(&command{
		name:  "users",
		usage: "create [--admin] EMAIL | list",
		short: "add or list users of a running control server",
		long:  "`users create EMAIL` adds a user (a member, or an admin with --admin); `users list` lists them.",
		flags: func(fs *flag.FlagSet) {
			stateFlag(fs, &dir)
			fs.BoolVar(&admin, "admin", false, "with create: make the user an admin")
		},
		run: func(ctx context.Context, args []string) error {
			c := adminclient.New(dir)
			defer c.Close()
			switch {
			case len(args) == 2 && args[0] == "create":
				role := control.RoleMember
				if admin {
					role = control.RoleAdmin
				}
				u, err := c.CreateUser(ctx, args[1], role)
				if err != nil {
					return err
				}
				fmt.Printf("created %s user %s (id %d)\n", u.Role, u.Email, u.ID)
				return nil
			case len(args) == 1 && args[0] == "list":
				users, err := c.Users(ctx)
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
				for _, u := range users {
					fmt.Fprintf(tw, "%d\t%s\t%s\n", u.ID, u.Email, u.Role)
				}
				return tw.Flush()
			}
			return fmt.Errorf("usage: tsconnect users [--state DIR] create [--admin] EMAIL | list (flags come before arguments)")
		},
	})

	var (
		kdir, owner, tags   string
		ephemeral, reusable bool
		expiry              time.Duration
	)
	register(&command{
		name:  "keys",
		usage: "create --user EMAIL [--ephemeral] [--reusable] [--tags tag:a,tag:b] [--expiry DUR] | list | revoke ID",
		short: "make, list or revoke pre-auth keys",
		long: `keys create prints the new key alone on its last line; it is shown only this once.
A tagged key (--tags) registers nodes that belong to no user.`,
		flags: func(fs *flag.FlagSet) {
			stateFlag(fs, &kdir)
			fs.StringVar(&owner, "user", "", "owner's email")
			fs.BoolVar(&ephemeral, "ephemeral", false, "nodes are deleted on logout and when offline past the grace period")
			fs.BoolVar(&reusable, "reusable", false, "the key registers any number of nodes (default: one)")
			fs.StringVar(&tags, "tags", "", "comma-separated tags, e.g. tag:server")
			fs.DurationVar(&expiry, "expiry", 0, "how long the key stays valid (default 90 days)")
		},
		run: func(ctx context.Context, args []string) error {
			c := adminclient.New(kdir)
			defer c.Close()
			switch {
			case len(args) == 1 && args[0] == "create":
				req := control.CreateKeyRequest{UserEmail: owner, Reusable: reusable, Ephemeral: ephemeral}
				if tags != "" {
					req.Tags = strings.Split(tags, ",")
				}
				if expiry != 0 {
					req.Expiry = expiry.String()
				}
				secret, info, err := c.CreateAuthKey(ctx, req)
				if err != nil {
					return err
				}
				fmt.Fprintf(os.Stderr, "key %d (%s), expires %s\n", info.ID, info.Prefix, info.Expires.Format(time.RFC3339))
				fmt.Println(secret)
				return nil
			case len(args) == 1 && args[0] == "list":
				keys, err := c.AuthKeys(ctx)
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
				for _, k := range keys {
					fmt.Fprintf(tw, "%d\t%s\treusable=%v\tephemeral=%v\tused=%v\trevoked=%v\t%s\texpires %s\n",
						k.ID, k.Prefix, k.Reusable, k.Ephemeral, k.Used, k.Revoked, strings.Join(k.Tags, ","), k.Expires.Format(time.RFC3339))
				}
				return tw.Flush()
			case len(args) == 2 && args[0] == "revoke":
				id, err := strconv.ParseInt(args[1], 10, 64)
				if err != nil {
					return fmt.Errorf("bad key ID %q", args[1])
				}
				return c.RevokeAuthKey(ctx, id)
			}
			return fmt.Errorf("usage: tsconnect keys [flags] create | list | revoke ID (flags come before arguments)")
		},
	})

	var (
		ndir   string
		asJSON bool
	)
	register(&command{
		name:  "nodes",
		usage: "[--json] | delete ID",
		short: "list or delete the nodes of the network",
		long:  "Lists every node with its addresses, owner or tags and online state; `nodes delete ID` removes one at once (its sessions end and it cannot reconnect).",
		flags: func(fs *flag.FlagSet) {
			stateFlag(fs, &ndir)
			fs.BoolVar(&asJSON, "json", false, "print JSON")
		},
		run: func(ctx context.Context, args []string) error {
			c := adminclient.New(ndir)
			defer c.Close()
			if len(args) == 2 && args[0] == "delete" {
				id, err := strconv.ParseInt(args[1], 10, 64)
				if err != nil {
					return fmt.Errorf("bad node ID %q", args[1])
				}
				return c.DeleteNode(ctx, id)
			}
			if len(args) != 0 {
				return fmt.Errorf("usage: tsconnect nodes [--state DIR] [--json] | delete ID")
			}
			nodes, err := c.Nodes(ctx)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(os.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(nodes)
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			for _, n := range nodes {
				var addrs []string
				for _, a := range n.Addresses {
					addrs = append(addrs, a.Addr().String())
				}
				state := "offline"
				if n.Online {
					state = "online"
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\tephemeral=%v\tssh=%v\n", n.ID, n.Name, strings.Join(addrs, ","), strings.Join(n.Tags, ","), state, n.Ephemeral, n.SSH)
			}
			return tw.Flush()
		},
	})
}
