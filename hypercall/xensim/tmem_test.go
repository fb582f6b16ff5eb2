package xensim

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/xentmem/xentmem/hypercall"
	"github.com/xentmem/xentmem/xenctl"
)

// TestCompression: with tmem_compress every client starts compressing;
// well-compressing pages are stored at their compressed size (cp, cb),
// incompressible ones whole (cn), and GET returns the original bytes.
func TestCompression(t *testing.T) {
	s, _ := New(&Config{TmemCompress: true})
	id, _ := s.CreateDomain(DomainConfig{MemoryKiB: 16 << 10})
	g := newRaw(t, s.Guest(id), "4.12.4")
	d := newRaw(t, s, "4.12.4")
	g.newPool(eph, 0, 0)
	mem := s.GuestMemory(id)
	rng := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, pageSize)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	half := append(bytes.Repeat([]byte{0}, pageSize/2), random[:pageSize/2]...)
	pages := [][]byte{make([]byte, pageSize), random, half}
	for i, p := range pages {
		mem.Write(uint64(i), p)
		if v := g.put(0, [3]uint64{1}, uint32(i), uint64(i)); v != 1 {
			t.Fatalf("put %d: %d", i, v)
		}
	}
	l := parsedList(t, d)
	c := l.Client(id)
	if !c.Compress || c.CompressedPages != 2 || c.CompressPoor != 1 || c.CompressedBytes < 2000 || c.CompressedBytes > 2300 {
		t.Errorf("compression counters: %+v", c)
	}
	if l.Global.Frames != 1 {
		t.Errorf("only the incompressible page takes a frame: Fc %d", l.Global.Frames)
	}
	for i, p := range pages {
		if v := g.get(0, [3]uint64{1}, uint32(i), 100); v != 1 {
			t.Fatalf("get %d: %d", i, v)
		}
		got := make([]byte, pageSize)
		mem.Read(100, got)
		if !bytes.Equal(got, p) {
			t.Errorf("page %d came back different", i)
		}
	}
	if c := parsedList(t, d).Client(id); c.CompressedPages != 0 || c.CompressedBytes != 0 {
		t.Errorf("after the gets: %+v", c)
	}
	info, _ := d.clientInfo(uint32(id))
	if binary.LittleEndian.Uint32(info[12:]) != 2 {
		t.Errorf("client flags %x", info)
	}
}

// saveRaw issues a save/restore sub-op with a pool id and an object id.
func (r *raw) saveOp(sub, cli uint32, pool int32, oid [3]uint64, length, arg uint32, buf uint64) int64 {
	r.poolID = pool
	defer func() { r.poolID = -1 }()
	if r.gen >= genB {
		return r.sysctl(hypercall.XEN_SYSCTL_tmem_op, r.iface, func(u []byte) {
			le32(u, 0, sub)
			le32(u, 4, uint32(pool))
			le32(u, 8, cli)
			le32(u, 12, length)
			le32(u, 16, arg)
			le64(u, 24, oid[0])
			le64(u, 32, oid[1])
			le64(u, 40, oid[2])
			le64(u, 48, buf)
		})
	}
	return r.op(func(b []byte) {
		le32(b, 4, uint32(pool))
		le32(b, 8, sub)
		le32(b, 12, cli)
		le32(b, 16, length)
		le32(b, 20, arg)
		le64(b, 24, oid[0])
		le64(b, 32, oid[1])
		le64(b, 40, oid[2])
		le64(b, 48, buf)
	})
}

// TestSaveRestore saves a guest's persistent pool and restores it into
// another domain, on generation A1 and D.
func TestSaveRestore(t *testing.T) {
	for _, v := range []string{"4.5.5", "4.12.4"} {
		t.Run(v, func(t *testing.T) {
			// RESTORE_PUT_PAGE takes the persistent pool's metadata pages
			// from the *calling* domain (tmem_persistent_pool_page_get uses
			// current->domain): dom0 needs room below its max_pages.
			s, _ := New(&Config{Version: v, Dom0MaxMemoryKiB: 1 << 20})
			src, _ := s.CreateDomain(DomainConfig{MemoryKiB: 16 << 10, MaxMemoryKiB: 32 << 10})
			dst, _ := s.CreateDomain(DomainConfig{MemoryKiB: 16 << 10, MaxMemoryKiB: 32 << 10})
			g := newRaw(t, s.Guest(src), v)
			d := newRaw(t, s, v)
			g.newPool(pers, 0, 0)
			for i := 0; i < 5; i++ {
				s.GuestMemory(src).Write(uint64(i), bytes.Repeat([]byte{byte('a' + i)}, pageSize))
				g.put(0, [3]uint64{42, 1, 2}, uint32(i), uint64(i))
			}
			ok := map[string]int64{"4.5.5": 1, "4.12.4": 0}[v]
			if res := d.saveOp(hypercall.TMEMC_SAVE_BEGIN, uint32(src), 0, [3]uint64{}, 0, 0, 0); res != ok {
				t.Fatalf("SAVE_BEGIN: %d", res)
			}
			if g.put(0, [3]uint64{42, 1, 2}, 9, 0) != neg(hypercall.EFROZEN) {
				t.Error("client not frozen during save")
			}
			var idx []uint32
			buf := d.big.Bytes()
			for {
				res := d.saveOp(hypercall.TMEMC_SAVE_GET_NEXT_PAGE, uint32(src), 0, [3]uint64{}, 8192, 0, d.big.Addr())
				if res != 1 {
					if res != -1 {
						t.Fatalf("SAVE_GET_NEXT_PAGE: %d", res)
					}
					break
				}
				index := binary.LittleEndian.Uint32(buf[4:])
				if binary.LittleEndian.Uint64(buf[8:]) != 42 || buf[32] != byte('a'+index) {
					t.Errorf("saved page %d: handle %x data %q", index, buf[:32], buf[32])
				}
				idx = append(idx, index)
			}
			// Xen's cursor never returns the first page of the list.
			if len(idx) != 4 || idx[0] != 1 || idx[3] != 4 {
				t.Errorf("saved indices %v", idx)
			}
			if res := d.saveOp(hypercall.TMEMC_SAVE_END, uint32(src), 0, [3]uint64{}, 0, 0, 0); res != 0 {
				t.Fatalf("SAVE_END: %d", res)
			}
			if g.put(0, [3]uint64{42, 1, 2}, 9, 0) != 1 {
				t.Error("client still frozen after SAVE_END")
			}
			// Restore into dst: its client and pool, then the pages.
			cl := newXenctl(t, s)
			if err := cl.RestoreBegin(dst); err != nil {
				t.Fatalf("RestoreBegin: %v", err)
			}
			if ids, err := cl.CreatePools(dst, []xenctl.PoolInfo{{ID: 0, Flags: xenctl.PoolPersistent}}); err != nil || ids[0] != 0 {
				t.Fatalf("CreatePools: %v %v", ids, err)
			}
			for _, i := range idx {
				page := bytes.Repeat([]byte{byte('a' + i)}, pageSize)
				if err := cl.RestorePutPage(dst, 0, [3]uint64{42, 1, 2}, i, page); err != nil {
					t.Fatalf("RestorePutPage: %v", err)
				}
			}
			h := newRaw(t, s.Guest(dst), v)
			if h.get(0, [3]uint64{42, 1, 2}, 3, 7) != 1 {
				t.Fatal("restored page missing")
			}
			got := make([]byte, pageSize)
			s.GuestMemory(dst).Read(7, got)
			if got[0] != 'd' || got[pageSize-1] != 'd' {
				t.Errorf("restored page %q", got[0])
			}
		})
	}
}

// TestLiveSaveInvalidations: pages flushed during a live save are kept on
// the client's invalidated list and reported by SAVE_GET_NEXT_INV.
func TestLiveSaveInvalidations(t *testing.T) {
	s, _ := New(nil)
	src, _ := s.CreateDomain(DomainConfig{MemoryKiB: 16 << 10, MaxMemoryKiB: 32 << 10})
	g := newRaw(t, s.Guest(src), "4.12.4")
	d := newRaw(t, s, "4.12.4")
	g.newPool(pers, 0, 0)
	for i := 0; i < 3; i++ {
		g.put(0, [3]uint64{5}, uint32(i), 1)
	}
	if res := d.saveOp(hypercall.TMEMC_SAVE_BEGIN, uint32(src), 0, [3]uint64{}, 0, 1, 0); res != 0 {
		t.Fatal(res)
	}
	info, _ := d.clientInfo(uint32(src))
	if binary.LittleEndian.Uint32(info[12:]) != 5 {
		t.Errorf("flags during a live save: %x", info[12:16])
	}
	if g.flushPage(0, [3]uint64{5}, 2) != neg(hypercall.EFROZEN) {
		t.Error("flush during save")
	}
	if res := d.saveOp(hypercall.TMEMC_SAVE_GET_NEXT_INV, uint32(src), 0, [3]uint64{}, 32, 0, d.big.Addr()); res != 1 {
		t.Fatalf("SAVE_GET_NEXT_INV: %d", res)
	}
	if b := d.big.Bytes(); binary.LittleEndian.Uint32(b[4:]) != 2 || binary.LittleEndian.Uint64(b[8:]) != 5 {
		t.Errorf("invalidated handle %x", b[:32])
	}
	if res := d.saveOp(hypercall.TMEMC_SAVE_GET_NEXT_INV, uint32(src), 0, [3]uint64{}, 32, 0, d.big.Addr()); res != 0 {
		t.Errorf("end of invalidations: %d", res)
	}
	if res := d.saveOp(hypercall.TMEMC_SAVE_END, uint32(src), 0, [3]uint64{}, 0, 0, 0); res != 0 {
		t.Fatal(res)
	}
	if l := parsedList(t, d); l.Global.PageDescs != 2 {
		t.Errorf("invalidated descriptor not freed by SAVE_END: Pc %d", l.Global.PageDescs)
	}
}

func TestDomains(t *testing.T) {
	s, _ := New(&Config{TotalPages: 65536, Dom0MemoryKiB: 64 << 10})
	if _, err := s.CreateDomain(DomainConfig{ID: 5, MemoryKiB: 1 << 20}); !errors.Is(err, ErrNoMemory) {
		t.Errorf("too big: %v", err)
	}
	if id, err := s.CreateDomain(DomainConfig{ID: 5, MemoryKiB: 4 << 10}); err != nil || id != 5 {
		t.Fatalf("create 5: %d %v", id, err)
	}
	if _, err := s.CreateDomain(DomainConfig{ID: 5}); !errors.Is(err, ErrDomainExists) {
		t.Errorf("duplicate: %v", err)
	}
	if id, _ := s.CreateDomain(DomainConfig{}); id != 1 {
		t.Errorf("first free id %d", id)
	}
	for _, err := range []error{s.DestroyDomain(0), s.DestroyDomain(9), s.SetDomainMemory(9, 1), s.SetDomainMaxMemory(9, 1)} {
		if !errors.Is(err, ErrNoDomain) {
			t.Errorf("no domain: %v", err)
		}
	}
	_, free := s.Physinfo()
	if err := s.SetDomainMemory(5, 2<<10); err != nil {
		t.Fatal(err)
	}
	if _, now := s.Physinfo(); now != free+512 {
		t.Errorf("balloon down: free %d → %d", free, now)
	}
	if _, err := s.GuestMemory(9).Frame(0); !errors.Is(err, ErrNoDomain) {
		t.Errorf("frame of no domain: %v", err)
	}
	if _, err := s.GuestMemory(5).Frame(1 << 30); err == nil {
		t.Error("frame beyond the domain")
	}
	if _, err := New(&Config{Version: "4.6.1", Tmem: TmemNotBuilt}); err == nil {
		t.Error("CONFIG_TMEM before 4.7")
	}
	if _, err := New(&Config{Version: "3.4.3"}); err == nil {
		t.Error("Xen 3.4 accepted")
	}
}

// TestConcurrent drives guests and dom0 from several goroutines; run with
// -race.
func TestConcurrent(t *testing.T) {
	s, _ := New(nil)
	cl := newXenctl(t, s)
	var wg sync.WaitGroup
	for gI := 0; gI < 4; gI++ {
		id, _ := s.CreateDomain(DomainConfig{MemoryKiB: 16 << 10})
		gc := newXenctl(t, s.Guest(id))
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := gc.NewPool(xenctl.PoolSpec{})
			if err != nil {
				t.Error(err)
				return
			}
			mem := s.GuestMemory(id)
			for i := 0; i < 500; i++ {
				mem.Write(uint64(i%64), []byte{byte(i)})
				if err := gc.PutPage(p, [3]uint64{uint64(i % 7)}, uint32(i), uint64(i%64)); err != nil {
					t.Error(err)
					return
				}
				if _, err := gc.GetPage(p, [3]uint64{uint64(i % 7)}, uint32(i), 100); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 50; i++ {
			if _, err := cl.List(xenctl.AllClients, true); err != nil {
				t.Error(err)
			}
			if _, err := cl.Physinfo(); err != nil {
				t.Error(err)
			}
		}
	}()
	wg.Wait()
	if n := s.Memory().Live(); n != 2 {
		t.Errorf("%d live dom0 buffers (want xenctl's scratch page and its LIST buffer)", n)
	}
	cl.Close()
	if n := s.Memory().Live(); n != 0 {
		t.Errorf("%d live dom0 buffers after Close, want 0", n)
	}
}
