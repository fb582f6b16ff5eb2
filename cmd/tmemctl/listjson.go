package main

import (
	"time"

	"github.com/xentmem/xentmem/xenctl"
)

// The schema of `tmem-list -o json`, documented field by field in
// docs/tmemctl-json.md. Add fields at the end of a struct; never rename or
// remove one without changing the schema name.

const listSchema = "tmemctl.list.v1"

type listJSON struct {
	Schema     string       `json:"schema"`
	Xen        string       `json:"xen"`
	Generation string       `json:"generation"`
	Time       time.Time    `json:"time"`
	Global     *globalJSON  `json:"global"` // null in a single-domain listing
	Shared     []sharedJSON `json:"shared"`
	Domains    []domainJSON `json:"domains"`
}

// globalJSON is the G= record.
type globalJSON struct {
	TotalOps           uint64  `json:"total_ops"`                 // Tt
	ErroredOps         uint64  `json:"errored_ops"`               // Te
	FailedCopies       uint64  `json:"failed_copies"`             // Cf
	AllocFailed        uint64  `json:"alloc_failed"`              // Af
	AllocPageFailed    uint64  `json:"alloc_page_failed"`         // Pf
	FreePages          uint64  `json:"free_pages"`                // Ta
	LowOnMemory        uint64  `json:"low_on_memory"`             // Lm
	Evicted            uint64  `json:"evicted"`                   // Et
	EvictAttempts      uint64  `json:"evict_attempts"`            // Ea
	Relinquished       uint64  `json:"relinquished"`              // Rt
	RelinquishAttempts uint64  `json:"relinquish_attempts"`       // Ra
	MaxEvictsPerRelinq uint64  `json:"max_evicts_per_relinquish"` // Rx
	FlushedPools       uint64  `json:"flushed_pools"`             // Fp
	EphPages           int64   `json:"eph_pages"`                 // Ec
	MaxEphPages        int64   `json:"max_eph_pages"`             // Em
	EphMiB             float64 `json:"eph_mib"`                   // Ec in MiB
	Objects            int64   `json:"objects"`                   // Oc
	MaxObjects         int64   `json:"max_objects"`               // Om
	Nodes              int64   `json:"nodes"`                     // Nc
	MaxNodes           int64   `json:"max_nodes"`                 // Nm
	PageDescs          int64   `json:"page_descs"`                // Pc
	MaxPageDescs       int64   `json:"max_page_descs"`            // Pm
	Frames             int64   `json:"frames"`                    // Fc
	MaxFrames          int64   `json:"max_frames"`                // Fm
	DedupDescs         int64   `json:"dedup_descs"`               // Sc
	MaxDedupDescs      int64   `json:"max_dedup_descs"`           // Sm
	EphPuts            uint64  `json:"eph_puts"`                  // Ep
	DedupPuts          uint64  `json:"dedup_puts"`                // Gd
	TZEBytes           uint64  `json:"tze_bytes"`                 // Zt
	CompressedBytes    uint64  `json:"compressed_bytes"`          // Gz
}

// poolStatsJSON are the statistics of a P= or S= record.
type poolStatsJSON struct {
	Pages           int64    `json:"pages"`             // Pc
	MaxPages        int64    `json:"max_pages"`         // Pm
	MiB             float64  `json:"mib"`               // Pc in MiB
	Objects         int64    `json:"objects"`           // Oc
	MaxObjects      int64    `json:"max_objects"`       // Om
	Nodes           uint64   `json:"nodes"`             // Nc
	MaxNodes        uint64   `json:"max_nodes"`         // Nm
	Puts            uint64   `json:"puts"`              // pt
	GoodPuts        uint64   `json:"good_puts"`         // ps
	DupPutsFlushed  uint64   `json:"dup_puts_flushed"`  // pd
	DupPutsReplaced uint64   `json:"dup_puts_replaced"` // pr
	NoMemPuts       uint64   `json:"failed_puts"`       // px
	Gets            uint64   `json:"gets"`              // gt
	Hits            uint64   `json:"hits"`              // gs
	HitRatio        *float64 `json:"hit_ratio"`         // gs/gt, null without gets
	Flushes         uint64   `json:"flushes"`           // ft
	FlushesFound    uint64   `json:"flushes_found"`     // fs
	ObjFlushes      uint64   `json:"obj_flushes"`       // ot
	ObjFlushesFound uint64   `json:"obj_flushes_found"` // os
}

// poolJSON is a P= record.
type poolJSON struct {
	ID         int64   `json:"id"`   // PI (the owner's slot for a shared pool)
	Type       string  `json:"type"` // PT: EP, ES, PP or PS
	Persistent bool    `json:"persistent"`
	Shared     bool    `json:"shared"`
	UUID       *string `json:"uuid"` // null for private pools
	poolStatsJSON
}

// sharedJSON is an S= record.
type sharedJSON struct {
	Index      int64    `json:"index"` // SI
	Type       string   `json:"type"`
	Persistent bool     `json:"persistent"`
	UUID       string   `json:"uuid"`
	Sharers    []uint16 `json:"sharers"` // SC, domain ids
	Garbled    bool     `json:"garbled"` // Xen's S= bug: numbers unreliable
	poolStatsJSON
}

// domainJSON is a C= record with its pools.
type domainJSON struct {
	ID              uint16     `json:"id"`               // CI
	Name            string     `json:"name"`             // from xen-tmemd, else Domain-0 / domN
	Weight          int64      `json:"weight"`           // ww
	Cap             *int64     `json:"cap"`              // ca, Xen 4.0–4.7; null later
	Compress        bool       `json:"compress"`         // co
	Frozen          bool       `json:"frozen"`           // fr
	Cycles          uint64     `json:"cycles"`           // Tc
	EphGets         int64      `json:"eph_gets"`         // Ge
	PersPuts        int64      `json:"pers_puts"`        // Pp
	PersGets        int64      `json:"pers_gets"`        // Gp
	EphPages        int64      `json:"eph_pages"`        // Ec
	MaxEphPages     int64      `json:"max_eph_pages"`    // Em
	EphMiB          float64    `json:"eph_mib"`          // Ec in MiB
	PersPages       int64      `json:"pers_pages"`       // Σ Pc of persistent pools
	PersMiB         float64    `json:"pers_mib"`         // the same in MiB
	CompressedPages int64      `json:"compressed_pages"` // cp
	CompressedBytes int64      `json:"compressed_bytes"` // cb
	CompressPoor    int64      `json:"compress_poor"`    // cn
	CompressNoMem   int64      `json:"compress_nomem"`   // cm
	Puts            uint64     `json:"puts"`             // Σ pt
	GoodPuts        uint64     `json:"good_puts"`        // Σ ps
	Gets            uint64     `json:"gets"`             // Σ gt
	Hits            uint64     `json:"hits"`             // Σ gs
	HitRatio        *float64   `json:"hit_ratio"`        // hits/gets, null without gets
	Pools           []poolJSON `json:"pools"`
}

func listJSONOf(v *view) *listJSON {
	out := &listJSON{Schema: listSchema, Xen: v.Xen, Generation: v.Generation, Time: v.Time,
		Shared: []sharedJSON{}, Domains: []domainJSON{}}
	l := v.List
	if g := l.Global; g != nil {
		out.Global = &globalJSON{
			TotalOps: g.TotalOps, ErroredOps: g.ErroredOps, FailedCopies: g.FailedCopies,
			AllocFailed: g.AllocFailed, AllocPageFailed: g.AllocPageFailed, FreePages: g.FreePages,
			LowOnMemory: g.LowOnMemory, Evicted: g.Evicted, EvictAttempts: g.EvictAttempts,
			Relinquished: g.Relinquished, RelinquishAttempts: g.RelinquishAttempts,
			MaxEvictsPerRelinq: g.MaxEvictsPerRelinq, FlushedPools: g.FlushedPools,
			EphPages: g.EphPages, MaxEphPages: g.MaxEphPages, EphMiB: mib(g.EphPages),
			Objects: g.Objects, MaxObjects: g.MaxObjects, Nodes: g.Nodes, MaxNodes: g.MaxNodes,
			PageDescs: g.PageDescs, MaxPageDescs: g.MaxPageDescs, Frames: g.Frames, MaxFrames: g.MaxFrames,
			DedupDescs: g.ContentDescs, MaxDedupDescs: g.MaxContentDescs, EphPuts: g.EphPuts,
			DedupPuts: g.DedupPuts, TZEBytes: g.TZEBytes, CompressedBytes: g.CompressedBytes,
		}
	}
	for _, s := range l.Shared {
		sj := sharedJSON{Index: s.Index, Type: s.Type.String(), Persistent: s.Type.Persistent(),
			UUID: xenctl.UUID{Lo: s.UUID[0], Hi: s.UUID[1]}.String(), Sharers: append([]uint16{}, s.Sharers...),
			Garbled: s.Garbled, poolStatsJSON: statsJSON(&s.ListPoolStats)}
		out.Shared = append(out.Shared, sj)
	}
	for i := range l.Clients {
		c := &l.Clients[i]
		t := totalsOf(c)
		dj := domainJSON{ID: c.ID, Name: v.name(c.ID), Weight: c.Weight, Compress: c.Compress, Frozen: c.Frozen,
			Cycles: c.Cycles, EphGets: c.EphGets, PersPuts: c.PersPuts, PersGets: c.PersGets,
			EphPages: c.EphPages, MaxEphPages: c.MaxEphPages, EphMiB: mib(c.EphPages),
			PersPages: t.PersPages, PersMiB: mib(t.PersPages),
			CompressedPages: c.CompressedPages, CompressedBytes: c.CompressedBytes,
			CompressPoor: c.CompressPoor, CompressNoMem: c.CompressNoMem,
			Puts: t.Puts, GoodPuts: t.GoodPuts, Gets: t.Gets, Hits: t.Hits, HitRatio: ratio(t.Hits, t.Gets),
			Pools: []poolJSON{}}
		if c.HasCap {
			cp := c.Cap
			dj.Cap = &cp
		}
		for j := range c.Pools {
			p := &c.Pools[j]
			dj.Pools = append(dj.Pools, poolJSON{ID: p.ID, Type: p.Type.String(), Persistent: p.Persistent(),
				Shared: p.Shared(), UUID: poolUUID(p.Shared(), p.UUID), poolStatsJSON: statsJSON(&p.ListPoolStats)})
		}
		out.Domains = append(out.Domains, dj)
	}
	return out
}

func statsJSON(s *xenctl.ListPoolStats) poolStatsJSON {
	return poolStatsJSON{
		Pages: s.Pages, MaxPages: s.MaxPages, MiB: mib(s.Pages), Objects: s.Objects, MaxObjects: s.MaxObjects,
		Nodes: s.Nodes, MaxNodes: s.MaxNodes, Puts: s.Puts, GoodPuts: s.GoodPuts,
		DupPutsFlushed: s.DupPutsFlushed, DupPutsReplaced: s.DupPutsReplaced, NoMemPuts: s.NoMemPuts,
		Gets: s.Gets, Hits: s.FoundGets, HitRatio: ratio(s.FoundGets, s.Gets),
		Flushes: s.Flushes, FlushesFound: s.FlushesFound, ObjFlushes: s.ObjFlushes, ObjFlushesFound: s.ObjFlushesFound,
	}
}
