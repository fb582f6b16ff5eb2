package pools_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/xentmem/xentmem/pools"
)

// reserveStep runs one Reserver step against the fake host, applies the
// actions and advances the clock.
func reserveStep(t *testing.T, rv *pools.Reserver, f *fakeHost) []string {
	t.Helper()
	acts := rv.Step(f.take())
	checkActions(t, acts)
	f.apply(acts)
	f.now = f.now.Add(tick)
	return shorts(acts)
}

func mustReserver(t *testing.T, cfg *pools.ReserveConfig) *pools.Reserver {
	t.Helper()
	rv, err := pools.NewReserver(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return rv
}

func TestReserver(t *testing.T) {
	eph := []pools.Pool{ephPool(0, 100, 0, 0, 0, 0)}
	type step struct {
		set   func(f *fakeHost)
		want  []string
		state pools.ReserveState
	}
	tests := []struct {
		name              string
		freeMiB, freeable uint64
		needMiB           uint64
		timeout           time.Duration
		clients           []pools.Client
		steps             []step
		reason            string // substring of the final reason
		flushes           int
		flushedKiB        uint64
	}{
		{
			name: "already free", freeMiB: 500, freeable: 1024, needMiB: 300,
			steps:  []step{{state: pools.ReserveDone}},
			reason: "500.0 MiB available, 300.0 MiB needed",
		},
		{
			name: "freeze, flush, thaw", freeMiB: 100, freeable: 1024, needMiB: 300,
			steps: []step{
				{want: []string{"freeze all", "flush all 204800"}},
				{want: []string{"thaw all"}, state: pools.ReserveDone},
			},
			reason: "300.0 MiB available", flushes: 1, flushedKiB: 204800,
		},
		{
			// Xen's FLUSH may free less than asked: flush the rest.
			name: "partial flush", freeMiB: 100, freeable: 1024, needMiB: 300,
			steps: []step{
				{set: func(f *fakeHost) { f.flushYield = 0.5 }, want: []string{"freeze all", "flush all 204800"}},
				{set: func(f *fakeHost) { f.flushYield = 1 }, want: []string{"flush all 102400"}},
				{want: []string{"thaw all"}, state: pools.ReserveDone},
			},
			flushes: 2, flushedKiB: 307200,
		},
		{
			// Flushes free nothing (another consumer takes the memory):
			// the deadline ends it, and tmem is thawed.
			name: "timeout", freeMiB: 100, freeable: 1024, needMiB: 300, timeout: 25 * time.Second,
			steps: []step{
				{set: func(f *fakeHost) { f.flushYield = 1e-12 }, want: []string{"freeze all", "flush all 204800"}},
				{want: []string{"flush all 204800"}},
				{want: []string{"flush all 204800"}},
				{want: []string{"thaw all"}, state: pools.ReserveFailed},
			},
			reason: "timed out after 30s", flushes: 3, flushedKiB: 3 * 204800,
		},
		{
			name: "tmem has nothing to give", freeMiB: 100, freeable: 0, needMiB: 300,
			steps: []step{
				{},
				{state: pools.ReserveFailed},
			},
			reason: "nothing left to flush",
		},
		{
			// Nothing freeable, but memory is coming back (a domain
			// being destroyed): keep waiting.
			name: "memory growing without tmem", freeMiB: 100, freeable: 0, needMiB: 300,
			steps: []step{
				{},
				{set: free(150, 0)},
				{set: free(300, 0), state: pools.ReserveDone},
			},
		},
		{
			name: "clients frozen before stay frozen", freeMiB: 100, freeable: 1024, needMiB: 300,
			clients: []pools.Client{{DomID: 1, Pools: eph}, {DomID: 2, Frozen: true, Pools: eph}},
			steps: []step{
				{want: []string{"freeze all", "flush all 204800"}},
				{want: []string{"thaw all", "freeze 2"}, state: pools.ReserveDone},
			},
			flushes: 1, flushedKiB: 204800,
		},
		{
			name: "claims count against free memory", freeMiB: 400, freeable: 1024, needMiB: 300,
			steps: []step{
				{set: func(f *fakeHost) { f.snap.Host.OutstandingKiB = 200 * miB }, want: []string{"freeze all", "flush all 102400"}},
				{want: []string{"thaw all"}, state: pools.ReserveDone},
			},
			flushes: 1, flushedKiB: 102400,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeHost(tt.freeMiB*miB, tt.freeable*miB, tt.clients...)
			rv := mustReserver(t, nil)
			timeout := tt.timeout
			if timeout == 0 {
				timeout = time.Minute
			}
			r := rv.Reserve(f.now, "big", tt.needMiB*miB, f.now.Add(timeout))
			var got, want [][]string
			for i, s := range tt.steps {
				if s.set != nil {
					s.set(f)
				}
				got = append(got, reserveStep(t, rv, f))
				want = append(want, s.want)
				if r.State() != s.state {
					t.Errorf("step %d: state %v, want %v (%s)", i, r.State(), s.state, r.Reason())
				}
			}
			if d := cmp.Diff(joinSteps(want), joinSteps(got)); d != "" {
				t.Errorf("actions (-want +got):\n%s", d)
			}
			if !strings.Contains(r.Reason(), tt.reason) {
				t.Errorf("reason %q, want it to contain %q", r.Reason(), tt.reason)
			}
			if n, kib := r.Flushes(); n != tt.flushes || kib != tt.flushedKiB {
				t.Errorf("Flushes() = %d, %d KiB; want %d, %d KiB", n, kib, tt.flushes, tt.flushedKiB)
			}
			if rv.Frozen() || rv.Active() != 0 {
				t.Errorf("after the answer: Frozen() = %v, Active() = %d", rv.Frozen(), rv.Active())
			}
		})
	}
}

func TestReserverImmediateAnswers(t *testing.T) {
	rv := mustReserver(t, nil)
	tests := []struct {
		name     string
		r        *pools.Reservation
		state    pools.ReserveState
		reason   string
		answered time.Time
	}{
		{"nothing needed", rv.Reserve(t0, "a", 0, t0.Add(time.Minute)), pools.ReserveDone, "nothing to reserve", t0},
		{"deadline now", rv.Reserve(t0, "b", miB, t0), pools.ReserveFailed, "deadline already passed", t0},
		{"deadline past", rv.Reserve(t0, "c", miB, t0.Add(-time.Second)), pools.ReserveFailed, "deadline already passed", t0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.r.State() != tt.state || tt.r.Reason() != tt.reason || !tt.r.Answered().Equal(tt.answered) {
				t.Errorf("got %v answered %v", tt.r, tt.r.Answered())
			}
		})
	}
	if rv.Active() != 0 {
		t.Errorf("Active() = %d, want 0", rv.Active())
	}
	r := rv.Reserve(t0, "d", miB, t0.Add(time.Minute))
	if r.State() != pools.ReservePending {
		t.Fatalf("%v", r)
	}
	rv.Release(t0.Add(time.Second), r)
	if r.State() != pools.ReserveFailed || !strings.Contains(r.Reason(), "released") {
		t.Errorf("released while pending: %v", r)
	}
	if got := rv.Step(pools.Snapshot{Time: t0.Add(2 * time.Second)}); got != nil {
		t.Errorf("step after release: %v", got)
	}
	if rv.Active() != 0 {
		t.Errorf("Active() = %d after release", rv.Active())
	}
}

func TestReserverTwoDomains(t *testing.T) {
	f := newFakeHost(300*miB, 1024*miB)
	rv := mustReserver(t, &pools.ReserveConfig{HoldFor: time.Minute})
	a := rv.Reserve(f.now, "a", 200*miB, f.now.Add(time.Minute))
	b := rv.Reserve(f.now, "b", 200*miB, f.now.Add(time.Minute))
	// a fits in 300 MiB; a and b together need 100 MiB more.
	if got := reserveStep(t, rv, f); !cmp.Equal(got, []string{"freeze all", "flush all 102400"}) {
		t.Fatalf("step 0: %v", got)
	}
	if a.State() != pools.ReserveDone || b.State() != pools.ReservePending {
		t.Fatalf("step 0: %v; %v", a, b)
	}
	// 400 MiB: b is done too, but both hold tmem frozen until released.
	if got := reserveStep(t, rv, f); got != nil {
		t.Fatalf("step 1: %v", got)
	}
	if b.State() != pools.ReserveDone || !strings.Contains(b.Reason(), "after 200.0 MiB for earlier reservations") {
		t.Fatalf("step 1: %v", b)
	}
	rv.Release(f.now, a)
	if got := reserveStep(t, rv, f); got != nil {
		t.Fatalf("after releasing a: %v", got)
	}
	rv.Release(f.now, b)
	if got := reserveStep(t, rv, f); !cmp.Equal(got, []string{"thaw all"}) {
		t.Fatalf("after releasing b: %v", got)
	}
}

func TestReserverHoldExpires(t *testing.T) {
	f := newFakeHost(100*miB, 1024*miB)
	rv := mustReserver(t, &pools.ReserveConfig{HoldFor: 25 * time.Second})
	r := rv.Reserve(f.now, "a", 200*miB, f.now.Add(time.Minute))
	var got [][]string
	for range 5 {
		got = append(got, reserveStep(t, rv, f))
	}
	// Done at 10 s; the hold ends at 35 s, seen by the step at 40 s.
	want := [][]string{{"freeze all", "flush all 102400"}, nil, nil, nil, {"thaw all"}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	if r.State() != pools.ReserveDone || !r.Answered().Equal(t0.Add(tick)) {
		t.Errorf("%v answered %v", r, r.Answered())
	}
}

func TestReserverDryRun(t *testing.T) {
	f := newFakeHost(100*miB, 1024*miB)
	rv := mustReserver(t, &pools.ReserveConfig{DryRun: true})
	r := rv.Reserve(f.now, "a", 200*miB, f.now.Add(15*time.Second))
	if got := reserveStep(t, rv, f); !cmp.Equal(got, []string{"would freeze all", "would flush all 102400"}) {
		t.Fatalf("step 0: %v", got)
	}
	if got := reserveStep(t, rv, f); !cmp.Equal(got, []string{"would flush all 102400"}) {
		t.Fatalf("step 1: %v", got)
	}
	// Nothing was executed: the reservation times out and says so.
	if got := reserveStep(t, rv, f); !cmp.Equal(got, []string{"would thaw all"}) {
		t.Fatalf("step 2: %v", got)
	}
	if r.State() != pools.ReserveFailed {
		t.Errorf("%v", r)
	}
}

func TestReservationString(t *testing.T) {
	rv := mustReserver(t, nil)
	r := rv.Reserve(t0, "web1", 0, t0.Add(time.Minute))
	if got, want := r.String(), "reservation of 0.0 MiB for web1: done (nothing to reserve)"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	states := []string{pools.ReservePending.String(), pools.ReserveDone.String(), pools.ReserveFailed.String(), pools.ReserveState(7).String()}
	if d := cmp.Diff([]string{"pending", "done", "failed", "ReserveState(7)"}, states); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}
