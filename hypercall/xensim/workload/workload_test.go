package workload

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/xentmem/xentmem/hypercall/xensim"
	"github.com/xentmem/xentmem/xenctl"
)

func newGuest(t testing.TB, cfg *xensim.Config, memKiB, maxKiB uint64) (*xensim.Sim, uint16) {
	t.Helper()
	s, err := xensim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	id, err := s.CreateDomain(xensim.DomainConfig{MemoryKiB: memKiB, MaxMemoryKiB: maxKiB})
	if err != nil {
		t.Fatal(err)
	}
	return s, id
}

func runCleancache(t testing.TB, s *xensim.Sim, id uint16, cfg *CleancacheConfig, n int) CleancacheStats {
	t.Helper()
	c, err := NewCleancache(s, id, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Run(n); err != nil {
		t.Fatal(err)
	}
	st := c.Stats()
	if st.Corrupt != 0 || st.Errors != 0 {
		t.Errorf("corrupt %d, errors %d", st.Corrupt, st.Errors)
	}
	if err := c.Unmount(); err != nil {
		t.Fatal(err)
	}
	return st
}

func TestCleancacheDeterministic(t *testing.T) {
	run := func() CleancacheStats {
		s, id := newGuest(t, nil, 16<<10, 0)
		return runCleancache(t, s, id, &CleancacheConfig{Files: 8, Pages: 128, CacheFrames: 256, Seed: 7, TruncateEvery: 500}, 5000)
	}
	if a, b := run(), run(); a != b {
		t.Errorf("two runs with one seed differ:\n%s", cmp.Diff(a, b))
	}
}

// TestCleancachePatterns runs each access pattern over 2048 pages with a
// 256-frame page cache and plenty of host memory: every page comes from
// the disk once, every later page-cache miss is a tmem hit.
func TestCleancachePatterns(t *testing.T) {
	const files, pages, reads = 16, 128, 20000
	for _, c := range []struct {
		name    string
		pattern func() Pattern
	}{
		{"uniform", func() Pattern { return Uniform(files, pages, 1) }},
		{"zipf-1.1", func() Pattern { return Zipf(files, pages, 1.1, 1) }},
		{"zipf-2.0", func() Pattern { return Zipf(files, pages, 2.0, 1) }},
		{"sequential", func() Pattern { return Sequential(files, pages) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, id := newGuest(t, nil, 16<<10, 0)
			st := runCleancache(t, s, id, &CleancacheConfig{Files: files, Pages: pages, CacheFrames: 256, Pattern: c.pattern()}, reads)
			t.Logf("%s: page cache hits %d/%d, tmem hit ratio %.3f, disk reads %d, avoided %d, puts %d/%d",
				c.name, st.CacheHits, st.Reads, st.HitRatio(), st.DiskReads, st.DiskReadsAvoided(), st.PutsOK, st.Puts)
			seen := map[Page]bool{}
			p := c.pattern()
			for i := 0; i < reads; i++ {
				seen[p.Next()] = true
			}
			if st.DiskReads != uint64(len(seen)) || st.DiskReads+st.GetHits != st.Gets || st.Gets+st.CacheHits != st.Reads || st.PutsOK != st.Puts {
				t.Errorf("%d distinct pages; counters %+v", len(seen), st)
			}
		})
	}
}

// TestCleancacheUnderPressure: a host too small for the data set evicts
// ephemeral pages; the workload still never sees stale or wrong data.
func TestCleancacheUnderPressure(t *testing.T) {
	s, id := newGuest(t, &xensim.Config{TotalPages: 32768, FreePages: 3000, Dom0MemoryKiB: 32 << 10}, 4<<10, 0)
	st := runCleancache(t, s, id, &CleancacheConfig{Files: 16, Pages: 256, CacheFrames: 512, TruncateEvery: 1000, Seed: 3}, 30000)
	if st.HitRatio() > 0.9 || st.GetHits == 0 || st.Flushes == 0 {
		t.Errorf("under pressure: %+v (hit ratio %.3f)", st, st.HitRatio())
	}
	cl, err := xenctl.New(s, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	text, err := cl.List(xenctl.AllClients, true)
	if err != nil {
		t.Fatal(err)
	}
	l, err := xenctl.ParseList(text)
	if err != nil {
		t.Fatal(err)
	}
	if l.Global.Evicted == 0 || len(l.Client(id).Pools) != 0 {
		t.Errorf("expected evictions and no pools after unmount:\n%s", text)
	}
}

func TestCleancacheOldRelease(t *testing.T) {
	s, id := newGuest(t, &xensim.Config{Version: "4.0.0"}, 16<<10, 0)
	st := runCleancache(t, s, id, &CleancacheConfig{Filesystems: 2, Files: 4, Pages: 64, CacheFrames: 64, Seed: 1}, 3000)
	if st.GetHits == 0 {
		t.Errorf("no hits on 4.0.0: %+v", st)
	}
}

func runFrontswap(t testing.TB, s *xensim.Sim, id uint16, cfg *FrontswapConfig, n int) FrontswapStats {
	t.Helper()
	f, err := NewFrontswap(s, id, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Run(n); err != nil {
		t.Fatal(err)
	}
	st := f.Stats()
	if st.Corrupt != 0 || st.Errors != 0 {
		t.Errorf("corrupt %d, errors %d", st.Corrupt, st.Errors)
	}
	if err := f.Swapoff(); err != nil {
		t.Fatal(err)
	}
	return st
}

func TestFrontswap(t *testing.T) {
	s, id := newGuest(t, nil, 16<<10, 64<<10)
	f, err := NewFrontswap(s, id, &FrontswapConfig{WorkingSet: 2048, RAMFrames: 512, Pattern: Zipf(1, 2048, 1.2, 5), Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Run(20000); err != nil {
		t.Fatal(err)
	}
	st := f.Stats()
	t.Logf("frontswap: %d faults, %d swap-outs (%d to tmem), %d swap-ins, hit ratio %.3f, disk reads avoided %d",
		st.Faults, st.SwapOuts, st.Stores, st.SwapIns, st.HitRatio(), st.DiskReadsAvoided())
	if st.Stores != st.SwapOuts || st.LoadHits != st.SwapIns || st.Corrupt != 0 || st.Errors != 0 {
		t.Errorf("with room below max_pages every swap-out goes to tmem: %+v", st)
	}
	cl, _ := xenctl.New(s, nil)
	defer cl.Close()
	text, _ := cl.List(id, true)
	l, err := xenctl.ParseList(text)
	if err != nil {
		t.Fatal(err)
	}
	p := l.Clients[0].Pools[0]
	// One object per (type, offset & 0xF): at most 16 for swap area 0.
	if !p.Persistent() || p.Objects > 16 || p.Pages != int64(st.Stores-st.LoadHits) {
		t.Errorf("frontswap pool: %+v", p)
	}
	if dom := s.Domains()[1]; dom.TotPages <= 4096 {
		t.Errorf("persistent pages not charged to the guest: %+v", dom)
	}
	if err := f.Swapoff(); err != nil {
		t.Fatal(err)
	}
	text, _ = cl.List(id, true)
	if !strings.Contains(string(text), "PT:PP,U0:0,U1:0,Pc:0,") {
		t.Errorf("swapoff left pages:\n%s", text)
	}
}

// TestFrontswapAtMaxPages: a guest at its memory maximum cannot grow
// through persistent tmem: every swap-out goes to the device.
func TestFrontswapAtMaxPages(t *testing.T) {
	s, id := newGuest(t, nil, 16<<10, 0)
	st := runFrontswap(t, s, id, &FrontswapConfig{WorkingSet: 1024, RAMFrames: 256, Seed: 9}, 5000)
	if st.Stores != 0 || st.DiskWrites != st.SwapOuts || st.DiskReads != st.SwapIns {
		t.Errorf("at max_pages: %+v", st)
	}
}
