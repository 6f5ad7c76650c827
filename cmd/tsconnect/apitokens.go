package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"tsconnect/console/api"
	"tsconnect/control"
	"tsconnect/control/adminclient"
)

func init() {
	var (
		user, scopes, description string
		expiry                    time.Duration
	)
	adminCommand(&command{
		name: "api-tokens create", usage: "[--state DIR] --user EMAIL --scope read,nodes,... [--expiry DUR] [--description TEXT]",
		short: "make an API token for scripts and CI",
		long: `Makes an API token of a user and prints it alone on the last line; it is shown only this
once (the server keeps only its SHA-256). Send it as "Authorization: Bearer TOKEN" to
/api/v1/ (see docs/api.md). Scopes: ` + strings.Join(control.Scopes, ", ") + ` (policy and users
only for an admin's token); a token never does more than its user's role allows, and stops
working when the user is deleted.`,
	}, func(fs *flag.FlagSet) {
		fs.StringVar(&user, "user", "", "the owner's email or id (required)")
		fs.StringVar(&scopes, "scope", "", "comma-separated scopes, e.g. read,nodes (required)")
		fs.DurationVar(&expiry, "expiry", 0, "how long the token stays valid (default 90 days, at most a year)")
		fs.StringVar(&description, "description", "", "what the token is for (one line, shown in token lists)")
	}, func(ctx context.Context, ac *adminclient.Client, args []string) error {
		if err := wantArgs(args, 0, "no arguments"); err != nil {
			return err
		}
		if user == "" || scopes == "" {
			return errors.New("api-tokens create needs --user and --scope")
		}
		if expiry < 0 || (expiry > 0 && expiry < time.Second) {
			return fmt.Errorf("--expiry %v: want a positive duration like 720h", expiry)
		}
		req := api.CreateAPITokenRequest{User: api.UserName(user), ExpiresIn: int64(expiry / time.Second), Description: description}
		for _, s := range strings.Split(scopes, ",") {
			if s = strings.TrimSpace(s); s != "" {
				req.Scopes = append(req.Scopes, s)
			}
		}
		secret, t, err := ac.CreateAPIToken(ctx, req)
		if err != nil {
			return err
		}
		fmt.Printf("API token %d of %s, scopes %s, expires %s\n%s\n", t.ID, t.Owner.Email, strings.Join(t.Scopes, ","), t.Expires.Format(time.RFC3339), secret)
		return nil
	})
	adminCommand(&command{name: "api-tokens list", usage: "[--state DIR]", short: "list API tokens", long: "Lists API tokens (never their secrets)."},
		nil, func(ctx context.Context, ac *adminclient.Client, args []string) error {
			if err := wantArgs(args, 0, "no arguments"); err != nil {
				return err
			}
			ts, err := ac.APITokens(ctx)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			for _, t := range ts {
				used := "never used"
				if t.LastUsed != nil {
					used = "used " + t.LastUsed.Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\trevoked=%v\texpires %s\t%s\t%s\n", t.ID, t.Owner.Email, strings.Join(t.Scopes, ","),
					t.Revoked, t.Expires.Format(time.RFC3339), used, t.Description)
			}
			return tw.Flush()
		})
	adminCommand(&command{name: "api-tokens revoke", usage: "[--state DIR] ID", short: "revoke an API token", long: "Revokes an API token: it authenticates nobody any more."},
		nil, func(ctx context.Context, ac *adminclient.Client, args []string) error {
			id, err := idArg(args, "one token ID", "API token")
			if err != nil {
				return err
			}
			return ac.RevokeAPIToken(ctx, id)
		})
}
