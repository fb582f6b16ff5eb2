package main

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/xentmem/xentmem/hypercall"
	"github.com/xentmem/xentmem/hypercall/xensim"
	"github.com/xentmem/xentmem/internal/control"
	"github.com/xentmem/xentmem/xenctl"
)

// The tests of this package that need a hypervisor build the daemon in
// process over the real simulator (hypercall/xensim) and the real xenctl
// client: nothing between the daemon and the simulated Xen is faked. The
// simulated guests are the daemon's own (simguests.go), but their
// workloads are driven synchronously by the test (simHarness.drive), so
// that tmem's state only changes when a test says so.

// simHarnessConfig describes a harness; zero values mean defaults.
type simHarnessConfig struct {
	version   string           // Xen release, default 4.12.4
	tmem      xensim.TmemMode  // default enabled
	memoryMiB uint64           // host memory, default 1024
	dom0MiB   uint64           // default 256
	guests    []SimGuest       // default harnessGuests
	noGuests  bool             // start no guest at all
	now       func() time.Time // daemon clock, default time.Now
	simClock  func() time.Time // simulator clock, default time.Now
	dryRun    bool
	interval  time.Duration // default 20ms
	// wrap, when set, puts a test Caller between the daemon's xenctl
	// client and the simulator (the guests keep talking to the simulator).
	wrap func(hypercall.Caller) hypercall.Caller
	// namer, when set, wraps the daemon's namer.
	namer func(namer) namer
}

// harnessGuests are the default guests: a cleancache guest whose working
// set overflows its page cache into ephemeral tmem, and a frontswap guest
// that swaps into a persistent pool.
var harnessGuests = []SimGuest{
	{Name: "web1", MemoryMiB: 64, Workload: "zipf", WorkingMiB: 16, CacheMiB: 2, Skew: 0.8, Priority: 1},
	{Name: "swap1", MemoryMiB: 64, Workload: "frontswap", WorkingMiB: 4, CacheMiB: 1, Priority: 2},
}

// simHarness is a daemon over a simulated Xen with running guests.
type simHarness struct {
	sim    *xensim.Sim
	caller hypercall.Caller // what the daemon's xenctl client calls
	xen    *xenctl.Client
	guests *simGuests
	byName map[string]*simGuest
	d      *daemon
	cfg    Config
	logs   *observer.ObservedLogs
}

// newSimHarness boots the simulator, starts the guests (their workloads
// idle until drive) and builds the daemon; nothing ticks yet.
func newSimHarness(t testing.TB, hc simHarnessConfig) *simHarness {
	t.Helper()
	cfg := defaultConfig()
	cfg.Sim.Version = "4.12.4"
	if hc.version != "" {
		cfg.Sim.Version = hc.version
	}
	cfg.Sim.MemoryMiB, cfg.Sim.Dom0MiB = 1024, 256
	cfg.Sim.Guests = harnessGuests
	if hc.guests != nil {
		cfg.Sim.Guests = hc.guests
	}
	if hc.noGuests {
		cfg.Sim.Guests = nil
	}
	cfg.Daemon.DryRun = hc.dryRun
	cfg.Daemon.Interval.Duration = 20 * time.Millisecond
	if hc.interval != 0 {
		cfg.Daemon.Interval.Duration = hc.interval
	}
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	// Smaller hosts than the configuration allows keep the tests that
	// fill tmem quick (under -race the simulator runs ten times slower).
	if hc.memoryMiB != 0 {
		cfg.Sim.MemoryMiB = hc.memoryMiB
	}
	if hc.dom0MiB != 0 {
		cfg.Sim.Dom0MiB = hc.dom0MiB
	}
	simClock := hc.simClock
	if simClock == nil {
		simClock = time.Now
	}
	sim, err := xensim.New(&xensim.Config{
		Version:       cfg.Sim.Version,
		Tmem:          hc.tmem,
		TotalPages:    cfg.Sim.MemoryMiB * 256,
		Dom0MemoryKiB: cfg.Sim.Dom0MiB * 1024,
		// Restoring persistent pages charges tmem's metadata pages to the
		// calling domain, dom0 (Xen's tmem_persistent_pool_page_get), which
		// needs room below its maximum, as with dom0_mem=X,max:Y.
		Dom0MaxMemoryKiB: (cfg.Sim.Dom0MiB + 64) * 1024,
		Clock:            simClock,
	})
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zapcore.DebugLevel)
	log := zap.New(zapcore.NewTee(core, zaptest.NewLogger(t, zaptest.Level(zapcore.InfoLevel)).Core()))

	h := &simHarness{sim: sim, cfg: cfg, logs: logs, byName: map[string]*simGuest{}}
	var caller hypercall.Caller = sim
	if hc.wrap != nil {
		caller = hc.wrap(sim)
	}
	h.caller = caller
	if h.xen, err = xenctl.New(caller, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.xen.Close() })

	h.guests = newSimGuests(sim, cfg.Sim, log.Named("sim"))
	for i, gc := range cfg.Sim.Guests {
		r, err := h.guests.start(i, gc)
		if err != nil {
			t.Fatalf("start guest %s: %v", gc.Name, err)
		}
		h.byName[gc.Name] = r
	}
	t.Cleanup(func() {
		for _, r := range h.byName {
			h.guests.mu.Lock()
			_, alive := h.guests.running[r.id]
			h.guests.mu.Unlock()
			if alive {
				h.guests.stop(r)
			}
		}
	})

	var nm namer = newNames(h.guests.names)
	if hc.namer != nil {
		nm = hc.namer(nm)
	}
	now := hc.now
	if now == nil {
		now = time.Now
	}
	if h.d, err = newDaemon(log.Named("policy"), h.xen, nm, &cfg, "sim", now); err != nil {
		t.Fatal(err)
	}
	return h
}

// drive runs n page accesses of guest name's workload.
func (h *simHarness) drive(t testing.TB, name string, n int) {
	t.Helper()
	r := h.byName[name]
	if r == nil || r.load == nil {
		t.Fatalf("guest %q has no workload", name)
	}
	if err := r.load.Run(n); err != nil {
		t.Fatalf("drive %s: %v", name, err)
	}
}

// squeeze starts a domain that takes all free host memory but leaveMiB,
// the cheap way to put the host under pressure: tmem keeps what it holds
// (Xen does not take memory back from tmem to build a domain).
func (h *simHarness) squeeze(t testing.TB, leaveMiB uint64) {
	t.Helper()
	pi, err := h.xen.Physinfo()
	if err != nil {
		t.Fatal(err)
	}
	if pi.FreeKiB() <= leaveMiB<<10 {
		t.Fatalf("only %d KiB free", pi.FreeKiB())
	}
	if _, err := h.sim.CreateDomain(xensim.DomainConfig{MemoryKiB: pi.FreeKiB() - leaveMiB<<10}); err != nil {
		t.Fatal(err)
	}
}

// id returns the domain id of guest name.
func (h *simHarness) id(name string) uint16 { return h.byName[name].id }

// list reads and parses LIST (long, all clients) straight from the
// simulator, bypassing the daemon.
func (h *simHarness) list(t testing.TB) *xenctl.List {
	t.Helper()
	text, err := h.xen.List(xenctl.AllClients, true)
	if err != nil {
		t.Fatal(err)
	}
	l, err := xenctl.ParseList(text)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// client serves the daemon's control API on one end of a net.Pipe and
// returns a client on the other, both closed when the test ends.
func (h *simHarness) client(t testing.TB) *control.Client {
	t.Helper()
	a, b := net.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	srv := &control.Server{Handle: h.d.handle, Subscribe: h.d.bus.subscribe}
	done := make(chan struct{})
	go func() { srv.ServeConn(ctx, b); close(done) }()
	t.Cleanup(func() { cancel(); a.Close(); <-done })
	return control.NewClient(a)
}

// run starts the daemon's loop until the test ends.
func (h *simHarness) run(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	ready := make(chan struct{})
	go func() {
		defer wg.Done()
		if err := h.d.run(ctx, func() { close(ready) }); err != nil {
			t.Errorf("daemon loop: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })
	<-ready
}

// ctlCall issues op and fails the test on error.
func ctlCall(t testing.TB, cl *control.Client, op string, args, result any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.Call(ctx, op, args, result); err != nil {
		t.Fatalf("%s %+v: %v", op, args, err)
	}
}

// ctlCode issues op and returns the error code of its reply ("" for
// success).
func ctlCode(t testing.TB, cl *control.Client, op string, args, result any) (string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := cl.Call(ctx, op, args, result)
	if err == nil {
		return "", ""
	}
	var ce *control.Error
	if !errors.As(err, &ce) {
		t.Fatalf("%s: not a control error: %v", op, err)
	}
	return ce.Code, ce.Message
}

// hptr returns a pointer to v, for the optional fields of control args.
func hptr[T any](v T) *T { return &v }
