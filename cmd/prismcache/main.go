// Command prismcache keeps the deployed configuration of Prismatic instances
// fresh in Redis. Run "prismcache help" for its commands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
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
		{"refresh", "ask a running daemon to fetch an instance now", runRefresh},
		{"resync", "compare every instance with Prismatic now and write what differs", runResync},
		{"sim", "run the Prismatic simulator alone", runSim},
		{"check-config", "print the effective configuration, secrets masked, and check it", runCheckConfig},
		{"version", "print the version", runVersion},
	}
}

// errUsage marks an error already explained by a usage message.
var errUsage = errors.New("usage")

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, args[1:], stdout, stderr)
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errUsage):
			return 2
		}
		fmt.Fprintf(stderr, "prismcache %s: %v\n", c.name, err)
		return 1
	}
	fmt.Fprintf(stderr, "prismcache: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "prismcache keeps the deployed config of Prismatic instances fresh in Redis.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage: prismcache <command> [flags]")
	fmt.Fprintln(w)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, `Run "prismcache <command> -h" for a command's flags.`)
}

// newFlagSet returns a FlagSet whose usage shows the command's synopsis and
// an example before the flags.
func newFlagSet(name, synopsis, example string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("prismcache "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: prismcache %s\n\n%s\n\nExample:\n  %s\n\nFlags:\n", name, synopsis, example)
		fs.PrintDefaults()
	}
	return fs
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

// newLogger logs at level in format: text, json, or auto — text when w is
// a terminal, JSON otherwise (for log collectors).
func newLogger(w io.Writer, level, format string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: l}
	if format == "json" || (format != "text" && !isTerminal(w)) {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
