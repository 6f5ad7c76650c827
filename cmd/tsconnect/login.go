package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"

	"tsconnect/agent"
	"tsconnect/internal/safetext"
)

func init() {
	var authKey string
	register(&command{
		name:  "login",
		usage: "[--auth-key KEY|file:PATH]",
		short: "re-authenticate the running agent and rotate its node key",
		long: `Re-authenticates the running agent (see --socket) with control and moves it to a new
node key, which restarts the key's lifetime (see tsconnect settings node-key-expiry). The node
keeps its machine key, name, addresses and owner; peers switch to the new key and open SSH
sessions carry on. Without an auth key it prints a URL to sign in at, as tsconnect up does,
and waits; the one who signs in must own the node (an admin, for a tagged node). An auth key
must belong to the node's owner (for a tagged node: carry its tags). --auth-key file:PATH
reads the key from a file, else $` + authKeyEnv + ` holds it.`,
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&authKey, "auth-key", "", "pre-auth key of the node's owner, or file:PATH (default $"+authKeyEnv+"; none: sign in interactively)")
		},
		run: func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("unexpected arguments %q", args)
			}
			k, err := resolveAuthKey(authKey)
			if err != nil {
				return err
			}
			resp, err := localAPIPost(ctx, "/localapi/v1/login", agent.LoginRequest{AuthKey: k})
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() {
				var ev agent.LoginEvent
				if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
					return fmt.Errorf("agent: bad answer: %w", err)
				}
				switch {
				case ev.LoginURL != "":
					fmt.Fprintf(os.Stderr, "\nTo re-authenticate this node, sign in at:\n\n\t%s\n\n", safetext.Bounded(ev.LoginURL, 1024))
				case ev.Error != "":
					return errors.New(safetext.Bounded(ev.Error, 1024))
				case ev.Done:
					fmt.Printf("re-authenticated; new node key %s\n", safetext.Bounded(ev.NodeKey, 80))
					return nil
				}
			}
			if err := sc.Err(); err != nil {
				return err
			}
			return errors.New("agent: the login ended without an answer")
		},
	})
}
