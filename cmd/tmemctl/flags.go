package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/xentmem/xentmem/internal/control"
	"github.com/xentmem/xentmem/xenctl"
)

// cmdHelp is the --help text of a command.
type cmdHelp struct {
	name     string
	synopsis string // after "Usage: tmemctl NAME "
	text     string // what it does; ends with a newline
	examples string // one example per line, without indentation
}

// newFlags returns an empty flag set for a command.
func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parse parses args like GNU getopt, as xl does: options may follow the
// positional arguments ("tmem-list 3 -l"), and "--" ends the options. The
// global options are accepted too. -h/--help prints h to stdout and
// returns flag.ErrHelp.
func (e *env) parse(fs *flag.FlagSet, h cmdHelp, args []string) ([]string, error) {
	all := newFlags(h.name)
	fs.VisitAll(func(f *flag.Flag) { all.Var(f.Value, f.Name, f.Usage) })
	e.addGlobalFlags(all)
	var pos []string
	for {
		if err := all.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				printHelp(e.stdout, fs, h)
				return nil, flag.ErrHelp
			}
			return nil, &usageError{err.Error()}
		}
		rest := all.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

func printHelp(w io.Writer, fs *flag.FlagSet, h cmdHelp) {
	fmt.Fprintf(w, "Usage: tmemctl %s %s\n\n%s", h.name, h.synopsis, h.text)
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n > 0 {
		fmt.Fprintf(w, "\nOptions:\n")
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	fmt.Fprintf(w, "\nThe global options --socket, --direct and --privcmd may be given too (see 'tmemctl help').\n")
	fmt.Fprintf(w, "\nExample")
	if strings.Contains(strings.TrimSuffix(h.examples, "\n"), "\n") {
		fmt.Fprintf(w, "s")
	}
	fmt.Fprintf(w, ":\n")
	for _, l := range strings.Split(strings.TrimSuffix(h.examples, "\n"), "\n") {
		fmt.Fprintf(w, "  %s\n", l)
	}
}

// target is the [-a|DOMAIN] argument of the xl commands.
type target struct {
	all    bool
	domain string
}

// args returns the control API's form.
func (t target) args() control.DomainArgs {
	if t.all {
		return control.DomainArgs{All: true}
	}
	return control.DomainArgs{Domain: t.domain}
}

// parseTarget applies xl's rules: -a or one domain is required, and -a
// wins when both are given. xl ignores further arguments; tmemctl refuses
// them.
func parseTarget(all bool, pos []string) (target, error) {
	if len(pos) > 1 {
		return target{}, usagef("unexpected argument %q", pos[1])
	}
	if all {
		return target{all: true}, nil
	}
	if len(pos) == 0 || pos[0] == "" {
		return target{}, usagef("you must specify -a or a domain (a name or an id)")
	}
	return target{domain: pos[0]}, nil
}

// noArgs refuses positional arguments.
func noArgs(pos []string) error {
	if len(pos) > 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	return nil
}

// checkFormat validates -o against the formats a command offers.
func checkFormat(o string, allowed ...string) error {
	for _, a := range allowed {
		if o == a {
			return nil
		}
	}
	return usagef("-o %q: want one of %s", o, strings.Join(allowed, ", "))
}

// parseUint parses a decimal number for option opt, at most max. xl used
// strtol without checks; tmemctl refuses what is not a number.
func parseUint(opt, s string, max uint64) (uint64, error) {
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil || v > max {
		return 0, usagef("%s %q: want a whole number from 0 to %d", opt, s, max)
	}
	return v, nil
}

// uuidError is a malformed uuid, as a usage error.
func uuidError(err error) error {
	return &usageError{strings.TrimPrefix(err.Error(), xenctl.ErrBadInput.Error()+": ")}
}

// writeJSON writes v indented, with a final newline.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
