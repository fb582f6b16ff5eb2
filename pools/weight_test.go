package pools_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/xentmem/xentmem/pools"
)

// Three clients, each holding 100 MiB of ephemeral pages. Per 10 s tick
// dom1 earns 1000 hits (1 hit/s per MiB), dom2 400 (0.4) and dom3 50
// (0.05). The page-weighted mean is 0.483: dom1 is at 2.07× (favoured),
// dom2 at 0.83× (inside the dead band), dom3 at 0.10× (disfavoured).
var weightHits = map[uint16]uint64{1: 1000, 2: 400, 3: 50}

func weightHost(weight uint32) *fakeHost {
	c := func(id uint16) pools.Client {
		return pools.Client{DomID: id, Weight: weight, EphPages: 25600, Pools: []pools.Pool{ephPool(0, 25600, 0, 0, 0, 0)}}
	}
	f := newFakeHost(96*miB, 0, c(1), c(2), c(3))
	f.snap.Global.EphPages = 3 * 25600
	return f
}

// earn advances the hit counters by one tick and, when evict is set, the
// eviction and put counters (guest puts that made Xen evict).
func earn(evict bool) func(f *fakeHost) {
	return func(f *fakeHost) {
		for i := range f.snap.Clients {
			f.snap.Clients[i].EphGets += weightHits[f.snap.Clients[i].DomID]
		}
		if evict {
			f.snap.Global.Evictions += 1000
			f.snap.Global.EphPuts += 2000
		}
	}
}

// weightTicks returns n ticks that all earn, with the given expectations.
func weightTicks(n int, evict bool, want map[int][]string) []tickSpec {
	ticks := make([]tickSpec, n)
	for i := range ticks {
		ticks[i] = tickSpec{set: earn(evict), want: want[i]}
	}
	return ticks
}

func weightConfig(w pools.WeightPolicy, dry bool) *pools.PolicyConfig {
	return &pools.PolicyConfig{
		Watermarks: testWatermarks,
		DryRun:     dry,
		Weights:    w,
		Compress:   pools.CompressPolicy{Disabled: true},
		Freeze:     pools.FreezePolicy{Disabled: true},
	}
}

func TestPolicyReweight(t *testing.T) {
	tests := []struct {
		name   string
		w      pools.WeightPolicy
		dry    bool
		start  uint32
		evict  bool
		bounds func(f *fakeHost)
		n      int
		want   map[int][]string
	}{
		{
			// Xen: a lower weight keeps more pages. Warm after 3 intervals
			// (step 3), then one step of 10 every 3 ticks, down to 0 and
			// up to 100.
			name: "xen weights", start: 50, evict: true, n: 20,
			want: map[int][]string{
				3:  {"weight 1 40", "weight 3 60"},
				6:  {"weight 1 30", "weight 3 70"},
				9:  {"weight 1 20", "weight 3 80"},
				12: {"weight 1 10", "weight 3 90"},
				15: {"weight 1 0", "weight 3 100"},
			},
		},
		{
			name: "proportional weights", w: pools.WeightPolicy{Mode: pools.WeightProportional}, start: 50, evict: true, n: 8,
			want: map[int][]string{
				3: {"weight 1 60", "weight 3 40"},
				6: {"weight 1 70", "weight 3 30"},
			},
		},
		{
			name: "no evictions, weights do not matter", start: 50, evict: false, n: 10,
		},
		{
			name: "client bounds", start: 50, evict: true, n: 12,
			bounds: func(f *fakeHost) { f.client(3).WeightMin, f.client(3).WeightMax = 0, 65 },
			want: map[int][]string{
				3: {"weight 1 40", "weight 3 60"},
				6: {"weight 1 30", "weight 3 65"},
				9: {"weight 1 20"},
			},
		},
		{
			// Xen's default weight 0 is outside [10, 100]: everyone is
			// brought in first, then the rule goes on from there.
			name: "weights outside the bounds", w: pools.WeightPolicy{Min: 10}, start: 0, evict: true, n: 10,
			want: map[int][]string{
				3: {"weight 1 10", "weight 2 10", "weight 3 10"},
				6: {"weight 3 20"},
				9: {"weight 3 30"},
			},
		},
		{
			name: "larger step, longer hold", w: pools.WeightPolicy{Step: 25, HoldTicks: 5}, start: 50, evict: true, n: 14,
			want: map[int][]string{
				3:  {"weight 1 25", "weight 3 75"},
				8:  {"weight 1 0", "weight 3 100"},
				13: nil,
			},
		},
		{
			// Dry run: nothing is applied, the policy steps from the
			// weight it would have set.
			name: "dry run", dry: true, start: 50, evict: true, n: 8,
			want: map[int][]string{
				3: {"would weight 1 40", "would weight 3 60"},
				6: {"would weight 1 30", "would weight 3 70"},
			},
		},
		{
			name: "disabled", w: pools.WeightPolicy{Disabled: true}, start: 50, evict: true, n: 8,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := weightHost(tt.start)
			if tt.bounds != nil {
				tt.bounds(f)
			}
			p := mustPolicy(t, weightConfig(tt.w, tt.dry))
			runTicks(t, p, f, weightTicks(tt.n, tt.evict, tt.want))
		})
	}
}

func TestPolicyReweightSkipsFrozen(t *testing.T) {
	f := weightHost(50)
	f.client(3).Frozen = true
	p := mustPolicy(t, weightConfig(pools.WeightPolicy{}, false))
	// Without dom3 the mean is 0.7: dom1 is at 1.43× (inside the band),
	// dom2 at 0.57× (disfavoured: up under Xen's rule).
	runTicks(t, p, f, weightTicks(7, true, map[int][]string{
		3: {"weight 2 60"},
		6: {"weight 2 70"},
	}))
}

func TestPolicyReweightOwnFlushIsNotEviction(t *testing.T) {
	// The only evictions come from the policy's own flushes: weights
	// must not move.
	f := weightHost(50)
	p := mustPolicy(t, weightConfig(pools.WeightPolicy{}, false))
	for i := range 8 {
		earn(false)(f)
		free(40, 100)(f) // below low every tick: the policy flushes 88 MiB
		if got := f.step(t, p); !cmp.Equal(got, []string{"flush all 90112"}) {
			t.Fatalf("step %d: %v", i, got)
		}
		if e := p.Assessment().Pressure.Evictions; e != 0 {
			t.Fatalf("step %d: eviction term %v from the policy's own flush", i, e)
		}
	}
}

func TestPolicyCounterResetRestartsAverages(t *testing.T) {
	f := weightHost(50)
	p := mustPolicy(t, weightConfig(pools.WeightPolicy{}, false))
	for range 4 {
		earn(true)(f)
		f.step(t, p)
	}
	// dom3's domain is destroyed and a new one gets its id: counters
	// start again from 0 (the old Ge was 200), and it earns 3× what the
	// old one did.
	earn(true)(f)
	f.client(3).EphGets = 150
	f.step(t, p)
	a := p.Assessment()
	if cr := a.Rates.Clients[2]; !cr.Reset || cr.EphGetsOK != 15 {
		t.Fatalf("dom3 rates after restart: %+v", cr)
	}
	// The new client's average starts from its first sample, not from
	// the old client's 0.05.
	if got := a.Pressure.Clients[2].Yield; got != 0.15 {
		t.Errorf("dom3 yield after restart = %v, want 0.15", got)
	}
	// The restart interval was its first sample; after two more it is
	// warm again, when dom1's hold also ends (changes at 3, 6, 9…).
	var got [][]string
	for range 2 {
		earn(true)(f)
		got = append(got, f.step(t, p))
	}
	want := [][]string{nil, {"weight 1 30", "weight 3 70"}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("ticks after restart (-want +got):\n%s", d)
	}
}

func TestPolicyHandleChangeRestartsClient(t *testing.T) {
	h := func(b byte) [16]byte { return [16]byte{15: b} }
	prev := pools.Snapshot{Time: t0, Clients: []pools.Client{{DomID: 3, Handle: h(1), EphGets: 100}}}
	cur := pools.Snapshot{Time: t0.Add(tick), Clients: []pools.Client{{DomID: 3, Handle: h(2), EphGets: 300}}}
	rs := pools.Rates(prev, cur)
	if cr := rs.Clients[0]; !cr.Reset || cr.EphGetsOK != 30 {
		t.Errorf("new handle: %+v, want a reset counting all 300 gets", cr)
	}
	// An unknown (zero) handle on either side proves nothing.
	cur.Clients[0].Handle = [16]byte{}
	if cr := pools.Rates(prev, cur).Clients[0]; cr.Reset || cr.EphGetsOK != 20 {
		t.Errorf("unknown handle: %+v, want no reset", cr)
	}
}
