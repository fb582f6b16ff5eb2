package main

import (
	"fmt"
	"io"
	"strconv"

	"github.com/xentmem/xentmem/xenctl"
)

// writeListTable prints `tmem-list -o table`: a summary line, the domains
// and the pools. Every number is the raw LIST's (pages, counters) or is
// derived from it in the one way docs/tmemctl.8 states (MiB = pages × 4 /
// 1024, hit ratio = gs/gt, sums over a domain's pools).
func writeListTable(w io.Writer, v *view) error {
	l := v.List
	gen := v.Generation
	if gen == "" {
		gen = "?"
	}
	fmt.Fprintf(w, "Xen %s, tmem ABI %s: %d tmem client(s)", v.Xen, gen, len(l.Clients))
	if g := l.Global; g != nil {
		fmt.Fprintf(w, ", %d ephemeral pages (%s MiB, max %d), %d evicted, %d on tmem's free list, %d ops (%d failed)",
			g.EphPages, fmtMiB(mib(g.EphPages)), g.MaxEphPages, g.Evicted, g.FreePages, g.TotalOps, g.ErroredOps)
	}
	fmt.Fprintln(w)
	if len(l.Clients) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	d := newTable("DOMAIN", ">ID", ">POOLS", ">EPH_PAGES", ">EPH_MiB", ">PERS_PAGES", ">PERS_MiB",
		">PUTS", ">GETS", ">HITS", ">HIT%", ">WEIGHT", ">CAP", "COMPRESS", "FROZEN")
	for i := range l.Clients {
		c := &l.Clients[i]
		t := totalsOf(c)
		capText := "-"
		if c.HasCap {
			capText = strconv.FormatInt(c.Cap, 10)
		}
		d.add(v.name(c.ID), u(uint64(c.ID)), strconv.Itoa(t.Pools),
			i64(c.EphPages), fmtMiB(mib(c.EphPages)), i64(t.PersPages), fmtMiB(mib(t.PersPages)),
			u(t.Puts), u(t.Gets), u(t.Hits), fmtRatio(ratio(t.Hits, t.Gets)),
			i64(c.Weight), capText, onOff(c.Compress), yesNo(c.Frozen))
	}
	if err := d.write(w); err != nil {
		return err
	}
	p := newTable("DOMAIN", ">ID", ">POOL", "TYPE", "UUID", ">PAGES", ">MiB", ">MAX_PAGES", ">OBJECTS",
		">PUTS", ">GOOD_PUTS", ">FAILED_PUTS", ">GETS", ">HITS", ">HIT%", ">FLUSHES")
	n := 0
	for i := range l.Clients {
		c := &l.Clients[i]
		for j := range c.Pools {
			pl := &c.Pools[j]
			uuid := "-"
			if s := poolUUID(pl.Shared(), pl.UUID); s != nil {
				uuid = *s
			}
			p.add(v.name(c.ID), u(uint64(c.ID)), i64(pl.ID), poolKind(pl.Type), uuid,
				i64(pl.Pages), fmtMiB(mib(pl.Pages)), i64(pl.MaxPages), i64(pl.Objects),
				u(pl.Puts), u(pl.GoodPuts), u(pl.NoMemPuts), u(pl.Gets), u(pl.FoundGets),
				fmtRatio(ratio(pl.FoundGets, pl.Gets)), u(pl.Flushes))
			n++
		}
	}
	if n == 0 {
		return nil
	}
	fmt.Fprintln(w)
	return p.write(w)
}

// poolKind spells out a pool type.
func poolKind(t xenctl.ListPoolType) string {
	k := "ephemeral"
	if t.Persistent() {
		k = "persistent"
	}
	if t.Shared() {
		k += ",shared"
	}
	return k
}

func u(v uint64) string  { return strconv.FormatUint(v, 10) }
func i64(v int64) string { return strconv.FormatInt(v, 10) }
