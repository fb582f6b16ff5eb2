package main

import (
	"context"
	"runtime"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/xentmem/xentmem/cowd/nbd"
)

// detachTimeout bounds the flush and disconnect of the kernel device at
// exit; after it cowd closes its ends of the connections anyway.
const detachTimeout = 30 * time.Second

// kernelConnections is how many sockets the kernel nbd client gets: one
// per CPU, at most 4. The kernel spreads its hardware queues over them;
// cowd's export is MultiConn, so any number is safe.
func kernelConnections() int { return max(1, min(runtime.NumCPU(), 4)) }

// attachKernel attaches the export to the kernel device o.nbdDevice
// (--nbd-device), if given. The returned detach flushes and disconnects
// the device and waits for the kernel to let go; run calls it after the
// socket listener stopped and before the image is closed, so that nothing
// the kernel wrote is lost. Without --nbd-device detach does nothing.
func attachKernel(ctx context.Context, o *options, srv *nbd.Server, log *zap.Logger) (detach func() error, err error) {
	if o.nbdDevice == "" {
		return func() error { return nil }, nil
	}
	a, err := srv.Attach(ctx, &nbd.AttachConfig{
		Device:      o.nbdDevice,
		Export:      o.name,
		Connections: kernelConnections(),
	})
	if err != nil {
		return nil, err
	}
	log = log.With(zap.String("device", a.Device()))
	log.Info("attached to the kernel nbd driver", zap.Stringer("method", a.Method()),
		zap.Int("connections", a.Connections()))
	var detaching atomic.Bool
	go func() {
		<-a.Done()
		if !detaching.Load() {
			log.Error("the kernel disconnected the device; the export is still served on the socket")
		}
	}()
	return func() error {
		detaching.Store(true)
		dctx, cancel := context.WithTimeout(context.Background(), detachTimeout)
		defer cancel()
		start := time.Now()
		if err := a.Detach(dctx); err != nil {
			return err
		}
		log.Info("detached from the kernel nbd driver", zap.Duration("took", time.Since(start)))
		return nil
	}, nil
}
