package main

import (
	"fmt"
	"strconv"
	"time"

	"github.com/xentmem/xentmem/pools"
	"github.com/xentmem/xentmem/xenctl"
)

// observation is everything one monitoring tick read from Xen.
type observation struct {
	Time     time.Time
	Physinfo xenctl.Physinfo
	Domains  []xenctl.DomainInfo
	Tmem     xenctl.TmemStatus
	List     *xenctl.List // nil when tmem is not available
	ListText []byte
	Freeable uint64 // MiB
	Snapshot pools.Snapshot
	Names    map[uint16]string
	Took     time.Duration
}

// domainSettings are per-domain tmem settings from libvirt metadata or the
// simulator's guest table.
type domainSettings struct {
	Weight     *uint32
	Compress   *bool
	Priority   *int
	ReserveMiB *uint64
}

// namer resolves domain ids to names and back, and knows per-domain
// settings.
type namer interface {
	names() map[uint16]string
	settings(id uint16) domainSettings
}

// domainName returns the name for id: the namer's, then xl's conventions.
func domainName(names map[uint16]string, id uint16) string {
	if n, ok := names[id]; ok && n != "" {
		return n
	}
	if id == 0 {
		return "Domain-0"
	}
	return "dom" + strconv.Itoa(int(id))
}

// observe reads physinfo, the domain list and, when tmem answers, LIST (long,
// all clients) and QUERY_FREEABLE_MB, and builds the policy's snapshot.
func observe(cl *xenctl.Client, nm namer, now func() time.Time) (*observation, error) {
	start := now()
	o := &observation{Time: start}
	var err error
	if o.Physinfo, err = cl.Physinfo(); err != nil {
		return nil, err
	}
	if o.Domains, err = cl.Domains(); err != nil {
		return nil, err
	}
	if o.Tmem, err = cl.ProbeTmem(); err != nil {
		return nil, err
	}
	o.Names = map[uint16]string{}
	if nm != nil {
		for id, n := range nm.names() {
			o.Names[id] = n
		}
	}
	if o.Tmem.Available {
		if o.ListText, err = cl.List(xenctl.AllClients, true); err != nil {
			return nil, err
		}
		if o.List, err = xenctl.ParseList(o.ListText); err != nil {
			return nil, fmt.Errorf("tmem list: %w", err)
		}
		if o.Freeable, err = cl.QueryFreeableMiB(); err != nil {
			return nil, err
		}
	}
	o.Snapshot = toSnapshot(o, nm)
	o.Took = now().Sub(start)
	return o, nil
}

// toSnapshot converts an observation into the pure values package pools
// works on.
func toSnapshot(o *observation, nm namer) pools.Snapshot {
	s := pools.Snapshot{Time: o.Time}
	s.Host = pools.Host{
		TotalKiB:       o.Physinfo.TotalKiB(),
		FreeKiB:        o.Physinfo.FreeKiB(),
		FreeableKiB:    o.Freeable * 1024,
		OutstandingKiB: o.Physinfo.OutstandingPages * xenctl.PageKiB,
	}
	if o.List == nil {
		return s
	}
	if g := o.List.Global; g != nil {
		s.Global = pools.Global{
			Ops: g.TotalOps, FailedOps: g.ErroredOps, AllocFailed: g.AllocFailed,
			PageAllocFailed: g.AllocPageFailed, FreePages: g.FreePages, Evictions: g.Evicted,
			EvictionAttempts: g.EvictAttempts, Relinquished: g.Relinquished,
			RelinquishAttempts: g.RelinquishAttempts, EphPages: nonneg(g.EphPages),
			EphMax: nonneg(g.MaxEphPages), EphPuts: g.EphPuts,
		}
	}
	handles := map[uint16][16]byte{}
	for _, d := range o.Domains {
		handles[d.ID] = d.Handle
	}
	for _, c := range o.List.Clients {
		pc := pools.Client{
			DomID: c.ID, Name: domainName(o.Names, c.ID), Handle: handles[c.ID],
			Weight: uint32(c.Weight), Frozen: c.Frozen, Compress: c.Compress,
			EphPages: nonneg(c.EphPages), EphMax: nonneg(c.MaxEphPages),
			EphGets: nonneg(c.EphGets), PersPuts: nonneg(c.PersPuts), PersGets: nonneg(c.PersGets),
		}
		if nm != nil {
			if p := nm.settings(c.ID).Priority; p != nil {
				pc.Priority = *p
			}
		}
		for _, p := range c.Pools {
			pc.Pools = append(pc.Pools, pools.Pool{
				ID: int(p.ID), Persistent: p.Persistent(), Shared: p.Shared(), UUID: p.UUID,
				Pages: nonneg(p.Pages), PutsOK: p.GoodPuts, Puts: p.Puts, PutsFailed: p.NoMemPuts,
				GetsOK: p.FoundGets, Gets: p.Gets, FlushesOK: p.FlushesFound, Flushes: p.Flushes,
				ObjFlushesOK: p.ObjFlushesFound, ObjFlushes: p.ObjFlushes,
			})
		}
		s.Clients = append(s.Clients, pc)
	}
	return s
}

func nonneg(v int64) uint64 {
	if v < 0 {
		return 0
	}
	return uint64(v)
}
