package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/xentmem/xentmem/hypercall/xensim"
	"github.com/xentmem/xentmem/hypercall/xensim/workload"
)

// simGuests runs the simulated guests of [sim]: it creates each domain at
// its start time, drives its workload at its rate, and destroys it at its
// stop time. It is safe for concurrent use.
type simGuests struct {
	sim *xensim.Sim
	cfg SimConfig
	log *zap.Logger

	mu      sync.Mutex // guards running, info
	running map[uint16]*simGuest
	info    map[uint16]simGuestInfo // what names returns; rebuilt after a change of running
}

// simGuest is one running guest.
type simGuest struct {
	cfg  SimGuest
	id   uint16
	load guestLoad
}

// guestLoad is a workload driver: cleancache or frontswap.
type guestLoad interface {
	Run(n int) error
	stats() (gets, hits, avoided uint64)
	stop() error
}

type cleancacheLoad struct{ *workload.Cleancache }

func (c cleancacheLoad) stats() (uint64, uint64, uint64) {
	s := c.Stats()
	return s.Gets, s.GetHits, s.DiskReadsAvoided()
}
func (c cleancacheLoad) stop() error { return c.Unmount() }

type frontswapLoad struct{ *workload.Frontswap }

func (f frontswapLoad) stats() (uint64, uint64, uint64) {
	s := f.Stats()
	return s.SwapIns, s.LoadHits, s.DiskReadsAvoided()
}
func (f frontswapLoad) stop() error { return f.Swapoff() }

func newSimGuests(sim *xensim.Sim, cfg SimConfig, log *zap.Logger) *simGuests {
	return &simGuests{sim: sim, cfg: cfg, log: log, running: map[uint16]*simGuest{}}
}

// names implements the simulator part of the daemon's namer. The map is
// shared, and must not be modified: the daemon asks once per client and
// tick, so it is built only when guests start or stop.
func (g *simGuests) names() map[uint16]simGuestInfo {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.info != nil {
		return g.info
	}
	out := make(map[uint16]simGuestInfo, len(g.running))
	for id, r := range g.running {
		info := simGuestInfo{Name: r.cfg.Name}
		if r.cfg.Weight != 0 {
			w := r.cfg.Weight
			info.Settings.Weight = &w
		}
		p := r.cfg.Priority
		info.Settings.Priority = &p
		out[id] = info
	}
	g.info = out
	return out
}

// run starts every guest and returns when ctx is done and all guests have
// stopped. notify reports lifecycle events.
func (g *simGuests) run(ctx context.Context, notify func(kind, dom, msg string)) {
	var wg sync.WaitGroup
	for i, gc := range g.cfg.Guests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g.guest(ctx, i, gc, notify)
		}()
	}
	wg.Wait()
}

// guest runs one guest's life.
func (g *simGuests) guest(ctx context.Context, i int, gc SimGuest, notify func(kind, dom, msg string)) {
	if !sleepCtx(ctx, gc.StartAfter.Duration) {
		return
	}
	r, err := g.start(i, gc)
	if err != nil {
		g.log.Error("simulated guest did not start", zap.String("domain", gc.Name), zap.Error(err))
		notify("domain", gc.Name, "failed to start: "+err.Error())
		return
	}
	g.log.Info("simulated guest started", zap.String("domain", gc.Name), zap.Uint16("domid", r.id),
		zap.String("workload", gc.Workload), zap.Uint64("memory_mib", gc.MemoryMiB))
	notify("domain", gc.Name, fmt.Sprintf("started as domain %d", r.id))
	defer func() {
		g.stop(r)
		notify("domain", gc.Name, "destroyed")
	}()
	var deadline <-chan time.Time
	if gc.StopAfter.Duration > 0 {
		t := time.NewTimer(gc.StopAfter.Duration - gc.StartAfter.Duration)
		defer t.Stop()
		deadline = t.C
	}
	rate := gc.Rate * g.cfg.Speed
	if r.load == nil || rate <= 0 {
		select { // an idle guest needs no timer
		case <-ctx.Done():
		case <-deadline:
		}
		return
	}
	slice := wakeEvery(rate)
	tick := time.NewTicker(slice)
	defer tick.Stop()
	carry := 0.0
	for {
		select {
		case <-ctx.Done():
			return
		case <-deadline:
			return
		case <-tick.C:
		}
		if r.load == nil {
			continue
		}
		carry += rate * slice.Seconds()
		n := int(carry)
		carry -= float64(n)
		if n == 0 {
			continue
		}
		if err := r.load.Run(n); err != nil {
			g.log.Error("simulated workload failed; guest idles", zap.String("domain", gc.Name), zap.Error(err))
			r.load = nil
		}
	}
}

// wakeEvery is how often a guest making rate accesses a second wakes up:
// 20 times a second, or once per access (at least once a second) at low
// rates, so that hundreds of quiet guests stay cheap.
func wakeEvery(rate float64) time.Duration {
	if rate >= 20 {
		return 50 * time.Millisecond
	}
	return min(time.Duration(float64(time.Second)/rate), time.Second)
}

func (g *simGuests) start(i int, gc SimGuest) (*simGuest, error) {
	dc := xensim.DomainConfig{MemoryKiB: gc.MemoryMiB * 1024}
	if gc.Workload == "frontswap" {
		// Xen charges persistent (frontswap) pages to the domain and
		// refuses them at max_pages: leave room for the swapped-out
		// working set, as a guest whose maxmem is above its memory has.
		dc.MaxMemoryKiB = (gc.MemoryMiB + max(gc.WorkingMiB, 1)) * 1024
	}
	id, err := g.sim.CreateDomain(dc)
	if err != nil {
		return nil, err
	}
	load, err := newLoad(g.sim, id, gc, g.cfg.Seed+uint64(i)*7919)
	if err != nil {
		g.sim.DestroyDomain(id)
		return nil, err
	}
	r := &simGuest{cfg: gc, id: id, load: load}
	g.mu.Lock()
	g.running[id] = r
	g.info = nil
	g.mu.Unlock()
	return r, nil
}

func (g *simGuests) stop(r *simGuest) {
	if r.load != nil {
		if err := r.load.stop(); err != nil {
			g.log.Warn("simulated workload stop", zap.String("domain", r.cfg.Name), zap.Error(err))
		}
	}
	if err := g.sim.DestroyDomain(r.id); err != nil {
		g.log.Warn("destroy simulated domain", zap.String("domain", r.cfg.Name), zap.Error(err))
	}
	g.mu.Lock()
	delete(g.running, r.id)
	g.info = nil
	g.mu.Unlock()
	g.log.Info("simulated guest destroyed", zap.String("domain", r.cfg.Name), zap.Uint16("domid", r.id))
}

// close stops nothing by itself (run's context does); it reports guests
// still running, which would be a bug.
func (g *simGuests) close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.running) > 0 {
		return errors.New("simulated guests still running at close")
	}
	return nil
}

// newLoad builds the workload driver of a guest.
func newLoad(sim *xensim.Sim, id uint16, gc SimGuest, seed uint64) (guestLoad, error) {
	pages := int(max(gc.WorkingMiB, 1) * 256)
	cache := int(max(gc.CacheMiB, 1) * 256)
	if maxCache := int(gc.MemoryMiB*256) / 2; cache > maxCache {
		cache = maxCache
	}
	const files = 64
	per := max(pages/files, 1)
	switch gc.Workload {
	case "idle":
		return nil, nil
	case "frontswap":
		f, err := workload.NewFrontswap(sim, id, &workload.FrontswapConfig{
			WorkingSet: pages, RAMFrames: cache, Pattern: workload.Zipf(1, pages, skewOr(gc.Skew, 1.2), seed), Seed: seed})
		if err != nil {
			return nil, err
		}
		return frontswapLoad{f}, nil
	}
	var pat workload.Pattern
	switch gc.Workload {
	case "uniform":
		pat = workload.Uniform(files, per, seed)
	case "scan":
		pat = workload.Sequential(files, per)
	default:
		pat = workload.Zipf(files, per, skewOr(gc.Skew, 1.1), seed)
	}
	c, err := workload.NewCleancache(sim, id, &workload.CleancacheConfig{
		Files: files, Pages: per, CacheFrames: cache, Pattern: pat, Seed: seed})
	if err != nil {
		return nil, err
	}
	return cleancacheLoad{c}, nil
}

func skewOr(s, d float64) float64 {
	if s > 0 {
		return s
	}
	return d
}

// sleepCtx waits d or until ctx is done; it reports whether d elapsed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
