// Command cowd-img creates and inspects dscow images, the successor of
// dscow_tool: create, info, check, map and commit.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usageText = `Usage: cowd-img COMMAND [options] ARGS

Commands:
  create [-f] IMAGE BASE [BLOCK_KB]   new empty overlay of BASE (block size in KiB, default 64)
  create -f qcow2 [-b BASE -F raw|qcow2] [-o cluster_size=64k,extended_l2=on,...] IMAGE [SIZE]
                                      new qcow2 overlay (info, check, map and commit detect qcow2)
  info   [-o text|json] [-U] IMAGE    header, base identity and block counts
  check  [-o text|json] [-r] [-U] [--skip-base] IMAGE
                                      verify metadata; exit 0 clean, 2 corrupt, 3 leaks
  map    [-o text|json] [-U] IMAGE    ranges in the base, in the CoW store, and zeroed
  commit [-q] IMAGE                   write the overlay into BASE and empty it

Example:
  cowd-img create vm1.dscow /var/lib/xen/golden.img 64
  cowd-img info -o json vm1.dscow
  cowd-img check vm1.dscow; echo "exit $?"

-U reads an image that a running cowd holds (results may be a moment stale).
`

// command is one subcommand; it returns the exit code.
type command func(ctx context.Context, args []string, stdout, stderr io.Writer) int

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmds := map[string]command{
		"create": cmdCreate,
		"info":   cmdInfo,
		"check":  cmdCheck,
		"map":    cmdMap,
		"commit": cmdCommit,
	}
	if len(args) == 0 {
		fmt.Fprint(stderr, usageText)
		return 2
	}
	switch args[0] {
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usageText)
		return 0
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "cowd-img: unknown command %q\n\n%s", args[0], usageText)
		return 2
	}
	return cmd(ctx, args[1:], stdout, stderr)
}

// newFlags returns a flag set for a subcommand with the common options.
func newFlags(name, args string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("cowd-img "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: cowd-img %s [options] %s\n", name, args)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses flags and checks the number of positional arguments; it
// returns a non-negative exit code when the caller must stop.
func parse(fs *flag.FlagSet, args []string, minArgs, maxArgs int) int {
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if fs.NArg() < minArgs || fs.NArg() > maxArgs {
		fs.Usage()
		return 2
	}
	return -1
}

func checkFormat(f string, stderr io.Writer) bool {
	if f != "text" && f != "json" {
		fmt.Fprintf(stderr, "cowd-img: output format %q: want text or json\n", f)
		return false
	}
	return true
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func fail(stderr io.Writer, err error) int {
	fmt.Fprintf(stderr, "cowd-img: %v\n", err)
	return 1
}
