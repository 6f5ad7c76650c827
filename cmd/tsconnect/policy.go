package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/user"
	"strconv"
	"text/tabwriter"
	"time"

	"tsconnect/control/adminclient"
	"tsconnect/policy"
)

// policyAuthor names who writes through the admin socket, for the version history.
func policyAuthor() string {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	return name + " via the admin socket"
}

func init() {
	adminCommand(&command{
		name: "policy get", usage: "[--state DIR]", short: "print the policy in force",
		long: `Prints the HuJSON policy file in force on the running control server (the built-in
default when none was ever set); its version, author and time go to stderr.`,
	}, nil, func(ctx context.Context, ac *adminclient.Client, args []string) error {
		if err := wantArgs(args, 0, "no arguments"); err != nil {
			return err
		}
		pv, err := ac.Policy(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "policy version %d by %s%s\n", pv.Version, pv.Author, when(pv.Created))
		fmt.Print(pv.Text)
		return nil
	})

	adminCommand(&command{
		name: "policy set", usage: "[--state DIR] FILE", short: "put a policy file in force",
		long: `Sends FILE (HuJSON; "-" reads stdin) to the running control server, which parses it,
runs its tests and sshTests, and puts it in force as a new version: every node gets its new
rules at once, and SSH sessions the new policy no longer allows are cut ("Access revoked.").
A refused file changes nothing; every problem is listed as file:line:column: field: message.`,
	}, nil, func(ctx context.Context, ac *adminclient.Client, args []string) error {
		if err := wantArgs(args, 1, "one FILE"); err != nil {
			return err
		}
		text, err := readPolicyFile(args[0])
		if err != nil {
			return err
		}
		pv, err := ac.SetPolicy(ctx, text, policyAuthor())
		if err != nil {
			return err
		}
		fmt.Printf("policy version %d in force\n", pv.Version)
		return nil
	})

	register(&command{
		name: "policy validate", usage: "FILE", short: "check a policy file (offline)",
		long: `Parses FILE (HuJSON; "-" reads stdin) and runs its tests and sshTests exactly as the
control server would on "policy set", without any server. Prints "ok" or every problem as
file:line:column: field: message, and then exits 1.`,
		run: func(ctx context.Context, args []string) error {
			if err := wantArgs(args, 1, "one FILE"); err != nil {
				return err
			}
			text, err := readPolicyFile(args[0])
			if err != nil {
				return err
			}
			if _, err := policy.Parse(args[0], text); err != nil {
				return fmt.Errorf("policy refused:\n%w", err)
			}
			fmt.Println("ok")
			return nil
		},
	})

	adminCommand(&command{
		name: "policy history", usage: "[--state DIR]", short: "list the accepted policy versions",
		long: "Lists every accepted policy version: number, time, author and how it came to be.",
	}, nil, func(ctx context.Context, ac *adminclient.Client, args []string) error {
		if err := wantArgs(args, 0, "no arguments"); err != nil {
			return err
		}
		vs, err := ac.PolicyHistory(ctx)
		if err != nil {
			return err
		}
		cur, err := ac.Policy(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "VERSION\tCREATED\tAUTHOR\tNOTE")
		for _, v := range vs {
			mark := ""
			if v.Version == cur.Version {
				mark = " (in force)"
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s%s\n", v.Version, v.Created.Local().Format(time.DateTime), v.Author, v.Note, mark)
		}
		if len(vs) == 0 {
			fmt.Fprintln(tw, "0\t-\tbuilt-in default\t(in force)")
		}
		return tw.Flush()
	})

	adminCommand(&command{
		name: "policy restore", usage: "[--state DIR] VERSION", short: "put an earlier policy version back in force",
		long: `Puts accepted policy VERSION (0: the built-in default) back in force as a new version,
after checking it again as "policy set" would.`,
	}, nil, func(ctx context.Context, ac *adminclient.Client, args []string) error {
		if err := wantArgs(args, 1, "one VERSION"); err != nil {
			return err
		}
		n, err := strconv.ParseInt(args[0], 10, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("bad policy version %q: want 0 or a version number from `tsconnect policy history`", args[0])
		}
		pv, err := ac.RestorePolicy(ctx, n, policyAuthor())
		if err != nil {
			return err
		}
		fmt.Printf("policy version %d (restore of version %d) in force\n", pv.Version, n)
		return nil
	})
}

func readPolicyFile(name string) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(os.Stdin)
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("policy file: %w", err)
	}
	return b, nil
}

func when(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return " at " + t.Local().Format(time.DateTime)
}
