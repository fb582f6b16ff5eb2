package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// options are the parsed command line.
type options struct {
	plugin     string
	blockKB    int
	init       bool
	foreground bool
	resume     bool
	sync       bool
	version    bool
	debug      bool
	verbose    bool
	pidFile    string
	listen     string
	logFile    string
	nbdDevice  string
	name       string
	cowFile    string
}

const usageText = `Usage: cowd [options] NAME COWFILE

cowd serves the copy-on-write view of a guest disk over NBD. COWFILE is a
dscow image made by "cowd-img create"; it names the read-only base image
(file or block device). Reads of blocks never written come from the base;
the first write to a block copies it into COWFILE. NAME is the NBD export
name and names the default socket, /run/cowd/NAME.sock.

Example:
  cowd-img create /var/lib/xen/vm1.dscow /var/lib/xen/golden.img 64
  cowd -i /run/cowd/vm1.pid vm1 /var/lib/xen/vm1.dscow
  qemu-img info 'nbd+unix:///vm1?socket=/run/cowd/vm1.sock'
  kill -HUP  $(cat /run/cowd/vm1.pid)   # drop cached mappings, reload the map
  kill -TERM $(cat /run/cowd/vm1.pid)   # finish requests, flush, exit 0

Options:
`

var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// parseFlags parses the command line; it returns flag.ErrHelp for -h.
func parseFlags(args []string, out io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("cowd", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprint(out, usageText)
		fs.PrintDefaults()
	}
	fs.StringVar(&o.plugin, "p", "dscow", "image format `plugin`: dscow or qcow2")
	fs.IntVar(&o.blockKB, "b", 0, "block size in `KiB`; with -I it sets the new block size, otherwise it must match the image")
	fs.BoolVar(&o.init, "I", false, "initialise the CoW space: drop every mapping and start over from the base")
	fs.BoolVar(&o.foreground, "n", false, "do not daemonise; stay in the foreground")
	fs.BoolVar(&o.resume, "r", false, "resume with the existing mappings (the default; replays the journal after a crash)")
	fs.BoolVar(&o.sync, "s", false, "sync mode: a write completes only once its data and mapping are durable")
	fs.BoolVar(&o.version, "V", false, "print the version and exit")
	fs.BoolVar(&o.debug, "d", false, "debug logging")
	fs.BoolVar(&o.verbose, "v", false, "verbose logging (connections, reloads)")
	fs.StringVar(&o.pidFile, "i", "", "write the daemon's pid to `PIDFILE`")
	fs.StringVar(&o.listen, "listen", "", "listen on unix:`PATH` or tcp:HOST:PORT (default unix:/run/cowd/NAME.sock)")
	fs.StringVar(&o.logFile, "log", "", "append logs to `FILE` instead of stderr")
	fs.StringVar(&o.nbdDevice, "nbd-device", "", "also attach the export to the kernel's nbd `DEVICE` (/dev/nbdN), e.g. for blkback")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if o.version {
		return o, nil
	}
	if fs.NArg() != 2 {
		fs.Usage()
		return nil, errors.New("cowd: need NAME and COWFILE")
	}
	o.name, o.cowFile = fs.Arg(0), fs.Arg(1)
	switch {
	case o.plugin != "dscow" && o.plugin != pluginQcow2:
		return nil, fmt.Errorf("cowd: plugin %q is not supported (dscow or qcow2)", o.plugin)
	case o.init && o.resume:
		return nil, errors.New("cowd: -I and -r exclude each other")
	case o.blockKB < 0 || o.blockKB > 1<<21:
		return nil, fmt.Errorf("cowd: block size %d KiB out of range", o.blockKB)
	case !namePattern.MatchString(o.name):
		return nil, fmt.Errorf("cowd: NAME %q: use letters, digits, '.', '_' and '-'", o.name)
	}
	if o.listen == "" {
		o.listen = "unix:" + filepath.Join("/run/cowd", o.name+".sock")
	}
	return o, nil
}
