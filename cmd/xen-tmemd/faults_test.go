package main

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/zap/zapcore"

	"github.com/xentmem/xentmem/hypercall"
	"github.com/xentmem/xentmem/internal/control"
	"github.com/xentmem/xentmem/pools"
	"github.com/xentmem/xentmem/xenctl"
)

// faultCaller is the simulator with a fault injected: while armed, every
// hypercall op fails with errno before reaching Xen.
type faultCaller struct {
	hypercall.Caller
	op hypercall.Op

	mu     sync.Mutex // guards below
	left   int        // calls still to fail; < 0: until disarmed
	errno  hypercall.Errno
	failed int
}

// arm makes the next n calls of the op fail with errno (n < 0: all of
// them until arm(0, …)).
func (f *faultCaller) arm(n int, errno hypercall.Errno) {
	f.mu.Lock()
	f.left, f.errno = n, errno
	f.mu.Unlock()
}

func (f *faultCaller) failures() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failed
}

func (f *faultCaller) Hypercall(op hypercall.Op, args hypercall.Args) (uint64, error) {
	f.mu.Lock()
	if op == f.op && f.left != 0 {
		if f.left > 0 {
			f.left--
		}
		f.failed++
		e := f.errno
		f.mu.Unlock()
		return 0, e
	}
	f.mu.Unlock()
	return f.Caller.Hypercall(op, args)
}

const (
	msgMonitorFailed    = "monitoring failed; backing off"
	msgMonitorRecovered = "monitoring recovered"
	msgActionFailed     = "action failed"
)

// TestMonitoringFault: sysctl fails for a while in the middle of a run.
// Each tick fails, the error is logged once per change of error, the
// metrics say so, and monitoring recovers when Xen answers again.
func TestMonitoringFault(t *testing.T) {
	fc := &faultCaller{op: hypercall.OpSysctl}
	h := busyHarness(t, simHarnessConfig{wrap: func(c hypercall.Caller) hypercall.Caller { fc.Caller = c; return fc }})
	events, stop := h.d.bus.subscribe()
	defer stop()
	count := func(msg string) int { return h.logs.FilterMessage(msg).Len() }

	steps := []struct {
		name          string
		fail          int
		errno         hypercall.Errno
		ticks         int
		wantStreak    int
		wantFailedLog int // cumulative
		wantRecovered int // cumulative
		wantEvents    []string
	}{
		{"healthy", 0, 0, 2, 0, 0, 0, nil},
		{"EIO for 5 ticks", 5, 5, 5, 5, 1, 0, []string{"error"}},
		{"the error changes to EFAULT", 2, hypercall.EFAULT, 2, 7, 2, 0, []string{"error"}},
		{"Xen answers again", 0, 0, 1, 0, 2, 1, []string{"recovered"}},
		{"and stays healthy", 0, 0, 3, 0, 2, 1, nil},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			fc.arm(s.fail, s.errno)
			for range s.ticks {
				h.d.tick()
			}
			o, err := h.d.snapshot()
			h.d.mu.Lock()
			streak := h.d.errStreak
			h.d.mu.Unlock()
			if streak != s.wantStreak || (s.wantStreak == 0) != (err == nil) || o == nil {
				t.Errorf("streak %d, last error %v, observation %v; want streak %d", streak, err, o != nil, s.wantStreak)
			}
			if err != nil && !strings.Contains(err.Error(), s.errno.Name()) {
				t.Errorf("last error %v does not name %s", err, s.errno.Name())
			}
			if n := count(msgMonitorFailed); n != s.wantFailedLog {
				t.Errorf("%q logged %d times, want %d", msgMonitorFailed, n, s.wantFailedLog)
			}
			if n := count(msgMonitorRecovered); n != s.wantRecovered {
				t.Errorf("%q logged %d times, want %d", msgMonitorRecovered, n, s.wantRecovered)
			}
			var kinds []string
			for len(events) > 0 {
				ev := <-events
				if ev.Kind == "error" || ev.Kind == "recovered" {
					kinds = append(kinds, ev.Kind)
				}
			}
			if diff := cmp.Diff(s.wantEvents, kinds); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
	for _, e := range h.logs.FilterMessage(msgMonitorFailed).All() {
		if e.Level != zapcore.ErrorLevel {
			t.Errorf("%q at level %v", e.Message, e.Level)
		}
	}
}

// TestMonitoringBackoff: with sysctl failing, the loop waits 2, 4, 8 …
// (at most 32) intervals between ticks, and recovers on its own once Xen
// answers.
func TestMonitoringBackoff(t *testing.T) {
	const interval = 20 * time.Millisecond
	fc := &faultCaller{op: hypercall.OpSysctl}
	h := newSimHarness(t, simHarnessConfig{interval: interval, wrap: func(c hypercall.Caller) hypercall.Caller { fc.Caller = c; return fc }})
	fc.arm(-1, 5)
	h.run(t)
	time.Sleep(30 * interval)
	// Without back-off that would be ~30 ticks; with it, ticks at 0, 2, 6,
	// 14, 30 intervals.
	if n := fc.failures(); n < 3 || n > 7 {
		t.Errorf("%d failed ticks in %v with interval %v, want about 5 (exponential back-off)", n, 30*interval, interval)
	}
	if n := h.logs.FilterMessage(msgMonitorFailed).Len(); n != 1 {
		t.Errorf("%q logged %d times", msgMonitorFailed, n)
	}
	fc.arm(0, 0)
	deadline := time.Now().Add(64*interval + 2*time.Second)
	for {
		if _, err := h.d.snapshot(); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("monitoring did not recover within %v", 64*interval)
		}
		time.Sleep(interval)
	}
	if n := h.logs.FilterMessage(msgMonitorRecovered).Len(); n != 1 {
		t.Errorf("%q logged %d times", msgMonitorRecovered, n)
	}
}

// dyingNamer kills a domain the second time the daemon asks for its
// settings in a tick: the first ask is the snapshot's (priority), the
// second applySettings', right before the daemon acts on the metadata. So
// the domain dies between the snapshot and the action.
type dyingNamer struct {
	namer
	victim uint16
	kill   func()
	calls  int
}

func (n *dyingNamer) settings(id uint16) domainSettings {
	st := n.namer.settings(id)
	if id == n.victim {
		n.calls++
		if n.calls == 2 {
			n.kill()
		}
		w := uint32(9) // metadata asks for a weight the client does not have
		st.Weight = &w
	}
	return st
}

// TestDomainDiesBeforeAction: a domain destroyed between the snapshot and
// the action is reported (logged at info, counted, an action-failed event),
// not fatal, and forgotten at the next tick.
func TestDomainDiesBeforeAction(t *testing.T) {
	var h *simHarness
	dn := &dyingNamer{}
	h = newSimHarness(t, simHarnessConfig{namer: func(n namer) namer { dn.namer = n; return dn }})
	dn.victim = h.id("web1")
	dn.kill = func() { h.guests.stop(h.byName["web1"]) }
	h.drive(t, "web1", 2000)
	events, stop := h.d.bus.subscribe()
	defer stop()

	h.d.tick()
	if dn.calls < 2 {
		t.Fatalf("settings asked %d times for the victim", dn.calls)
	}
	if h.list(t).Client(dn.victim) != nil {
		t.Fatalf("victim still has a tmem client")
	}
	h.d.mu.Lock()
	actErrors := h.d.actErrors
	h.d.mu.Unlock()
	if actErrors != 1 {
		t.Errorf("action errors %d, want 1", actErrors)
	}
	failed := h.logs.FilterMessage(msgActionFailed).All()
	if len(failed) != 1 || failed[0].Level != zapcore.InfoLevel || failed[0].ContextMap()["domain"] != "web1" {
		t.Errorf("logged %+v, want one info %q for web1", failed, msgActionFailed)
	}
	found := false
	for len(events) > 0 {
		if ev := <-events; ev.Kind == "action-failed" && ev.Domain == "web1" {
			found = true
		}
	}
	if !found {
		t.Errorf("no action-failed event")
	}
	h.d.tick()
	if _, err := h.d.snapshot(); err != nil {
		t.Errorf("tick after the death: %v", err)
	}
	if n := h.logs.FilterMessage(msgActionFailed).Len(); n != 1 {
		t.Errorf("%q logged %d times after the next tick", msgActionFailed, n)
	}
}

// TestExecuteOnDeadDomain: every kind of action the policy issues for one
// domain, executed after the domain died: reported at info level, counted,
// never a panic.
func TestExecuteOnDeadDomain(t *testing.T) {
	h := busyHarness(t, simHarnessConfig{})
	id := h.id("web1")
	h.guests.stop(h.byName["web1"])
	for _, tc := range []pools.Action{
		{Kind: pools.ActionFreeze, DomID: id, Name: "web1", Reason: "test"},
		{Kind: pools.ActionThaw, DomID: id, Name: "web1", Reason: "test"},
		{Kind: pools.ActionSetWeight, DomID: id, Name: "web1", Weight: 3, Reason: "test"},
		{Kind: pools.ActionSetCompress, DomID: id, Name: "web1", Compress: true, Reason: "test"},
	} {
		t.Run(tc.Kind.String(), func(t *testing.T) {
			before := h.logs.FilterMessage(msgActionFailed).Len()
			h.d.mu.Lock()
			errs := h.d.actErrors
			h.d.execute(tc)
			errs = h.d.actErrors - errs
			h.d.mu.Unlock()
			all := h.logs.FilterMessage(msgActionFailed).All()
			if errs != 1 || len(all) != before+1 {
				t.Fatalf("%d action errors, %d new log entries", errs, len(all)-before)
			}
			e := all[len(all)-1]
			if e.Level != zapcore.InfoLevel {
				t.Errorf("logged at %v, want info (the domain died): %v", e.Level, e.ContextMap()["error"])
			}
		})
	}
}

// TestDryRun: under pressure the policy's actions are only logged as
// "would …" and published as such; LIST does not change.
func TestDryRun(t *testing.T) {
	h := newSimHarness(t, simHarnessConfig{dryRun: true, guests: []SimGuest{
		{Name: "batch", MemoryMiB: 16, Workload: "scan", WorkingMiB: 64, CacheMiB: 1},
		{Name: "web1", MemoryMiB: 16, Workload: "zipf", WorkingMiB: 4, CacheMiB: 1, Priority: 2},
	}})
	h.drive(t, "batch", 9*256)
	h.drive(t, "web1", 1000)
	h.squeeze(t, 8)
	events, stop := h.d.bus.subscribe()
	defer stop()
	// The tmem probe (cached after the first tick) counts in LIST's Tt and
	// Te: take it first.
	if _, err := h.xen.ProbeTmem(); err != nil {
		t.Fatal(err)
	}
	before, err := h.xen.List(xenctl.AllClients, true)
	if err != nil {
		t.Fatal(err)
	}
	for range 6 {
		h.d.tick()
	}
	after, err := h.xen.List(xenctl.AllClients, true)
	if err != nil {
		t.Fatal(err)
	}
	if string(before) != string(after) {
		t.Errorf("dry run changed LIST:\nbefore %s\nafter  %s", before, after)
	}
	would := 0
	for _, e := range h.logs.All() {
		switch {
		case strings.HasPrefix(e.Message, "would ") && strings.HasSuffix(e.Message, " (dry run)"):
			would++
		case e.LoggerName == "policy" && (e.Message == "flush" || e.Message == "freeze" || e.Message == "set-weight" || e.Message == "set-compress"):
			t.Errorf("executed in dry-run mode: %s %v", e.Message, e.ContextMap())
		}
	}
	if would == 0 {
		t.Fatalf("the policy proposed nothing under pressure; logs: %d entries", h.logs.Len())
	}
	n := 0
	for len(events) > 0 {
		ev := <-events
		if ev.Kind == "action" {
			n++
			if !strings.HasPrefix(ev.Message, "would ") {
				t.Errorf("event %q does not start with would", ev.Message)
			}
		}
	}
	if n != would {
		t.Errorf("%d action events, %d would-logs", n, would)
	}
	var st StatusResult
	ctlCall(t, h.client(t), control.OpStatus, nil, &st)
	if !st.DryRun || len(st.Actions) == 0 {
		t.Errorf("status: dry_run %v, actions %v", st.DryRun, st.Actions)
	}
}
