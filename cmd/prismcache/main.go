// Command prismcache keeps the deployed configuration of Prismatic instances
// fresh in Redis. Run "prismcache help" for its commands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/prismcache/prismcache/internal/config"
)

func main() {
	ctx, stop := signalContext()
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// signalContext is cancelled by the first SIGINT or SIGTERM, so the daemon
// shuts down gracefully; a second one exits at once.
func signalContext() (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ch
		cancel()
		<-ch
		fmt.Fprintln(os.Stderr, "second signal: exiting now")
		os.Exit(130)
	}()
	return ctx, func() { signal.Stop(ch); cancel() }
}

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"serve", "run the daemon", runServe},
		{"dev", "run everything on this machine: embedded Redis, simulator, daemon", runDev},
		{"get", "print an instance's cached entry as JSON", runGet},
		{"history", "print an instance's latest revisions: what each deploy changed", runHistory},
		{"refresh", "ask a running daemon to fetch an instance now", runRefresh},
		{"resync", "compare every instance with Prismatic now and write what differs", runResync},
		{"sim", "run the Prismatic simulator alone", runSim},
		{"check-config", "print the effective configuration, secrets masked, and check it (--online: against the API too)", runCheckConfig},
		{"schema", "schema pull: rewrite schema.graphql from the live API's introspection", runSchema},
		{"version", "print the version", runVersion},
	}
}

// Exit codes every command shares. get adds its own (see get.go).
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// errUsage marks an error already explained by a usage message.
var errUsage = errors.New("usage")

// exitCodeError is an error with the exit code it means; quiet ones have
// been reported already (logged, in the daemon's log format).
type exitCodeError struct {
	code  int
	err   error
	quiet bool
}

func (e *exitCodeError) Error() string { return e.err.Error() }
func (e *exitCodeError) Unwrap() error { return e.err }

// reported wraps an error that was already logged, so that it is not
// printed a second time in another format.
func reported(err error) error { return &exitCodeError{code: exitError, err: err, quiet: true} }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" || args[0] == "-help" {
		usage(stderr)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	if args[0] == "--version" || args[0] == "-version" {
		fmt.Fprintln(stdout, versionString())
		return exitOK
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, args[1:], stdout, stderr)
		var coded *exitCodeError
		switch {
		case err == nil:
			return exitOK
		case errors.Is(err, flag.ErrHelp):
			return exitOK
		case errors.Is(err, errUsage):
			return exitUsage
		case errors.As(err, &coded):
			if !coded.quiet {
				fmt.Fprintf(stderr, "prismcache %s: %v\n", c.name, coded.err)
			}
			return coded.code
		}
		fmt.Fprintf(stderr, "prismcache %s: %v\n", c.name, err)
		return exitError
	}
	fmt.Fprintf(stderr, "prismcache: unknown command %q\n\n", args[0])
	usage(stderr)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "prismcache keeps the deployed config of Prismatic instances fresh in Redis.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage: prismcache <command> [flags]")
	fmt.Fprintln(w)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-13s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, `Run "prismcache <command> -h" for a command's flags; "prismcache --version" for the version.`)
}

// newFlagSet returns a FlagSet whose usage shows the command's synopsis and
// an example before its own flags, each with the kind of value it takes.
func newFlagSet(name, synopsis, example string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("prismcache "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: prismcache %s\n\n%s\n\nExample:\n  %s\n\nFlags:\n", name, synopsis, example)
		printFlags(stderr, fs)
	}
	return fs
}

// printFlags lists fs's flags as flag.PrintDefaults does, but names each
// value's kind: a config.Typed names its own (host:port, duration,
// debug|info|warn|error), the flag package's own values theirs.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		typ, usage := flag.UnquoteUsage(f)
		if t, ok := f.Value.(config.Typed); ok {
			typ = t.TypeName()
		}
		var b strings.Builder
		fmt.Fprintf(&b, "  -%s", f.Name)
		if typ != "" {
			b.WriteString(" " + typ)
		}
		b.WriteString("\n    \t")
		b.WriteString(strings.ReplaceAll(usage, "\n", "\n    \t"))
		if def := f.DefValue; def != "" && def != "0" && def != "0s" && def != "false" {
			fmt.Fprintf(&b, " (default %s)", def)
		}
		fmt.Fprintln(w, b.String())
	})
}

// parseFlags parses args, turning a flag error into errUsage (the FlagSet
// has already printed it). Flags may come before or after the positional
// arguments ("trigger instance.deployed --instance X"); the positional
// ones are left in fs.Args().
func parseFlags(fs *flag.FlagSet, args []string) error {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return err
			}
			return errUsage
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if rest[0] == "--" {
			positional = append(positional, rest[1:]...)
			break
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
	// Parse once more with only the positional arguments, so fs.Args()
	// returns them.
	return fs.Parse(append([]string{"--"}, positional...))
}
