package main

import (
	"fmt"
	"strconv"
	"time"
)

// The text of a tmem-top frame, shared by the full screen and batch mode.

// frameHeader returns the two summary lines.
func frameHeader(f *topFrame) []string {
	gen := f.Generation
	if f.Simulated {
		gen += ", simulated"
	}
	iv := "-"
	if f.Interval > 0 {
		iv = fmt.Sprintf("%.1fs", f.Interval.Seconds())
	}
	l1 := fmt.Sprintf("tmem-top  %s  Xen %s (tmem ABI %s)  interval %s  sort: %s",
		f.Time.Format(time.TimeOnly), f.Xen, gen, iv, f.Sort)
	l2 := fmt.Sprintf("memory: %d MiB total, %d MiB free, %d MiB freeable by tmem | tmem: %d clients, %s MiB ephemeral, %s evictions/s, %s ops/s",
		f.TotalKiB/1024, f.FreeKiB/1024, f.Freeable, f.Clients, fmtMiB(mib(f.EphPages)), fmtRate(f.EvictPS), fmtRate(f.OpsPS))
	return []string{l1, l2}
}

// sortColumn is the column each sort key marks with '*'.
var sortColumn = [sortKeys]int{sortPages: 6, sortHits: 10, sortPuts: 8, sortName: 0}

// frameTable lays out the rows; the column the rows are sorted by carries
// a '*'.
func frameTable(f *topFrame) *table {
	head := []string{"DOMAIN", ">ID", ">MEM_MiB", ">POOLS", ">EPH_PAGES", ">PERS_PAGES", ">TMEM_MiB",
		">HIT%", ">PUTS/s", ">GETS/s", ">HITS/s", ">EVICT/s", ">WEIGHT", "COMP", "FROZEN"}
	head[sortColumn[f.Sort]] += "*"
	t := newTable(head...)
	for i := range f.Rows {
		r := &f.Rows[i]
		mem := fmtMiB(mib(int64(r.MemPages)))
		if !r.Client {
			t.add(r.Name, u(uint64(r.ID)), mem, "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-")
			continue
		}
		ev := fmtRate(r.EvictPS)
		if r.EvictUpper {
			ev = "<" + ev
		}
		rate := func(x float64) string {
			if f.Interval == 0 {
				return "-"
			}
			return fmtRate(x)
		}
		if f.Interval == 0 {
			ev = "-"
		}
		t.add(r.Name, u(uint64(r.ID)), mem, strconv.Itoa(r.Pools), i64(r.EphPages), i64(r.PersPages),
			fmtMiB(mib(r.tmemPages())), fmtRatio(r.HitRatio), rate(r.PutsPS), rate(r.GetsPS), rate(r.HitsPS), ev,
			i64(r.Weight), onOff(r.Compress), yesNo(r.Frozen))
	}
	return t
}

// frameLines is a whole frame as batch mode prints it.
func frameLines(f *topFrame) []string {
	return append(frameHeader(f), frameTable(f).lines()...)
}

// The JSON of `tmem-top -b -o json`: one object per line and refresh,
// documented in docs/tmemctl-json.md.

const topSchema = "tmemctl.top.v1"

type topJSON struct {
	Schema     string          `json:"schema"`
	Time       time.Time       `json:"time"`
	IntervalS  float64         `json:"interval_s"` // 0 on the first refresh: no rates yet
	Xen        string          `json:"xen"`
	Generation string          `json:"generation"`
	Simulated  bool            `json:"simulated"`
	Sort       string          `json:"sort"`
	Memory     topMemoryJSON   `json:"memory"`
	Tmem       topTmemJSON     `json:"tmem"`
	Domains    []topDomainJSON `json:"domains"`
}

type topMemoryJSON struct {
	TotalMiB    uint64 `json:"total_mib"`
	FreeMiB     uint64 `json:"free_mib"`
	FreeableMiB uint64 `json:"freeable_mib"`
}

type topTmemJSON struct {
	Clients       int     `json:"clients"`
	EphPages      int64   `json:"eph_pages"`
	EvictionsPerS float64 `json:"evictions_per_s"`
	OpsPerS       float64 `json:"ops_per_s"`
}

type topDomainJSON struct {
	ID            uint16   `json:"id"`
	Name          string   `json:"name"`
	MemMiB        float64  `json:"mem_mib"`
	TmemClient    bool     `json:"tmem_client"`
	Pools         int      `json:"pools"`
	EphPages      int64    `json:"eph_pages"`
	PersPages     int64    `json:"pers_pages"`
	TmemMiB       float64  `json:"tmem_mib"`
	HitRatio      *float64 `json:"hit_ratio"`
	PutsPerS      float64  `json:"puts_per_s"`
	GetsPerS      float64  `json:"gets_per_s"`
	HitsPerS      float64  `json:"hits_per_s"`
	EvictionsPerS float64  `json:"evictions_per_s"`
	EvictionsMax  bool     `json:"evictions_upper_bound"`
	Weight        int64    `json:"weight"`
	Compress      bool     `json:"compress"`
	Frozen        bool     `json:"frozen"`
}

func topJSONOf(f *topFrame) *topJSON {
	out := &topJSON{Schema: topSchema, Time: f.Time, IntervalS: f.Interval.Seconds(), Xen: f.Xen,
		Generation: f.Generation, Simulated: f.Simulated, Sort: f.Sort.String(),
		Memory:  topMemoryJSON{TotalMiB: f.TotalKiB / 1024, FreeMiB: f.FreeKiB / 1024, FreeableMiB: f.Freeable},
		Tmem:    topTmemJSON{Clients: f.Clients, EphPages: f.EphPages, EvictionsPerS: f.EvictPS, OpsPerS: f.OpsPS},
		Domains: []topDomainJSON{}}
	for _, r := range f.Rows {
		out.Domains = append(out.Domains, topDomainJSON{ID: r.ID, Name: r.Name, MemMiB: mib(int64(r.MemPages)),
			TmemClient: r.Client, Pools: r.Pools, EphPages: r.EphPages, PersPages: r.PersPages,
			TmemMiB: mib(r.tmemPages()), HitRatio: r.HitRatio, PutsPerS: r.PutsPS, GetsPerS: r.GetsPS,
			HitsPerS: r.HitsPS, EvictionsPerS: r.EvictPS, EvictionsMax: r.EvictUpper,
			Weight: r.Weight, Compress: r.Compress, Frozen: r.Frozen})
	}
	return out
}
