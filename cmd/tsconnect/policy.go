package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/user"
	"strconv"
	"strings"
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
		fmt.Fprintf(os.Stderr, "policy version %d by %s%s\n", pv.Version, pv.Author, when(pv.Time))
		fmt.Print(pv.Text)
		return nil
	})

	var force bool
	var ifVersion int64
	adminCommand(&command{
		name: "policy set", usage: "[--state DIR] [--if-version N | --force] FILE", short: "put a policy file in force",
		long: `Sends FILE (HuJSON; "-" reads stdin) to the running control server, which parses it,
runs its tests and sshTests, and puts it in force as a new version: every node gets its new
rules at once, and SSH sessions the new policy no longer allows are cut ("Access revoked.").
A refused file changes nothing; every problem is listed as file:line:column: field: message.
The write is made against a version (If-Match): N with --if-version (the version "policy get"
printed when you read the file), else the one in force when the command starts; if another
writer got in first, nothing changes and the error names the version in force. --force
writes whatever version is in force.`,
	}, func(fs *flag.FlagSet) {
		fs.BoolVar(&force, "force", false, "write whatever policy version is in force")
		fs.Int64Var(&ifVersion, "if-version", -1, "write only if this policy version is still in force")
	}, func(ctx context.Context, ac *adminclient.Client, args []string) error {
		if err := wantArgs(args, 1, "one FILE"); err != nil {
			return err
		}
		text, err := readPolicyFile(args[0])
		if err != nil {
			return err
		}
		want, err := writeVersion(ctx, ac, force, ifVersion)
		if err != nil {
			return err
		}
		pv, err := ac.SetPolicy(ctx, text, policyAuthor(), want)
		if err != nil {
			return refusedPolicy(args[0], err)
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
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s%s\n", v.Version, v.Time.Local().Format(time.DateTime), v.Author, v.Note, mark)
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
		want, err := writeVersion(ctx, ac, false, -1)
		if err != nil {
			return err
		}
		pv, err := ac.RestorePolicy(ctx, n, policyAuthor(), want)
		if err != nil {
			return refusedPolicy(fmt.Sprintf("version %d", n), err)
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

// writeVersion is the If-Match of a policy write: any version with force, ifVersion when
// given, else the version in force now.
func writeVersion(ctx context.Context, ac *adminclient.Client, force bool, ifVersion int64) (int64, error) {
	switch {
	case force && ifVersion >= 0:
		return 0, fmt.Errorf("--force and --if-version exclude each other")
	case force:
		return adminclient.AnyVersion, nil
	case ifVersion >= 0:
		return ifVersion, nil
	}
	pv, err := ac.Policy(ctx)
	return pv.Version, err
}

// refusedPolicy lists every problem of a refused policy as name:line:column: field: message.
func refusedPolicy(name string, err error) error {
	var ae *adminclient.Error
	if !errors.As(err, &ae) || len(ae.Problems) == 0 {
		return err
	}
	var b strings.Builder
	b.WriteString("policy refused, the one in force stays:")
	for _, p := range ae.Problems {
		sep := ":"
		if p.Line == 0 {
			sep = ": "
		}
		b.WriteString("\n" + name + sep + adminclient.FormatProblem(p))
	}
	return errors.New(b.String())
}

func when(t *time.Time) string {
	if t == nil || t.IsZero() {
		return ""
	}
	return " at " + t.Local().Format(time.DateTime)
}
