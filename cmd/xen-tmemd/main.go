// Command xen-tmemd is the dom0 tmem daemon: it watches ephemeral-pool
// pressure and host free memory, acts by policy, serves the control API and
// metrics, and names domains through libvirt. See xen-tmemd(8).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"
)

func main() {
	// A daemon with a small, steady live heap: collect at 50 % growth
	// rather than Go's default 100 % (GOGC in the environment still wins).
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(50)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stderr)
	stop()
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case errors.Is(err, errUsage), errors.Is(err, errConfig):
		fmt.Fprintf(os.Stderr, "xen-tmemd: %v\n", err)
		os.Exit(2)
	}
	fmt.Fprintf(os.Stderr, "xen-tmemd: %v\n", err)
	os.Exit(1)
}

var errUsage = errors.New("usage")

// options are the command-line flags; set ones override the config file.
type options struct {
	config     string
	hypervisor string
	socket     string
	pidFile    string
	dryRun     bool
	interval   string
	logFormat  string
	logLevel   string
	metrics    string
	libvirtURI string
	simVersion string
	simMemory  uint64
	noLibvirt  bool
	set        map[string]bool
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{set: map[string]bool{}}
	fs := flag.NewFlagSet("xen-tmemd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.config, "config", "", "configuration `file` (TOML; see docs/xen-tmemd.toml)")
	fs.StringVar(&o.hypervisor, "hypervisor", "auto", "`mode`: auto (xen when /dev/xen/privcmd exists, else sim), xen or sim")
	fs.StringVar(&o.socket, "socket", "", "control socket `path` (default /run/xen-tmemd/control.sock)")
	fs.StringVar(&o.pidFile, "pid-file", "", "write the daemon's pid to `file`")
	fs.BoolVar(&o.dryRun, "dry-run", false, "log what the policy would do, change nothing")
	fs.StringVar(&o.interval, "interval", "", "monitoring `interval`, e.g. 1s")
	fs.StringVar(&o.logFormat, "log-format", "", "log `format`: console or json")
	fs.StringVar(&o.logLevel, "log-level", "", "log `level`: debug, info, warn or error")
	fs.StringVar(&o.metrics, "metrics-listen", "", "serve Prometheus metrics on `addr` (e.g. 127.0.0.1:9478); off by default")
	fs.StringVar(&o.libvirtURI, "libvirt-uri", "", "libvirt `URI` for domain names (default xen:///system on Xen)")
	fs.BoolVar(&o.noLibvirt, "no-libvirt", false, "do not ask libvirt for domain names")
	fs.StringVar(&o.simVersion, "sim-version", "", "Xen `release` the simulator emulates, e.g. 4.12.4 or 4.6.0")
	fs.Uint64Var(&o.simMemory, "sim-memory-mib", 0, "simulated host memory in `MiB`")
	fs.Usage = func() {
		fmt.Fprintf(stderr, `Usage: xen-tmemd [options]

xen-tmemd watches Xen transcendent memory (tmem) from dom0: every interval it
reads physinfo, the domain list and tmem's LIST, computes rates and pressure,
and lets the policy flush, re-weight, freeze/thaw or switch compression. It
serves the control API used by tmemctl on a unix socket, optional Prometheus
metrics, and makes room for domains about to start (reservations).

Without Xen (--hypervisor=auto on a machine without /dev/xen/privcmd) it runs
the embedded simulated hypervisor, with the guests and workloads of the
[sim] section of the configuration.

Options:
`)
		fs.PrintDefaults()
		fmt.Fprintf(stderr, `
Signals: SIGHUP reloads the configuration file; SIGTERM and SIGINT drain and exit 0.

Examples:
  xen-tmemd --config /etc/xen-tmemd.toml
  xen-tmemd --hypervisor=sim --config docs/sim-demo.toml --socket /tmp/tmemd.sock
  xen-tmemd --dry-run --log-format=json
`)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("%w: unexpected argument %q (see --help)", errUsage, fs.Arg(0))
	}
	if o.interval != "" {
		// Checked here: in the config, a bad value would be reported as a
		// TOML error at a line of the file the flags are turned into.
		if _, err := time.ParseDuration(o.interval); err != nil {
			return nil, fmt.Errorf("%w: --interval %q: %v", errUsage, o.interval, err)
		}
	}
	fs.Visit(func(f *flag.Flag) { o.set[f.Name] = true })
	return o, nil
}

// config loads the configuration file and applies the flags on top.
func (o *options) loadConfig() (Config, error) {
	cfg, err := loadConfig(o.config)
	if err != nil {
		return cfg, err
	}
	var extra []string
	if o.set["hypervisor"] {
		extra = append(extra, fmt.Sprintf("hypervisor.mode=%q", o.hypervisor))
	}
	if o.set["socket"] {
		extra = append(extra, fmt.Sprintf("daemon.socket=%q", o.socket))
	}
	if o.set["pid-file"] {
		extra = append(extra, fmt.Sprintf("daemon.pid_file=%q", o.pidFile))
	}
	if o.set["dry-run"] {
		extra = append(extra, fmt.Sprintf("daemon.dry_run=%v", o.dryRun))
	}
	if o.set["interval"] {
		extra = append(extra, fmt.Sprintf("daemon.interval=%q", o.interval))
	}
	if o.set["log-format"] {
		extra = append(extra, fmt.Sprintf("daemon.log_format=%q", o.logFormat))
	}
	if o.set["log-level"] {
		extra = append(extra, fmt.Sprintf("daemon.log_level=%q", o.logLevel))
	}
	if o.set["metrics-listen"] {
		extra = append(extra, fmt.Sprintf("metrics.listen=%q", o.metrics))
	}
	if o.set["libvirt-uri"] {
		extra = append(extra, fmt.Sprintf("libvirt.uri=%q", o.libvirtURI))
	}
	if o.set["no-libvirt"] {
		extra = append(extra, fmt.Sprintf("libvirt.disable=%v", o.noLibvirt))
	}
	if o.set["sim-version"] {
		extra = append(extra, fmt.Sprintf("sim.version=%q", o.simVersion))
	}
	if o.set["sim-memory-mib"] {
		extra = append(extra, fmt.Sprintf("sim.memory_mib=%d", o.simMemory))
	}
	if len(extra) == 0 {
		return cfg, nil
	}
	return parseConfig([]byte(flagTOML(extra)), cfg)
}

// flagTOML turns "table.key=value" settings into TOML text.
func flagTOML(kv []string) string {
	tables := map[string][]string{}
	var order []string
	for _, s := range kv {
		dot := 0
		for dot < len(s) && s[dot] != '.' {
			dot++
		}
		t := s[:dot]
		if _, ok := tables[t]; !ok {
			order = append(order, t)
		}
		tables[t] = append(tables[t], s[dot+1:])
	}
	var out string
	for _, t := range order {
		out += "[" + t + "]\n"
		for _, l := range tables[t] {
			out += l + "\n"
		}
	}
	return out
}
