package main

import (
	"time"

	"github.com/xentmem/xentmem/xenctl"
)

// view is a fetched LIST, parsed, with the domain names: what the table and
// JSON formatters and tmem-top read. Every number they print comes from
// here, so it equals the raw LIST's.
type view struct {
	Xen        string // e.g. "4.12.4"
	Generation string // tmem ABI generation: A0, A1, B, C, D or none
	Time       time.Time
	List       *xenctl.List
	Domains    []listDomain // Xen's domain list
	names      map[string]string
}

// newView parses the LIST text of res.
func newView(res *listResult) (*view, error) {
	l, err := xenctl.ParseList([]byte(res.Text))
	if err != nil {
		return nil, err
	}
	v := &view{Xen: res.Version, Time: res.Time, List: l, Domains: res.Domains, names: res.Names}
	if xv, err := xenctl.ParseVersion(res.Version); err == nil {
		v.Generation = xenctl.GenerationOf(xv).String()
	}
	return v, nil
}

// name returns the name of domain id.
func (v *view) name(id uint16) string { return domainName(v.names, id) }

// pageKiB is the size of a tmem page.
const pageKiB = 4

// mib converts pages to MiB.
func mib(pages int64) float64 { return float64(pages) * pageKiB / 1024 }

// clientTotals sums what a client's P= lines say. A shared pool's lines
// carry the pool's statistics, so they count for every sharer.
type clientTotals struct {
	Pools       int
	EphPools    int
	PersPools   int
	SharedPools int
	// PersPages is Σ Pc over persistent pools. The ephemeral pages are the
	// client's own Ec, which counts each shared pool once, for its owner.
	PersPages int64
	Puts      uint64 // Σ pt
	GoodPuts  uint64 // Σ ps
	Gets      uint64 // Σ gt
	Hits      uint64 // Σ gs
}

func totalsOf(c *xenctl.ListClient) clientTotals {
	var t clientTotals
	for i := range c.Pools {
		p := &c.Pools[i]
		t.Pools++
		if p.Persistent() {
			t.PersPools++
			t.PersPages += p.Pages
		} else {
			t.EphPools++
		}
		if p.Shared() {
			t.SharedPools++
		}
		t.Puts += p.Puts
		t.GoodPuts += p.GoodPuts
		t.Gets += p.Gets
		t.Hits += p.FoundGets
	}
	return t
}

// ratio returns num/den, or nil when den is 0.
func ratio(num, den uint64) *float64 {
	if den == 0 {
		return nil
	}
	r := float64(num) / float64(den)
	return &r
}

// poolUUID returns the uuid of a shared pool in xl's text form, nil for a
// private one (Xen prints 0 there).
func poolUUID(shared bool, u [2]uint64) *string {
	if !shared {
		return nil
	}
	s := xenctl.UUID{Lo: u[0], Hi: u[1]}.String()
	return &s
}
