package pools

import (
	"fmt"
	"math"
)

// track updates the per-client state from cur: new clients get a state, a
// client whose counters restarted or whose handle changed gets a fresh
// one, each measured interval updates the moving averages, and clients
// missing for more than forgetAfter ticks are forgotten. It fills
// p.states and the policy-only fields of the pressure.
func (p *Policy) track(cur, prev *Snapshot, interval bool) {
	rs := &p.view.Rates
	sec := rs.Interval.Seconds()
	p.states = p.states[:0]
	distinct := 0
	for i := range cur.Clients {
		c, cr := &cur.Clients[i], &rs.Clients[i]
		st := p.clients[c.DomID]
		switch {
		case st == nil:
			st = &clientState{}
			p.clients[c.DomID] = st
		case st.seen == p.tick: // duplicate id in this snapshot
		case cr.Reset || (st.handle != c.Handle && st.handle != [16]byte{} && c.Handle != [16]byte{}):
			*st = clientState{} // a new domain behind an old id
		}
		if st.seen != p.tick {
			st.seen = p.tick
			distinct++
		}
		if c.Handle != [16]byte{} {
			st.handle = c.Handle
		}
		p.states = append(p.states, st)
		if interval && !cr.New {
			p.sample(st, c, &prev.Clients[cr.prev], cr, sec)
		}
		cp := &p.view.Pressure.Clients[i]
		cp.HitRatio, cp.Yield = st.hitRatio, st.yield
	}
	if len(p.clients) > distinct {
		for id, st := range p.clients {
			if p.tick-st.seen > forgetAfter {
				delete(p.clients, id)
			}
		}
	}
}

// sample folds one interval into the client's moving averages. The yield
// is hits per second per MiB of ephemeral memory held on average over the
// interval (at least 1 MiB, so a nearly empty client cannot claim a huge
// yield). An interval without pages, puts or gets tells nothing and is
// skipped.
func (p *Policy) sample(st *clientState, c, pc *Client, cr *ClientRates, sec float64) {
	e := &cr.Ephemeral
	pages := float64(c.ephPages())
	if !cr.Reset {
		pages = (pages + float64(pc.ephPages())) / 2
	}
	hits := cr.EphGetsOK
	if hits == 0 {
		hits = e.GetsOK // Ge missing: fall back to the pools' gs
	}
	if pages == 0 && e.Puts == 0 && e.Gets == 0 && hits == 0 {
		return
	}
	a := p.cfg.Smoothing
	y := hits / max(pages*PageKiB/1024, 1)
	if st.samples == 0 {
		st.yield = y
	} else {
		st.yield += a * (y - st.yield)
	}
	st.samples++
	if e.Gets > 0 {
		if st.hasHitRatio {
			st.hitRatio += a * (e.HitRatio - st.hitRatio)
		} else {
			st.hitRatio, st.hasHitRatio = e.HitRatio, true
		}
	}
}

// weighable reports whether the re-weight rule considers a client.
func (p *Policy) weighable(c *Client, st *clientState) bool {
	return c.hasEphemeral() && !c.Frozen && !st.frozen && st.samples >= p.cfg.Weights.WarmupTicks
}

// weightBounds returns the client's own bounds when it has sane ones, else
// the configured ones.
func (p *Policy) weightBounds(c *Client) (lo, hi uint32) {
	if c.WeightMax > 0 && c.WeightMin <= c.WeightMax {
		return c.WeightMin, min(c.WeightMax, math.MaxInt32)
	}
	return p.cfg.Weights.Min, p.cfg.Weights.Max
}

// reweight moves weights toward clients whose ephemeral pages earn hits.
// It acts only when weights matter, that is when guest puts made Xen evict
// pages or puts failed during the interval: weight is only read when Xen
// picks an eviction victim. A client whose yield is at least Band times
// the page-weighted host mean is favoured, one at or below mean/Band is
// disfavoured, anything between is left alone (dead band). A weight moves
// at most Step per tick, never more often than every HoldTicks ticks, and
// stays within the bounds; a weight found outside them is brought back in.
func (p *Policy) reweight(cur *Snapshot, interval bool, acts []Action) []Action {
	wp := &p.cfg.Weights
	pr := &p.view.Pressure
	if wp.Disabled || !interval || (pr.Evictions == 0 && pr.FailedPuts == 0) {
		return acts
	}
	var sumYP, sumP float64
	n := 0
	for i := range cur.Clients {
		c, st := &cur.Clients[i], p.states[i]
		if p.weighable(c, st) {
			pages := float64(max(c.ephPages(), 1))
			sumYP += st.yield * pages
			sumP += pages
			n++
		}
	}
	if n < 2 || !(sumYP > 0) {
		return acts // nothing to compare against
	}
	mean := sumYP / sumP
	for i := range cur.Clients {
		c, st := &cur.Clients[i], p.states[i]
		if !p.weighable(c, st) || (st.lastWeightTick != 0 && p.tick-st.lastWeightTick < uint64(wp.HoldTicks)) {
			continue
		}
		lo, hi := p.weightBounds(c)
		w := c.Weight
		if p.cfg.DryRun && st.hasWeight {
			w = st.weight
		}
		r := st.yield / mean
		favour, disfavour := r >= wp.Band, r <= 1/wp.Band
		up := favour
		if wp.Mode == WeightXen {
			up = disfavour // a lower Xen weight evicts the client's own pages later
		}
		target := w
		var why string
		switch {
		case w < lo || w > hi:
			target = min(max(w, lo), hi)
			why = fmt.Sprintf("weight %d is outside [%d, %d]", w, lo, hi)
		case !favour && !disfavour:
			continue
		case up:
			target = uint32(min(uint64(w)+uint64(wp.Step), uint64(hi)))
		default:
			target = uint32(max(subSat(uint64(w), uint64(wp.Step)), uint64(lo)))
		}
		if target == w {
			continue
		}
		if why == "" {
			verb := "favoured"
			if disfavour {
				verb = "disfavoured"
			}
			why = fmt.Sprintf("%s: its ephemeral pages earn %.3g hits/s per MiB, %.2f× the host mean %.3g (%s weights)",
				verb, st.yield, r, mean, wp.Mode)
		}
		st.weight, st.hasWeight, st.lastWeightTick = target, true, p.tick
		acts = append(acts, Action{Kind: ActionSetWeight, DomID: c.DomID, Name: c.Name, Weight: target,
			Reason: fmt.Sprintf("%s; weight %d → %d", why, w, target)})
	}
	return acts
}
