// Command tmemctl is the xl-style tmem CLI. See tmemctl(8) in docs/.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
)

// Exit codes (documented in docs/tmemctl.8.md).
const (
	exitOK    = 0
	exitFail  = 1 // the operation failed, or no Xen
	exitUsage = 2 // bad command line
)

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, env *env, args []string) error
}

// env is what every subcommand gets: where to write, and global options.
type env struct {
	stdout, stderr io.Writer
	global         globalFlags
}

type globalFlags struct {
	privcmd string
}

func commands() []command {
	return []command{
		{"xen-info", "show the hypervisor, host memory, domains and tmem status", runXenInfo},
	}
}

// usageError is a command-line mistake: exit 2 and the usage hint.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, argv []string, stdout, stderr io.Writer) int {
	e := &env{stdout: stdout, stderr: stderr}
	fs := flag.NewFlagSet("tmemctl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&e.global.privcmd, "privcmd", "", "privcmd device `path` (default /dev/xen/privcmd)")
	fs.Usage = func() { usage(stderr, fs) }
	args := argv[1:]
	// Invoked through a symlink named after a command (tmem-list → tmemctl tmem-list).
	if base := filepath.Base(argv[0]); base != "tmemctl" && findCommand(base) != nil {
		args = append([]string{base}, args...)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() == 0 {
		usage(stderr, fs)
		return exitUsage
	}
	name := fs.Arg(0)
	if name == "help" {
		usage(stdout, fs)
		return exitOK
	}
	cmd := findCommand(name)
	if cmd == nil {
		fmt.Fprintf(stderr, "tmemctl: unknown command %q (see 'tmemctl help')\n", name)
		return exitUsage
	}
	err := cmd.run(ctx, e, fs.Args()[1:])
	var ue *usageError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "tmemctl %s: %v (see 'tmemctl %s --help')\n", name, err, name)
		return exitUsage
	}
	fmt.Fprintf(stderr, "tmemctl %s: %v\n", name, err)
	return exitFail
}

func findCommand(name string) *command {
	for _, c := range commands() {
		if c.name == name {
			return &c
		}
	}
	return nil
}

func usage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, `Usage: tmemctl [global options] COMMAND [options] [args]

tmemctl inspects and controls Xen transcendent memory (tmem) from dom0.

Commands:
`)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-12s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nGlobal options:\n")
	fs.SetOutput(w)
	fs.PrintDefaults()
	fmt.Fprintf(w, "\nExample:\n  tmemctl xen-info -o json\n\nRun 'tmemctl COMMAND --help' for a command's options.\n")
}
