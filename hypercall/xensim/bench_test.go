package xensim

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/xentmem/xentmem/hypercall"
	"github.com/xentmem/xentmem/xenctl"
)

// pageBench is a guest issuing PUT and GET with a pre-encoded tmem_op, the
// way a guest kernel does: no allocation per operation.
type pageBench struct {
	c     hypercall.Caller
	op    []byte
	addr  uint64
	pool  uint32
	frame uint64
}

func newPageBench(tb testing.TB, s *Sim, persistent bool) *pageBench {
	return newPageBenchMem(tb, s, persistent, 64<<10)
}

func newPageBenchMem(tb testing.TB, s *Sim, persistent bool, kib uint64) *pageBench {
	tb.Helper()
	id, err := s.CreateDomain(DomainConfig{MemoryKiB: kib, MaxMemoryKiB: 1 << 20})
	if err != nil {
		tb.Fatal(err)
	}
	c := s.Guest(id)
	buf, err := c.Alloc(64)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { buf.Close() })
	pb := &pageBench{c: c, op: buf.Bytes()[:56], addr: buf.Addr(), frame: 1}
	flags := uint32(eph)
	if persistent {
		flags = pers
	}
	binary.LittleEndian.PutUint32(pb.op[0:], hypercall.TMEM_NEW_POOL)
	binary.LittleEndian.PutUint32(pb.op[24:], flags)
	p, err := c.Hypercall(hypercall.OpTmem, hypercall.Args{pb.addr})
	if err != nil {
		tb.Fatal(err)
	}
	pb.pool = uint32(p)
	s.GuestMemory(id).Write(1, make([]byte, pageSize))
	return pb
}

// do issues cmd for (object i/64, index i%64).
func (pb *pageBench) do(cmd uint32, i uint32) (uint64, error) {
	le := binary.LittleEndian
	le.PutUint32(pb.op[0:], cmd)
	le.PutUint32(pb.op[4:], pb.pool)
	le.PutUint64(pb.op[8:], uint64(i>>6))
	le.PutUint32(pb.op[32:], i&63)
	le.PutUint64(pb.op[48:], pb.frame)
	return pb.c.Hypercall(hypercall.OpTmem, hypercall.Args{pb.addr})
}

// workingSet is the number of distinct pages the benchmarks cycle over:
// 16 MiB, well beyond the CPU caches, for the copy loop as for tmem.
const workingSet = 4096

// BenchmarkPutGet compares tmem PUT and GET through the whole simulated
// hypercall path with a plain 4 KiB copy over the same working set. Each
// op copies one page; MB/s are comparable across the sub-benchmarks.
func BenchmarkPutGet(b *testing.B) {
	b.Run("copy-4KiB", func(b *testing.B) {
		src := make([]byte, pageSize)
		dst := make([]byte, workingSet*pageSize)
		b.SetBytes(pageSize)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			off := (i % workingSet) * pageSize
			copy(dst[off:off+pageSize], src)
			i++
		}
	})
	b.Run("copy-4KiB-hot", func(b *testing.B) {
		src := make([]byte, pageSize)
		dst := make([]byte, pageSize)
		b.SetBytes(pageSize)
		b.ReportAllocs()
		for b.Loop() {
			copy(dst, src)
		}
	})
	b.Run("put+get-ephemeral", func(b *testing.B) {
		s, _ := New(nil)
		pb := newPageBench(b, s, false)
		b.SetBytes(2 * pageSize)
		b.ReportAllocs()
		i := uint32(0)
		for b.Loop() {
			k := i % workingSet
			if v, err := pb.do(hypercall.TMEM_PUT_PAGE, k); v != 1 || err != nil {
				b.Fatalf("put: %d %v", v, err)
			}
			if v, err := pb.do(hypercall.TMEM_GET_PAGE, k); v != 1 || err != nil {
				b.Fatalf("get: %d %v", v, err)
			}
			i++
		}
	})
	b.Run("put-overwrite-persistent", func(b *testing.B) {
		s, _ := New(nil)
		pb := newPageBench(b, s, true)
		b.SetBytes(pageSize)
		b.ReportAllocs()
		i := uint32(0)
		for b.Loop() {
			if v, err := pb.do(hypercall.TMEM_PUT_PAGE, i%workingSet); v != 1 || err != nil {
				b.Fatalf("put: %d %v", v, err)
			}
			i++
		}
	})
	b.Run("get-persistent", func(b *testing.B) {
		s, _ := New(nil)
		pb := newPageBench(b, s, true)
		for k := uint32(0); k < workingSet; k++ {
			pb.do(hypercall.TMEM_PUT_PAGE, k)
		}
		b.SetBytes(pageSize)
		b.ReportAllocs()
		i := uint32(0)
		for b.Loop() {
			if v, err := pb.do(hypercall.TMEM_GET_PAGE, i%workingSet); v != 1 || err != nil {
				b.Fatalf("get: %d %v", v, err)
			}
			i++
		}
	})
}

// BenchmarkPutGetVsCopy interleaves the two in one loop, 256 pages at a
// time, so that a noisy machine slows both alike, and reports the tmem
// rates as a percentage of the copy rate: per operation (each PUT or GET
// copies one page) and per PUT+GET pair.
func BenchmarkPutGetVsCopy(b *testing.B) {
	s, _ := New(nil)
	pb := newPageBench(b, s, false)
	src := make([]byte, pageSize)
	dst := make([]byte, workingSet*pageSize)
	var copyNs, tmemNs time.Duration
	var pages, pairs int
	b.ReportAllocs()
	for b.Loop() {
		t0 := time.Now()
		for j := 0; j < 256; j++ {
			off := (pages % workingSet) * pageSize
			copy(dst[off:off+pageSize], src)
			pages++
		}
		t1 := time.Now()
		for j := 0; j < 128; j++ {
			k := uint32(pairs % workingSet)
			pb.do(hypercall.TMEM_PUT_PAGE, k)
			pb.do(hypercall.TMEM_GET_PAGE, k)
			pairs++
		}
		t2 := time.Now()
		copyNs += t1.Sub(t0)
		tmemNs += t2.Sub(t1)
	}
	perCopy := float64(copyNs) / float64(pages)
	perOp := float64(tmemNs) / float64(2*pairs)
	b.ReportMetric(perCopy, "ns/copy")
	b.ReportMetric(perOp, "ns/tmem-op")
	b.ReportMetric(100*perCopy/perOp, "op-rate-%-of-copy")
	b.ReportMetric(50*perCopy/perOp, "pair-rate-%-of-copy")
}

// TestPutGetAllocs: the page path allocates nothing per operation once the
// slabs have grown.
func TestPutGetAllocs(t *testing.T) {
	s, _ := New(nil)
	pb := newPageBench(t, s, false)
	for k := uint32(0); k < 256; k++ {
		pb.do(hypercall.TMEM_PUT_PAGE, k)
		pb.do(hypercall.TMEM_GET_PAGE, k)
	}
	k := uint32(0)
	allocs := testing.AllocsPerRun(1000, func() {
		pb.do(hypercall.TMEM_PUT_PAGE, k%256)
		pb.do(hypercall.TMEM_GET_PAGE, k%256)
		k++
	})
	if allocs > 0 {
		t.Errorf("%.1f allocations per PUT+GET", allocs)
	}
}

// snapshotHost is a host with 500 guests, each a tmem client with two pools
// and some pages.
func snapshotHost(tb testing.TB) *Sim {
	tb.Helper()
	s, err := New(nil)
	if err != nil {
		tb.Fatal(err)
	}
	for i := 0; i < 500; i++ {
		pb := newPageBenchMem(tb, s, false, 1<<10)
		for k := uint32(0); k < 8; k++ {
			pb.do(hypercall.TMEM_PUT_PAGE, k)
		}
		binary.LittleEndian.PutUint32(pb.op[0:], hypercall.TMEM_NEW_POOL)
		binary.LittleEndian.PutUint32(pb.op[24:], pers)
		pb.c.Hypercall(hypercall.OpTmem, hypercall.Args{pb.addr})
	}
	return s
}

// BenchmarkSnapshot is one daemon snapshot of a 500-client host through
// xenctl: LIST (long, all clients) parsed, and the client record of every
// domain.
func BenchmarkSnapshot(b *testing.B) {
	s := snapshotHost(b)
	cl, err := xenctl.New(s, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	doms, err := cl.Domains()
	if err != nil || len(doms) != 501 {
		b.Fatalf("domains: %d %v", len(doms), err)
	}
	b.Run("xenctl", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			text, err := cl.List(xenctl.AllClients, true)
			if err != nil {
				b.Fatal(err)
			}
			l, err := xenctl.ParseList(text)
			if err != nil || len(l.Clients) != 500 {
				b.Fatalf("parse: %v", err)
			}
			for _, d := range doms[1:] {
				if _, err := cl.ClientInfo(d.ID); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("raw", func(b *testing.B) {
		r := newRaw(b, s, "4.12.4")
		big, _ := s.Alloc(1024 * (18 + 17*500))
		defer big.Close()
		b.ReportAllocs()
		for b.Loop() {
			if res := r.tmemCtl(hypercall.TMEMC_LIST, allClients, uint32(big.Len()), 1, big.Addr()); res != 0 {
				b.Fatal(res)
			}
			for _, d := range doms[1:] {
				if res := r.tmemCtl(hypercall.XEN_SYSCTL_TMEM_OP_GET_CLIENT_INFO, uint32(d.ID), 20, 0, r.buf.AddrAt(rawRec)); res != 0 {
					b.Fatal(res)
				}
			}
		}
	})
}
