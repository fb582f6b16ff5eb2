package pools_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/xentmem/xentmem/pools"
)

// tickSpec is one step of a scripted sequence: change the fake host, then
// expect these actions (short form).
type tickSpec struct {
	set  func(f *fakeHost)
	want []string
}

// free sets the host's free and freeable memory (MiB).
func free(freeMiB, freeableMiB uint64) func(f *fakeHost) {
	return func(f *fakeHost) {
		f.snap.Host.FreeKiB = freeMiB * miB
		f.snap.Host.FreeableKiB = freeableMiB * miB
	}
}

// runTicks plays ticks against p and f and compares all steps at once.
func runTicks(t *testing.T, p *pools.Policy, f *fakeHost, ticks []tickSpec) {
	t.Helper()
	var got, want [][]string
	for _, tk := range ticks {
		if tk.set != nil {
			tk.set(f)
		}
		got = append(got, f.step(t, p))
		want = append(want, tk.want)
	}
	if d := cmp.Diff(joinSteps(want), joinSteps(got)); d != "" {
		t.Errorf("actions per step (-want +got):\n%s", d)
	}
}

// onlyMemoryRules disables the rules a test does not look at.
func onlyMemoryRules(dry bool) *pools.PolicyConfig {
	return &pools.PolicyConfig{
		Watermarks: testWatermarks,
		DryRun:     dry,
		Compress:   pools.CompressPolicy{Disabled: true},
		Weights:    pools.WeightPolicy{Disabled: true},
	}
}

func TestPolicyFlush(t *testing.T) {
	f := newFakeHost(200*miB, 500*miB, pools.Client{DomID: 1, Pools: []pools.Pool{ephPool(0, 1000, 0, 0, 0, 0)}})
	p := mustPolicy(t, onlyMemoryRules(false))
	runTicks(t, p, f, []tickSpec{
		{set: free(200, 500)},
		// 50 MiB < low 64: flush 128 − 50 = 78 MiB.
		{set: free(50, 500), want: []string{"flush all 79872"}},
		// The flush brought free back to high: nothing to do.
		{},
		// Only 10 MiB freeable: flush all of it.
		{set: free(40, 10), want: []string{"flush all 10240"}},
		// Nothing freeable: nothing to flush (not critical: no freeze).
		{set: free(40, 0)},
		// Claims count against free: 100 − 60 = 40 MiB available.
		{set: func(f *fakeHost) { free(100, 500)(f); f.snap.Host.OutstandingKiB = 60 * miB }, want: []string{"flush all 90112"}},
		// 63.5 MiB: the 64.5 MiB missing are rounded up to 65 MiB.
		{set: func(f *fakeHost) { f.snap.Host = pools.Host{TotalKiB: 4 * giB, FreeKiB: 65024, FreeableKiB: 500 * miB} },
			want: []string{"flush all 66560"}},
		// Exactly at low is not below it.
		{set: free(64, 500)},
	})
}

func TestPolicyFlushReason(t *testing.T) {
	f := newFakeHost(50*miB, 500*miB)
	p := mustPolicy(t, onlyMemoryRules(false))
	acts := p.Step(f.take())
	if len(acts) != 1 {
		t.Fatalf("got %v, want one flush", acts)
	}
	want := "flush 79872 KiB from all clients: 50.0 MiB available is below the low watermark 64.0 MiB: " +
		"flushing toward the high watermark 128.0 MiB (500.0 MiB freeable)"
	if got := acts[0].String(); got != want {
		t.Errorf("String() =\n%q\nwant\n%q", got, want)
	}
}

// freezeClients are four clients: dom1 priority 0, dom2 priority 5
// (protected), dom3 priority -1, dom4 priority -5 but without pools.
func freezeClients() []pools.Client {
	eph := []pools.Pool{ephPool(0, 100, 0, 0, 0, 0)}
	return []pools.Client{
		{DomID: 1, Name: "web", Pools: eph},
		{DomID: 2, Name: "db", Priority: 5, Pools: eph},
		{DomID: 3, Name: "batch", Priority: -1, Pools: eph},
		{DomID: 4, Name: "idle", Priority: -5},
	}
}

func TestPolicyFreezeThaw(t *testing.T) {
	for _, dry := range []bool{false, true} {
		name := map[bool]string{false: "execute", true: "dry-run"}[dry]
		t.Run(name, func(t *testing.T) {
			f := newFakeHost(0, 0, freezeClients()...)
			p := mustPolicy(t, onlyMemoryRules(dry))
			w := func(s string) string {
				if dry {
					return "would " + s
				}
				return s
			}
			runTicks(t, p, f, []tickSpec{
				{set: free(20, 0), want: []string{w("freeze 3")}}, // lowest priority first
				{want: []string{w("freeze 1")}},                   // next level on the next tick
				{},                                                // dom2 is protected, dom4 has no pools
				{set: free(200, 0)},                               // above high: 1 tick
				{set: free(100, 0)},                               // below high again: start over
				{set: free(200, 0)},                               // 1
				{},                                                // 2
				{want: []string{w("thaw 1")}},                     // 3 ticks: highest priority first
				{want: []string{w("thaw 3")}},
				{},
			})
			if got := p.Frozen(); len(got) != 0 {
				t.Errorf("Frozen() = %v after thawing everything", got)
			}
			wantExec := []string{"freeze 3", "freeze 1", "thaw 1", "thaw 3"}
			if dry {
				wantExec = nil
			}
			if d := cmp.Diff(wantExec, f.executed); d != "" {
				t.Errorf("executed (-want +got):\n%s", d)
			}
		})
	}
}

func TestPolicyFrozenSet(t *testing.T) {
	f := newFakeHost(20*miB, 0, freezeClients()...)
	p := mustPolicy(t, onlyMemoryRules(false))
	f.step(t, p)
	f.step(t, p)
	if d := cmp.Diff([]uint16{1, 3}, p.Frozen()); d != "" {
		t.Errorf("Frozen() (-want +got):\n%s", d)
	}
}

func TestPolicyFreezeSkipsAdminFrozen(t *testing.T) {
	cl := freezeClients()
	cl[2].Frozen = true // frozen by the administrator
	f := newFakeHost(20*miB, 0, cl...)
	p := mustPolicy(t, onlyMemoryRules(false))
	runTicks(t, p, f, []tickSpec{
		{want: []string{"freeze 1"}},
		{},
		{set: free(200, 0)}, {}, {want: []string{"thaw 1"}},
		{}, // dom3 is not the policy's to thaw
	})
}

func TestPolicyClientsAppearAndDisappear(t *testing.T) {
	eph := []pools.Pool{ephPool(0, 100, 0, 0, 0, 0)}
	handle := func(b byte) [16]byte { return [16]byte{0: b} }
	client := func(id uint16, h byte) pools.Client {
		return pools.Client{DomID: id, Handle: handle(h), Pools: eph}
	}
	tests := []struct {
		name  string
		ticks []tickSpec
	}{
		{
			name: "destroyed, and the id reused by a new domain",
			ticks: []tickSpec{
				{want: []string{"freeze 7", "freeze 8"}},
				{set: func(f *fakeHost) { free(200, 0)(f); f.snap.Clients = f.snap.Clients[1:] }},
				// A new domain (new handle) gets id 7: not frozen, not the policy's.
				{set: func(f *fakeHost) { f.snap.Clients = append(f.snap.Clients, client(7, 2)) }},
				{want: []string{"thaw 8"}},
				{},
			},
		},
		{
			name: "destroyed for good",
			ticks: []tickSpec{
				{want: []string{"freeze 7", "freeze 8"}},
				{set: func(f *fakeHost) { free(200, 0)(f); f.snap.Clients = f.snap.Clients[1:] }},
				{}, {want: []string{"thaw 8"}}, {}, {}, {},
			},
		},
		{
			// dom7 is missing from one snapshot (a truncated LIST): it
			// is still the policy's to thaw when it comes back.
			name: "missing from one snapshot",
			ticks: []tickSpec{
				{want: []string{"freeze 7", "freeze 8"}},
				{set: func(f *fakeHost) { free(200, 0)(f); f.snap.Clients = f.snap.Clients[1:] }},
				{set: func(f *fakeHost) {
					c := client(7, 1)
					c.Frozen = true
					f.snap.Clients = append(f.snap.Clients, c)
				}},
				{want: []string{"thaw 8", "thaw 7"}},
				{},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeHost(20*miB, 0, client(7, 1), client(8, 3))
			p := mustPolicy(t, onlyMemoryRules(false))
			runTicks(t, p, f, tt.ticks)
			if got := p.Frozen(); len(got) != 0 {
				t.Errorf("Frozen() = %v", got)
			}
		})
	}
}

func TestPolicyCompression(t *testing.T) {
	eph := []pools.Pool{ephPool(0, 100, 0, 0, 0, 0)}
	f := newFakeHost(20*miB, 0,
		pools.Client{DomID: 1, Pools: eph},
		pools.Client{DomID: 2, Compress: true, Pools: eph}, // switched on by the administrator
		pools.Client{DomID: 3},                             // no pools
	)
	p := mustPolicy(t, &pools.PolicyConfig{
		Watermarks: testWatermarks,
		Freeze:     pools.FreezePolicy{Disabled: true},
		Weights:    pools.WeightPolicy{Disabled: true},
	})
	ticks := []tickSpec{
		{}, {}, // host score 1 (critical): 2 ticks
		{want: []string{"compress 1 on"}}, // 3 ticks
		{set: func(f *fakeHost) { // a new client joins during the episode
			f.snap.Clients = append(f.snap.Clients, pools.Client{DomID: 5, Pools: eph})
		}, want: []string{"compress 5 on"}},
		{set: free(200, 0)}, {}, {}, {}, // calm: 4 ticks
		{set: free(96, 0)},                                  // score 0.25, between off and on: start over
		{set: free(200, 0)}, {}, {}, {}, {}, {}, {}, {}, {}, // 9 calm ticks
		{want: []string{"compress 1 off", "compress 5 off"}}, // 10: only where the policy switched it on
		{},
	}
	runTicks(t, p, f, ticks)
	if !f.client(2).Compress {
		t.Error("dom2's compression, set by the administrator, was switched off")
	}
}

func TestPolicyReservationMergesFlushAndHoldsThaw(t *testing.T) {
	eph := []pools.Pool{ephPool(0, 100, 0, 0, 0, 0)}
	f := newFakeHost(20*miB, 0, pools.Client{DomID: 1, Pools: eph}, pools.Client{DomID: 2, Priority: 9, Pools: eph})
	p := mustPolicy(t, onlyMemoryRules(false))
	var r *pools.Reservation
	runTicks(t, p, f, []tickSpec{
		{want: []string{"freeze 1"}}, // critical, nothing freeable
		{set: func(f *fakeHost) {
			free(50, 1024)(f)
			r = p.Reserve(f.now, "big", 300*miB, f.now.Add(time.Minute))
		}, // reservation: 250 MiB missing; the policy's own 78 MiB flush is merged
			want: []string{"freeze all", "flush all 256000"}},
		// 300 MiB free: done; thaw all, then freeze again what the policy froze.
		{want: []string{"thaw all", "freeze 1"}},
		{}, {}, {want: []string{"thaw 1"}}, // the thaw hysteresis starts again
	})
	if r.State() != pools.ReserveDone {
		t.Errorf("reservation: %v", r)
	}
}

func TestPolicyNoThawWhileReservationHolds(t *testing.T) {
	eph := []pools.Pool{ephPool(0, 100, 0, 0, 0, 0)}
	f := newFakeHost(20*miB, 0, pools.Client{DomID: 1, Pools: eph})
	cfg := onlyMemoryRules(false)
	cfg.Reserve.HoldFor = time.Hour
	p := mustPolicy(t, cfg)
	var r *pools.Reservation
	runTicks(t, p, f, []tickSpec{
		{want: []string{"freeze 1"}},
		{set: func(f *fakeHost) {
			free(200, 1024)(f)
			f.snap.Host.OutstandingKiB = 150 * miB // 50 MiB available
			r = p.Reserve(f.now, "big", 100*miB, f.now.Add(time.Minute))
		}, // 50 MiB missing for the reservation, 78 MiB for the high watermark: one flush, the larger
			want: []string{"freeze all", "flush all 79872"}},
		{set: func(f *fakeHost) { f.snap.Host.OutstandingKiB = 0 }}, // done, held: stays frozen
		{}, {}, {}, // above high, but the hold keeps everything frozen
		{set: func(f *fakeHost) { p.Release(f.now, r) }, want: []string{"thaw all", "freeze 1"}},
		{}, {}, {want: []string{"thaw 1"}},
	})
	if r.State() != pools.ReserveDone {
		t.Errorf("reservation: %v", r)
	}
}

func TestPolicyTimeNotAdvancing(t *testing.T) {
	eph := []pools.Pool{ephPool(0, 100, 0, 0, 0, 0)}
	f := newFakeHost(200*miB, 0, pools.Client{DomID: 1, Pools: eph})
	p := mustPolicy(t, onlyMemoryRules(false))
	step := func(at time.Time) []string {
		s := f.take()
		s.Time = at
		acts := p.Step(s)
		f.apply(acts)
		return shorts(acts)
	}
	f.snap.Host.FreeKiB = 20 * miB
	if got := step(t0); !cmp.Equal(got, []string{"freeze 1"}) {
		t.Fatalf("step 0: %v", got)
	}
	f.snap.Host.FreeKiB = 200 * miB
	// Three snapshots at the same instant, then one earlier: none of them
	// counts as a tick above high, and they give no rates.
	for i, at := range []time.Time{t0, t0, t0, t0.Add(-time.Minute)} {
		if got := step(at); got != nil {
			t.Fatalf("repeat %d: %v", i, got)
		}
		if iv := p.Assessment().Rates.Interval; iv != 0 {
			t.Fatalf("repeat %d: interval %v", i, iv)
		}
	}
	// The earlier snapshot is the new baseline; three later ticks thaw.
	base := t0.Add(-time.Minute)
	step(base.Add(tick))
	step(base.Add(2 * tick))
	if got := step(base.Add(3 * tick)); !cmp.Equal(got, []string{"thaw 1"}) {
		t.Errorf("after three ticks: %v", got)
	}
}

func TestPolicyCopiesSnapshot(t *testing.T) {
	p := mustPolicy(t, nil)
	s := pools.Snapshot{Time: t0, Host: pools.Host{TotalKiB: giB, FreeKiB: giB},
		Clients: []pools.Client{{DomID: 1, EphGets: 100, Pools: []pools.Pool{ephPool(0, 10, 100, 0, 100, 50)}}}}
	p.Step(s)
	// The caller reuses its buffers for the next snapshot.
	s.Time = t0.Add(10 * time.Second)
	s.Clients[0].EphGets = 200
	s.Clients[0].Pools[0] = ephPool(0, 10, 200, 0, 200, 100)
	p.Step(s)
	a := p.Assessment()
	if c := a.Rates.Clients[0]; c.Reset || c.New || c.EphGetsOK != 10 {
		t.Errorf("client rates after buffer reuse: %+v", c)
	}
	if got := a.Rates.Pools[0].Puts; got != 10 {
		t.Errorf("pool puts/s = %v, want 10", got)
	}
}

func TestActionString(t *testing.T) {
	tests := []struct {
		a    pools.Action
		want string
	}{
		{pools.Action{Kind: pools.ActionFlush, DomID: pools.AllClients, KiB: 2048, Reason: "r"}, "flush 2048 KiB from all clients: r"},
		{pools.Action{Kind: pools.ActionFreeze, DomID: 3, Name: "web"}, "freeze dom3 (web)"},
		{pools.Action{Kind: pools.ActionThaw, DomID: 3, Name: "dom3"}, "thaw dom3"},
		{pools.Action{Kind: pools.ActionThaw, DomID: pools.AllClients, DryRun: true}, "would thaw all clients"},
		{pools.Action{Kind: pools.ActionSetWeight, DomID: 4, Weight: 20, Reason: "x"}, "set-weight dom4 to 20: x"},
		{pools.Action{Kind: pools.ActionSetCompress, DomID: 4, Compress: true}, "set-compress dom4 on"},
		{pools.Action{Kind: pools.ActionSetCompress, DomID: 4}, "set-compress dom4 off"},
		{pools.Action{Kind: 42, DomID: 1}, "ActionKind(42) dom1"},
	}
	for _, tt := range tests {
		if got := tt.a.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
}

func TestDryRunActionsSayWould(t *testing.T) {
	f := newFakeHost(20*miB, 100*miB, freezeClients()...)
	p := mustPolicy(t, onlyMemoryRules(true))
	acts := p.Step(f.take())
	if len(acts) == 0 {
		t.Fatal("no actions")
	}
	for _, a := range acts {
		if !a.DryRun || !strings.HasPrefix(a.String(), "would ") {
			t.Errorf("dry-run action %q", a)
		}
	}
}
