package main

import (
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"go.uber.org/zap"

	"github.com/xentmem/xentmem/hypercall/xensim"
	"github.com/xentmem/xentmem/pools"
	"github.com/xentmem/xentmem/xenctl"
)

// evalSpec is a seeded, deterministic policy evaluation: a simulated host,
// a mix of guests, and a large domain start at a fixed time. It runs in
// virtual time (one tick = one second of workload), so it is repeatable and
// needs no wall-clock waiting.
type evalSpec struct {
	Version   string
	MemoryMiB uint64
	Dom0MiB   uint64
	Guests    []SimGuest
	Ticks     int    // virtual seconds
	StartAt   int    // tick of the large domain start
	StartMiB  uint64 // its memory
	Seed      uint64
	Policy    PolicyConfig
}

// defaultEvalSpec is the mix of `make eval-policy`: a 2 GiB host, 8 guests
// of 128 MiB with Zipf and scan cleancache workloads whose working sets
// beyond their page caches add up to about three times the ~740 MiB tmem
// can use, and a 512 MiB domain started at minute 4.
func defaultEvalSpec() evalSpec {
	g := func(name, wl string, mem, work, cache uint64, skew, rate float64, prio int) SimGuest {
		return SimGuest{Name: name, MemoryMiB: mem, Workload: wl, WorkingMiB: work, CacheMiB: cache, Skew: skew, Rate: rate, Priority: prio}
	}
	return evalSpec{
		Version: "4.12.4", MemoryMiB: 2048, Dom0MiB: 256, Seed: 1,
		Guests: []SimGuest{
			g("web1", "zipf", 128, 128, 24, 1.01, 3000, 2),
			g("web2", "zipf", 128, 128, 24, 1.02, 3000, 2),
			g("web3", "zipf", 128, 112, 24, 1.01, 3000, 2),
			g("db1", "zipf", 128, 160, 32, 1.01, 3000, 3),
			g("db2", "zipf", 128, 144, 32, 1.03, 3000, 3),
			g("batch1", "scan", 128, 640, 16, 0, 3000, 0),
			g("batch2", "scan", 128, 512, 16, 0, 3000, 0),
			g("batch3", "scan", 128, 512, 16, 0, 3000, 0),
		},
		Ticks: 360, StartAt: 240, StartMiB: 512,
		Policy: defaultConfig().Policy,
	}
}

// evalResult is what one run measured.
type evalResult struct {
	Name       string
	Gets, Hits uint64 // tmem GETs by the guests, and hits
	Avoided    uint64 // disk reads tmem avoided
	// GetsBefore, HitsBefore count up to the large domain start: the
	// window in which both runs have the same memory (afterwards the
	// policy run has given 512 MiB to the new domain, the other has not).
	GetsBefore, HitsBefore uint64
	MinFreeMiB             uint64 // lowest host free memory seen at a tick
	Breaches               int    // ticks below the low watermark
	LongestBreach          int    // longest run of consecutive ticks below it
	StartOK                bool   // the large domain started
	StartNote              string
	Actions                map[string]uint64
}

// HitRatioBefore is the hit ratio up to the large domain start.
func (r evalResult) HitRatioBefore() float64 {
	return div(float64(r.HitsBefore), float64(r.GetsBefore))
}

// HitRatio is the aggregate ephemeral hit ratio.
func (r evalResult) HitRatio() float64 {
	if r.Gets == 0 {
		return 0
	}
	return float64(r.Hits) / float64(r.Gets)
}

// runEval runs spec once, with the daemon's policy or without a daemon
// (Xen's default behaviour: nobody flushes, weights stay 0).
func runEval(spec evalSpec, withPolicy bool, log *zap.Logger) (evalResult, error) {
	res := evalResult{Name: "no daemon (Xen default)", Actions: map[string]uint64{}, MinFreeMiB: ^uint64(0)}
	if withPolicy {
		res.Name = "xen-tmemd policy"
	}
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := func() time.Time { return clock }
	sim, err := xensim.New(&xensim.Config{Version: spec.Version, TotalPages: spec.MemoryMiB * 256,
		Dom0MemoryKiB: spec.Dom0MiB * 1024, Clock: now})
	if err != nil {
		return res, err
	}
	guests := newSimGuests(sim, SimConfig{Seed: spec.Seed, Speed: 1, Guests: spec.Guests}, log)
	var running []*simGuest
	for i, gc := range spec.Guests {
		r, err := guests.start(i, gc)
		if err != nil {
			return res, fmt.Errorf("start %s: %w", gc.Name, err)
		}
		running = append(running, r)
	}
	defer func() {
		for _, r := range running {
			guests.stop(r)
		}
	}()
	xen, err := xenctl.New(sim, nil)
	if err != nil {
		return res, err
	}
	defer xen.Close()
	cfg := defaultConfig()
	cfg.Policy = spec.Policy
	d, err := newDaemon(log, xen, newNames(guests.names), &cfg, "sim", now)
	if err != nil {
		return res, err
	}
	lim := pools.Watermarks{
		Critical: pools.Level{Percent: pools.DefaultCriticalPercent},
		Low:      pools.Level{Percent: pools.DefaultLowPercent},
		High:     pools.Level{Percent: pools.DefaultHighPercent},
	}.Limits(spec.MemoryMiB * 1024)
	var reservation *pools.Reservation
	run := 0
	for t := 0; t < spec.Ticks; t++ {
		clock = clock.Add(time.Second)
		for _, r := range running {
			if err := r.load.Run(int(r.cfg.Rate)); err != nil {
				return res, fmt.Errorf("%s: %w", r.cfg.Name, err)
			}
		}
		if withPolicy {
			if t == spec.StartAt {
				reservation = d.policy.Reserve(clock, "big", spec.StartMiB*1024, clock.Add(30*time.Second))
			}
			d.tick()
		}
		_, free := sim.Physinfo()
		freeKiB := free * 4
		res.MinFreeMiB = min(res.MinFreeMiB, freeKiB/1024)
		if freeKiB < lim.LowKiB {
			res.Breaches++
			run++
			res.LongestBreach = max(res.LongestBreach, run)
		} else {
			run = 0
		}
		if t == spec.StartAt-1 {
			for _, r := range running {
				gets, hits, _ := r.load.stats()
				res.GetsBefore += gets
				res.HitsBefore += hits
			}
		}
		if t >= spec.StartAt && !res.StartOK && res.StartNote == "" {
			if reservation != nil && reservation.State() == pools.ReservePending {
				continue
			}
			_, err := sim.CreateDomain(xensim.DomainConfig{MemoryKiB: spec.StartMiB * 1024})
			switch {
			case err == nil:
				res.StartOK, res.StartNote = true, fmt.Sprintf("started at t=%ds", t)
			case errors.Is(err, xensim.ErrNoMemory):
				res.StartNote = fmt.Sprintf("failed at t=%ds: %v", t, err)
			default:
				return res, err
			}
			if reservation != nil {
				d.policy.Release(clock, reservation)
			}
		}
	}
	for _, r := range running {
		gets, hits, avoided := r.load.stats()
		res.Gets += gets
		res.Hits += hits
		res.Avoided += avoided
	}
	for k, v := range d.actions {
		res.Actions[k[0]] += v
	}
	return res, nil
}

// writeEval prints the two runs side by side with the ratios.
func writeEval(w io.Writer, spec evalSpec, pol, none evalResult) {
	fmt.Fprintf(w, "policy evaluation: Xen %s, %d MiB host, %d guests, %d virtual seconds, %d MiB domain started at t=%ds, seed %d\n\n",
		spec.Version, spec.MemoryMiB, len(spec.Guests), spec.Ticks, spec.StartMiB, spec.StartAt, spec.Seed)
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "\t%s\t%s\tratio\n", none.Name, pol.Name)
	fmt.Fprintf(tw, "tmem hits before the start (equal memory)\t%d\t%d\t%.2f×\n", none.HitsBefore, pol.HitsBefore, div(float64(pol.HitsBefore), float64(none.HitsBefore)))
	fmt.Fprintf(tw, "hit ratio before the start\t%.3f\t%.3f\t%.2f×\n", none.HitRatioBefore(), pol.HitRatioBefore(), div(pol.HitRatioBefore(), none.HitRatioBefore()))
	fmt.Fprintf(tw, "ephemeral hit ratio, whole run\t%.3f\t%.3f\t%.2f×\n", none.HitRatio(), pol.HitRatio(), div(pol.HitRatio(), none.HitRatio()))
	fmt.Fprintf(tw, "tmem hits = disk reads avoided, whole run\t%d\t%d\t%.2f×\n", none.Avoided, pol.Avoided, div(float64(pol.Avoided), float64(none.Avoided)))
	fmt.Fprintf(tw, "tmem gets\t%d\t%d\t\n", none.Gets, pol.Gets)
	fmt.Fprintf(tw, "minimum free memory (MiB)\t%d\t%d\t\n", none.MinFreeMiB, pol.MinFreeMiB)
	fmt.Fprintf(tw, "ticks below the low watermark\t%d\t%d\t\n", none.Breaches, pol.Breaches)
	fmt.Fprintf(tw, "longest breach (ticks)\t%d\t%d\t\n", none.LongestBreach, pol.LongestBreach)
	fmt.Fprintf(tw, "large domain start\t%s\t%s\t\n", okText(none), okText(pol))
	tw.Flush()
	fmt.Fprintf(w, "\npolicy actions: %v\n", pol.Actions)
}

func okText(r evalResult) string {
	if r.StartOK {
		return "ok (" + r.StartNote + ")"
	}
	return "FAILED"
}

func div(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}
