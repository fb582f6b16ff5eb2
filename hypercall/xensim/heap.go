package xensim

// heap is Xen's page allocator as far as tmem sees it
// (xen/common/page_alloc.c): a count of free pages, the "mid-size zone"
// under which order-0 and order>=9 allocations are sent to tmem, tmem's
// private free page list and the count of pages tmem took from the heap
// for ephemeral data and metadata (freeable_page_count).
type heap struct {
	free     uint64 // total_avail_pages: physinfo free_pages
	midsize  uint64 // midsize_alloc_zone_pages
	list     uint64 // tmem_page_list_pages: Ta in LIST
	freeable int64  // freeable_page_count
}

// midsizeFrac is MIDSIZE_ALLOC_FRAC.
const midsizeFrac = 128

// freeHeap is free_heap_pages for n pages.
func (s *Sim) freeHeap(n uint64) {
	s.heap.free += n
	if s.tm.on && s.heap.free/midsizeFrac > s.heap.midsize {
		s.heap.midsize = s.heap.free / midsizeFrac
	}
}

// allocHeap is alloc_heap_pages for 2^order pages: it takes them from the
// free heap or, when free memory is down to the mid-size zone and tmem
// holds freeable pages, asks tmem for a page (order 0 only; larger orders
// fail there, as in Xen). From 4.10 the fallback to tmem when the heap is
// simply exhausted is gone.
func (s *Sim) allocHeap(order int) bool {
	n := uint64(1) << uint(order)
	if s.tm.on && (order == 0 || order >= 9) && s.heap.free <= s.heap.midsize && s.tm.freeablePages() > 0 {
		if s.tm.relinquishPages(order) {
			return true
		}
		if s.rel.atLeast(4, 10) {
			return false
		}
	}
	if s.heap.free >= n {
		s.heap.free -= n
		return true
	}
	if !s.rel.atLeast(4, 10) && s.tm.on && s.tm.freeablePages() > 0 {
		return s.tm.relinquishPages(order)
	}
	return false
}

// allocDomPage is alloc_domheap_pages(d, 0, MEMF_tmem): one page, charged
// to d when d is not nil.
func (s *Sim) allocDomPage(d *domain) bool {
	if !s.allocHeap(0) {
		return false
	}
	if d != nil {
		d.totPages++
	}
	return true
}

// totalFreePages is total_free_pages(): free memory above the mid-size
// zone. The subtraction wraps, as Xen's unsigned long does, when free
// memory is already below the zone.
func (s *Sim) totalFreePages() uint64 { return s.heap.free - s.heap.midsize }
