// Command tsconnect is the one binary of tsconnect: the coordination server, the relay,
// the node agent and its local commands, and the demo.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// command is one subcommand: its flags, help and body.
type command struct {
	name  string
	usage string // one line: the arguments
	short string // one line: what it does
	long  string // the full help text
	flags func(fs *flag.FlagSet)
	// hidden commands are for tsconnect's own use and not listed.
	hidden bool
	run    func(ctx context.Context, args []string) error
}

var commands = map[string]*command{}

func register(c *command) { commands[c.name] = c }

func main() {
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	// Global flags come before the subcommand: `tsconnect [--socket PATH] status`.
	global := flag.NewFlagSet("tsconnect", flag.ContinueOnError)
	global.StringVar(&socketFlag, "socket", "", "the agent's local API socket (default $TSCONNECT_SOCKET, else "+defaultSocket()+")")
	global.Usage = func() { usage(os.Stderr) }
	if err := global.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	args := global.Args()
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		if len(args) > 1 {
			if c := commands[strings.Join(args[1:], " ")]; c != nil {
				commandFlags(c).Usage()
				return
			}
		}
		usage(os.Stdout)
		return
	}
	c := commands[args[0]]
	if len(args) > 1 && commands[args[0]+" "+args[1]] != nil {
		c, args = commands[args[0]+" "+args[1]], args[1:]
	}
	if c == nil {
		fmt.Fprintf(os.Stderr, "tsconnect: unknown command %q\n\n", args[0])
		usage(os.Stderr)
		os.Exit(2)
	}
	fs := commandFlags(c)
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := c.run(ctx, fs.Args()); err != nil {
		var ee exitError
		if errors.As(err, &ee) {
			os.Exit(int(ee))
		}
		fmt.Fprintf(os.Stderr, "tsconnect %s: %v\n", c.name, err)
		os.Exit(1)
	}
}

// exitError ends the program with that exit code and no message.
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit %d", int(e)) }

func commandFlags(c *command) *flag.FlagSet {
	fs := flag.NewFlagSet("tsconnect "+c.name, flag.ContinueOnError)
	if c.flags != nil {
		c.flags(fs)
	}
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "usage: tsconnect %s %s\n\n%s\n", c.name, c.usage, strings.TrimSpace(c.long))
		var hasFlags bool
		fs.VisitAll(func(*flag.Flag) { hasFlags = true })
		if hasFlags {
			fmt.Fprintf(w, "\nflags:\n")
			fs.PrintDefaults()
		}
	}
	return fs
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "usage: tsconnect [--socket PATH] <command> [flags] [args]\n\ncommands:\n")
	names := make([]string, 0, len(commands))
	for n, c := range commands {
		if !c.hidden {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-16s %s\n", n, commands[n].short)
	}
	fmt.Fprintf(w, "\nRun `tsconnect help <command>` for a command's flags.\n")
}

// socketFlag is the global --socket flag.
var socketFlag string

// socketPath finds the agent: --socket, else $TSCONNECT_SOCKET, else the default.
func socketPath() string {
	if socketFlag != "" {
		return socketFlag
	}
	if s := os.Getenv("TSCONNECT_SOCKET"); s != "" {
		return s
	}
	return defaultSocket()
}

// defaultSocket is /run/tsconnect/tsconnect.sock for root, else under $XDG_RUNTIME_DIR
// (or ~/.local/state/tsconnect) for everybody else.
func defaultSocket() string {
	if os.Getuid() == 0 {
		return "/run/tsconnect/tsconnect.sock"
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "tsconnect.sock")
	}
	return filepath.Join(defaultStateRoot(), "tsconnect.sock")
}

// defaultStateRoot is /var/lib/tsconnect for root, else ~/.local/state/tsconnect.
func defaultStateRoot() string {
	if os.Getuid() == 0 {
		return "/var/lib/tsconnect"
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "tsconnect")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".local", "state", "tsconnect")
}

// logfTo returns a Logf that writes to the standard logger with a prefix.
func logfTo(prefix string) func(string, ...any) {
	return func(format string, args ...any) { log.Printf(prefix+format, args...) }
}
