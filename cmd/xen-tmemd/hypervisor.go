package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"go.uber.org/zap"

	"github.com/xentmem/xentmem/hypercall"
	"github.com/xentmem/xentmem/hypercall/xensim"
	"github.com/xentmem/xentmem/internal/control"
	"github.com/xentmem/xentmem/xenctl"
)

// hypervisor is what the daemon talks to: the real privcmd device or the
// embedded simulator, with the simulator's guests and workloads.
type hypervisor struct {
	caller   hypercall.Caller
	mode     string                            // "xen" or "sim"
	simNames func() map[uint16]simGuestInfo    // sim mode only
	start    func(ctx context.Context, b *bus) // starts the simulated guests; nil on Xen
	close    func() error
}

func (h *hypervisor) Close() error {
	if h.close != nil {
		return h.close()
	}
	return nil
}

// openHypervisor picks the hypervisor: --hypervisor=xen opens privcmd and
// fails if it cannot; sim boots the simulator; auto uses Xen when
// /dev/xen/privcmd exists and otherwise the simulator, and says so loudly.
func openHypervisor(ctx context.Context, cfg Config, log *zap.Logger) (*hypervisor, error) {
	mode := cfg.Hypervisor.Mode
	if mode == "auto" {
		path := cfg.Hypervisor.Privcmd
		if path == "" {
			path = hypercall.DefaultPrivcmdPath
		}
		if _, err := os.Stat(path); err == nil {
			mode = "xen"
		} else {
			mode = "sim"
			log.Warn("NO XEN HERE: " + path + " does not exist, so xen-tmemd runs the EMBEDDED SIMULATED HYPERVISOR. " +
				"Nothing on this machine's memory is touched. Use --hypervisor=xen to insist on real Xen.")
		}
	}
	if mode == "xen" {
		conn, err := hypercall.Open(&hypercall.Config{PrivcmdPath: cfg.Hypervisor.Privcmd})
		if err != nil {
			return nil, xenctl.Diagnose(xenctl.HostPaths{}, err)
		}
		return &hypervisor{caller: conn, mode: "xen", close: conn.Close}, nil
	}
	return openSim(cfg.Sim, log)
}

// openSim boots the simulator with dom0 only; start brings up the guests.
func openSim(sc SimConfig, log *zap.Logger) (*hypervisor, error) {
	sim, err := xensim.New(&xensim.Config{
		Version:       sc.Version,
		TotalPages:    sc.MemoryMiB * 256,
		Dom0MemoryKiB: sc.Dom0MiB * 1024,
		TmemCompress:  sc.Compress,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: simulator: %v", errConfig, err)
	}
	g := newSimGuests(sim, sc, log.Named("sim"))
	log.Info("simulated hypervisor", zap.String("xen", sim.Version()), zap.Uint64("memory_mib", sc.MemoryMiB),
		zap.Int("guests", len(sc.Guests)))
	return &hypervisor{
		caller:   sim,
		mode:     "sim",
		simNames: g.names,
		start: func(ctx context.Context, b *bus) {
			g.run(ctx, func(kind, dom, msg string) {
				b.publish(control.Event{Kind: kind, Domain: dom, Message: msg})
			})
		},
		close: func() error { return errors.Join(g.close()) },
	}, nil
}
