package xensim

import (
	"testing"

	"github.com/xentmem/xentmem/hypercall"
	"github.com/xentmem/xentmem/xenctl"
)

func parsedList(t *testing.T, r *raw) *xenctl.List {
	t.Helper()
	text, res := r.list(allClients, true, 1<<16)
	if res != 0 {
		t.Fatalf("LIST: %d", res)
	}
	l, err := xenctl.ParseList([]byte(text))
	if err != nil {
		t.Fatalf("ParseList: %v\n%s", err, text)
	}
	return l
}

// pressureHost is a 128 MiB host with two 8 MiB guests and ~30 MiB free;
// the mid-size zone is 256 pages (1 MiB).
func pressureHost(t *testing.T, version string) (*Sim, *raw, *raw, *raw) {
	t.Helper()
	s, err := New(&Config{Version: version, TotalPages: 32768, FreePages: 12000, Dom0MemoryKiB: 32 << 10})
	if err != nil {
		t.Fatal(err)
	}
	g := guests(t, s, 0)
	for i := 0; i < 2; i++ {
		id, err := s.CreateDomain(DomainConfig{MemoryKiB: 8 << 10})
		if err != nil {
			t.Fatal(err)
		}
		g = append(g, newRaw(t, s.Guest(id), version))
	}
	return s, newRaw(t, s, version), g[0], g[1]
}

// fill puts n ephemeral pages from r into its pool 0, one object per 512
// pages, and requires every PUT to succeed.
func fill(t *testing.T, r *raw, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		if v := r.put(0, [3]uint64{uint64(i / 512)}, uint32(i%512), uint64(i%2048)); v != 1 {
			t.Fatalf("put %d: %d", i, v)
		}
	}
}

func present(r *raw, i int) bool {
	return r.pageOp(hypercall.TMEM_GET_PAGE, 0, [3]uint64{uint64(i / 512)}, uint32(i%512), 0) == 1
}

// TestEvictGlobalLRU: without weights, a guest that runs the host out of
// memory evicts the oldest ephemeral pages of the host, another guest's.
func TestEvictGlobalLRU(t *testing.T) {
	s, d, a, b := pressureHost(t, "4.12.4")
	a.newPool(eph, 0, 0)
	b.newPool(eph, 0, 0)
	fill(t, a, 6000)
	fill(t, b, 3000)
	if present(a, 0) || !present(a, 5999) {
		t.Error("A's oldest page should be gone, its newest kept")
	}
	if !present(b, 0) || !present(b, 2999) {
		t.Error("B's pages should all be there")
	}
	l := parsedList(t, d)
	if l.Global.Evicted == 0 || l.Global.Relinquished != 0 {
		t.Errorf("PUTs keep 1 MiB above the mid-size zone by evicting, no relinquish: %+v", l.Global)
	}
	_, free := s.Physinfo()
	if free > 512+16 || free < 256 {
		t.Errorf("free pages %d: tmem should have used the host down to 1 MiB above the mid-size zone", free)
	}
	// A guest growing its balloon now takes single pages from tmem: the
	// heap is at the mid-size zone and tmem holds freeable pages.
	if err := s.SetDomainMaxMemory(1, 16<<10); err != nil {
		t.Fatal(err)
	}
	if err := s.SetDomainMemory(1, 12<<10); err != nil {
		t.Fatal(err)
	}
	l = parsedList(t, d)
	if l.Global.Relinquished == 0 || l.Global.RelinquishAttempts < l.Global.Relinquished {
		t.Errorf("no relinquish counted: %+v", l.Global)
	}
	if _, now := s.Physinfo(); now < 256 {
		t.Errorf("free pages %d went below the mid-size zone", now)
	}
}

// TestEvictOverQuotaInverted: client_over_quota is applied literally. With
// weights A=1 and B=3, B holds a smaller share of the ephemeral pages than
// of the weight, so it counts as "over quota" and evicts its own pages
// first, while A's old pages survive.
func TestEvictOverQuotaInverted(t *testing.T) {
	_, d, a, b := pressureHost(t, "4.12.4")
	a.newPool(eph, 0, 0)
	b.newPool(eph, 0, 0)
	if d.setClientInfo(1, 1, 16, 0, 1) != 0 || d.setClientInfo(2, 1, 16, 0, 3) != 0 {
		t.Fatal("set weights")
	}
	fill(t, a, 6000)
	fill(t, b, 3000)
	if !present(a, 0) {
		t.Error("A's oldest page was evicted: the quota test is not the literal one")
	}
	if present(b, 0) {
		t.Error("B's oldest page survived: B should have evicted its own pages")
	}
	l := parsedList(t, d)
	if ca, cb := l.Client(1), l.Client(2); ca.Weight != 1 || cb.Weight != 3 || cb.EphPages >= 3000 {
		t.Errorf("clients: A %+v B %+v", ca, cb)
	}
}

// TestEnsureAvailENOMEM: from 4.4 a PUT that cannot get 1 MiB above the
// mid-size zone (nothing left to evict) fails with ENOMEM before it is
// counted; 4.0–4.3 carry on until the heap is empty.
func TestEnsureAvailENOMEM(t *testing.T) {
	for _, c := range []struct {
		version string
		minPuts int
		maxPuts int
	}{
		{"4.3.4", 560, 600},
		{"4.12.4", 60, 100},
	} {
		t.Run(c.version, func(t *testing.T) {
			s, err := New(&Config{Version: c.version, TotalPages: 32768, FreePages: 600, Dom0MemoryKiB: 32 << 10, Dom0MaxMemoryKiB: 64 << 10})
			if err != nil {
				t.Fatal(err)
			}
			r := newRaw(t, s, c.version)
			r.newPool(pers, 0, 0)
			n := 0
			for ; n < 1000; n++ {
				v := r.put(0, [3]uint64{1}, uint32(n), 1)
				if v == neg(hypercall.ENOMEM) {
					break
				}
				if v != 1 {
					t.Fatalf("put %d: %d", n, v)
				}
			}
			if n < c.minPuts || n > c.maxPuts {
				t.Errorf("%d puts before ENOMEM, want %d–%d", n, c.minPuts, c.maxPuts)
			}
			l := parsedList(t, r)
			p := l.Client(0).Pools[0]
			if c.version == "4.12.4" && (p.Puts != uint64(n) || l.Global.EvictAttempts != 10) {
				t.Errorf("4.4+: the failed PUT must not be counted and 10 evictions tried: pt %d Ea %d", p.Puts, l.Global.EvictAttempts)
			}
			if c.version == "4.3.4" && (p.Puts != uint64(n+1) || p.NoMemPuts != 1) {
				t.Errorf("4.3: the failed PUT is counted: pt %d px %d", p.Puts, p.NoMemPuts)
			}
		})
	}
}

// TestPersistentChargedToDomain: persistent pages count in the owner's
// tot_pages, fail with ENOMEM at max_pages (Af), and go to tmem's free
// list when the domain dies.
func TestPersistentChargedToDomain(t *testing.T) {
	s, _ := New(nil)
	id, _ := s.CreateDomain(DomainConfig{MemoryKiB: 4 << 10, MaxMemoryKiB: 5 << 10})
	g := newRaw(t, s.Guest(id), "4.12.4")
	g.newPool(pers, 0, 0)
	n := 0
	for ; g.put(0, [3]uint64{1}, uint32(n), 1) == 1; n++ {
	}
	dom := s.Domains()[1]
	if dom.TotPages != dom.MaxPages || n < 240 || n > 256 {
		t.Errorf("%d persistent pages; domain %+v", n, dom)
	}
	d := newRaw(t, s, "4.12.4")
	before := parsedList(t, d).Global.FreePages
	if err := s.DestroyDomain(id); err != nil {
		t.Fatal(err)
	}
	l := parsedList(t, d)
	if l.Client(id) != nil || l.Global.FreePages < before+uint64(n) {
		t.Errorf("after death: Ta %d (was %d, %d pages)", l.Global.FreePages, before, n)
	}
	if g.put(0, [3]uint64{1}, 0, 1) != neg(hypercall.ENODEV) {
		t.Error("a dead domain's tmem_op should fail with ENODEV")
	}
}

// TestFlushGivesMemoryBack: FLUSH evicts until tmem's free list holds the
// KiB asked for, then gives the whole list back.
func TestFlushGivesMemoryBack(t *testing.T) {
	s, d, a, _ := pressureHost(t, "4.6.6")
	a.newPool(eph, 0, 0)
	fill(t, a, 2000)
	_, before := s.Physinfo()
	kb := d.flush(allClients, 4096)
	_, after := s.Physinfo()
	if kb < 4096 || int64(after-before) != kb/4 {
		t.Errorf("flush 4096 KiB: %d KiB, free %d → %d", kb, before, after)
	}
	if mb := d.freeable(); mb != int64((2000-1024)>>8) && mb != int64((2000-1024)>>8)+1 {
		t.Errorf("freeable %d MiB", mb)
	}
}
