package workload

import (
	"bytes"
	"fmt"
	"math/rand/v2"

	"github.com/xentmem/xentmem/hypercall/xensim"
)

// FrontswapConfig describes a frontswap workload: anonymous memory larger
// than the guest's RAM, with a swap device. Zero fields take the defaults
// in brackets.
type FrontswapConfig struct {
	// WorkingSet is the number of anonymous pages touched [4096].
	WorkingSet int
	// RAMFrames is how many of them fit in RAM [1024].
	RAMFrames int
	// FrameBase is the guest frame of the first RAM frame [0].
	FrameBase uint64
	// SwapType is the swap area number, 0–… [0].
	SwapType uint64
	// Pattern picks the pages touched (Page.Index over WorkingSet; File is
	// ignored) [Uniform].
	Pattern Pattern
	// WriteRatio is the share of accesses that modify the page [0.5].
	WriteRatio float64
	// Seed seeds the default pattern and the reads/writes.
	Seed uint64
}

// FrontswapStats counts what a frontswap run did.
type FrontswapStats struct {
	Accesses   uint64 // page accesses
	Faults     uint64 // accesses to a page not in RAM
	SwapOuts   uint64 // pages evicted from RAM to swap
	Stores     uint64 // swap-outs tmem took (PUT 1): disk writes avoided
	DiskWrites uint64 // swap-outs that went to the swap device
	SwapIns    uint64 // faults on a swapped-out page
	LoadHits   uint64 // swap-ins tmem served (GET 1): disk reads avoided
	DiskReads  uint64 // swap-ins from the swap device
	Corrupt    uint64 // pages from tmem whose contents were wrong
	Errors     uint64 // unexpected results
}

// HitRatio is the share of swap-ins tmem served.
func (s FrontswapStats) HitRatio() float64 {
	if s.SwapIns == 0 {
		return 0
	}
	return float64(s.LoadHits) / float64(s.SwapIns)
}

// DiskReadsAvoided is the number of swap-ins tmem served.
func (s FrontswapStats) DiskReadsAvoided() uint64 { return s.LoadHits }

// swap states of a page.
const (
	pageNew    = iota // never touched: zero-filled on first access
	pageRAM           // resident
	pageTmem          // swapped out, held by tmem
	pageDevice        // swapped out, on the swap device
)

// Frontswap is one guest's anonymous memory, swap device and frontswap
// driver.
type Frontswap struct {
	cfg     FrontswapConfig
	tm      *Tmem
	mem     *xensim.GuestMemory
	pool    int32
	ram     *lru[uint32]
	state   []uint8
	version []uint32
	rng     *rand.Rand
	stats   FrontswapStats
	page    []byte
	got     []byte
}

// NewFrontswap turns swap on in domain id: frontswap creates its one
// private persistent pool.
func NewFrontswap(s *xensim.Sim, id uint16, cfg *FrontswapConfig) (*Frontswap, error) {
	f := &Frontswap{}
	if cfg != nil {
		f.cfg = *cfg
	}
	c := &f.cfg
	c.WorkingSet = defInt(c.WorkingSet, 4096)
	c.RAMFrames = defInt(c.RAMFrames, 1024)
	if c.WriteRatio == 0 {
		c.WriteRatio = 0.5
	}
	if c.Pattern == nil {
		c.Pattern = Uniform(1, c.WorkingSet, c.Seed)
	}
	tm, err := NewTmem(s.Guest(id))
	if err != nil {
		return nil, err
	}
	f.tm, f.mem = tm, s.GuestMemory(id)
	if c.FrameBase+uint64(c.RAMFrames) > f.mem.Frames() {
		tm.Close()
		return nil, fmt.Errorf("workload: frontswap: frames %d–%d are not all domain %d's", c.FrameBase, c.FrameBase+uint64(c.RAMFrames)-1, id)
	}
	p, err := tm.NewPool(true, false, [2]uint64{})
	if err != nil || p < 0 {
		tm.Close()
		return nil, fmt.Errorf("workload: frontswap: new pool: %d %v", p, err)
	}
	f.pool = int32(p)
	f.ram = newLRU[uint32](c.RAMFrames)
	f.state = make([]uint8, c.WorkingSet)
	f.version = make([]uint32, c.WorkingSet)
	f.rng = rand.New(rand.NewPCG(c.Seed, 0xf5a9))
	f.page, f.got = make([]byte, 4096), make([]byte, 4096)
	return f, nil
}

// handle maps a swap offset to tmem's object and index (xen-tmem-abi.md
// §11): oid[0] = type<<4 | offset&0xF, index = offset>>4.
func (f *Frontswap) handle(offset uint32) ([3]uint64, uint32) {
	return [3]uint64{f.cfg.SwapType<<4 | uint64(offset&0xF)}, offset >> 4
}

// Stats returns the counters so far.
func (f *Frontswap) Stats() FrontswapStats { return f.stats }

// Run performs n page accesses.
func (f *Frontswap) Run(n int) error {
	for i := 0; i < n; i++ {
		v := f.cfg.Pattern.Next().Index % uint32(f.cfg.WorkingSet)
		if err := f.access(v, f.rng.Float64() < f.cfg.WriteRatio); err != nil {
			return err
		}
	}
	return nil
}

func (f *Frontswap) contents(v uint32) []byte {
	fill(f.page, 0xF5, uint64(v), uint64(f.version[v]), 0)
	return f.page
}

func (f *Frontswap) access(v uint32, write bool) error {
	f.stats.Accesses++
	slot, ok := f.ram.get(v)
	if !ok {
		f.stats.Faults++
		var victim uint32
		var evicted bool
		slot, victim, evicted = f.ram.add(v)
		if evicted {
			if err := f.swapOut(victim, f.cfg.FrameBase+uint64(slot)); err != nil {
				return err
			}
		}
		if err := f.swapIn(v, f.cfg.FrameBase+uint64(slot)); err != nil {
			return err
		}
	}
	if write {
		f.version[v]++
		return f.mem.Write(f.cfg.FrameBase+uint64(slot), f.contents(v))
	}
	return nil
}

// swapOut writes page v (in frame) to swap slot v: frontswap_store first.
func (f *Frontswap) swapOut(v uint32, frame uint64) error {
	f.stats.SwapOuts++
	oid, index := f.handle(v)
	rc, err := f.tm.Put(f.pool, oid, index, frame)
	if err != nil {
		return err
	}
	if rc == 1 {
		f.stats.Stores++
		f.state[v] = pageTmem
		return nil
	}
	f.stats.DiskWrites++
	f.state[v] = pageDevice
	return nil
}

// swapIn brings page v into frame, then frees its swap slot (and so its
// frontswap copy: frontswap_invalidate_page).
func (f *Frontswap) swapIn(v uint32, frame uint64) error {
	want := f.contents(v)
	switch f.state[v] {
	case pageNew:
		f.state[v] = pageRAM
		return f.mem.Write(frame, want)
	case pageDevice:
		f.stats.SwapIns++
		f.stats.DiskReads++
		f.state[v] = pageRAM
		return f.mem.Write(frame, want)
	}
	f.stats.SwapIns++
	oid, index := f.handle(v)
	rc, err := f.tm.Get(f.pool, oid, index, frame)
	if err != nil {
		return err
	}
	f.state[v] = pageRAM
	if rc != 1 {
		f.stats.Errors++ // a persistent page must come back
		f.stats.DiskReads++
		return f.mem.Write(frame, want)
	}
	f.stats.LoadHits++
	if _, err := f.mem.Read(frame, f.got); err != nil {
		return err
	}
	if !bytes.Equal(f.got, want) {
		f.stats.Corrupt++
	}
	if rc, err := f.tm.FlushPage(f.pool, oid, index); err != nil || rc != 1 {
		f.stats.Errors++
		return err
	}
	return nil
}

// Swapoff flushes the swap area's 16 objects and releases the driver.
func (f *Frontswap) Swapoff() error {
	defer f.tm.Close()
	for i := uint64(0); i < 16; i++ {
		if rc, err := f.tm.FlushObject(f.pool, [3]uint64{f.cfg.SwapType<<4 | i}); err != nil || rc != 1 {
			return fmt.Errorf("workload: frontswap: flush object %d: %d %v", i, rc, err)
		}
	}
	return nil
}
