package pools_test

import (
	"strings"
	"testing"

	"github.com/xentmem/xentmem/pools"
)

// traffic advances the counters of dom1 (a reader: 100 puts, 60 hits per
// tick) and dom2 (a stream: 400 puts, 0 hits per tick), and the global
// ephemeral put counter.
func traffic(f *fakeHost) {
	for _, c := range []struct {
		dom        uint16
		puts, hits uint64
	}{{1, 100, 60}, {2, 400, 0}} {
		cl := f.client(c.dom)
		if cl.Frozen {
			continue
		}
		p := &cl.Pools[0]
		p.Puts += c.puts
		p.PutsOK += c.puts
		p.Gets += 100
		p.GetsOK += c.hits
		f.snap.Global.EphPuts += c.puts
	}
}

func TestPolicyScanResistance(t *testing.T) {
	f := newFakeHost(100*miB, 300*miB,
		pools.Client{DomID: 1, Pools: []pools.Pool{ephPool(0, 1000, 0, 0, 0, 0)}},
		pools.Client{DomID: 2, Pools: []pools.Pool{ephPool(0, 1000, 0, 0, 0, 0)}},
		pools.Client{DomID: 3, Priority: 5, Pools: []pools.Pool{ephPool(0, 1000, 0, 0, 0, 0)}}, // protected
	)
	p := mustPolicy(t, &pools.PolicyConfig{
		Watermarks: testWatermarks, // 100 MiB available: between low and high, tmem is memory-bound
		Compress:   pools.CompressPolicy{Disabled: true},
		Weights:    pools.WeightPolicy{Disabled: true},
	})
	step := func(f *fakeHost) { traffic(f) }
	var ticks []tickSpec
	ticks = append(ticks, tickSpec{}, tickSpec{set: step}, tickSpec{set: step}) // warm-up: 3 intervals
	ticks = append(ticks, tickSpec{set: step, want: []string{"freeze 2"}})      // the stream, not the reader
	ticks = append(ticks, tickSpec{set: step}, tickSpec{set: step})
	// Calm for 5×ThawTicks (15) ticks thaws the stream; not before.
	ticks = append(ticks, tickSpec{set: func(f *fakeHost) { free(200, 300)(f); traffic(f) }})
	for i := 0; i < 13; i++ {
		ticks = append(ticks, tickSpec{set: step})
	}
	ticks = append(ticks, tickSpec{set: step, want: []string{"thaw 2"}}, tickSpec{set: step})
	runTicks(t, p, f, ticks)
	if got := p.Frozen(); len(got) != 0 {
		t.Errorf("Frozen() = %v", got)
	}
}

// A streaming client is thawed after ProbeTicks to be measured again, even
// while tmem stays short of memory, and its freeze reason says why.
func TestPolicyScanResistanceProbe(t *testing.T) {
	f := newFakeHost(100*miB, 300*miB,
		pools.Client{DomID: 1, Pools: []pools.Pool{ephPool(0, 1000, 0, 0, 0, 0)}},
		pools.Client{DomID: 2, Pools: []pools.Pool{ephPool(0, 1000, 0, 0, 0, 0)}},
	)
	p := mustPolicy(t, &pools.PolicyConfig{
		Watermarks: testWatermarks,
		Compress:   pools.CompressPolicy{Disabled: true},
		Weights:    pools.WeightPolicy{Disabled: true},
		Freeze:     pools.FreezePolicy{Streams: pools.StreamPolicy{ProbeTicks: 5}},
	})
	var reasons []string
	for i := 0; i < 12; i++ {
		traffic(f)
		acts := p.Step(f.take())
		for _, a := range acts {
			reasons = append(reasons, a.Kind.String()+" "+a.Reason)
		}
		f.apply(acts)
		f.now = f.now.Add(tick)
	}
	if len(reasons) < 3 || !strings.HasPrefix(reasons[0], "freeze scan resistance") ||
		!strings.Contains(reasons[1], "measure it again") || !strings.HasPrefix(reasons[2], "freeze") {
		t.Errorf("freeze, probe thaw, freeze again expected; got %q", reasons)
	}
}
