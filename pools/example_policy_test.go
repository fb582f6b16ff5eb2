package pools_test

import (
	"fmt"
	"time"

	"github.com/xentmem/xentmem/pools"
)

// Example_policy drives a dry-run policy with three snapshots: calm, free
// memory below the low watermark, then below the critical one with
// nothing left to flush.
func Example_policy() {
	p, err := pools.NewPolicy(&pools.PolicyConfig{
		Watermarks: pools.Watermarks{
			Critical: pools.Level{KiB: 64 << 10},  // 64 MiB
			Low:      pools.Level{KiB: 256 << 10}, // 256 MiB
			High:     pools.Level{KiB: 512 << 10}, // 512 MiB
		},
		DryRun: true,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	snap := func(tick int, freeMiB, freeableMiB uint64) pools.Snapshot {
		return pools.Snapshot{
			Time: start.Add(time.Duration(tick) * 10 * time.Second),
			Host: pools.Host{TotalKiB: 8 << 20, FreeKiB: freeMiB << 10, FreeableKiB: freeableMiB << 10},
			Clients: []pools.Client{
				{DomID: 1, Name: "web", Priority: 10, Pools: []pools.Pool{{ID: 0}}},
				{DomID: 2, Name: "batch", Pools: []pools.Pool{{ID: 0}}},
			},
		}
	}
	for i, s := range []pools.Snapshot{snap(0, 1024, 900), snap(1, 200, 900), snap(2, 40, 0)} {
		for _, a := range p.Step(s) {
			fmt.Printf("tick %d: %v\n", i, a)
		}
		fmt.Printf("tick %d: zone %v, host pressure %.2f\n", i, p.Assessment().Pressure.Zone, p.Assessment().Pressure.Score)
	}
	// Output:
	// tick 0: zone calm, host pressure 0.00
	// tick 1: would flush 319488 KiB from all clients: 200.0 MiB available is below the low watermark 256.0 MiB: flushing toward the high watermark 512.0 MiB (900.0 MiB freeable)
	// tick 1: zone low, host pressure 0.65
	// tick 2: would freeze dom2 (batch): 40.0 MiB available is below the critical watermark 64.0 MiB: freezing priority 0
	// tick 2: zone critical, host pressure 1.00
}

// ExampleReserver makes 1 GiB available for a domain about to start, the
// way xend did: freeze, flush, check, thaw.
func ExampleReserver() {
	rv, err := pools.NewReserver(nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := rv.Reserve(now, "web2", 1<<20, now.Add(30*time.Second))

	host := pools.Host{TotalKiB: 8 << 20, FreeKiB: 300 << 10, FreeableKiB: 2 << 20}
	for r.State() == pools.ReservePending {
		for _, a := range rv.Step(pools.Snapshot{Time: now, Host: host}) {
			fmt.Println(a)
			if a.Kind == pools.ActionFlush { // what Xen would do
				host.FreeKiB += a.KiB
				host.FreeableKiB -= a.KiB
			}
		}
		now = now.Add(time.Second)
	}
	fmt.Println(r)
	// Output:
	// freeze all clients: reserving memory for web2: stop tmem from growing while flushing
	// flush 741376 KiB from all clients: reserving memory for web2: 300.0 MiB available, 1024.0 MiB needed, 2048.0 MiB freeable
	// thaw all clients: reservations answered: tmem may grow again
	// reservation of 1024.0 MiB for web2: done (1024.0 MiB available, 1024.0 MiB needed)
}

// ExampleRates computes per-second rates between two LIST snapshots.
func ExampleRates() {
	t := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	prev := pools.Snapshot{Time: t, Clients: []pools.Client{{DomID: 3,
		Pools: []pools.Pool{{ID: 0, Puts: 6180, PutsOK: 6120, PutsFailed: 60, Gets: 5310, GetsOK: 1974}}}}}
	cur := pools.Snapshot{Time: t.Add(5 * time.Second), Clients: []pools.Client{{DomID: 3,
		Pools: []pools.Pool{{ID: 0, Puts: 6680, PutsOK: 6520, PutsFailed: 160, Gets: 5810, GetsOK: 2374}}}}}
	rs := pools.Rates(prev, cur)
	e := rs.Clients[0].Ephemeral
	fmt.Printf("puts %.0f/s, failed %.0f/s, gets %.0f/s, hits %.0f/s, hit ratio %.2f\n",
		e.Puts, e.PutsFailed, e.Gets, e.GetsOK, e.HitRatio)
	// Output:
	// puts 100/s, failed 20/s, gets 100/s, hits 80/s, hit ratio 0.80
}
