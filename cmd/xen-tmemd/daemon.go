package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/xentmem/xentmem/internal/control"
	"github.com/xentmem/xentmem/pools"
	"github.com/xentmem/xentmem/xenctl"
)

// daemon is the monitor–policy–act loop and the state the control API and
// the metrics read. It is safe for concurrent use.
type daemon struct {
	log    *zap.Logger
	xen    *xenctl.Client
	names  namer
	bus    *bus
	now    func() time.Time
	mode   string // "xen" or "sim"
	dryRun bool

	kick chan struct{} // asks the loop for an early tick

	mu         sync.Mutex // guards everything below
	policy     *pools.Policy
	next       *pools.Policy // a reloaded policy waiting for reservations to be answered
	interval   time.Duration
	last       *observation
	lastErr    error
	errStreak  int
	ticks      uint64
	actions    map[[2]string]uint64 // executed (or would-be) actions by kind and reason class
	actErrors  uint64
	reserves   []*pools.Reservation
	applied    map[uint16][16]byte // domains whose metadata settings were applied, by handle
	tickWaiter []chan struct{}
}

func newDaemon(log *zap.Logger, xen *xenctl.Client, nm namer, cfg *Config, mode string, now func() time.Time) (*daemon, error) {
	pc, err := cfg.policyConfig()
	if err != nil {
		return nil, err
	}
	pol, err := pools.NewPolicy(pc)
	if err != nil {
		return nil, err
	}
	return &daemon{
		log: log, xen: xen, names: nm, bus: newBus(now), now: now, mode: mode,
		dryRun: cfg.Daemon.DryRun, kick: make(chan struct{}, 1), policy: pol,
		interval: cfg.Daemon.Interval.Duration, actions: map[[2]string]uint64{},
		applied: map[uint16][16]byte{},
	}, nil
}

// reconfigure applies a reloaded configuration (SIGHUP). The policy's
// learned state restarts (see swapPolicy).
func (d *daemon) reconfigure(cfg *Config) error {
	pc, err := cfg.policyConfig()
	if err != nil {
		return err
	}
	pol, err := pools.NewPolicy(pc)
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.next, d.interval, d.dryRun = pol, cfg.Daemon.Interval.Duration, cfg.Daemon.DryRun
	d.swapPolicy()
	return nil
}

// swapPolicy puts the reloaded policy in place, unless reservations are
// pending: they belong to the running policy, which answers them and thaws
// what it froze for them first. The new policy knows nothing of the old
// one's freezes and would never thaw them, so they are thawed here; it
// freezes again if the pressure is still there. d.mu held.
func (d *daemon) swapPolicy() {
	if d.next == nil || len(d.reserves) > 0 {
		return
	}
	old := d.policy
	d.policy, d.next = d.next, nil
	if old.Config().DryRun {
		return
	}
	var names map[uint16]string
	if d.last != nil {
		names = d.last.Names
	}
	for _, id := range old.Frozen() {
		d.execute(pools.Action{Kind: pools.ActionThaw, DomID: id, Name: domainName(names, id),
			Reason: "configuration reloaded: the new policy starts without the old one's freezes"})
	}
}

// run ticks until ctx is done. A failing tick backs off exponentially (up to
// 32 intervals) and is logged once per change of error.
func (d *daemon) run(ctx context.Context, ready func()) error {
	d.tick()
	if ready != nil {
		ready()
	}
	for {
		d.mu.Lock()
		wait := d.interval
		if d.errStreak > 0 {
			wait <<= min(d.errStreak, 5)
		}
		d.mu.Unlock()
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		case <-d.kick:
			t.Stop()
		}
		d.tick()
	}
}

// requestTick asks for an early tick and returns a channel closed after the
// next tick completes.
func (d *daemon) requestTick() <-chan struct{} {
	ch := make(chan struct{})
	d.mu.Lock()
	d.tickWaiter = append(d.tickWaiter, ch)
	d.mu.Unlock()
	select {
	case d.kick <- struct{}{}:
	default:
	}
	return ch
}

// tick observes, decides and acts once.
func (d *daemon) tick() {
	o, err := observe(d.xen, d.names, d.now)
	d.mu.Lock()
	defer func() {
		for _, ch := range d.tickWaiter {
			close(ch)
		}
		d.tickWaiter = nil
		d.mu.Unlock()
	}()
	d.ticks++
	if err != nil {
		if d.lastErr == nil || d.lastErr.Error() != err.Error() {
			d.log.Error("monitoring failed; backing off", zap.Error(err), zap.Int("streak", d.errStreak+1))
			d.bus.publish(control.Event{Kind: "error", Message: err.Error()})
		}
		d.lastErr = err
		d.errStreak++
		return
	}
	if d.lastErr != nil {
		d.log.Info("monitoring recovered", zap.Int("failed_ticks", d.errStreak))
		d.bus.publish(control.Event{Kind: "recovered", Message: "monitoring recovered"})
	}
	d.lastErr, d.errStreak = nil, 0
	d.last = o
	if o.List == nil {
		return
	}
	d.applySettings(o)
	for _, a := range d.policy.Step(o.Snapshot) {
		d.execute(a)
	}
	d.answerReservations()
	d.swapPolicy()
}

// applySettings applies per-domain weight and compression from metadata to
// each client once per domain instance. d.mu held.
func (d *daemon) applySettings(o *observation) {
	if d.names == nil {
		return
	}
	for _, c := range o.Snapshot.Clients {
		if h, ok := d.applied[c.DomID]; ok && h == c.Handle {
			continue
		}
		d.applied[c.DomID] = c.Handle
		st := d.names.settings(c.DomID)
		if st.Weight != nil && *st.Weight != c.Weight {
			d.execute(pools.Action{Kind: pools.ActionSetWeight, DomID: c.DomID, Name: c.Name, Weight: *st.Weight,
				Reason: "weight from the domain's metadata", DryRun: d.dryRun})
		}
		if st.Compress != nil && *st.Compress != c.Compress {
			d.execute(pools.Action{Kind: pools.ActionSetCompress, DomID: c.DomID, Name: c.Name, Compress: *st.Compress,
				Reason: "compression from the domain's metadata", DryRun: d.dryRun})
		}
	}
	for id := range d.applied {
		if !hasClient(o.Snapshot.Clients, id) {
			delete(d.applied, id)
		}
	}
}

func hasClient(cs []pools.Client, id uint16) bool {
	for i := range cs {
		if cs[i].DomID == id {
			return true
		}
	}
	return false
}

// execute carries out one action (or only reports it in dry-run mode),
// logs it and publishes an event. A domain that died in the meantime is
// reported, not fatal. d.mu held.
func (d *daemon) execute(a pools.Action) {
	fields := []zap.Field{zap.String("action", a.Kind.String()), zap.String("domain", a.Name),
		zap.Uint16("domid", a.DomID), zap.String("reason", a.Reason)}
	switch a.Kind {
	case pools.ActionFlush:
		fields = append(fields, zap.Uint64("kib", a.KiB))
	case pools.ActionSetWeight:
		fields = append(fields, zap.Uint32("weight", a.Weight))
	case pools.ActionSetCompress:
		fields = append(fields, zap.Bool("compress", a.Compress))
	}
	d.actions[[2]string{a.Kind.String(), reasonClass(a.Reason)}]++
	if a.DryRun {
		d.log.Info("would "+a.Kind.String()+" (dry run)", fields...)
		d.bus.publish(control.Event{Kind: "action", Domain: a.Name, Message: a.String()})
		return
	}
	var err error
	var freed uint64
	switch a.Kind {
	case pools.ActionFlush:
		kib := a.KiB
		if kib > 1<<32-4 {
			kib = 1<<32 - 4
		}
		freed, err = d.xen.Flush(xenctl.AllClients, uint32(kib))
		fields = append(fields, zap.Uint64("freed_kib", freed))
	case pools.ActionSetWeight:
		err = d.xen.SetWeight(a.DomID, a.Weight)
	case pools.ActionFreeze:
		err = d.xen.Freeze(a.DomID)
	case pools.ActionThaw:
		err = d.xen.Thaw(a.DomID)
	case pools.ActionSetCompress:
		err = d.xen.SetCompress(a.DomID, a.Compress)
	default:
		err = fmt.Errorf("unknown action %v", a.Kind)
	}
	if err != nil {
		d.actErrors++
		lvl := d.log.Warn
		if errors.Is(err, xenctl.ErrNoClient) || errors.Is(err, xenctl.ErrFailed) {
			lvl = d.log.Info // typically the domain died between snapshot and action
		}
		lvl("action failed", append(fields, zap.Error(err))...)
		d.bus.publish(control.Event{Kind: "action-failed", Domain: a.Name, Message: a.String() + ": " + err.Error()})
		return
	}
	d.log.Info(a.Kind.String(), fields...)
	d.bus.publish(control.Event{Kind: "action", Domain: a.Name, Message: a.String()})
}

// answerReservations publishes reservations that got their answer. d.mu held.
func (d *daemon) answerReservations() {
	keep := d.reserves[:0]
	for _, r := range d.reserves {
		if r.State() == pools.ReservePending {
			keep = append(keep, r)
			continue
		}
		d.log.Info("reservation answered", zap.String("reservation", r.String()))
		d.bus.publish(control.Event{Kind: "reserve", Message: r.String()})
	}
	d.reserves = keep
}

// reserve makes MiB free for a domain about to start: it registers a
// reservation with the policy, ticks early until it is answered, and
// returns its final state.
func (d *daemon) reserve(ctx context.Context, who string, mib uint64, timeout time.Duration) (*pools.Reservation, error) {
	d.mu.Lock()
	if d.last != nil && d.last.List == nil {
		// No tmem: free memory is all there is.
		free := d.last.Physinfo.FreeKiB()
		d.mu.Unlock()
		if free >= mib*1024 {
			return nil, nil
		}
		return nil, &control.Error{Code: control.CodeFailed, Message: fmt.Sprintf(
			"%d MiB free, %d MiB needed, and tmem holds nothing to flush (%s)", free/1024, mib, d.last.Tmem.Reason)}
	}
	now := d.now()
	r := d.policy.Reserve(now, who, mib*1024, now.Add(timeout))
	d.reserves = append(d.reserves, r)
	d.mu.Unlock()
	for {
		done := d.requestTick()
		select {
		case <-ctx.Done():
			return r, ctx.Err()
		case <-done:
		}
		d.mu.Lock()
		st := r.State()
		d.mu.Unlock()
		if st != pools.ReservePending {
			return r, nil
		}
		select {
		case <-ctx.Done():
			return r, ctx.Err()
		case <-time.After(d.interval / 4):
		}
	}
}

// snapshot returns the last observation (nil before the first success) and
// the last error.
func (d *daemon) snapshot() (*observation, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.last, d.lastErr
}

// actionCounts returns the action counters. d.mu held.
func (d *daemon) actionCounts() map[[2]string]uint64 { return d.actions }
