package pools

import "fmt"

// memoryBound reports whether tmem is short of memory: its pages turn over
// (Xen's evictions or the policy's flushes) or available memory is below the
// high watermark, the level the policy flushes back to.
func (p *Policy) memoryBound() bool {
	pr := &p.view.Pressure
	return pr.Turnover >= 0.1 || pr.Zone >= ZoneNormal
}

// streamThawTicks is how long tmem must not be memory-bound before streaming
// clients are thawed: longer than the ordinary thaw, since a streaming client
// refills free memory within seconds.
func (p *Policy) streamThawTicks() int { return 5 * p.cfg.Freeze.ThawTicks }

// streams is scan resistance ([StreamPolicy]): it freezes freezable clients
// that stream pages into tmem and never read them back while tmem is
// memory-bound, and thaws them after ProbeTicks to measure them again, or
// once tmem has not been memory-bound for 5×ThawTicks ticks.
func (p *Policy) streams(cur *Snapshot, acts []Action) []Action {
	sp := &p.cfg.Freeze.Streams
	if p.cfg.Freeze.Disabled || sp.Disabled {
		return acts
	}
	bound := p.memoryBound()
	if bound {
		p.unbound = 0
	} else {
		p.unbound++
	}
	rs := &p.view.Rates
	totalPuts := rs.Global.Ephemeral.PutsOK
	for i := range cur.Clients {
		c, st := &cur.Clients[i], p.states[i]
		switch {
		case st.streaming && (p.tick-st.frozenAt >= uint64(sp.ProbeTicks) || p.unbound >= p.streamThawTicks()):
			if p.res.frozen {
				continue // a reservation holds every client frozen
			}
			st.frozen, st.streaming = false, false
			why := fmt.Sprintf("thawing it to measure it again after %d ticks", p.tick-st.frozenAt)
			if p.unbound >= p.streamThawTicks() {
				why = fmt.Sprintf("tmem has not been short of memory for %d ticks", p.unbound)
			}
			acts = append(acts, Action{Kind: ActionThaw, DomID: c.DomID, Name: c.Name,
				Reason: "scan resistance: " + why})
		case bound && p.freezable(c, st) && st.samples >= p.cfg.Weights.WarmupTicks && st.hasHitRatio &&
			st.hitRatio < sp.HitRatio && i < len(rs.Clients) && totalPuts > 0 &&
			rs.Clients[i].Ephemeral.PutsOK >= sp.MinShare*totalPuts:
			st.frozen, st.streaming, st.frozenAt = true, true, p.tick
			acts = append(acts, Action{Kind: ActionFreeze, DomID: c.DomID, Name: c.Name, Reason: fmt.Sprintf(
				"scan resistance: it makes %.0f%% of tmem's puts but reads back %.1f%% of what it asks for while tmem is short of memory; freezing it keeps tmem for pages that earn hits",
				100*rs.Clients[i].Ephemeral.PutsOK/totalPuts, 100*st.hitRatio)})
		}
	}
	return acts
}
