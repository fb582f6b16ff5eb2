package xensim

import "math/bits"

// This file emulates Xen's TLSF allocator (xen/common/xmalloc_tlsf.c,
// "xmem_pool"), the allocator tmem takes its metadata from: page
// descriptors, objects, radix-tree nodes and compressed data. Only the
// block bookkeeping is emulated, not the memory itself; what matters is
// when the allocator asks for a page and when it gives a page back,
// because those pages show up in free_pages, in QUERY_FREEABLE_MB and in
// the Ta (free list) counter of LIST. The emulation follows the C code
// step by step (same size classes, same LIFO free lists, same splitting
// and coalescing), so the page counts match the real allocator's.

const (
	tlsfAlign       = 16 // MEM_ALIGN on x86_64
	tlsfOverhead    = 16 // BHDR_OVERHEAD: prev_hdr + size (+pad)
	tlsfMinBlock    = 16 // MIN_BLOCK_SIZE: sizeof(struct free_ptr)
	tlsfBhdrSize    = 32 // sizeof(struct bhdr)
	tlsfSmallBlock  = 128
	tlsfMaxLog2SLI  = 5
	tlsfMaxSLI      = 1 << tlsfMaxLog2SLI
	tlsfFLIOffset   = 6
	tlsfRealFLI     = 30 - tlsfFLIOffset
	tlsfRegionSize  = 4096 // grow_size = init_size = PAGE_SIZE for every tmem pool
	tlsfSlots       = tlsfRegionSize / tlsfAlign
	tlsfFreeBlock   = 0x1
	tlsfPrevFree    = 0x2
	tlsfSizeMask    = 0xFFFFFFFF &^ 7 // BLOCK_SIZE_MASK
	tlsfPrevState   = 0x2
	tlsfMaxAlloc    = tlsfRegionSize - 2*tlsfOverhead // xmem_pool_maxalloc
	noBlock         = blockRef(-1)
	tlsfNoHdr       = -1
	tlsfRegionShift = 8 // block ref = region<<8 | slot
)

// blockRef names a block header: the region index and the header's offset
// divided by 16. noBlock is NULL.
type blockRef int32

func mkRef(region int32, slot int) blockRef { return blockRef(region<<tlsfRegionShift | int32(slot)) }
func (b blockRef) region() int32            { return int32(b) >> tlsfRegionShift }
func (b blockRef) slot() int                { return int(b) & (tlsfSlots - 1) }

// bhdr is struct bhdr of one block: its size word (with the FREE and
// PREV_FREE bits), the slot of the physically previous header, and the
// free-list links.
type bhdr struct {
	size     uint32
	prevHdr  int16 // slot of prev_hdr, or tlsfNoHdr
	nextFree blockRef
	prevFree blockRef
}

// tlsfRegion is one page handed to the pool by get_mem.
type tlsfRegion struct {
	hdr   [tlsfSlots]bhdr
	owner uint16 // domain the page is charged to (persistent pools)
	live  bool
}

// xmemPool is one struct xmem_pool. getMem obtains a page and reports the
// domain it is charged to; putMem gives a page back.
type xmemPool struct {
	flBitmap uint32
	slBitmap [tlsfRealFLI]uint32
	matrix   [tlsfRealFLI][tlsfMaxSLI]blockRef

	regions     []*tlsfRegion
	freeRegions []int32
	numRegions  int
	usedSize    int

	getMem func() (owner uint16, ok bool)
	putMem func(owner uint16)
}

func newXmemPool(get func() (uint16, bool), put func(uint16)) *xmemPool {
	p := &xmemPool{getMem: get, putMem: put}
	for i := range p.matrix {
		for j := range p.matrix[i] {
			p.matrix[i][j] = noBlock
		}
	}
	return p
}

func (p *xmemPool) hdr(b blockRef) *bhdr { return &p.regions[b.region()].hdr[b.slot()] }

// next returns the header that follows b's buffer (GET_NEXT_BLOCK).
func nextSlot(slot int, size uint32) int { return slot + 1 + int(size&tlsfSizeMask)/tlsfAlign }

func flsl(x uint64) int { return bits.Len64(x) }
func ffs(x uint32) int {
	if x == 0 {
		return 0
	}
	return bits.TrailingZeros32(x) + 1
}

// mappingSearch is MAPPING_SEARCH: it rounds r up to its list's size.
func mappingSearch(r *uint64) (fl, sl int) {
	if *r < tlsfSmallBlock {
		return 0, int(*r / (tlsfSmallBlock / tlsfMaxSLI))
	}
	t := uint64(1)<<(flsl(*r)-1-tlsfMaxLog2SLI) - 1
	*r += t
	fl = flsl(*r) - 1
	sl = int(*r>>(fl-tlsfMaxLog2SLI)) - tlsfMaxSLI
	fl -= tlsfFLIOffset
	*r &^= t
	return fl, sl
}

// mappingInsert is MAPPING_INSERT.
func mappingInsert(r uint64) (fl, sl int) {
	if r < tlsfSmallBlock {
		return 0, int(r / (tlsfSmallBlock / tlsfMaxSLI))
	}
	fl = flsl(r) - 1
	sl = int(r>>(fl-tlsfMaxLog2SLI)) - tlsfMaxSLI
	return fl - tlsfFLIOffset, sl
}

func (p *xmemPool) findSuitable(fl, sl *int) blockRef {
	tmp := p.slBitmap[*fl] & (^uint32(0) << uint(*sl))
	if tmp != 0 {
		*sl = ffs(tmp) - 1
		return p.matrix[*fl][*sl]
	}
	if *fl+1 >= 32 {
		return noBlock
	}
	*fl = ffs(p.flBitmap&(^uint32(0)<<uint(*fl+1))) - 1
	if *fl > 0 {
		*sl = ffs(p.slBitmap[*fl]) - 1
		return p.matrix[*fl][*sl]
	}
	return noBlock
}

func (p *xmemPool) extractHdr(b blockRef, fl, sl int) {
	h := p.hdr(b)
	p.matrix[fl][sl] = h.nextFree
	if h.nextFree != noBlock {
		p.hdr(h.nextFree).prevFree = noBlock
	} else {
		p.slBitmap[fl] &^= 1 << uint(sl)
		if p.slBitmap[fl] == 0 {
			p.flBitmap &^= 1 << uint(fl)
		}
	}
	h.nextFree, h.prevFree = noBlock, noBlock
}

func (p *xmemPool) extract(b blockRef, fl, sl int) {
	h := p.hdr(b)
	if h.nextFree != noBlock {
		p.hdr(h.nextFree).prevFree = h.prevFree
	}
	if h.prevFree != noBlock {
		p.hdr(h.prevFree).nextFree = h.nextFree
	}
	if p.matrix[fl][sl] == b {
		p.matrix[fl][sl] = h.nextFree
		if h.nextFree == noBlock {
			p.slBitmap[fl] &^= 1 << uint(sl)
			if p.slBitmap[fl] == 0 {
				p.flBitmap &^= 1 << uint(fl)
			}
		}
	}
	h.nextFree, h.prevFree = noBlock, noBlock
}

func (p *xmemPool) insert(b blockRef, fl, sl int) {
	h := p.hdr(b)
	h.prevFree, h.nextFree = noBlock, p.matrix[fl][sl]
	if h.nextFree != noBlock {
		p.hdr(h.nextFree).prevFree = b
	}
	p.matrix[fl][sl] = b
	p.slBitmap[fl] |= 1 << uint(sl)
	p.flBitmap |= 1 << uint(fl)
}

// addRegion is ADD_REGION for a fresh page.
func (p *xmemPool) addRegion(owner uint16) {
	var idx int32
	if n := len(p.freeRegions); n > 0 {
		idx = p.freeRegions[n-1]
		p.freeRegions = p.freeRegions[:n-1]
	} else {
		idx = int32(len(p.regions))
		p.regions = append(p.regions, new(tlsfRegion))
	}
	r := p.regions[idx]
	r.owner, r.live = owner, true
	size := uint32((tlsfRegionSize - 2*tlsfOverhead) &^ (tlsfAlign - 1))
	r.hdr[0] = bhdr{size: size | tlsfFreeBlock, prevHdr: tlsfNoHdr, nextFree: noBlock, prevFree: noBlock}
	fl, sl := mappingInsert(uint64(size))
	p.insert(mkRef(idx, 0), fl, sl)
	last := nextSlot(0, size)
	r.hdr[last] = bhdr{size: tlsfPrevFree, prevHdr: 0, nextFree: noBlock, prevFree: noBlock}
	p.usedSize += tlsfOverhead
	p.numRegions++
}

// alloc is xmem_pool_alloc. It returns noBlock when no page could be had.
func (p *xmemPool) alloc(size int) blockRef {
	sz := uint64(size)
	if sz < tlsfMinBlock {
		sz = tlsfMinBlock
	} else {
		sz = (sz + tlsfAlign - 1) &^ (tlsfAlign - 1)
	}
	for {
		fl, sl := mappingSearch(&sz)
		b := noBlock
		if fl >= 0 && fl < tlsfRealFLI {
			b = p.findSuitable(&fl, &sl)
		}
		if b != noBlock {
			return p.take(b, fl, sl, uint32(sz))
		}
		if sz > tlsfRegionSize-2*tlsfOverhead {
			return noBlock
		}
		owner, ok := p.getMem()
		if !ok {
			return noBlock
		}
		p.addRegion(owner)
	}
}

func (p *xmemPool) take(b blockRef, fl, sl int, size uint32) blockRef {
	p.extractHdr(b, fl, sl)
	r := p.regions[b.region()]
	slot := b.slot()
	h := &r.hdr[slot]
	next := nextSlot(slot, h.size)
	tmp := h.size&tlsfSizeMask - size
	if tmp >= tlsfBhdrSize {
		tmp -= tlsfOverhead
		s2 := nextSlot(slot, size)
		r.hdr[s2] = bhdr{size: tmp | tlsfFreeBlock, prevHdr: int16(slot), nextFree: noBlock, prevFree: noBlock}
		r.hdr[next].prevHdr = int16(s2)
		fl2, sl2 := mappingInsert(uint64(tmp))
		p.insert(mkRef(b.region(), s2), fl2, sl2)
		h.size = size | h.size&tlsfPrevState
	} else {
		r.hdr[next].size &^= tlsfPrevFree
		h.size &^= tlsfFreeBlock
	}
	p.usedSize += int(h.size&tlsfSizeMask) + tlsfOverhead
	return b
}

// free is xmem_pool_free.
func (p *xmemPool) free(b blockRef) {
	if b == noBlock {
		return
	}
	ri := b.region()
	r := p.regions[ri]
	slot := b.slot()
	h := &r.hdr[slot]
	h.size |= tlsfFreeBlock
	p.usedSize -= int(h.size&tlsfSizeMask) + tlsfOverhead
	h.nextFree, h.prevFree = noBlock, noBlock
	ns := nextSlot(slot, h.size)
	if t := &r.hdr[ns]; t.size&tlsfFreeBlock != 0 {
		fl, sl := mappingInsert(uint64(t.size & tlsfSizeMask))
		p.extract(mkRef(ri, ns), fl, sl)
		h.size += t.size&tlsfSizeMask + tlsfOverhead
	}
	if h.size&tlsfPrevFree != 0 {
		ps := int(h.prevHdr)
		t := &r.hdr[ps]
		fl, sl := mappingInsert(uint64(t.size & tlsfSizeMask))
		p.extract(mkRef(ri, ps), fl, sl)
		t.size += h.size&tlsfSizeMask + tlsfOverhead
		slot, h = ps, t
	}
	ns = nextSlot(slot, h.size)
	r.hdr[ns].prevHdr = int16(slot)
	fl, sl := mappingInsert(uint64(h.size & tlsfSizeMask))
	if h.prevHdr == tlsfNoHdr && r.hdr[ns].size&tlsfSizeMask == 0 {
		r.live = false
		p.freeRegions = append(p.freeRegions, ri)
		p.numRegions--
		p.usedSize -= tlsfOverhead
		p.putMem(r.owner)
		return
	}
	p.insert(mkRef(ri, slot), fl, sl)
	r.hdr[ns].size |= tlsfPrevFree
	r.hdr[ns].prevHdr = int16(slot)
}

// pages returns the number of pages the pool holds.
func (p *xmemPool) pages() int { return p.numRegions }
