package xensim

// Eviction of ephemeral pages and giving memory back to Xen: Xen 4.12's
// tmem_evict, client_over_quota, tmem_ensure_avail_pages,
// tmem_relinquish_pages and tmem_flush_npages.

// overQuota is client_over_quota, literally. Its test is true when the
// client holds a *smaller* share of the ephemeral pages than its share of
// the total weight, the opposite of what the name suggests; weight has no
// other effect.
func (t *tmem) overQuota(c *client) bool {
	total := int64(t.weightTotal)
	var w int64
	if t.sim.rel.atLeast(4, 8) {
		w = int64(c.weight) // uint32 in xen_tmem_client_t
	} else {
		w = int64(int32(c.weight)) // int weight before 4.8
	}
	if total == 0 || w == 0 || c.ephCount == 0 {
		return false
	}
	return t.ephCount*100/c.ephCount > total*100/w
}

// tryEvict is tmem_try_to_evict_pgp: a page can be evicted unless its
// pool is being destroyed or its object is locked by the running
// operation.
func (t *tmem) tryEvict(id int32) bool {
	g := t.pgps.at(id)
	return !t.objs.at(g.obj).pool.dying && g.obj != t.lockedObj
}

// evict is tmem_evict: one ephemeral page is dropped, taken from the
// calling domain's own list when that client is "over quota", else the
// oldest page of the global list.
func (t *tmem) evict() bool {
	var cur *client
	if t.current != nil {
		cur = t.current.tmem
	}
	t.stats.evictAttempts++
	victim := none
	var c *client
	if cur != nil && t.overQuota(cur) && !t.cEmpty(cur.ephList) {
		for id := t.cFirst(cur.ephList); id != none; id = t.cNext(cur.ephList, id) {
			if t.tryEvict(id) {
				victim, c = id, cur
				break
			}
		}
	} else {
		for id := t.gFirst(t.ephList); id != none; id = t.gNext(t.ephList, id) {
			if t.tryEvict(id) {
				victim = id
				c = t.objs.at(t.pgps.at(id).obj).pool.client
				break
			}
		}
	}
	if victim == none {
		return false
	}
	g := t.pgps.at(victim)
	obj := g.obj
	t.cDel(victim)
	c.ephCount--
	t.gDel(victim)
	t.ephCount--
	t.pgpDeleteFromObj(obj, g.index)
	t.pgpFree(victim)
	if t.objs.at(obj).pgpCount == 0 {
		t.objFree(obj)
	}
	t.stats.evictedPgs++
	return true
}

// ensureAvailPages is tmem_ensure_avail_pages: before a PUT, evict until
// at least 1 MiB is free (tmem's free list plus free memory above the
// mid-size zone), giving up after 10 failed evictions.
func (t *tmem) ensureAvailPages() bool {
	failed := 10
	for {
		if (t.sim.heap.list+t.sim.totalFreePages())>>8 != 0 {
			return true
		}
		if !t.evict() {
			failed--
		}
		if failed <= 0 {
			return false
		}
	}
}

// relinquishPages is tmem_relinquish_pages: the heap asks tmem for a page
// when free memory is low. Only single pages can be given.
func (t *tmem) relinquishPages(order int) bool {
	if !t.on || t.freeablePages() == 0 {
		return false
	}
	t.stats.relinqAttempts++
	if order > 0 {
		return false
	}
	evicts := uint64(0)
	maxEvictions := 10
	h := &t.sim.heap
	for h.list == 0 {
		if maxEvictions <= 0 {
			break
		}
		maxEvictions--
		if !t.evict() {
			break
		}
		evicts++
	}
	if evicts > t.stats.maxEvicts {
		t.stats.maxEvicts = evicts
	}
	if h.list == 0 {
		return false
	}
	h.list--
	t.stats.relinqPgs++
	return true
}

// flushNPages is tmem_flush_npages (tmem_relinquish_npages before 4.7):
// evict until the free list holds n pages or nothing is left to evict,
// then give the whole free list back to the heap.
func (t *tmem) flushNPages(n uint64) uint64 {
	h := &t.sim.heap
	var avail uint64
	for {
		avail = h.list
		if avail >= n || !t.evict() {
			break
		}
	}
	if avail > 0 {
		pages := h.list
		h.list = 0
		t.sim.freeHeap(pages)
	}
	return avail
}
