package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"go.uber.org/zap"

	"github.com/xentmem/xentmem/cowd/nbd"
	"github.com/xentmem/xentmem/cowd/qcow2"
)

// pluginQcow2 is the -p value that serves a qcow2 overlay.
const pluginQcow2 = "qcow2"

// runQcow2 is run for -p qcow2: COWFILE is a qcow2 image (made by
// "cowd-img create -f qcow2" or qemu-img create) over a raw or qcow2
// backing chain. -I empties the image first; -b, if given, must equal the
// cluster size. The serving steps are those of the dscow path.
func runQcow2(ctx context.Context, o *options, log *zap.Logger, ready func(error)) (err error) {
	pidWritten := false
	defer func() {
		if err != nil {
			ready(err)
		}
		if pidWritten {
			os.Remove(o.pidFile)
		}
	}()
	if o.init {
		if err := qcow2.MakeEmpty(ctx, o.cowFile); err != nil {
			return fmt.Errorf("initialise %s: %w", o.cowFile, err)
		}
		log.Info("emptied the qcow2 image", zap.String("image", o.cowFile))
	}
	dev, err := qcow2.Open(o.cowFile, &qcow2.Options{Sync: o.sync})
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
	if o.blockKB != 0 && o.blockKB<<10 != dev.ClusterSize() {
		return fmt.Errorf("cowd: block size %d KiB requested but %s has %d KiB clusters",
			o.blockKB, o.cowFile, dev.ClusterSize()>>10)
	}
	backing := strings.Join(dev.Backing(), " over ")
	if backing == "" {
		backing = "nothing"
	}
	srv, err := nbd.NewServer(&nbd.Config{
		Exports: []nbd.Export{{
			Name:        o.name,
			Description: "cowd qcow2 " + filepath.Base(o.cowFile) + " over " + backing,
			Device:      dev,
			Size:        dev.Size(),
			MultiConn:   true, // one Device and one flush path for all connections
			BlockSize:   nbd.BlockSizes{Min: 1, Preferred: uint32(min(max(dev.SubclusterSize(), 4096), 1<<20)), Max: 32 << 20},
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
	detach, err := attachKernel(ctx, o, srv, log)
	if err != nil {
		l.Close()
		return err
	}
	defer func() { err = errors.Join(err, detach()) }()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go reloadQcow2OnHUP(ctx, hup, dev, log)

	log.Info("serving", zap.String("export", o.name), zap.String("listen", o.listen),
		zap.String("image", o.cowFile), zap.String("format", "qcow2"), zap.String("backing", backing),
		zap.Int64("size", dev.Size()), zap.Int("cluster_size", dev.ClusterSize()), zap.Bool("sync", o.sync))
	ready(nil)
	if err := srv.Serve(ctx, l); err != nil {
		return err
	}
	log.Info("stopping: requests finished")
	return nil
}

func reloadQcow2OnHUP(ctx context.Context, hup <-chan os.Signal, dev *qcow2.Device, log *zap.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			if err := dev.Reload(); err != nil {
				log.Error("reload failed; keeping the tables in memory", zap.Error(err))
				continue
			}
			log.Info("tables reloaded from disk")
		}
	}
}
