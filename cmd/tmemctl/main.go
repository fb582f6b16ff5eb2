// Command tmemctl is the xl-style tmem CLI. See tmemctl(8) in docs/.
//
// It runs directly against Xen (root in dom0, like xl) or through the
// xen-tmemd control socket, automatically when the socket exists (and so
// always in simulated mode); the output is the same either way. Each
// subcommand lives in its own file, fetches its data through a [backend]
// and formats it in a separate step, so that golden files pin the output.
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
	"time"

	"github.com/xentmem/xentmem/internal/control"
)

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, e *env, args []string) error
	hidden  bool // not listed by 'tmemctl help' (completion helpers)
}

func commands() []command {
	return []command{
		{name: "tmem-list", summary: "list tmem clients and pools (xl tmem-list)", run: runList},
		{name: "tmem-freeze", summary: "stop domains from adding tmem pages (xl tmem-freeze)", run: runFreeze},
		{name: "tmem-thaw", summary: "undo tmem-freeze (xl tmem-thaw)", run: runThaw},
		{name: "tmem-destroy", summary: "Xen's DESTROY, which only thaws (xm tmem-destroy)", run: runDestroy},
		{name: "tmem-set", summary: "set weight, cap or compression (xl tmem-set)", run: runSet},
		{name: "tmem-shared-auth", summary: "authorise or revoke a shared pool uuid (xl tmem-shared-auth)", run: runSharedAuth},
		{name: "tmem-freeable", summary: "MiB tmem could give back to Xen (xl tmem-freeable)", run: runFreeable},
		{name: "tmem-flush", summary: "evict ephemeral pages back to Xen's heap (xm tmem-flush)", run: runFlush},
		{name: "tmem-pool-create", summary: "create a tmem pool in a domain", run: runPoolCreate},
		{name: "tmem-save", summary: "save a domain's tmem pools and persistent pages to a file", run: runSave},
		{name: "tmem-restore", summary: "restore a domain's tmem from a tmem-save file", run: runRestore},
		{name: "tmem-reserve", summary: "make MiB free for a domain about to start (xen-tmemd)", run: runReserve},
		{name: "tmem-top", summary: "live per-domain tmem view, like xentop", run: runTop},
		{name: "xen-info", summary: "show the hypervisor, host memory, domains and tmem status", run: runXenInfo},
		{name: "_domains", summary: "print domain names (for shell completion)", run: runDomains, hidden: true},
	}
}

// env is what every subcommand gets: where to read and write, the global
// options, and the hooks tests replace (clock, sleep, backend).
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	global         globalFlags

	// now is the clock of the direct backend and of tmem-top.
	now func() time.Time
	// sleep waits between tmem-top refreshes in batch mode.
	sleep func(ctx context.Context, d time.Duration) error
	// open chooses and opens the backend; nil means openBackend.
	open func(ctx context.Context, e *env) (backend, error)
	// defaultSocket is where the daemon's socket is looked for without
	// --socket; empty means control.DefaultSocket.
	defaultSocket string

	be backend // opened on first use by backend(), closed by main
}

// globalFlags are the options every command accepts, before or after its
// name.
type globalFlags struct {
	privcmd string
	socket  string // empty: control.DefaultSocket, automatic selection
	direct  bool
}

func (e *env) addGlobalFlags(fs *flag.FlagSet) {
	fs.StringVar(&e.global.privcmd, "privcmd", e.global.privcmd, "privcmd device `path` for direct mode (default /dev/xen/privcmd)")
	fs.StringVar(&e.global.socket, "socket", e.global.socket, "xen-tmemd control socket `path`; given explicitly, tmemctl uses only the daemon (default "+control.DefaultSocket+")")
	fs.BoolVar(&e.global.direct, "direct", e.global.direct, "talk to Xen directly, never to xen-tmemd")
}

// isGlobalFlag reports whether name is one of addGlobalFlags' flags.
func isGlobalFlag(name string) bool {
	return name == "privcmd" || name == "socket" || name == "direct"
}

// backend returns the backend, opening it on first use.
func (e *env) backend(ctx context.Context) (backend, error) {
	if e.be != nil {
		return e.be, nil
	}
	open := e.open
	if open == nil {
		open = openBackend
	}
	be, err := open(ctx, e)
	if err != nil {
		return nil, err
	}
	e.be = be
	return be, nil
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is main without the process: it returns the exit status.
func run(ctx context.Context, argv []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr, now: time.Now, sleep: sleepCtx}
	return e.main(ctx, argv)
}

func (e *env) main(ctx context.Context, argv []string) int {
	defer func() {
		if e.be != nil {
			e.be.Close()
		}
	}()
	fs := flag.NewFlagSet("tmemctl", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	e.addGlobalFlags(fs)
	args := argv[1:]
	// Invoked through a symlink named after a command (tmem-list → tmemctl tmem-list).
	if base := filepath.Base(argv[0]); base != "tmemctl" && findCommand(base) != nil {
		args = append([]string{base}, args...)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(e.stdout, fs)
			return exitOK
		}
		fmt.Fprintf(e.stderr, "tmemctl: %s (see 'tmemctl help')\n", errorLine(err))
		return exitUsage
	}
	if fs.NArg() == 0 {
		if len(args) > 0 {
			fmt.Fprintf(e.stderr, "tmemctl: no command given (see 'tmemctl help')\n")
		} else {
			usage(e.stderr, fs)
		}
		return exitUsage
	}
	name := fs.Arg(0)
	if name == "help" {
		if fs.NArg() > 1 {
			if c := findCommand(fs.Arg(1)); c != nil {
				return e.finish(c.name, c.run(ctx, e, []string{"--help"}))
			}
			fmt.Fprintf(e.stderr, "tmemctl: unknown command %q (see 'tmemctl help')\n", fs.Arg(1))
			return exitUsage
		}
		usage(e.stdout, fs)
		return exitOK
	}
	cmd := findCommand(name)
	if cmd == nil {
		fmt.Fprintf(e.stderr, "tmemctl: unknown command %q (see 'tmemctl help')\n", name)
		return exitUsage
	}
	return e.finish(name, cmd.run(ctx, e, fs.Args()[1:]))
}

// finish prints err as one line and returns the exit status it maps to.
func (e *env) finish(name string, err error) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	code := exitCode(err)
	if code == exitUsage {
		fmt.Fprintf(e.stderr, "tmemctl %s: %s (see 'tmemctl %s --help')\n", name, errorLine(err), name)
	} else {
		fmt.Fprintf(e.stderr, "tmemctl %s: %s\n", name, errorLine(err))
	}
	return code
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

tmemctl inspects and controls Xen transcendent memory (tmem) from dom0. It
talks to Xen directly (root in dom0, like xl) or through xen-tmemd's control
socket, automatically when the socket exists; the output is the same either
way. Invoked through a symbolic link named after a command (tmem-list, ...),
it acts as that command.

Commands:
`)
	for _, c := range commands() {
		if !c.hidden {
			fmt.Fprintf(w, "  %-17s %s\n", c.name, c.summary)
		}
	}
	fmt.Fprintf(w, "\nGlobal options (also accepted after the command name):\n")
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
	fmt.Fprintf(w, `
Exit status: 0 ok, 1 the operation failed, 2 bad command line, 3 no Xen and
no xen-tmemd, 4 not supported by this Xen, 5 unknown domain, 6 permission
denied. See tmemctl(8).

Examples:
  tmemctl tmem-list -l -a
  tmemctl tmem-list -a -o table
  tmemctl --socket .run/control.sock tmem-top

Run 'tmemctl COMMAND --help' for a command's options.
`)
}

// sleepCtx waits d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
