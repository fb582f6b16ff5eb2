package main

import (
	"context"
	"time"

	sddaemon "github.com/coreos/go-systemd/v22/daemon"
	"go.uber.org/zap"
)

// notifier speaks systemd's notify protocol (Type=notify, WatchdogSec=)
// when NOTIFY_SOCKET is set, and does nothing otherwise.
type notifier struct{ log *zap.Logger }

func newNotifier(log *zap.Logger) *notifier { return &notifier{log: log} }

func (n *notifier) send(state string) {
	if ok, err := sddaemon.SdNotify(false, state); err != nil {
		n.log.Warn("sd_notify", zap.String("state", state), zap.Error(err))
	} else if ok {
		n.log.Debug("sd_notify", zap.String("state", state))
	}
}

func (n *notifier) ready()    { n.send(sddaemon.SdNotifyReady) }
func (n *notifier) stopping() { n.send(sddaemon.SdNotifyStopping) }

// watchdog pings systemd at half the watchdog interval, but only while the
// monitoring loop makes progress: a wedged loop gets the daemon restarted.
func (n *notifier) watchdog(ctx context.Context, d *daemon) {
	every, err := sddaemon.SdWatchdogEnabled(false)
	if err != nil || every == 0 {
		return
	}
	t := time.NewTicker(every / 2)
	defer t.Stop()
	var last uint64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			d.mu.Lock()
			ticks := d.ticks
			d.mu.Unlock()
			if ticks != last {
				last = ticks
				n.send(sddaemon.SdNotifyWatchdog)
			}
		}
	}
}
