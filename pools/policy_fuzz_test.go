package pools_test

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/xentmem/xentmem/pools"
)

// byteReader hands out bytes and returns 0 once the input is used up.
type byteReader struct {
	b []byte
	i int
}

func (r *byteReader) next() byte {
	if r.i >= len(r.b) {
		return 0
	}
	r.i++
	return r.b[r.i-1]
}

func (r *byteReader) done() bool { return r.i >= len(r.b) }

// decodeStep turns bytes into the next snapshot of a sequence: the clock
// may stand still or go back, counters are absolute (so they go either
// way), domain ids repeat within a snapshot, and flags are arbitrary. It
// also says whether to make a reservation before the step.
func decodeStep(r *byteReader, at time.Time) (pools.Snapshot, time.Time, bool) {
	at = at.Add(time.Duration(int8(r.next())) * time.Second)
	big := func() uint64 { return uint64(r.next()) << (r.next() % 24) }
	s := pools.Snapshot{
		Time: at,
		Host: pools.Host{TotalKiB: 4 * giB, FreeKiB: uint64(r.next()) * 4 * miB,
			FreeableKiB: uint64(r.next()) * 4 * miB, OutstandingKiB: uint64(r.next()%8) * 16 * miB},
		Global: pools.Global{Evictions: big(), EphPuts: big(), EphPages: big(), Ops: big(), AllocFailed: big()},
	}
	for range r.next() % 6 {
		flags := r.next()
		c := pools.Client{DomID: uint16(flags % 8), Weight: uint32(r.next()), Frozen: flags&0x10 != 0,
			Compress: flags&0x20 != 0, Priority: int(int8(r.next())) % 3, EphPages: big(), EphMax: big(), EphGets: big()}
		if flags&0x40 != 0 {
			c.WeightMin, c.WeightMax = uint32(r.next()), uint32(r.next())
		}
		for k := range r.next() % 4 {
			pf := r.next()
			c.Pools = append(c.Pools, pools.Pool{ID: int(k), Persistent: pf&1 != 0, Shared: pf&2 != 0,
				Pages: big(), Puts: big(), PutsOK: big(), PutsFailed: big(), Gets: big(), GetsOK: big()})
		}
		s.Clients = append(s.Clients, c)
	}
	return s, at, r.next()%5 == 0
}

// checkStep verifies what must hold after any step.
func checkStep(t *testing.T, p *pools.Policy, s pools.Snapshot, acts []pools.Action) {
	t.Helper()
	cfg := p.Config()
	finite01 := func(what string, v float64) {
		if !(v >= 0 && v <= 1) {
			t.Fatalf("%s = %v, want in [0, 1]", what, v)
		}
	}
	nonneg := func(what string, v float64) {
		if !(v >= 0) || math.IsInf(v, 0) {
			t.Fatalf("%s = %v, want finite ≥ 0", what, v)
		}
	}
	// With duplicate ids (bad input) any entry may be the one acted on:
	// keep the loosest bounds and the lowest priority.
	byID := map[uint16]pools.Client{}
	for _, c := range s.Clients {
		if o, ok := byID[c.DomID]; ok && o.Priority < c.Priority {
			c.Priority = o.Priority
		}
		byID[c.DomID] = c
	}
	flushes := 0
	for _, a := range acts {
		if a.Reason == "" {
			t.Fatalf("%v has no reason", a)
		}
		switch a.Kind {
		case pools.ActionFlush:
			flushes++
			if a.DomID != pools.AllClients || a.KiB == 0 || a.KiB > s.Host.FreeableKiB {
				t.Fatalf("%v with %d KiB freeable", a, s.Host.FreeableKiB)
			}
		case pools.ActionSetWeight:
			ok := false
			for _, c := range s.Clients {
				lo, hi := cfg.Weights.Min, cfg.Weights.Max
				if c.WeightMax > 0 && c.WeightMin <= c.WeightMax {
					lo, hi = c.WeightMin, c.WeightMax
				}
				ok = ok || (c.DomID == a.DomID && a.Weight >= lo && a.Weight <= hi)
			}
			if !ok {
				t.Fatalf("%v outside its bounds", a)
			}
		case pools.ActionFreeze:
			if c, ok := byID[a.DomID]; ok && a.DomID != pools.AllClients && c.Priority > cfg.Freeze.MaxPriority &&
				a.Reason != "was frozen before the reservation" {
				t.Fatalf("%v froze a protected client (priority %d)", a, c.Priority)
			}
		case pools.ActionThaw, pools.ActionSetCompress:
		default:
			t.Fatalf("unknown action %v", a)
		}
	}
	if flushes > 1 {
		t.Fatalf("%d flushes in one step: %v", flushes, acts)
	}
	a := p.Assessment()
	pr := &a.Pressure
	for _, v := range []float64{pr.Memory, pr.Evictions, pr.FailedPuts, pr.Score} {
		finite01("host term", v)
	}
	for _, c := range pr.Clients {
		finite01("client over", c.Over)
		finite01("client score", c.Score)
		finite01("client hit ratio", c.HitRatio)
		nonneg("client yield", c.Yield)
	}
	for _, pp := range pr.Pools {
		finite01("pool score", pp.Score)
	}
	if len(pr.Clients) != len(s.Clients) || len(a.Rates.Clients) != len(s.Clients) {
		t.Fatalf("%d pressure and %d rate entries for %d clients", len(pr.Clients), len(a.Rates.Clients), len(s.Clients))
	}
	for _, c := range a.Rates.Clients {
		nonneg("client Ge/s", c.EphGetsOK)
		nonneg("client puts/s", c.Ephemeral.Puts)
	}
}

// runBytes plays a byte-encoded sequence through a policy (dry-run or not
// by the first byte) and checks every step.
func runBytes(t *testing.T, data []byte) {
	r := &byteReader{b: data}
	p := mustPolicy(t, &pools.PolicyConfig{DryRun: r.next()&1 != 0, Weights: pools.WeightPolicy{Mode: pools.WeightMode(r.next() & 1)}})
	at := t0
	var held []*pools.Reservation
	for step := 0; step < 64 && !r.done(); step++ {
		s, next, reserve := decodeStep(r, at)
		at = next
		if reserve {
			held = append(held, p.Reserve(at, "fuzz", uint64(r.next())*4*miB, at.Add(time.Duration(r.next())*time.Second)))
		}
		if len(held) > 0 && r.next()%7 == 0 {
			p.Release(at, held[0])
			held = held[1:]
		}
		acts := p.Step(s)
		checkStep(t, p, s, acts)
	}
}

func FuzzPolicy(f *testing.F) {
	f.Add([]byte{0, 0, 10, 10, 200, 3, 0, 5, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 1, 5, 0, 0, 1, 2, 3})
	f.Add([]byte{1, 1, 10, 2, 0, 0, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 5, 0x51, 3, 7, 4, 1, 1, 1, 2, 3, 1, 250, 3, 2})
	f.Add([]byte{0, 1, 246, 1, 1, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(runBytes)
}

// TestPolicyRandom plays seeded random byte sequences through runBytes, so
// the invariants are checked on every run, not only when fuzzing.
func TestPolicyRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 300 {
		data := make([]byte, 64+r.IntN(2000))
		for i := range data {
			data[i] = byte(r.Uint32())
		}
		runBytes(t, data)
	}
}
