package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"tsconnect/console/api"
	"tsconnect/control"
	"tsconnect/control/adminclient"
)

// The admin commands reach a running control server through its admin socket in --state;
// they never open the database behind the server's back.

// adminCommand registers an admin command whose body gets a client of the server in --state.
func adminCommand(c *command, flags func(fs *flag.FlagSet), run func(ctx context.Context, ac *adminclient.Client, args []string) error) {
	var dir string
	c.flags = func(fs *flag.FlagSet) {
		fs.StringVar(&dir, "state", filepath.Join(defaultStateRoot(), "control"), "the control server's state directory (its admin socket is DIR/admin.sock)")
		if flags != nil {
			flags(fs)
		}
	}
	c.run = func(ctx context.Context, args []string) error {
		ac := adminclient.New(dir)
		defer ac.Close()
		return run(ctx, ac, args)
	}
	register(c)
}

// wantArgs checks the count of positional arguments.
func wantArgs(args []string, n int, usage string) error {
	if len(args) != n {
		return fmt.Errorf("want %s, got %q (flags come before arguments)", usage, args)
	}
	return nil
}

func parseID(s, what string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("bad %s ID %q", what, s)
	}
	return id, nil
}

// idArg is a command's only argument, the ID of a what; want says what is missing.
func idArg(args []string, want, what string) (int64, error) {
	if err := wantArgs(args, 1, want); err != nil {
		return 0, err
	}
	return parseID(args[0], what)
}

func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func init() {
	var admin, passwordStdin bool
	adminCommand(&command{
		name: "users create", usage: "[--state DIR] [--admin] [--password-stdin] EMAIL", short: "add a user",
		long: `Adds a user (a member, or an admin with --admin) to the running control server.
With --password-stdin the first line of standard input is their web console password
(at least 8 characters; stored as an argon2id hash), e.g.
  printf '%s\n' "$PASSWORD" | tsconnect users create --admin --password-stdin EMAIL
Without it the user cannot log in to the console with a password.`,
	}, func(fs *flag.FlagSet) {
		fs.BoolVar(&admin, "admin", false, "make the user an admin")
		fs.BoolVar(&passwordStdin, "password-stdin", false, "read the console password from the first line of standard input")
	}, func(ctx context.Context, ac *adminclient.Client, args []string) error {
		if err := wantArgs(args, 1, "one EMAIL"); err != nil {
			return err
		}
		req := api.CreateUserRequest{Email: args[0], Role: string(control.RoleMember)}
		if admin {
			req.Role = string(control.RoleAdmin)
		}
		if passwordStdin {
			pw, err := passwordFromStdin()
			if err != nil {
				return err
			}
			req.Password = pw
		}
		u, err := ac.CreateUser(ctx, req)
		if err != nil {
			return err
		}
		fmt.Printf("created %s user %s (id %d)\n", u.Role, u.Email, u.ID)
		return nil
	})
	var setStdin bool
	adminCommand(&command{
		name: "users set-password", usage: "[--state DIR] --password-stdin EMAIL", short: "set or reset a user's console password",
		long: `Sets the web console password of a user (at least 8 characters; stored as an argon2id
hash), read from the first line of standard input, and ends every console session of
theirs, e.g.
  printf '%s\n' "$PASSWORD" | tsconnect users set-password --password-stdin EMAIL`,
	}, func(fs *flag.FlagSet) {
		fs.BoolVar(&setStdin, "password-stdin", false, "read the new password from the first line of standard input (required)")
	}, func(ctx context.Context, ac *adminclient.Client, args []string) error {
		if err := wantArgs(args, 1, "one EMAIL"); err != nil {
			return err
		}
		if !setStdin {
			return errors.New("users set-password needs --password-stdin (a password on the command line would show in ps)")
		}
		pw, err := passwordFromStdin()
		if err != nil {
			return err
		}
		u, err := ac.SetPassword(ctx, args[0], pw)
		if err != nil {
			return err
		}
		fmt.Printf("password of %s (id %d) set; their console sign-ins ended\n", u.Email, u.ID)
		return nil
	})
	adminCommand(&command{name: "users list", usage: "[--state DIR]", short: "list users", long: "Lists the users of the running control server."},
		nil, func(ctx context.Context, ac *adminclient.Client, args []string) error {
			users, err := ac.Users(ctx)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			for _, u := range users {
				fmt.Fprintf(tw, "%d\t%s\t%s\n", u.ID, u.Email, u.Role)
			}
			return tw.Flush()
		})

	var (
		owner, tags, description string
		ephemeral, reusable      bool
		expiry                   time.Duration
	)
	adminCommand(&command{
		name: "keys create", usage: "[--state DIR] --user EMAIL [--ephemeral] [--reusable] [--tags tag:a,tag:b] [--expiry DUR] [--description TEXT]",
		short: "make a pre-auth key",
		long: `Makes a pre-auth key and prints it alone on the last line; it is shown only this once.
A tagged key (--tags) registers nodes that belong to no user.`,
	}, func(fs *flag.FlagSet) {
		fs.StringVar(&owner, "user", "", "owner's email")
		fs.BoolVar(&ephemeral, "ephemeral", false, "nodes are deleted on logout and when offline past the grace period")
		fs.BoolVar(&reusable, "reusable", false, "the key registers any number of nodes (default: one)")
		fs.StringVar(&tags, "tags", "", "comma-separated tags, e.g. tag:server")
		fs.DurationVar(&expiry, "expiry", 0, "how long the key stays valid (default 90 days)")
		fs.StringVar(&description, "description", "", "what the key is for (one line, shown in key lists)")
	}, func(ctx context.Context, ac *adminclient.Client, args []string) error {
		if err := wantArgs(args, 0, "no arguments"); err != nil {
			return err
		}
		req := api.CreateKeyRequest{User: api.UserName(owner), Reusable: reusable, Ephemeral: ephemeral, Description: description}
		if tags != "" {
			req.Tags = strings.Split(tags, ",")
		}
		if expiry < 0 || (expiry > 0 && expiry < time.Second) {
			return fmt.Errorf("--expiry %v: want a positive duration like 24h", expiry)
		}
		req.ExpiresIn = int64(expiry / time.Second)
		secret, info, err := ac.CreateAuthKey(ctx, req)
		if err != nil {
			return err
		}
		fmt.Printf("key %d (%s), expires %s\n%s\n", info.ID, info.Prefix, info.Expires.Format(time.RFC3339), secret)
		return nil
	})
	adminCommand(&command{name: "keys list", usage: "[--state DIR]", short: "list pre-auth keys", long: "Lists keys (never their secrets)."},
		nil, func(ctx context.Context, ac *adminclient.Client, args []string) error {
			keys, err := ac.AuthKeys(ctx)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			for _, k := range keys {
				fmt.Fprintf(tw, "%d\t%s\treusable=%v\tephemeral=%v\tused=%v\trevoked=%v\t%s\texpires %s\t%s\n",
					k.ID, k.Prefix, k.Reusable, k.Ephemeral, k.Used, k.Revoked, strings.Join(k.Tags, ","), k.Expires.Format(time.RFC3339), k.Description)
			}
			return tw.Flush()
		})
	adminCommand(&command{name: "keys revoke", usage: "[--state DIR] ID", short: "revoke a pre-auth key", long: "Revokes a key: it registers no more nodes."},
		nil, func(ctx context.Context, ac *adminclient.Client, args []string) error {
			id, err := idArg(args, "one key ID", "key")
			if err != nil {
				return err
			}
			return ac.RevokeAuthKey(ctx, id)
		})

	var asJSON bool
	adminCommand(&command{
		name: "nodes", usage: "[--state DIR] [--json]", short: "list the nodes of the network",
		long: "Lists every node with its addresses, owner or tags, online state and key expiry.",
	}, func(fs *flag.FlagSet) {
		fs.BoolVar(&asJSON, "json", false, "print JSON")
	}, func(ctx context.Context, ac *adminclient.Client, args []string) error {
		if err := wantArgs(args, 0, "no arguments"); err != nil {
			return err
		}
		nodes, err := ac.Nodes(ctx)
		if err != nil {
			return err
		}
		if asJSON {
			return printJSON(nodes)
		}
		tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		for _, n := range nodes {
			state := "offline"
			if n.Online {
				state = "online"
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\tephemeral=%v\tssh=%v\t%s\n", n.ID, n.Name, strings.Join(n.Addresses, ","), strings.Join(n.Tags, ","), state, n.Ephemeral, n.SSH, keyExpiryText(n, time.Now()))
		}
		return tw.Flush()
	})
	adminCommand(&command{
		name: "nodes delete", usage: "[--state DIR] ID", short: "delete a node",
		long: "Deletes a node at once: its sessions end and it cannot reconnect.",
	}, nil, func(ctx context.Context, ac *adminclient.Client, args []string) error {
		id, err := idArg(args, "one node ID", "node")
		if err != nil {
			return err
		}
		return ac.DeleteNode(ctx, id)
	})

	var tagBy, tagUser string
	adminCommand(&command{
		name: "nodes tag", usage: "[--state DIR] [--by EMAIL] [--user EMAIL] ID tag:a,tag:b",
		short: "tag, retag or untag a node",
		long: `Replaces a node's tags. A tagged node belongs to no user; an empty list ("") untags it, which
needs a new owner (--user EMAIL). --by names the user applying the change: unless an admin, they must
own every tag added or removed (the policy's tagOwners). Without --by the change is the admin's.
Every node gets its new rules at once: SSH sessions the change no longer allows are cut.`,
	}, func(fs *flag.FlagSet) {
		fs.StringVar(&tagBy, "by", "", "the user applying the tags (default: the admin)")
		fs.StringVar(&tagUser, "user", "", "the new owner when untagging")
	}, func(ctx context.Context, ac *adminclient.Client, args []string) error {
		if err := wantArgs(args, 2, `a node ID and a comma-separated tag list ("" untags)`); err != nil {
			return err
		}
		id, err := parseID(args[0], "node")
		if err != nil {
			return err
		}
		req := api.SetTagsRequest{Tags: []string{}, By: api.UserName(tagBy), Owner: api.UserName(tagUser)}
		for _, t := range strings.Split(args[1], ",") {
			if t = strings.TrimSpace(t); t != "" {
				req.Tags = append(req.Tags, t)
			}
		}
		n, err := ac.SetNodeTags(ctx, id, req)
		if err != nil {
			return err
		}
		if len(n.Tags) == 0 {
			var owner int64
			if n.Owner != nil {
				owner = n.Owner.ID
			}
			fmt.Printf("node %d (%s) untagged, owned by user %d\n", n.ID, n.Name, owner)
		} else {
			fmt.Printf("node %d (%s) tagged %s\n", n.ID, n.Name, strings.Join(n.Tags, ","))
		}
		return nil
	})
	adminCommand(&command{
		name: "users delete", usage: "[--state DIR] EMAIL", short: "delete a user, their nodes and keys",
		long: `Deletes a user: every node they own is deleted (their sessions end, the relay drops them;
tagged nodes belong to no user and stay) and every auth key of theirs is revoked.`,
	}, nil, func(ctx context.Context, ac *adminclient.Client, args []string) error {
		if err := wantArgs(args, 1, "one EMAIL"); err != nil {
			return err
		}
		du, err := ac.DeleteUser(ctx, args[0])
		if err != nil {
			return err
		}
		fmt.Printf("deleted user %s (id %d): %d nodes deleted %v, %d auth keys revoked %v\n",
			du.User.Email, du.User.ID, len(du.DeletedNodes), du.DeletedNodes, len(du.RevokedKeys), du.RevokedKeys)
		return nil
	})
}

// passwordFromStdin reads a password from the first line of standard input.
func passwordFromStdin() (string, error) {
	line, err := bufio.NewReader(io.LimitReader(os.Stdin, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("reading the password from standard input: %w", err)
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return "", errors.New("--password-stdin: standard input holds no password")
	}
	return pw, nil
}
