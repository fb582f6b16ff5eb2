package pools

import (
	"slices"
	"time"
)

// OpRates are put and get rates over one interval, per second.
type OpRates struct {
	Puts       float64 // pt: all puts
	PutsOK     float64 // ps: successful puts
	PutsFailed float64 // px: new-page puts that failed
	Gets       float64 // gt: gets that reached the lookup
	GetsOK     float64 // gs: hits
	GetsFailed float64 // gt − gs: misses
	// HitRatio is Δgs/Δgt over the interval, 0 when there were no gets.
	HitRatio float64
}

// PoolRates are the rates of one pool. DomID and PoolID say which.
type PoolRates struct {
	DomID      uint16
	PoolID     int
	Persistent bool
	Shared     bool
	OpRates
	Flushes      float64 // ft
	FlushesOK    float64 // fs
	ObjFlushes   float64 // ot
	ObjFlushesOK float64 // os
	// New reports a pool the previous snapshot did not have; its rates
	// are 0 because there is no baseline.
	New bool
	// Reset reports a counter that went backwards (the pool was destroyed
	// and created again in the same slot): the rates count everything the
	// new pool did, as if its counters started at 0 within the interval.
	Reset bool
}

// ClientRates are the rates of one client.
type ClientRates struct {
	DomID uint16
	// Ephemeral and Persistent sum the client's pools of each kind. A
	// shared pool counts for every client that uses it.
	Ephemeral  OpRates
	Persistent OpRates
	EphGetsOK  float64 // Ge: successful ephemeral gets per second
	PersPutsOK float64 // Pp
	PersGetsOK float64 // Gp
	// New reports a client the previous snapshot did not have (rates 0).
	New bool
	// Reset reports a client counter that went backwards, or a changed
	// Handle: the domain id now belongs to a new client, whose counters
	// count from 0.
	Reset bool

	first, n int // the client's pools in RateSet.Pools
	prev     int // index in the previous snapshot, -1 when New
}

// GlobalRates are host-wide rates.
type GlobalRates struct {
	// Ephemeral and Persistent sum all pools, each shared pool once.
	Ephemeral  OpRates
	Persistent OpRates
	EphPutsOK  float64 // Ep: successful ephemeral puts
	Evictions  float64 // Et: includes pages freed by FLUSH
	// EvictionAttempts is Ea per second.
	EvictionAttempts float64
	Relinquished     float64 // Rt
	Ops              float64 // Tt
	FailedOps        float64 // Te
	AllocFailed      float64 // Af + Pf
	// Reset reports a global counter that went backwards (hypervisor
	// restarted); the rates then count from 0.
	Reset bool
}

// RateSet holds the rates between two snapshots. Clients and Pools follow
// the order of the newer snapshot: Clients[i] belongs to cur.Clients[i], and
// Pools lists every pool of every client in turn.
type RateSet struct {
	From, To time.Time
	// Interval is To − From. It is 0 when no rate could be computed:
	// either Time is zero or To is not after From. All rates are then 0.
	Interval time.Duration
	Global   GlobalRates
	Clients  []ClientRates
	Pools    []PoolRates
	// Gone lists the clients of the previous snapshot that are missing
	// from the newer one, in the previous snapshot's order.
	Gone []uint16
}

// PoolsOf returns the pool rates of Clients[i].
func (rs *RateSet) PoolsOf(i int) []PoolRates {
	c := &rs.Clients[i]
	return rs.Pools[c.first : c.first+c.n : c.first+c.n]
}

// Rates returns the rates between prev and cur, matching clients by domain
// id and pools by slot id, type and uuid. It never returns a negative or
// non-finite rate: a counter that went backwards marks a reset and counts
// from 0, and a client or pool without a baseline gets rates of 0.
func Rates(prev, cur Snapshot) RateSet {
	var rs RateSet
	var sc rateScratch
	rs.compute(&prev, &cur, &sc)
	return rs
}

// rateScratch is reusable working memory for RateSet.compute.
type rateScratch struct {
	index   map[uint16]int // previous snapshot: domid → client index
	matched []bool         // previous snapshot: client seen in cur
	shared  []sharedKey    // shared pools counted in Global so far
}

type sharedKey struct {
	uuid       [2]uint64
	persistent bool
}

// opDeltas are raw counter differences over an interval.
type opDeltas struct{ puts, putsOK, putsFailed, gets, getsOK uint64 }

func (d *opDeltas) add(o *opDeltas) {
	d.puts += o.puts
	d.putsOK += o.putsOK
	d.putsFailed += o.putsFailed
	d.gets += o.gets
	d.getsOK += o.getsOK
}

func (d *opDeltas) rates(sec float64) OpRates {
	if sec <= 0 {
		return OpRates{}
	}
	r := OpRates{
		Puts:       float64(d.puts) / sec,
		PutsOK:     float64(d.putsOK) / sec,
		PutsFailed: float64(d.putsFailed) / sec,
		Gets:       float64(d.gets) / sec,
		GetsOK:     float64(d.getsOK) / sec,
		GetsFailed: float64(subSat(d.gets, d.getsOK)) / sec,
	}
	if d.gets > 0 {
		r.HitRatio = min(1, float64(d.getsOK)/float64(d.gets))
	}
	return r
}

// delta returns cur − prev, or cur when the counter restarted.
func delta(prev, cur uint64, reset bool) uint64 {
	if reset {
		return cur
	}
	return subSat(cur, prev)
}

// perSec returns the delta of one counter per second.
func perSec(prev, cur uint64, reset bool, sec float64) float64 {
	if sec <= 0 {
		return 0
	}
	return float64(delta(prev, cur, reset)) / sec
}

// compute fills rs with the rates from prev to cur, reusing rs's slices.
func (rs *RateSet) compute(prev, cur *Snapshot, sc *rateScratch) {
	rs.From, rs.To = prev.Time, cur.Time
	rs.Interval = 0
	if !prev.Time.IsZero() && !cur.Time.IsZero() && cur.Time.After(prev.Time) {
		rs.Interval = cur.Time.Sub(prev.Time)
	}
	sec := rs.Interval.Seconds()
	npools := 0
	for i := range cur.Clients {
		npools += len(cur.Clients[i].Pools)
	}
	rs.Clients = slices.Grow(rs.Clients[:0], len(cur.Clients))
	rs.Pools = slices.Grow(rs.Pools[:0], npools)
	rs.Gone = rs.Gone[:0]

	if sc.index == nil {
		sc.index = make(map[uint16]int, len(prev.Clients))
	}
	clear(sc.index)
	for i := range prev.Clients {
		sc.index[prev.Clients[i].DomID] = i
	}
	if cap(sc.matched) < len(prev.Clients) {
		sc.matched = make([]bool, len(prev.Clients))
	}
	sc.matched = sc.matched[:len(prev.Clients)]
	clear(sc.matched)
	sc.shared = sc.shared[:0]

	var eph, pers opDeltas // global sums
	for i := range cur.Clients {
		c := &cur.Clients[i]
		cr := ClientRates{DomID: c.DomID, first: len(rs.Pools), prev: -1}
		var pc *Client
		if j, ok := sc.index[c.DomID]; ok {
			pc = &prev.Clients[j]
			sc.matched[j] = true
			cr.prev = j
		} else {
			cr.New = true
		}
		if pc != nil {
			cr.Reset = c.EphGets < pc.EphGets || c.PersPuts < pc.PersPuts ||
				c.PersGets < pc.PersGets || c.EphMax < pc.EphMax ||
				(c.Handle != pc.Handle && c.Handle != [16]byte{} && pc.Handle != [16]byte{})
			cr.EphGetsOK = perSec(pc.EphGets, c.EphGets, cr.Reset, sec)
			cr.PersPutsOK = perSec(pc.PersPuts, c.PersPuts, cr.Reset, sec)
			cr.PersGetsOK = perSec(pc.PersGets, c.PersGets, cr.Reset, sec)
		}
		var ceph, cpers opDeltas
		for k := range c.Pools {
			p := &c.Pools[k]
			var pp *Pool
			if pc != nil {
				pp = matchPool(pc.Pools, p, k)
			}
			pr, d := poolRates(c.DomID, pp, p, sec, cr.Reset)
			rs.Pools = append(rs.Pools, pr)
			if p.Persistent {
				cpers.add(&d)
			} else {
				ceph.add(&d)
			}
			if p.Shared && sc.sawShared(p) {
				continue // already in the global sums
			}
			if p.Persistent {
				pers.add(&d)
			} else {
				eph.add(&d)
			}
		}
		cr.n = len(rs.Pools) - cr.first
		cr.Ephemeral = ceph.rates(sec)
		cr.Persistent = cpers.rates(sec)
		rs.Clients = append(rs.Clients, cr)
	}
	for j, ok := range sc.matched {
		if !ok {
			rs.Gone = append(rs.Gone, prev.Clients[j].DomID)
		}
	}
	rs.Global = globalRates(&prev.Global, &cur.Global, sec)
	rs.Global.Ephemeral = eph.rates(sec)
	rs.Global.Persistent = pers.rates(sec)
}

// sawShared records the shared pool p and reports whether it was already
// recorded in this computation. Xen has at most 16 global shared pools, so
// a linear search is enough.
func (sc *rateScratch) sawShared(p *Pool) bool {
	k := sharedKey{uuid: p.UUID, persistent: p.Persistent}
	for _, s := range sc.shared {
		if s == k {
			return true
		}
	}
	sc.shared = append(sc.shared, k)
	return false
}

// matchPool finds cur's counterpart among prev, preferring the same
// position (the common case: slots do not move), or returns nil.
func matchPool(prev []Pool, cur *Pool, pos int) *Pool {
	if pos < len(prev) && samePool(&prev[pos], cur) {
		return &prev[pos]
	}
	for j := range prev {
		if samePool(&prev[j], cur) {
			return &prev[j]
		}
	}
	return nil
}

// poolRates returns the rates of cur against its previous state pp (nil
// when new) and the raw put/get deltas for the sums. restarted says the
// whole client restarted, so every counter of the pool counts from 0.
func poolRates(domid uint16, pp, cur *Pool, sec float64, restarted bool) (PoolRates, opDeltas) {
	pr := PoolRates{DomID: domid, PoolID: cur.ID, Persistent: cur.Persistent, Shared: cur.Shared}
	if pp == nil {
		pr.New = true
		return pr, opDeltas{}
	}
	pr.Reset = restarted || cur.PutsOK < pp.PutsOK || cur.Puts < pp.Puts || cur.PutsFailed < pp.PutsFailed ||
		cur.GetsOK < pp.GetsOK || cur.Gets < pp.Gets ||
		cur.FlushesOK < pp.FlushesOK || cur.Flushes < pp.Flushes ||
		cur.ObjFlushesOK < pp.ObjFlushesOK || cur.ObjFlushes < pp.ObjFlushes
	if sec <= 0 {
		return pr, opDeltas{}
	}
	d := opDeltas{
		puts:       delta(pp.Puts, cur.Puts, pr.Reset),
		putsOK:     delta(pp.PutsOK, cur.PutsOK, pr.Reset),
		putsFailed: delta(pp.PutsFailed, cur.PutsFailed, pr.Reset),
		gets:       delta(pp.Gets, cur.Gets, pr.Reset),
		getsOK:     delta(pp.GetsOK, cur.GetsOK, pr.Reset),
	}
	pr.OpRates = d.rates(sec)
	pr.Flushes = perSec(pp.Flushes, cur.Flushes, pr.Reset, sec)
	pr.FlushesOK = perSec(pp.FlushesOK, cur.FlushesOK, pr.Reset, sec)
	pr.ObjFlushes = perSec(pp.ObjFlushes, cur.ObjFlushes, pr.Reset, sec)
	pr.ObjFlushesOK = perSec(pp.ObjFlushesOK, cur.ObjFlushesOK, pr.Reset, sec)
	return pr, d
}

// globalRates returns the rates of the G= counters.
func globalRates(p, c *Global, sec float64) GlobalRates {
	reset := c.Ops < p.Ops || c.FailedOps < p.FailedOps || c.Evictions < p.Evictions ||
		c.EvictionAttempts < p.EvictionAttempts || c.Relinquished < p.Relinquished ||
		c.AllocFailed < p.AllocFailed || c.PageAllocFailed < p.PageAllocFailed ||
		c.EphPuts < p.EphPuts
	return GlobalRates{
		EphPutsOK:        perSec(p.EphPuts, c.EphPuts, reset, sec),
		Evictions:        perSec(p.Evictions, c.Evictions, reset, sec),
		EvictionAttempts: perSec(p.EvictionAttempts, c.EvictionAttempts, reset, sec),
		Relinquished:     perSec(p.Relinquished, c.Relinquished, reset, sec),
		Ops:              perSec(p.Ops, c.Ops, reset, sec),
		FailedOps:        perSec(p.FailedOps, c.FailedOps, reset, sec),
		AllocFailed: perSec(p.AllocFailed, c.AllocFailed, reset, sec) +
			perSec(p.PageAllocFailed, c.PageAllocFailed, reset, sec),
		Reset: reset,
	}
}
