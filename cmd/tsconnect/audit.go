package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"tsconnect/control/adminclient"
)

func init() {
	var after int64
	var since string
	adminCommand(&command{name: "audit export", usage: "[--state DIR] [--after ID] [--since TIME]",
		short: "write the audit log as JSON lines",
		long: `Writes the running control server's audit log to stdout as JSON lines, oldest first:
console sign-ins, checks, node logins and every SSH login decision the agents report
(method "ssh", kind ssh-accept, ssh-reject, ssh-check, ssh-check-accept, ssh-check-reject,
ssh-revoke, ssh-end, with "ssh" naming the source and target nodes, the local user, the
rule and the recording). --after ID starts after event ID (the "id" of the last line of
a previous export), --since TIME (RFC 3339) at a time. The same as GET /api/v1/audit/export.`},
		func(fs *flag.FlagSet) {
			fs.Int64Var(&after, "after", 0, "start after this event ID")
			fs.StringVar(&since, "since", "", "start at this time (RFC 3339, e.g. 2026-12-01T00:00:00Z)")
		},
		func(ctx context.Context, ac *adminclient.Client, args []string) error {
			if err := wantArgs(args, 0, "no arguments"); err != nil {
				return err
			}
			var t time.Time
			if since != "" {
				var err error
				if t, err = time.Parse(time.RFC3339, since); err != nil {
					return fmt.Errorf("bad --since %q: want an RFC 3339 time", since)
				}
			}
			w := bufio.NewWriter(os.Stdout)
			if _, err := ac.AuditExport(ctx, after, t, w); err != nil {
				return err
			}
			return w.Flush()
		})
}
