package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"

	"go.uber.org/zap"

	"github.com/xentmem/xentmem/cowd"
	"github.com/xentmem/xentmem/cowd/nbd"
)

// run serves the image until ctx ends (SIGTERM, SIGINT), then finishes
// in-flight requests, makes the metadata durable and removes the pid file.
// ready is told once the socket accepts connections, or why it never will.
func run(ctx context.Context, o *options, log *zap.Logger, ready func(error)) (err error) {
	if o.plugin == pluginQcow2 {
		return runQcow2(ctx, o, log, ready) // plugin_qcow2.go
	}
	pidWritten := false
	defer func() {
		if err != nil {
			ready(err)
		}
		if pidWritten { // last: a vanished pid file means cowd is done
			os.Remove(o.pidFile)
		}
	}()
	if o.init {
		h, err := cowd.Init(o.cowFile, &cowd.InitOptions{BlockSize: o.blockKB << 10})
		if err != nil {
			return fmt.Errorf("initialise %s: %w", o.cowFile, err)
		}
		log.Info("initialised the CoW space", zap.String("image", o.cowFile),
			zap.String("base", h.Base.Path), zap.Uint32("block_size", h.BlockSize))
	}
	opts := &cowd.Options{Sync: o.sync}
	if !o.init {
		opts.BlockSize = o.blockKB << 10
	}
	dev, err := cowd.Open(o.cowFile, opts)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := dev.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("close %s: %w", o.cowFile, cerr))
		} else {
			log.Info("metadata durable, image closed cleanly")
		}
	}()
	for _, w := range dev.Warnings() {
		log.Warn(w)
	}
	h := dev.Header()
	srv, err := nbd.NewServer(&nbd.Config{
		Exports: []nbd.Export{{
			Name:        o.name,
			Description: "cowd " + filepath.Base(o.cowFile) + " over " + h.Base.Path,
			Device:      dev,
			Size:        dev.Size(),
			MultiConn:   true, // one Device and one flush path for all connections
			BlockSize:   nbd.BlockSizes{Min: 1, Preferred: min(h.BlockSize, 1<<20), Max: 32 << 20},
		}},
		Logger: log.Named("nbd"),
	})
	if err != nil {
		return err
	}
	l, err := nbd.Listen(o.listen)
	if err != nil {
		return err
	}
	if o.pidFile != "" {
		if err := writePidFile(o.pidFile); err != nil {
			l.Close()
			return err
		}
		pidWritten = true
	}
	detach, err := attachKernel(ctx, o, srv, log) // --nbd-device; detached before the image closes
	if err != nil {
		l.Close()
		return err
	}
	defer func() { err = errors.Join(err, detach()) }()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go reloadOnHUP(ctx, hup, dev, log)

	log.Info("serving", zap.String("export", o.name), zap.String("listen", o.listen),
		zap.String("image", o.cowFile), zap.String("base", h.Base.Path), zap.Int64("size", dev.Size()),
		zap.Uint32("block_size", h.BlockSize), zap.Bool("sync", o.sync))
	ready(nil)
	if err := srv.Serve(ctx, l); err != nil {
		return err
	}
	log.Info("stopping: requests finished")
	return nil
}

func reloadOnHUP(ctx context.Context, hup <-chan os.Signal, dev *cowd.Device, log *zap.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			st, err := dev.Reload()
			if err != nil {
				log.Error("reload failed; keeping the mappings in memory", zap.Error(err))
				continue
			}
			lvl := log.Info
			if st.Changed != 0 {
				lvl = log.Warn
			}
			lvl("mappings reloaded from disk", zap.Int64("mapped", st.Mapped), zap.Int64("zero", st.Zero),
				zap.Int64("changed", st.Changed))
		}
	}
}

// writePidFile writes the pid atomically (temporary file, then rename).
func writePidFile(path string) error {
	tmp := path + ".tmp"
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("pid file: %w", err)
	}
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return fmt.Errorf("pid file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("pid file: %w", err)
	}
	return nil
}
