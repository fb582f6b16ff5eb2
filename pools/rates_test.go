package pools_test

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/xentmem/xentmem/pools"
)

var ignoreUnexported = cmpopts.IgnoreUnexported(pools.ClientRates{})

func TestRates(t *testing.T) {
	// dom1 over 10 s: 600 puts (100 failed), 400 gets (300 hits), 50
	// successful ephemeral gets counted by Ge.
	prev := pools.Snapshot{
		Time:   t0,
		Global: pools.Global{Evictions: 1000, EphPuts: 5000, Ops: 100},
		Clients: []pools.Client{{
			DomID: 1, EphGets: 100, EphMax: 10,
			Pools: []pools.Pool{ephPool(0, 10, 1000, 100, 1000, 500), persPool(1, 5, 200)},
		}},
	}
	cur := prev
	cur.Time = t0.Add(10 * time.Second)
	cur.Global = pools.Global{Evictions: 1200, EphPuts: 5500, Ops: 300}
	cur.Clients = []pools.Client{{
		DomID: 1, EphGets: 150, EphMax: 10,
		Pools: []pools.Pool{ephPool(0, 10, 1600, 200, 1400, 800), persPool(1, 5, 300)},
	}}
	ephRates := pools.OpRates{Puts: 60, PutsOK: 50, PutsFailed: 10, Gets: 40, GetsOK: 30, GetsFailed: 10, HitRatio: 0.75}
	persRates := pools.OpRates{Puts: 10, PutsOK: 10}
	base := pools.RateSet{
		From: t0, To: t0.Add(10 * time.Second), Interval: 10 * time.Second,
		Global: pools.GlobalRates{
			Ephemeral: ephRates, Persistent: persRates,
			EphPutsOK: 50, Evictions: 20, Ops: 20,
		},
		Clients: []pools.ClientRates{{DomID: 1, Ephemeral: ephRates, Persistent: persRates, EphGetsOK: 5}},
		Pools: []pools.PoolRates{
			{DomID: 1, PoolID: 0, OpRates: ephRates},
			{DomID: 1, PoolID: 1, Persistent: true, OpRates: persRates},
		},
		Gone: []uint16{},
	}

	tests := []struct {
		name string
		prev func() pools.Snapshot
		cur  func() pools.Snapshot
		want func(rs pools.RateSet) pools.RateSet
	}{
		{
			name: "steady",
			want: func(rs pools.RateSet) pools.RateSet { return rs },
		},
		{
			name: "same time gives no rates",
			cur:  func() pools.Snapshot { s := cur; s.Time = t0; return s },
			want: zeroRates(t0, t0),
		},
		{
			name: "time going backwards gives no rates",
			cur:  func() pools.Snapshot { s := cur; s.Time = t0.Add(-time.Second); return s },
			want: zeroRates(t0, t0.Add(-time.Second)),
		},
		{
			name: "zero previous time gives no rates",
			prev: func() pools.Snapshot { s := prev; s.Time = time.Time{}; return s },
			want: zeroRates(time.Time{}, t0.Add(10*time.Second)),
		},
		{
			name: "pool recreated in its slot counts from zero",
			prev: func() pools.Snapshot {
				s := prev
				s.Clients = []pools.Client{prev.Clients[0]}
				s.Clients[0].Pools = []pools.Pool{ephPool(0, 10, 9000, 100, 9000, 500), persPool(1, 5, 200)}
				return s
			},
			want: func(rs pools.RateSet) pools.RateSet {
				// Everything the new pool did: 1600 puts, 200 failed, 1400 gets, 800 hits.
				r := pools.OpRates{Puts: 160, PutsOK: 140, PutsFailed: 20, Gets: 140, GetsOK: 80, GetsFailed: 60, HitRatio: 80.0 / 140}
				rs.Pools = []pools.PoolRates{{DomID: 1, PoolID: 0, OpRates: r, Reset: true}, rs.Pools[1]}
				rs.Clients = []pools.ClientRates{rs.Clients[0]}
				rs.Clients[0].Ephemeral = r
				rs.Global.Ephemeral = r
				return rs
			},
		},
		{
			name: "client recreated under the same domid",
			prev: func() pools.Snapshot {
				s := prev
				s.Clients = []pools.Client{prev.Clients[0]}
				s.Clients[0].EphGets = 100000
				return s
			},
			want: func(rs pools.RateSet) pools.RateSet {
				e := pools.OpRates{Puts: 160, PutsOK: 140, PutsFailed: 20, Gets: 140, GetsOK: 80, GetsFailed: 60, HitRatio: 80.0 / 140}
				p := pools.OpRates{Puts: 30, PutsOK: 30}
				rs.Clients = []pools.ClientRates{{DomID: 1, Ephemeral: e, Persistent: p, EphGetsOK: 15, Reset: true}}
				rs.Pools = []pools.PoolRates{
					{DomID: 1, PoolID: 0, OpRates: e, Reset: true},
					{DomID: 1, PoolID: 1, Persistent: true, OpRates: p, Reset: true},
				}
				rs.Global.Ephemeral, rs.Global.Persistent = e, p
				return rs
			},
		},
		{
			name: "new client and gone client",
			cur: func() pools.Snapshot {
				s := cur
				s.Clients = []pools.Client{{DomID: 2, Pools: []pools.Pool{ephPool(0, 1, 50, 0, 5, 5)}}}
				return s
			},
			want: func(rs pools.RateSet) pools.RateSet {
				rs.Clients = []pools.ClientRates{{DomID: 2, New: true}}
				rs.Pools = []pools.PoolRates{{DomID: 2, PoolID: 0, New: true}}
				rs.Global.Ephemeral, rs.Global.Persistent = pools.OpRates{}, pools.OpRates{}
				rs.Gone = []uint16{1}
				return rs
			},
		},
		{
			name: "new pool",
			cur: func() pools.Snapshot {
				s := cur
				s.Clients = []pools.Client{cur.Clients[0]}
				s.Clients[0].Pools = append(s.Clients[0].Pools[:2:2], ephPool(2, 0, 7, 0, 0, 0))
				return s
			},
			want: func(rs pools.RateSet) pools.RateSet {
				rs.Pools = append(rs.Pools[:2:2], pools.PoolRates{DomID: 1, PoolID: 2, New: true})
				return rs
			},
		},
		{
			name: "global counters reset",
			cur: func() pools.Snapshot {
				s := cur
				s.Global = pools.Global{Evictions: 30, EphPuts: 40, Ops: 50}
				return s
			},
			want: func(rs pools.RateSet) pools.RateSet {
				g := rs.Global
				rs.Global = pools.GlobalRates{Ephemeral: g.Ephemeral, Persistent: g.Persistent,
					EphPutsOK: 4, Evictions: 3, Ops: 5, Reset: true}
				return rs
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, c := prev, cur
			if tt.prev != nil {
				p = tt.prev()
			}
			if tt.cur != nil {
				c = tt.cur()
			}
			got := pools.Rates(p, c)
			want := tt.want(cloneRates(base))
			if d := cmp.Diff(want, got, ignoreUnexported, cmpopts.EquateEmpty()); d != "" {
				t.Errorf("Rates mismatch (-want +got):\n%s", d)
			}
		})
	}
}

// zeroRates returns a RateSet mutator for an interval with no rates.
func zeroRates(from, to time.Time) func(pools.RateSet) pools.RateSet {
	return func(rs pools.RateSet) pools.RateSet {
		return pools.RateSet{
			From: from, To: to,
			Clients: []pools.ClientRates{{DomID: 1}},
			Pools:   []pools.PoolRates{{DomID: 1, PoolID: 0}, {DomID: 1, PoolID: 1, Persistent: true}},
		}
	}
}

func cloneRates(rs pools.RateSet) pools.RateSet {
	rs.Clients = append([]pools.ClientRates(nil), rs.Clients...)
	rs.Pools = append([]pools.PoolRates(nil), rs.Pools...)
	rs.Gone = append([]uint16(nil), rs.Gone...)
	return rs
}

func TestRatesSharedPoolCountedOnce(t *testing.T) {
	shared := func(puts uint64) pools.Pool {
		p := ephPool(1, 10, puts, 0, 0, 0)
		p.Shared, p.UUID = true, [2]uint64{0x8899aabbccddeeff, 0x11223344556677}
		return p
	}
	snap := func(at time.Duration, puts uint64) pools.Snapshot {
		return pools.Snapshot{Time: t0.Add(at), Clients: []pools.Client{
			{DomID: 1, Pools: []pools.Pool{shared(puts)}},
			{DomID: 2, Pools: []pools.Pool{shared(puts)}},
		}}
	}
	rs := pools.Rates(snap(0, 100), snap(time.Second, 150))
	if got := rs.Global.Ephemeral.Puts; got != 50 {
		t.Errorf("global ephemeral puts/s = %v, want 50 (shared pool once)", got)
	}
	for i := range rs.Clients {
		if got := rs.Clients[i].Ephemeral.Puts; got != 50 {
			t.Errorf("client %d ephemeral puts/s = %v, want 50", rs.Clients[i].DomID, got)
		}
		if got := len(rs.PoolsOf(i)); got != 1 {
			t.Errorf("client %d has %d pool rates, want 1", rs.Clients[i].DomID, got)
		}
	}
}

// TestRatesRandom checks, over seeded random snapshot pairs with counters
// moving either way, that no rate is negative or non-finite and that hit
// ratios stay in [0, 1].
func TestRatesRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 500 {
		a, b := randomSnapshot(r, t0), randomSnapshot(r, t0.Add(time.Duration(r.IntN(20)-5)*time.Second))
		rs := pools.Rates(a, b)
		check := func(what string, v float64) {
			if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
				t.Fatalf("%s = %v", what, v)
			}
		}
		checkOp := func(what string, o pools.OpRates) {
			for _, v := range []float64{o.Puts, o.PutsOK, o.PutsFailed, o.Gets, o.GetsOK, o.GetsFailed} {
				check(what, v)
			}
			if o.HitRatio < 0 || o.HitRatio > 1 {
				t.Fatalf("%s hit ratio %v", what, o.HitRatio)
			}
		}
		checkOp("global eph", rs.Global.Ephemeral)
		checkOp("global pers", rs.Global.Persistent)
		for _, v := range []float64{rs.Global.Evictions, rs.Global.EphPutsOK, rs.Global.Ops, rs.Global.AllocFailed} {
			check("global", v)
		}
		for _, c := range rs.Clients {
			checkOp("client", c.Ephemeral)
			check("client Ge", c.EphGetsOK)
		}
		for _, p := range rs.Pools {
			checkOp("pool", p.OpRates)
			check("pool flushes", p.Flushes)
		}
		if len(rs.Clients) != len(b.Clients) {
			t.Fatalf("%d client rates for %d clients", len(rs.Clients), len(b.Clients))
		}
	}
}

// randomSnapshot returns a snapshot with a few clients drawn from a small
// id space (so clients appear, disappear and repeat) and arbitrary
// counters.
func randomSnapshot(r *rand.Rand, at time.Time) pools.Snapshot {
	n := func() uint64 { return r.Uint64N(1000) }
	s := pools.Snapshot{
		Time: at,
		Host: pools.Host{TotalKiB: 4 * giB, FreeKiB: r.Uint64N(4 * giB), FreeableKiB: r.Uint64N(giB), OutstandingKiB: r.Uint64N(64 * miB)},
		Global: pools.Global{Evictions: n(), EphPuts: n(), Ops: n(), FailedOps: n(), AllocFailed: n(),
			EphPages: n(), EvictionAttempts: n()},
	}
	for range r.IntN(6) {
		c := pools.Client{DomID: uint16(r.IntN(8)), Weight: uint32(r.IntN(3) * 50), EphGets: n(), PersPuts: n(),
			EphPages: n(), EphMax: n(), Priority: r.IntN(3) - 1, Frozen: r.IntN(4) == 0}
		for k := range r.IntN(4) {
			p := pools.Pool{ID: k, Persistent: r.IntN(3) == 0, Shared: r.IntN(5) == 0, Pages: n(),
				Puts: n(), PutsOK: n(), PutsFailed: n(), Gets: n(), GetsOK: n(), Flushes: n(), FlushesOK: n()}
			c.Pools = append(c.Pools, p)
		}
		s.Clients = append(s.Clients, c)
	}
	return s
}
