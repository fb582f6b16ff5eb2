package pools

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// Policy turns a sequence of snapshots into actions. Feed it one snapshot
// per daemon tick with [Policy.Step]; it keeps only what it needs from the
// past: the previous snapshot, per-client moving averages and marks (frozen
// by the policy, compression turned on by the policy, last weight change),
// and the tick counters of its hysteresis rules.
//
// The clock is the snapshots' Time; the Policy never reads the wall clock.
// A Policy is not safe for concurrent use: the daemon calls Step, Reserve
// and Release from one goroutine.
type Policy struct {
	cfg  PolicyConfig
	tick uint64

	hasPrev     bool
	prev        Snapshot // a copy: prev.Clients and their Pools live in the two slices below
	prevClients []Client
	prevPools   []Pool

	// clients holds per-domain state; states is aligned with the clients
	// of the snapshot being processed.
	clients map[uint16]*clientState
	states  []*clientState

	sc   rateScratch
	view Assessment

	aboveHigh    int    // consecutive ticks with available memory ≥ high
	unbound      int    // consecutive ticks tmem was not memory-bound
	hot, calm    int    // consecutive ticks with host score ≥ On, ≤ Off
	compressOn   bool   // compression episode in progress
	episode      uint32 // number of the current or last compression episode
	flushedPages uint64 // pages flushed by the previous step's actions

	res        Reserver
	keepFrozen func(uint16) bool // res callback: clients the policy froze
}

// forgetAfter is the number of ticks a client may be missing from the
// snapshots before the policy forgets it. A client missing from one
// snapshot (a truncated LIST, say) keeps its marks, so a client the
// policy froze is still thawed when it comes back.
const forgetAfter = 3

// clientState is what the policy remembers about one domain.
type clientState struct {
	seen   uint64   // tick at which the client was last in a snapshot
	handle [16]byte // the domain's handle when known

	samples     int     // intervals measured
	yield       float64 // EWMA of ephemeral hits/s per MiB held
	hitRatio    float64 // EWMA of the ephemeral hit ratio
	hasHitRatio bool

	weight         uint32 // last weight the policy set (the dry-run view)
	hasWeight      bool
	lastWeightTick uint64 // tick of the last weight change, 0 never

	frozen     bool   // frozen by the policy
	streaming  bool   // frozen by scan resistance (frozen is set too)
	frozenAt   uint64 // tick of the freeze
	compressed uint32 // episode in which the policy turned compression on, 0 none
}

// Assessment is what the policy computed at its last step, for metrics and
// status output.
type Assessment struct {
	Time     time.Time
	Rates    RateSet
	Pressure Pressure
}

// NewPolicy validates cfg and returns a Policy. A nil cfg means the
// defaults. Errors wrap [ErrConfig].
func NewPolicy(cfg *PolicyConfig) (*Policy, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	p := &Policy{cfg: c, clients: make(map[uint16]*clientState), res: Reserver{cfg: c.Reserve}}
	p.keepFrozen = p.frozenByPolicy
	return p, nil
}

// Config returns the configuration in use, defaults filled in.
func (p *Policy) Config() PolicyConfig { return p.cfg }

// Assessment returns the rates and pressure of the last Step. It points
// into the Policy and is overwritten by the next Step; copy what you keep.
func (p *Policy) Assessment() *Assessment { return &p.view }

// Reserve registers a pre-start reservation (see [Reserver]); the policy's
// steps drive it from the next Step on. While any reservation is pending
// or held, the policy does not thaw clients, and its own flush is merged
// into the reservation's.
func (p *Policy) Reserve(now time.Time, who string, needKiB uint64, deadline time.Time) *Reservation {
	return p.res.Reserve(now, who, needKiB, deadline)
}

// Release ends a reservation made with [Policy.Reserve]; see
// [Reserver.Release].
func (p *Policy) Release(now time.Time, r *Reservation) { p.res.Release(now, r) }

// Frozen returns, sorted, the domains the policy has frozen and not yet
// thawed.
func (p *Policy) Frozen() []uint16 {
	var ids []uint16
	for id, st := range p.clients {
		if st.frozen {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

func (p *Policy) frozenByPolicy(domid uint16) bool {
	st := p.clients[domid]
	return st != nil && st.frozen
}

// Step takes the next snapshot and returns the actions to take now, in
// order, or nil. Snapshots should come in time order; one that is not
// later than the previous one gives no rates and does not advance the
// hysteresis counters, and becomes the new baseline. Step copies what it
// keeps, so the caller may reuse snap's slices afterwards.
func (p *Policy) Step(snap Snapshot) []Action {
	cur := &snap
	p.tick++
	fresh := !p.hasPrev || cur.Time.After(p.prev.Time)
	prev := &p.prev
	if !p.hasPrev {
		prev = &Snapshot{}
	}
	v := &p.view
	v.Time = cur.Time
	v.Rates.compute(prev, cur, &p.sc)
	interval := v.Rates.Interval > 0
	v.Pressure.compute(cur, &v.Rates, p.cfg.Watermarks.Limits(cur.Host.TotalKiB), p.cfg.Weights.Mode, p.flushedPages)
	p.flushedPages = 0
	p.track(cur, prev, interval)
	if fresh {
		p.count()
	}

	var acts []Action
	wasFrozen := p.res.frozen
	acts = p.res.step(cur, p.keepFrozen, acts)
	if wasFrozen && !p.res.frozen {
		// A domain is being built with the reserved memory: start the
		// thaw hysteresis again rather than thaw what was just refrozen.
		p.aboveHigh = 0
	}
	acts = p.flush(cur, acts)
	acts = p.freeze(cur, acts)
	acts = p.streams(cur, acts)
	acts = p.thaw(cur, acts)
	acts = p.compress(cur, acts)
	acts = p.reweight(cur, interval, acts)
	for i := range acts {
		a := &acts[i]
		a.DryRun = p.cfg.DryRun
		if a.Kind == ActionFlush && !a.DryRun {
			p.flushedPages += a.KiB / PageKiB
		}
	}
	p.keep(cur)
	return acts
}

// count advances the hysteresis counters for a new tick.
func (p *Policy) count() {
	pr := &p.view.Pressure
	if pr.AvailKiB >= pr.Limits.HighKiB {
		p.aboveHigh++
	} else {
		p.aboveHigh = 0
	}
	switch cc := &p.cfg.Compress; {
	case pr.CompressScore >= cc.On:
		p.hot++
		p.calm = 0
	case pr.CompressScore <= cc.Off:
		p.calm++
		p.hot = 0
	default:
		p.hot, p.calm = 0, 0
	}
}

// keep copies cur into the policy's own buffers as the next baseline.
func (p *Policy) keep(cur *Snapshot) {
	p.prevClients = append(p.prevClients[:0], cur.Clients...)
	p.prevPools = p.prevPools[:0]
	for i := range cur.Clients {
		p.prevPools = append(p.prevPools, cur.Clients[i].Pools...)
	}
	k := 0
	for i := range p.prevClients {
		n := len(p.prevClients[i].Pools)
		p.prevClients[i].Pools = p.prevPools[k : k+n : k+n]
		k += n
	}
	p.prev = Snapshot{Time: cur.Time, Host: cur.Host, Global: cur.Global, Clients: p.prevClients}
	p.hasPrev = true
}

// flush asks for enough KiB to bring available memory from below the low
// watermark back to the high one, bounded by what tmem can free. A flush
// already asked for by a reservation is raised instead of adding another.
func (p *Policy) flush(cur *Snapshot, acts []Action) []Action {
	pr := &p.view.Pressure
	if pr.AvailKiB >= pr.Limits.LowKiB {
		return acts
	}
	want := roundUpMiB(pr.Limits.HighKiB - pr.AvailKiB)
	kib := min(want, cur.Host.FreeableKiB)
	if kib == 0 {
		return acts // tmem holds nothing freeable: only freezing can help
	}
	reason := fmt.Sprintf("%s available is below the low watermark %s: flushing toward the high watermark %s (%s freeable)",
		mib(pr.AvailKiB), mib(pr.Limits.LowKiB), mib(pr.Limits.HighKiB), mib(cur.Host.FreeableKiB))
	for i := range acts {
		if a := &acts[i]; a.Kind == ActionFlush {
			if kib > a.KiB {
				a.KiB = kib
				a.Reason += "; " + reason
			}
			return acts
		}
	}
	return append(acts, Action{Kind: ActionFlush, DomID: AllClients, KiB: kib, Reason: reason})
}

// freezable reports whether the freeze rule may freeze client i.
func (p *Policy) freezable(c *Client, st *clientState) bool {
	return !c.Frozen && !st.frozen && c.Priority <= p.cfg.Freeze.MaxPriority && len(c.Pools) > 0
}

// freeze freezes, below the critical watermark, the unfrozen clients of the
// lowest priority present: one priority level per tick.
func (p *Policy) freeze(cur *Snapshot, acts []Action) []Action {
	pr := &p.view.Pressure
	if p.cfg.Freeze.Disabled || pr.Zone != ZoneCritical {
		return acts
	}
	lowest, found := math.MaxInt, false
	for i := range cur.Clients {
		if c := &cur.Clients[i]; p.freezable(c, p.states[i]) {
			lowest, found = min(lowest, c.Priority), true
		}
	}
	if !found {
		return acts
	}
	reason := fmt.Sprintf("%s available is below the critical watermark %s: freezing priority %d",
		mib(pr.AvailKiB), mib(pr.Limits.CriticalKiB), lowest)
	for i := range cur.Clients {
		c, st := &cur.Clients[i], p.states[i]
		if p.freezable(c, st) && c.Priority == lowest {
			st.frozen, st.frozenAt = true, p.tick
			acts = append(acts, Action{Kind: ActionFreeze, DomID: c.DomID, Name: c.Name, Reason: reason})
		}
	}
	return acts
}

// thaw thaws the clients the policy froze once available memory has stayed
// at or above the high watermark for ThawTicks ticks: the highest priority
// first, one level per tick. Nothing is thawed while a reservation keeps
// tmem frozen.
func (p *Policy) thaw(cur *Snapshot, acts []Action) []Action {
	if p.aboveHigh < p.cfg.Freeze.ThawTicks || p.res.frozen {
		return acts
	}
	highest, found := math.MinInt, false
	for i := range cur.Clients {
		if st := p.states[i]; st.frozen && !st.streaming {
			highest, found = max(highest, cur.Clients[i].Priority), true
		}
	}
	if !found {
		return acts
	}
	pr := &p.view.Pressure
	reason := fmt.Sprintf("%s available has been at or above the high watermark %s for %d ticks: thawing priority %d",
		mib(pr.AvailKiB), mib(pr.Limits.HighKiB), p.aboveHigh, highest)
	for i := range cur.Clients {
		c, st := &cur.Clients[i], p.states[i]
		if st.frozen && !st.streaming && c.Priority == highest {
			st.frozen = false
			acts = append(acts, Action{Kind: ActionThaw, DomID: c.DomID, Name: c.Name, Reason: reason})
		}
	}
	return acts
}

// compress switches compression on for every client with pools after the
// host score has stayed at or above On for OnTicks ticks, and off again,
// only where the policy switched it on, after it has stayed at or below
// Off for OffTicks ticks. Clients that appear during an episode are
// switched on too.
func (p *Policy) compress(cur *Snapshot, acts []Action) []Action {
	cc := &p.cfg.Compress
	if cc.Disabled {
		return acts
	}
	score := p.view.Pressure.CompressScore
	switch {
	case !p.compressOn && p.hot >= cc.OnTicks:
		p.compressOn = true
		p.episode++
	case p.compressOn && p.calm >= cc.OffTicks:
		p.compressOn = false
		reason := fmt.Sprintf("tmem pressure %.2f has been at or below %.2f for %d ticks", score, cc.Off, p.calm)
		for i := range cur.Clients {
			c, st := &cur.Clients[i], p.states[i]
			if st.compressed != 0 {
				st.compressed = 0
				acts = append(acts, Action{Kind: ActionSetCompress, DomID: c.DomID, Name: c.Name, Reason: reason})
			}
		}
		return acts
	}
	if !p.compressOn {
		return acts
	}
	var reason string
	for i := range cur.Clients {
		c, st := &cur.Clients[i], p.states[i]
		if len(c.Pools) == 0 || c.Compress || st.compressed == p.episode {
			continue
		}
		if reason == "" {
			reason = fmt.Sprintf("tmem pressure %.2f (memory, page turnover, failed puts) has been at or above %.2f for %d ticks", score, cc.On, p.hot)
			if p.hot < cc.OnTicks {
				reason = fmt.Sprintf("compression is on for every client until tmem pressure (now %.2f) stays at or below %.2f", score, cc.Off)
			}
		}
		st.compressed = p.episode
		acts = append(acts, Action{Kind: ActionSetCompress, DomID: c.DomID, Name: c.Name, Compress: true, Reason: reason})
	}
	return acts
}
