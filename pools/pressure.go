package pools

import (
	"fmt"
	"math"
)

// Level is one watermark, either absolute (KiB) or relative to the host's
// total memory (Percent, in (0, 100)). Exactly one of them is set.
type Level struct {
	KiB     uint64
	Percent float64
}

func (l Level) zero() bool { return l.KiB == 0 && l.Percent == 0 }

// kib returns the level in KiB on a host with totalKiB of memory.
func (l Level) kib(totalKiB uint64) uint64 {
	if l.Percent != 0 {
		return uint64(float64(totalKiB) * l.Percent / 100)
	}
	return l.KiB
}

// String returns "65536 KiB" or "5%".
func (l Level) String() string {
	if l.Percent != 0 {
		return fmt.Sprintf("%g%%", l.Percent)
	}
	return fmt.Sprintf("%d KiB", l.KiB)
}

// Watermarks are the host free-memory levels the policy works against:
// below Low it flushes tmem back up to High, below Critical it also freezes
// low-priority clients. All three are set, or none (the defaults).
type Watermarks struct {
	Critical, Low, High Level
}

// withDefaults validates w, or returns the defaults when w is zero.
func (w Watermarks) withDefaults() (Watermarks, error) {
	if w.Critical.zero() && w.Low.zero() && w.High.zero() {
		return Watermarks{
			Critical: Level{Percent: DefaultCriticalPercent},
			Low:      Level{Percent: DefaultLowPercent},
			High:     Level{Percent: DefaultHighPercent},
		}, nil
	}
	levels := [...]struct {
		name string
		l    Level
	}{{"critical", w.Critical}, {"low", w.Low}, {"high", w.High}}
	percent := w.Critical.Percent != 0
	for _, x := range levels {
		switch {
		case x.l.zero():
			return w, fmt.Errorf("%w: %s watermark is not set (set all three watermarks or none)", ErrConfig, x.name)
		case x.l.KiB != 0 && x.l.Percent != 0:
			return w, fmt.Errorf("%w: %s watermark sets both KiB and percent", ErrConfig, x.name)
		case (x.l.Percent != 0) != percent:
			return w, fmt.Errorf("%w: watermarks mix KiB and percent; use one kind for all three", ErrConfig)
		case percent && !(x.l.Percent > 0 && x.l.Percent < 100):
			return w, fmt.Errorf("%w: %s watermark %v%% is outside (0, 100)", ErrConfig, x.name, x.l.Percent)
		}
	}
	ordered := w.Critical.KiB < w.Low.KiB && w.Low.KiB < w.High.KiB
	if percent {
		ordered = w.Critical.Percent < w.Low.Percent && w.Low.Percent < w.High.Percent
	}
	if !ordered {
		return w, fmt.Errorf("%w: watermarks must satisfy critical < low < high, got %v, %v, %v",
			ErrConfig, w.Critical, w.Low, w.High)
	}
	return w, nil
}

// Limits resolves the watermarks for a host with totalKiB of memory. Zero
// watermarks resolve to the defaults.
func (w Watermarks) Limits(totalKiB uint64) Limits {
	if d, err := w.withDefaults(); err == nil {
		w = d
	}
	return Limits{
		CriticalKiB: w.Critical.kib(totalKiB),
		LowKiB:      w.Low.kib(totalKiB),
		HighKiB:     w.High.kib(totalKiB),
	}
}

// Limits are watermarks resolved to KiB.
type Limits struct {
	CriticalKiB, LowKiB, HighKiB uint64
}

// Zone returns where availKiB lies against the limits.
func (l Limits) Zone(availKiB uint64) Zone {
	switch {
	case availKiB < l.CriticalKiB:
		return ZoneCritical
	case availKiB < l.LowKiB:
		return ZoneLow
	case availKiB < l.HighKiB:
		return ZoneNormal
	}
	return ZoneCalm
}

// memory returns the memory term of the host score: 0 at or above High,
// 0.5 at Low, 1 at or below Critical, linear in between.
func (l Limits) memory(avail uint64) float64 {
	ramp := func(top, bottom uint64) float64 { // 0 at top, 1 at bottom
		if top <= bottom {
			return 1
		}
		return float64(top-avail) / float64(top-bottom)
	}
	switch l.Zone(avail) {
	case ZoneCalm:
		return 0
	case ZoneNormal:
		return 0.5 * ramp(l.HighKiB, l.LowKiB)
	case ZoneLow:
		return 0.5 + 0.5*ramp(l.LowKiB, l.CriticalKiB)
	}
	return 1
}

// Zone is the band available host memory is in.
type Zone uint8

const (
	ZoneCalm     Zone = iota // at or above the high watermark
	ZoneNormal               // between low and high
	ZoneLow                  // below low: flush
	ZoneCritical             // below critical: flush and freeze
)

// String returns "calm", "normal", "low" or "critical".
func (z Zone) String() string {
	switch z {
	case ZoneCalm:
		return "calm"
	case ZoneNormal:
		return "normal"
	case ZoneLow:
		return "low"
	case ZoneCritical:
		return "critical"
	}
	return fmt.Sprintf("Zone(%d)", uint8(z))
}

// Pressure is the pressure model of one snapshot. The formulas are in the
// package documentation. Clients follows the snapshot's client order;
// Pools lists only ephemeral pools.
type Pressure struct {
	Limits   Limits
	AvailKiB uint64 // Host.AvailKiB
	Zone     Zone
	// Memory, Evictions and FailedPuts are the three terms of Score.
	Memory     float64
	Evictions  float64
	FailedPuts float64
	// Score is the host pressure, 0 (calm) … 1.
	Score float64
	// Turnover is like Evictions but counts every page tmem lost,
	// including those the policy flushed: e/(e+p) with e all evictions/s.
	// It says tmem is memory-bound even while flushing keeps Memory low.
	Turnover float64
	// CompressScore = 1 − (1−Memory)(1−Turnover)(1−FailedPuts) drives
	// the compression rule: compression pays off whenever tmem turns its
	// pages over for lack of memory, whoever evicts them.
	CompressScore float64
	// CapacityPages is the ephemeral memory shared out as fair shares.
	CapacityPages uint64
	Clients       []ClientPressure
	Pools         []PoolPressure
}

// ClientPressure is one client's place in ephemeral memory.
type ClientPressure struct {
	DomID    uint16
	EphPages uint64
	// FairPages is the client's fair share of CapacityPages by weight;
	// 0 for a client without ephemeral pools.
	FairPages uint64
	// Over is how far the client is above its fair share, 0 … 1
	// (1 at twice its share or more).
	Over float64
	// Score is the highest score of the client's ephemeral pools.
	Score float64
	// HitRatio and Yield (hits per second per MiB held) are the
	// client's moving averages. Only a [Policy] fills them.
	HitRatio, Yield float64
}

// PoolPressure is the pressure on one ephemeral pool.
type PoolPressure struct {
	DomID      uint16
	PoolID     int
	Shared     bool
	Pages      uint64
	FailedPuts float64 // Δpx/Δpt over the interval
	Score      float64
}

// Assess returns the pressure model of cur. rs holds the rates from the
// previous snapshot to cur (as returned by [Rates]); nil, or rates over no
// interval, leave the rate terms at 0. mode decides how weights translate
// into fair shares.
func Assess(cur Snapshot, rs *RateSet, w Watermarks, mode WeightMode) Pressure {
	var pr Pressure
	pr.compute(&cur, rs, w.Limits(cur.Host.TotalKiB), mode, 0)
	return pr
}

// compute fills pr, reusing its slices. ownFlushPages is the number of
// pages the caller flushed during the interval; they are not counted as
// evictions.
func (pr *Pressure) compute(cur *Snapshot, rs *RateSet, lim Limits, mode WeightMode, ownFlushPages uint64) {
	*pr = Pressure{Clients: pr.Clients[:0], Pools: pr.Pools[:0]}
	pr.Limits = lim
	pr.AvailKiB = cur.Host.AvailKiB()
	pr.Zone = lim.Zone(pr.AvailKiB)
	pr.Memory = lim.memory(pr.AvailKiB)

	if rs == nil || rs.Interval <= 0 || len(rs.Clients) != len(cur.Clients) {
		rs = nil // no usable rates
	}
	if rs != nil {
		g := &rs.Global
		ev := max(0, g.Evictions-float64(ownFlushPages)/rs.Interval.Seconds())
		puts := g.EphPutsOK
		if puts == 0 {
			puts = g.Ephemeral.PutsOK // Ep absent (Xen 4.0.0 or short form)
		}
		if ev+puts > 0 {
			pr.Evictions = ev / (ev + puts)
		}
		if all := g.Evictions; all+puts > 0 {
			pr.Turnover = all / (all + puts)
		}
		pr.FailedPuts = ratio(g.Ephemeral.PutsFailed, g.Ephemeral.Puts)
	}
	pr.Score = orScore(pr.Memory, pr.Evictions, pr.FailedPuts)
	pr.CompressScore = orScore(pr.Memory, pr.Turnover, pr.FailedPuts)

	// Fair shares of ephemeral capacity by entitlement.
	var held uint64
	var total float64
	for i := range cur.Clients {
		c := &cur.Clients[i]
		held += c.ephPages()
		if c.hasEphemeral() {
			total += entitlement(c.Weight, mode)
		}
	}
	eph := max(cur.Global.EphPages, held)
	pr.CapacityPages = eph + subSat(pr.AvailKiB, lim.HighKiB)/PageKiB

	k := 0 // index into rs.Pools
	for i := range cur.Clients {
		c := &cur.Clients[i]
		cp := ClientPressure{DomID: c.DomID, EphPages: c.ephPages()}
		if c.hasEphemeral() && total > 0 {
			cp.FairPages = uint64(float64(pr.CapacityPages) * entitlement(c.Weight, mode) / total)
		}
		switch {
		case cp.FairPages > 0:
			cp.Over = clamp01(float64(cp.EphPages)/float64(cp.FairPages) - 1)
		case cp.EphPages > 0:
			cp.Over = 1
		}
		for j := range c.Pools {
			p := &c.Pools[j]
			var prr *PoolRates
			if rs != nil && k < len(rs.Pools) {
				prr = &rs.Pools[k]
			}
			k++
			if p.Persistent {
				continue
			}
			pp := PoolPressure{DomID: c.DomID, PoolID: p.ID, Shared: p.Shared, Pages: p.Pages}
			if prr != nil {
				pp.FailedPuts = ratio(prr.PutsFailed, prr.Puts)
			}
			pp.Score = orScore(pp.FailedPuts, pr.Evictions, cp.Over)
			cp.Score = max(cp.Score, pp.Score)
			pr.Pools = append(pr.Pools, pp)
		}
		pr.Clients = append(pr.Clients, cp)
	}
}

// entitlement is a client's claim on ephemeral memory for its weight: the
// weight itself when weights are proportional, its inverse under Xen's
// literal rule. Weight 0 counts as 1 in both, so equal weights (Xen's
// default is 0 for every client) mean equal shares.
func entitlement(weight uint32, mode WeightMode) float64 {
	w := float64(max(weight, 1))
	if mode == WeightXen {
		return 1 / w
	}
	return w
}

// orScore combines terms in [0, 1] like independent probabilities: the
// result is 0 when all are 0 and 1 when any is 1.
func orScore(terms ...float64) float64 {
	q := 1.0
	for _, t := range terms {
		q *= 1 - clamp01(t)
	}
	return clamp01(1 - q)
}

// ratio returns a/b clamped to [0, 1], 0 when b is 0.
func ratio(a, b float64) float64 {
	if !(b > 0) {
		return 0
	}
	return clamp01(a / b)
}

func clamp01(x float64) float64 {
	if !(x > 0) { // also NaN
		return 0
	}
	if x > 1 || math.IsInf(x, 1) {
		return 1
	}
	return x
}
