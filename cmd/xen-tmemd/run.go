package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/xentmem/xentmem/internal/control"
	"github.com/xentmem/xentmem/xenctl"
)

// run is the daemon's whole life: configure, start, serve until ctx is
// done, drain.
func run(ctx context.Context, args []string, stderr io.Writer) error {
	opts, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	cfg, err := opts.loadConfig()
	if err != nil {
		return err
	}
	level := zap.NewAtomicLevel()
	log, err := newLogger(cfg.Daemon, level, stderr)
	if err != nil {
		return err
	}
	defer log.Sync()
	return serve(ctx, opts, cfg, log, level)
}

func newLogger(dc DaemonConfig, level zap.AtomicLevel, w io.Writer) (*zap.Logger, error) {
	if err := level.UnmarshalText([]byte(dc.LogLevel)); err != nil {
		return nil, fmt.Errorf("%w: log level: %v", errConfig, err)
	}
	ec := zap.NewProductionEncoderConfig()
	ec.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	if dc.LogFormat == "json" {
		enc = zapcore.NewJSONEncoder(ec)
	} else {
		ec.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(ec)
	}
	return zap.New(zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(w)), level)), nil
}

func serve(ctx context.Context, opts *options, cfg Config, log *zap.Logger, level zap.AtomicLevel) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// SIGHUP is caught from the start: once the socket or the pid file
	// exists, someone may send it, and its default action kills.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	hv, err := openHypervisor(ctx, cfg, log.Named("hypervisor"))
	if err != nil {
		return err
	}
	defer hv.Close()
	xen, err := xenctl.New(hv.caller, nil)
	if err != nil {
		return xenctl.Diagnose(xenctl.HostPaths{}, err)
	}
	defer xen.Close()
	log.Info("hypervisor", zap.String("mode", hv.mode), zap.String("xen", xen.Version().String()),
		zap.String("tmem_abi", xen.Generation().String()), zap.Uint32("sysctl_interface", xen.SysctlInterfaceVersion()))

	names := newNames(hv.simNames)
	d, err := newDaemon(log.Named("policy"), xen, names, &cfg, hv.mode, time.Now)
	if err != nil {
		return err
	}
	cowdSup, err := newCowdSupervisor(cfg.Cowd, log.Named("cowd"), d.bus.publish)
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel() // an early return must stop the goroutines before wg.Wait
	if cowdSup != nil {
		wg.Add(1)
		go func() { defer wg.Done(); cowdSup.Run(ctx) }()
	}
	if lc, ok := libvirtWanted(cfg, hv.mode); ok {
		src := newLibvirtSource(lc, log.Named("libvirt"))
		names.lv = src
		wg.Add(2)
		go func() {
			defer wg.Done()
			if err := src.Run(ctx); err != nil && ctx.Err() == nil {
				log.Error("libvirt source stopped", zap.Error(err))
			}
		}()
		go func() {
			defer wg.Done()
			// Lifecycle events reach control-socket subscribers, and a
			// started domain gets a tick at once (its metadata settings).
			for ev := range src.Events() {
				d.bus.publish(control.Event{Time: ev.Time, Kind: "domain", Domain: ev.Name, Message: ev.Kind.String()})
				if ev.Kind == DomainStarted {
					d.requestTick()
				}
			}
		}()
	}
	if hv.start != nil {
		wg.Add(1)
		go func() { defer wg.Done(); hv.start(ctx, d.bus) }()
	}

	ln, err := control.Listen(cfg.Daemon.Socket)
	if err != nil {
		return fmt.Errorf("%w (is another xen-tmemd running? set --socket)", err)
	}
	srv := &control.Server{Handle: cowdSup.wrap(d.handle), Subscribe: d.bus.subscribe, Authorize: control.RootOnly(os.Geteuid()), Log: log.Named("control")}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := srv.Serve(ctx, ln); err != nil {
			log.Error("control socket", zap.Error(err))
		}
	}()
	log.Info("control socket", zap.String("path", cfg.Daemon.Socket))

	if cfg.Metrics.Listen != "" {
		stopMetrics, err := serveMetrics(ctx, cfg.Metrics.Listen, d, log.Named("metrics"))
		if err != nil {
			return err
		}
		defer stopMetrics()
	}

	pid := writePidFile(cfg.Daemon.PidFile, log)
	defer pid()

	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				reload(opts, d, level, log)
			}
		}
	}()

	n := newNotifier(log.Named("systemd"))
	wg.Add(1)
	go func() { defer wg.Done(); n.watchdog(ctx, d) }()
	err = d.run(ctx, func() {
		n.ready()
		log.Info("ready", zap.Duration("interval", cfg.Daemon.Interval.Duration), zap.Bool("dry_run", cfg.Daemon.DryRun))
	})
	n.stopping()
	log.Info("stopping")
	cancel()
	return err
}

// reload re-reads the configuration file (SIGHUP). A bad file is reported
// and the running configuration kept.
func reload(opts *options, d *daemon, level zap.AtomicLevel, log *zap.Logger) {
	cfg, err := opts.loadConfig()
	if err != nil {
		log.Error("reload failed; keeping the running configuration", zap.Error(err))
		return
	}
	if err := d.reconfigure(&cfg); err != nil {
		log.Error("reload failed; keeping the running configuration", zap.Error(err))
		return
	}
	if err := level.UnmarshalText([]byte(cfg.Daemon.LogLevel)); err != nil {
		log.Warn("log level", zap.Error(err))
	}
	log.Info("configuration reloaded", zap.String("file", opts.config))
}

// writePidFile writes the pid file and returns its remover. A failure (full
// disk, read-only /run) is reported, not fatal.
func writePidFile(path string, log *zap.Logger) func() {
	if path == "" {
		return func() {}
	}
	tmp := path + ".tmp"
	err := os.WriteFile(tmp, []byte(fmt.Sprintf("%d\n", os.Getpid())), 0o644)
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		log.Error("cannot write the pid file; continuing without it", zap.String("path", path), zap.Error(err))
		return func() {}
	}
	return func() {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			log.Warn("remove pid file", zap.Error(err))
		}
	}
}
