package pools_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/xentmem/xentmem/pools"
)

// benchHost returns a snapshot of n clients with npools pools each
// (alternately ephemeral and persistent) and a function that advances it
// by one tick in place: every counter moves and clients earn hits at
// different rates. Under pressure Xen also evicts pages and some puts
// fail, so the weight rule runs.
func benchHost(n, npools int, pressure bool) (*pools.Snapshot, func()) {
	s := &pools.Snapshot{
		Time:   t0,
		Host:   pools.Host{TotalKiB: 256 * giB, FreeKiB: 24 * giB, FreeableKiB: 40 * giB},
		Global: pools.Global{EphPages: uint64(n) * 20000},
	}
	for i := range n {
		c := pools.Client{DomID: uint16(i + 1), Name: fmt.Sprintf("vm%d", i+1), Weight: 50, EphPages: 20000, EphMax: 30000}
		for k := range npools {
			p := pools.Pool{ID: k, Persistent: k%2 == 1, Pages: 10000}
			c.Pools = append(c.Pools, p)
		}
		s.Clients = append(s.Clients, c)
	}
	advance := func() {
		s.Time = s.Time.Add(tick)
		var failed uint64
		if pressure {
			s.Global.Evictions += 1000
			s.Global.EphPuts += 5000
			failed = 10
		}
		s.Global.Ops += 10000
		for i := range s.Clients {
			c := &s.Clients[i]
			hits := uint64(i%7) * 100
			c.EphGets += hits
			for k := range c.Pools {
				p := &c.Pools[k]
				p.Puts += 200
				p.PutsOK += 200 - failed
				p.PutsFailed += failed
				p.Gets += 150
				p.GetsOK += hits / 4
				p.Flushes += 5
			}
		}
	}
	return s, advance
}

// BenchmarkStep measures one policy step. "steady" decides nothing;
// "pressure" re-weights a third of the clients every HoldTicks ticks.
func BenchmarkStep(b *testing.B) {
	for _, sz := range []struct {
		clients, pools int
		pressure       bool
	}{{50, 4, false}, {500, 4, false}, {500, 4, true}, {500, 16, false}, {500, 16, true}} {
		mode := map[bool]string{false: "steady", true: "pressure"}[sz.pressure]
		b.Run(fmt.Sprintf("clients=%d,pools=%d,%s", sz.clients, sz.pools, mode), func(b *testing.B) {
			p := mustPolicy(b, nil)
			s, advance := benchHost(sz.clients, sz.pools, sz.pressure)
			for range 5 { // warm up: averages, buffers
				p.Step(*s)
				advance()
			}
			b.ReportAllocs()
			for b.Loop() {
				p.Step(*s)
				advance()
			}
		})
	}
}

func BenchmarkRates(b *testing.B) {
	s, advance := benchHost(500, 4, true)
	prev := *s
	prev.Clients = append([]pools.Client(nil), s.Clients...)
	for i := range prev.Clients {
		prev.Clients[i].Pools = append([]pools.Pool(nil), s.Clients[i].Pools...)
	}
	advance()
	b.ReportAllocs()
	for b.Loop() {
		_ = pools.Rates(prev, *s)
	}
}

// TestStepAllocations checks that a steady-state Step that decides
// nothing allocates nothing: the policy reuses its buffers.
func TestStepAllocations(t *testing.T) {
	p := mustPolicy(t, nil)
	s, advance := benchHost(500, 4, false)
	for range 5 {
		if acts := p.Step(*s); acts != nil {
			t.Fatalf("warm-up decided %d actions, first %v", len(acts), acts[0])
		}
		advance()
	}
	allocs := testing.AllocsPerRun(50, func() {
		if acts := p.Step(*s); acts != nil {
			t.Fatalf("decided %d actions, first %v", len(acts), acts[0])
		}
		advance()
	})
	if allocs != 0 {
		t.Errorf("Step allocates %v times per call, want 0", allocs)
	}
}

// TestStepLongRun drives 500 clients for many ticks with the weight rule
// active and checks that the weights stay within bounds.
func TestStepLongRun(t *testing.T) {
	p := mustPolicy(t, nil)
	s, advance := benchHost(500, 4, true)
	start := s.Time
	changes := 0
	for range 100 {
		for _, a := range p.Step(*s) {
			if a.Kind != pools.ActionSetWeight {
				t.Fatalf("unexpected %v", a)
			}
			if a.Weight > pools.DefaultWeightMax {
				t.Fatalf("weight out of bounds: %v", a)
			}
			s.Clients[a.DomID-1].Weight = a.Weight
			changes++
		}
		advance()
	}
	if changes == 0 {
		t.Error("no weight changes in a run with evictions and uneven yields")
	}
	if s.Time.Sub(start) != 100*time.Duration(tick) {
		t.Fatal("clock")
	}
}
