package main

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/xentmem/xentmem/internal/control"
	"github.com/xentmem/xentmem/xenctl"
)

// sample is one tmem-top refresh: the long all-clients LIST and the host
// status.
type sample struct {
	view   *view
	status statusResult
}

func fetchSample(ctx context.Context, be backend) (*sample, error) {
	res, err := fetchList(ctx, be, target{all: true}, true)
	if err != nil {
		return nil, err
	}
	v, err := newView(res)
	if err != nil {
		return nil, err
	}
	s := &sample{view: v}
	if err := be.Call(ctx, control.OpStatus, nil, &s.status); err != nil {
		return nil, err
	}
	return s, nil
}

// sortKey orders tmem-top's rows.
type sortKey int

const (
	sortPages sortKey = iota // tmem pages held, most first
	sortHits                 // hits per second, most first
	sortPuts                 // puts per second, most first
	sortName                 // domain name
	sortKeys
)

var sortNames = [sortKeys]string{"pages", "hits", "puts", "name"}

func (k sortKey) String() string { return sortNames[k] }

func parseSortKey(s string) (sortKey, bool) {
	for i, n := range sortNames {
		if n == s {
			return sortKey(i), true
		}
	}
	return 0, false
}

// next is the key 's' switches to.
func (k sortKey) next() sortKey { return (k + 1) % sortKeys }

// topRow is one domain on tmem-top's screen.
type topRow struct {
	ID       uint16
	Name     string
	MemPages uint64 // the domain's memory (tot_pages); 0 if Xen did not list it
	Client   bool   // the domain is a tmem client (has a C= line)

	Pools     int
	EphPages  int64 // C= Ec
	PersPages int64 // Σ Pc of persistent pools
	Weight    int64
	Compress  bool
	Frozen    bool

	// Per second over the interval; 0 on the first screen.
	PutsPS  float64 // Σ Δpt
	GetsPS  float64 // Σ Δgt
	HitsPS  float64 // Σ Δgs
	EvictPS float64 // pages Xen evicted from the domain's private ephemeral pools
	// EvictUpper: the guest flushed whole objects in the interval, so
	// EvictPS is an upper bound (see evictions).
	EvictUpper bool
	// HitRatio is Σ Δgs / Σ Δgt over the interval (over the pools' lives
	// on the first screen); nil without gets.
	HitRatio *float64
}

// tmemPages is what sort key "pages" compares.
func (r *topRow) tmemPages() int64 { return r.EphPages + r.PersPages }

// topFrame is one screen of tmem-top.
type topFrame struct {
	Time       time.Time
	Interval   time.Duration // 0 on the first screen
	Xen        string
	Generation string
	Simulated  bool
	TotalKiB   uint64
	FreeKiB    uint64
	Freeable   uint64 // MiB
	Clients    int
	EphPages   int64   // G= Ec
	EvictPS    float64 // Δ G= Et per second (includes tmem-flush)
	OpsPS      float64 // Δ G= Tt per second
	Sort       sortKey
	Rows       []topRow
}

// buildFrame computes the rows of cur, with rates against prev (nil on the
// first screen), sorted by key.
func buildFrame(prev, cur *sample, key sortKey) *topFrame {
	v := cur.view
	f := &topFrame{Time: v.Time, Xen: v.Xen, Generation: v.Generation, Simulated: cur.status.Mode == "sim",
		TotalKiB: cur.status.TotalKiB, FreeKiB: cur.status.FreeKiB, Freeable: cur.status.FreeableMiB,
		Clients: len(v.List.Clients), Sort: key}
	var pl *xenctl.List
	if prev != nil && v.Time.After(prev.view.Time) {
		f.Interval = v.Time.Sub(prev.view.Time)
		pl = prev.view.List
	}
	sec := f.Interval.Seconds()
	if g := v.List.Global; g != nil {
		f.EphPages = g.EphPages
		if pl != nil && pl.Global != nil {
			f.EvictPS = perSec(delta(g.Evicted, pl.Global.Evicted), sec)
			f.OpsPS = perSec(delta(g.TotalOps, pl.Global.TotalOps), sec)
		}
	}
	seen := map[uint16]bool{}
	for i := range v.List.Clients {
		c := &v.List.Clients[i]
		seen[c.ID] = true
		r := topRow{ID: c.ID, Name: v.name(c.ID), Client: true, Pools: len(c.Pools),
			EphPages: c.EphPages, Weight: c.Weight, Compress: c.Compress, Frozen: c.Frozen}
		r.PersPages = totalsOf(c).PersPages
		var pc *xenctl.ListClient
		if pl != nil {
			pc = pl.Client(c.ID)
		}
		clientRates(&r, c, pc, pl != nil, sec)
		f.Rows = append(f.Rows, r)
	}
	for _, d := range v.Domains {
		if seen[d.ID] {
			continue
		}
		f.Rows = append(f.Rows, topRow{ID: d.ID, Name: d.Name})
	}
	mem := map[uint16]uint64{}
	for _, d := range v.Domains {
		mem[d.ID] = d.TotPages
	}
	for i := range f.Rows {
		f.Rows[i].MemPages = mem[f.Rows[i].ID]
	}
	sortRows(f.Rows, key)
	return f
}

// clientRates fills the rates of r from c and its previous record pc (nil:
// the client is new, its pools count from 0). interval tells whether there
// is a previous sample at all; without one only the lifetime hit ratio is
// known.
func clientRates(r *topRow, c, pc *xenctl.ListClient, interval bool, sec float64) {
	var puts, gets, hits, evict uint64
	for i := range c.Pools {
		p := &c.Pools[i]
		var q xenctl.ListPool // a new pool counts from 0
		if interval && pc != nil {
			for j := range pc.Pools {
				if o := &pc.Pools[j]; o.ID == p.ID && o.Type == p.Type && o.UUID == p.UUID {
					q = *o
					break
				}
			}
		}
		if !interval || poolReset(p, &q) {
			q = xenctl.ListPool{}
		}
		puts += p.Puts - q.Puts
		gets += p.Gets - q.Gets
		hits += p.FoundGets - q.FoundGets
		if !p.Persistent() && !p.Shared() {
			ev, upper := evictions(p, &q)
			evict += ev
			r.EvictUpper = r.EvictUpper || upper
		}
	}
	r.HitRatio = ratio(hits, gets)
	if !interval {
		r.EvictUpper = false
		return
	}
	r.PutsPS, r.GetsPS, r.HitsPS, r.EvictPS = perSec(puts, sec), perSec(gets, sec), perSec(hits, sec), perSec(evict, sec)
}

// evictions estimates the pages Xen evicted from a private ephemeral pool
// between q and p. Every page leaves such a pool in exactly one of these
// ways: a get (gets are exclusive there: gs), a page flush (fs), an
// overwrite that failed (pd), an object flush, or eviction; new pages are
// the successful puts that were not overwrites (ps − pr). So
//
//	evicted = Δps − Δpr − Δpd − Δfs − Δgs − ΔPc − pages of flushed objects.
//
// LIST does not count the pages of flushed objects: when the guest flushed
// objects (Δos > 0) the result is an upper bound, and upper is set. (In
// the simulator, the sum over all pools equals Δ G= Et exactly.)
func evictions(p, q *xenctl.ListPool) (n uint64, upper bool) {
	gone := int64(p.GoodPuts-q.GoodPuts) - int64(p.DupPutsReplaced-q.DupPutsReplaced) -
		int64(p.DupPutsFlushed-q.DupPutsFlushed) - int64(p.FlushesFound-q.FlushesFound) -
		int64(p.FoundGets-q.FoundGets) - (p.Pages - q.Pages)
	return uint64(max(gone, 0)), p.ObjFlushesFound != q.ObjFlushesFound
}

// poolReset reports a counter that went backwards: the slot holds a new
// pool, whose counters started from 0 within the interval.
func poolReset(p, q *xenctl.ListPool) bool {
	return p.Puts < q.Puts || p.GoodPuts < q.GoodPuts || p.Gets < q.Gets || p.FoundGets < q.FoundGets ||
		p.Flushes < q.Flushes || p.FlushesFound < q.FlushesFound || p.DupPutsReplaced < q.DupPutsReplaced ||
		p.DupPutsFlushed < q.DupPutsFlushed || p.ObjFlushes < q.ObjFlushes
}

// delta is cur − prev, or cur when the counter went backwards (reset).
func delta(cur, prev uint64) uint64 {
	if cur < prev {
		return cur
	}
	return cur - prev
}

func perSec(n uint64, sec float64) float64 {
	if sec <= 0 {
		return 0
	}
	return float64(n) / sec
}

// sortRows orders rows by key, ties by domain id. For the numeric keys,
// domains without tmem come last.
func sortRows(rows []topRow, key sortKey) {
	slices.SortStableFunc(rows, func(a, b topRow) int {
		var c int
		if key != sortName && a.Client != b.Client {
			if a.Client {
				return -1
			}
			return 1
		}
		switch key {
		case sortPages:
			c = cmpDesc(a.tmemPages(), b.tmemPages())
		case sortHits:
			c = cmpDesc(a.HitsPS, b.HitsPS)
		case sortPuts:
			c = cmpDesc(a.PutsPS, b.PutsPS)
		case sortName:
			c = strings.Compare(a.Name, b.Name)
		}
		if c != 0 {
			return c
		}
		return int(a.ID) - int(b.ID)
	})
}

func cmpDesc[T int64 | float64](a, b T) int {
	switch {
	case a > b:
		return -1
	case a < b:
		return 1
	}
	return 0
}
