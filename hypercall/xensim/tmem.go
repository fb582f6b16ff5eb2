package xensim

// tmem is the hypervisor's transcendent memory: Xen 4.12's
// xen/common/tmem.c, tmem_control.c and tmem_xen.h, with the differences of
// older releases switched on by the configured version.
type tmem struct {
	sim *Sim
	on  bool // tmem_initialized: tmem=1 and built in

	stats   tmemStats
	clients []*client // tmem_global.client_list, creation order
	shared  [maxShared]*pool
	// sharedAuth is tmem_global.shared_auth ("global auth", 4.0–4.8).
	sharedAuth  bool
	ephList     int32 // tmem_global.ephemeral_page_list (head)
	ephCount    int64
	weightTotal int32 // client_weight_total (atomic_t)

	mempool *xmemPool // tmem_mempool: ephemeral metadata and data
	xenpool *xmemPool // Xen's own xmalloc pool: client and pool structs

	pgps     slab[pgpDesc]
	objs     slab[object]
	nodes    slab[radixNode]
	pages    pageStore
	objIndex map[objKey]int32
	poolSeq  int32

	// current is the domain whose hypercall is being served (Xen's
	// current->domain); the toolstack's Go methods run as dom0.
	current *domain
	// lockedObj is the object whose spinlock the running operation holds;
	// eviction skips its pages (tmem_try_to_evict_pgp's spin_trylock).
	lockedObj int32

	perf perfCounters // cycle counters of 4.0–4.3 (T= line)
}

// tmemStats are the global statistics of the G= line.
type tmemStats struct {
	totalOps, erroredOps, failedCopies   uint64
	allocFailed, allocPageFailed         uint64
	evictedPgs, evictAttempts            uint64
	relinqPgs, relinqAttempts, maxEvicts uint64
	lowOnMemory, totalFlushPool          uint64
	totGoodEphPuts, dedupedPuts          uint64

	objCount, objCountMax   int64
	pgpCount, pgpCountMax   int64
	pageCount, pageCountMax int64
	nodeCount, nodeCountMax int64
	ephCountMax             int64
}

// client is one domain's tmem state (struct client).
type client struct {
	id     uint16
	dom    *domain
	pools  [maxPools]*pool
	pers   *xmemPool // persistent_pool
	block  blockRef  // the struct in the Xen heap
	nrPool uint32    // info.nr_pools

	ephList              int32 // head
	ephCount, ephCountMx int64

	weight    uint32
	cap       uint32 // 4.0–4.7
	compress  bool
	frozen    bool
	migrating bool
	wasFrozen bool

	sharedAuthRequired bool
	authUUID           [maxShared][2]uint64

	invList int32 // persistent_invalidated_list (head)
	curInv  int32 // cur_pgp of the invalidated list

	totalCycles                             uint64
	succEphGets, succPersPuts, succPersGets uint64
	compressPoor, compressNomem             uint64
	compressedPages                         uint64
	compressedSum                           int64
}

// pool is a struct tmem_pool.
type pool struct {
	gid        int32 // simulator-wide id, part of the object key
	id         int   // pool_id: slot in the owner's table
	client     *client
	shared     bool
	persistent bool
	dying      bool
	uuid       [2]uint64
	block      blockRef

	sharers     []sharer // share_list, join order
	sharedCount int

	objHead  int32 // list of live objects
	lastObj  int32 // the object objFind returned last, or none
	lastOID  [3]uint64
	persList int32 // persistent_page_list (head)
	curPgp   int32 // save cursor in persList

	pgpCount, pgpCountMax           int64
	objCount, objCountMax           int64
	objnodeCount, objnodeCountMax   int64
	puts, goodPuts, noMemPuts       uint64
	dupPutsFlushed, dupPutsReplaced uint64
	gets, foundGets                 uint64
	flushs, flushsFound             uint64
	flushObjs, flushObjsFound       uint64
}

func newTmem(s *Sim, on bool) *tmem {
	t := &tmem{sim: s, on: on, objIndex: make(map[objKey]int32), lockedObj: none}
	t.ephList = t.newHead()
	t.mempool = newXmemPool(t.ephPageGet, t.ephPagePut)
	t.xenpool = newXmemPool(t.xenPageGet, t.xenPagePut)
	// Xen's xmalloc pool is shared with the rest of the hypervisor and is
	// never empty after boot: seed it with one page that has some room
	// left (see xenpoolSlack).
	t.xenpool.addRegion(0)
	t.xenpool.alloc(tlsfMaxAlloc - xenpoolSlack - tlsfOverhead)
	t.perf.init()
	return t
}

// ephPageGet is tmem_mempool_page_get → __tmem_alloc_page.
func (t *tmem) ephPageGet() (uint16, bool) { return 0, t.allocEphPage() }

// ephPagePut is tmem_mempool_page_put → __tmem_free_page.
func (t *tmem) ephPagePut(uint16) { t.freeEphPage() }

// xenPageGet is alloc_xenheap_page for the xmalloc pool.
func (t *tmem) xenPageGet() (uint16, bool) { return 0, t.sim.allocHeap(0) }

// xenPagePut is free_xenheap_page.
func (t *tmem) xenPagePut(uint16) { t.sim.freeHeap(1) }

// allocEphPage is __tmem_alloc_page: tmem's free list first, then the heap.
func (t *tmem) allocEphPage() bool {
	h := &t.sim.heap
	if h.list > 0 {
		h.list--
	} else if !t.sim.allocDomPage(nil) {
		return false
	}
	h.freeable++
	return true
}

// freeEphPage is __tmem_free_page: the page goes to tmem's free list.
func (t *tmem) freeEphPage() {
	t.sim.heap.list++
	t.sim.heap.freeable--
}

// allocPersPage is __tmem_alloc_page_thispool(d): a page charged to d, if d
// is below its maximum.
func (t *tmem) allocPersPage(d *domain) bool {
	if d == nil || d.totPages >= d.maxPages {
		return false
	}
	h := &t.sim.heap
	if h.list > 0 && !d.dying {
		h.list--
		d.totPages++
		return true
	}
	return t.sim.allocDomPage(d)
}

// freePersPage is __tmem_free_page_thispool: the page is taken back from
// its owner (steal_page) and put on tmem's free list.
func (t *tmem) freePersPage(owner uint16) {
	if d := t.sim.doms[owner]; d != nil && d.totPages > 0 {
		d.totPages--
	}
	t.sim.heap.list++
}

// freeablePages is tmem_freeable_pages.
func (t *tmem) freeablePages() uint64 {
	if !t.on {
		return 0
	}
	return t.sim.heap.list + uint64(t.sim.heap.freeable)
}

// malloc is tmem_malloc: persistent pools allocate from their client's
// pool, everything else from tmem_mempool.
func (t *tmem) malloc(size int, p *pool) blockRef {
	var b blockRef
	if p != nil && p.persistent {
		b = noBlock
		if p.client.pers != nil {
			b = p.client.pers.alloc(size)
		}
	} else {
		b = t.mempool.alloc(size)
	}
	if b == noBlock {
		t.stats.allocFailed++
	}
	return b
}

// free is tmem_free.
func (t *tmem) free(b blockRef, p *pool) {
	if p == nil || !p.persistent {
		t.mempool.free(b)
	} else {
		p.client.pers.free(b)
	}
}

// allocDataPage is tmem_alloc_page: a frame for one page of data.
func (t *tmem) allocDataPage(p *pool) (charged uint16, ok bool) {
	if p != nil && p.persistent {
		d := p.client.dom
		ok = t.allocPersPage(d)
		if ok {
			charged = d.id
		}
	} else {
		ok = t.allocEphPage()
	}
	if !ok {
		t.stats.allocPageFailed++
		return 0, false
	}
	t.stats.pageCount++
	if t.stats.pageCount > t.stats.pageCountMax {
		t.stats.pageCountMax = t.stats.pageCount
	}
	return charged, true
}

// freeDataPage is tmem_free_page.
func (t *tmem) freeDataPage(p *pool, charged uint16) {
	if p == nil || !p.persistent {
		t.freeEphPage()
	} else {
		t.freePersPage(charged)
	}
	t.stats.pageCount--
}

// clientOf returns the tmem client of domain id, or nil
// (tmem_client_from_cli_id: a plain domain lookup).
func (t *tmem) clientOf(id uint16) *client {
	if d := t.sim.doms[id]; d != nil {
		return d.tmem
	}
	return nil
}

// clientCreate is client_create.
func (t *tmem) clientCreate(id uint16) *client {
	s := t.sim
	b := t.xenpool.alloc(sizeClient)
	if b == noBlock {
		return nil
	}
	// xmem_pool_create: an order-1 Xen heap allocation for the pool struct.
	if !s.allocHeap(1) {
		t.xenpool.free(b)
		return nil
	}
	d := s.doms[id]
	if d == nil {
		s.freeHeap(xmemPoolPgs)
		t.xenpool.free(b)
		return nil
	}
	c := &client{id: id, block: b, ephList: t.newHead(), invList: t.newHead(), curInv: none}
	c.pers = newXmemPool(func() (uint16, bool) {
		cur := t.current
		if cur == nil {
			cur = s.doms[0]
		}
		if !t.allocPersPage(cur) {
			return 0, false
		}
		return cur.id, true
	}, t.freePersPage)
	if !d.dying {
		d.tmem = c
		c.dom = d
	}
	c.compress = s.cfg.TmemCompress
	c.sharedAuthRequired = s.rel.atLeast(4, 9) || s.cfg.TmemSharedAuth
	for i := range c.authUUID {
		c.authUUID[i] = [2]uint64{invalidAuth, invalidAuth}
	}
	t.clients = append(t.clients, c)
	return c
}

// clientFree is client_free.
func (t *tmem) clientFree(c *client) {
	for i, x := range t.clients {
		if x == c {
			t.clients = append(t.clients[:i], t.clients[i+1:]...)
			break
		}
	}
	t.sim.freeHeap(xmemPoolPgs)
	t.xenpool.free(c.block)
	t.freeHead(c.ephList)
	t.freeHead(c.invList)
	if c.dom != nil && c.dom.tmem == c {
		c.dom.tmem = nil
	}
}

// clientFlush is client_flush: every pool flushed, then the client freed.
func (t *tmem) clientFlush(c *client) {
	for i := range c.pools {
		p := c.pools[i]
		if p == nil {
			continue
		}
		t.poolFlush(p, c.id)
		c.pools[i] = nil
		c.nrPool--
	}
	t.clientFree(c)
}

// destroyDomain is tmem_destroy, called when a domain is killed.
func (t *tmem) destroyDomain(d *domain) {
	if d.tmem != nil {
		t.clientFlush(d.tmem)
	}
}
