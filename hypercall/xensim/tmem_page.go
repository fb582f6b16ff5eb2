package xensim

// Objects, page descriptors and the page operations PUT, GET, FLUSH_PAGE
// and FLUSH_OBJECT, following Xen 4.12's xen/common/tmem.c function by
// function (obj_find, obj_alloc, obj_free, pgp_alloc, pgp_free,
// pgp_delist_free, do_tmem_put, do_tmem_dup_put, do_tmem_get, ...), so that
// every counter of LIST moves exactly as in Xen.

// xfer is the guest side of a page copy: a frame of the calling domain, or
// (save/restore sub-ops) a hypercall buffer. On 4.0–4.3 TMEM_READ,
// TMEM_WRITE and TMEM_NEW_PAGE copy part of a page.
type xfer struct {
	cmfn    uint64
	buf     []byte
	partial bool
	tmemOff uint32
	pfnOff  uint32
	length  uint32
}

// copyFromClient is tmem_copy_from_client: 1, or -EFAULT.
func (t *tmem) copyFromClient(dst []byte, x *xfer) int {
	src, ok := t.source(x)
	if !ok {
		return -errEFAULT
	}
	if !x.partial {
		copy(dst, src)
		return 1
	}
	clear(dst)
	switch {
	case x.length == 0 && x.tmemOff == 0 && x.pfnOff == 0:
	case uint64(x.tmemOff)+uint64(x.length) <= pageSize && uint64(x.pfnOff)+uint64(x.length) <= pageSize:
		copy(dst[x.tmemOff:x.tmemOff+x.length], src[x.pfnOff:])
	default:
		return -errEINVAL
	}
	return 1
}

// copyToClient is tmem_copy_to_client: 1, or -EFAULT.
func (t *tmem) copyToClient(src []byte, x *xfer) int {
	var dst []byte
	if x.buf != nil {
		if len(x.buf) < pageSize {
			return -errEFAULT
		}
		dst = x.buf
	} else {
		f, ok := t.current.mem.write(x.cmfn)
		if !ok {
			return -errEFAULT
		}
		dst = f
	}
	if !x.partial {
		copy(dst[:pageSize], src)
		return 1
	}
	// Xen checks these sums in 32 bits, so a huge offset wraps and Xen
	// copies out of bounds; the simulator refuses.
	if uint64(x.tmemOff)+uint64(x.length) > pageSize || uint64(x.pfnOff)+uint64(x.length) > pageSize {
		return -errEINVAL
	}
	copy(dst[x.pfnOff:x.pfnOff+x.length], src[x.tmemOff:])
	return 1
}

func (t *tmem) source(x *xfer) ([]byte, bool) {
	if x.buf != nil {
		if len(x.buf) < pageSize {
			return nil, false
		}
		return x.buf[:pageSize], true
	}
	return t.current.mem.read(x.cmfn)
}

// objFind is obj_find. Each pool remembers the object it found last,
// which saves the map lookup when a guest works through one file.
func (t *tmem) objFind(p *pool, oid [3]uint64) int32 {
	if p.lastObj != none && p.lastOID == oid {
		return p.lastObj
	}
	if id, ok := t.objIndex[objKey{p.gid, oid}]; ok {
		p.lastObj, p.lastOID = id, oid
		return id
	}
	return none
}

// objAlloc is obj_alloc plus obj_rb_insert.
func (t *tmem) objAlloc(p *pool, oid [3]uint64) int32 {
	b := t.malloc(sizeObj, p)
	if b == noBlock {
		return none
	}
	p.objCount++
	if p.objCount > p.objCountMax {
		p.objCountMax = p.objCount
	}
	t.stats.objCount++
	if t.stats.objCount > t.stats.objCountMax {
		t.stats.objCountMax = t.stats.objCount
	}
	id := t.objs.alloc()
	*t.objs.at(id) = object{oid: oid, pool: p, lastClient: allClients, block: b, prev: none, next: p.objHead}
	if p.objHead != none {
		t.objs.at(p.objHead).prev = id
	}
	p.objHead = id
	t.objIndex[objKey{p.gid, oid}] = id
	p.lastObj, p.lastOID = id, oid
	return id
}

// objFree is obj_free: any remaining tree (a stump) is destroyed first.
func (t *tmem) objFree(id int32) {
	if t.objs.at(id).rootNode != 0 {
		t.radixDestroy(id)
	}
	o := t.objs.at(id)
	p := o.pool
	p.objCount--
	t.stats.objCount--
	delete(t.objIndex, objKey{p.gid, o.oid})
	if p.lastObj == id {
		p.lastObj = none
	}
	if o.prev != none {
		t.objs.at(o.prev).next = o.next
	} else {
		p.objHead = o.next
	}
	if o.next != none {
		t.objs.at(o.next).prev = o.prev
	}
	b := o.block
	*o = object{}
	t.objs.release(id)
	if t.lockedObj == id {
		t.lockedObj = none
	}
	t.free(b, p)
}

// objDestroy is obj_destroy.
func (t *tmem) objDestroy(id int32) {
	t.radixDestroy(id)
	t.objFree(id)
}

// pgpAlloc is pgp_alloc.
func (t *tmem) pgpAlloc(obj int32) int32 {
	p := t.objs.at(obj).pool
	b := t.malloc(sizePgp, p)
	if b == noBlock {
		return none
	}
	id := t.pgps.alloc()
	*t.pgps.at(id) = pgpDesc{obj: obj, index: ^uint32(0), size: -1, page: none, cdata: noBlock, block: b,
		gPrev: none, gNext: none, cPrev: none, cNext: none}
	t.stats.pgpCount++
	if t.stats.pgpCount > t.stats.pgpCountMax {
		t.stats.pgpCountMax = t.stats.pgpCount
	}
	p.pgpCount++
	if p.pgpCount > p.pgpCountMax {
		p.pgpCountMax = p.pgpCount
	}
	return id
}

// pgpFreeData is pgp_free_data.
func (t *tmem) pgpFreeData(id int32, p *pool) {
	g := t.pgps.at(id)
	if g.page == none {
		return
	}
	size := g.size
	t.pages.release(g.page)
	g.page = none
	if size > 0 {
		cd := g.cdata
		g.cdata = noBlock
		t.free(cd, p)
	} else {
		t.freeDataPage(t.objs.at(g.obj).pool, g.charged)
	}
	if p != nil && size > 0 {
		p.client.compressedPages--
		p.client.compressedSum -= int64(size)
	}
	t.pgps.at(id).size = -1
}

// pgpFree is pgp_free. A persistent page freed while its client is being
// live-migrated stays allocated on the client's invalidated list.
func (t *tmem) pgpFree(id int32) {
	g := t.pgps.at(id)
	o := t.objs.at(g.obj)
	p := o.pool
	t.pgpFreeData(id, p)
	t.stats.pgpCount--
	p.pgpCount--
	if p.persistent && p.client.migrating {
		g = t.pgps.at(id)
		g.invOID = o.oid
		g.invPool = int32(p.id)
		return
	}
	t.pgpRelease(id, p)
}

// pgpRelease is __pgp_free.
func (t *tmem) pgpRelease(id int32, p *pool) {
	b := t.pgps.at(id).block
	*t.pgps.at(id) = pgpDesc{}
	t.pgps.release(id)
	t.free(b, p)
}

// pgpDelistFree is pgp_delist_free: off the LRU (or persistent) lists,
// then freed.
func (t *tmem) pgpDelistFree(id int32) {
	g := t.pgps.at(id)
	p := t.objs.at(g.obj).pool
	c := p.client
	if !p.persistent {
		if g.onC {
			c.ephCount--
		}
		t.cDel(id)
		if g.onG {
			t.ephCount--
		}
		t.gDel(id)
	} else if c.migrating {
		t.gAddTail(c.invList, id)
		if id != p.curPgp {
			t.cDel(id)
		}
	} else {
		t.cDel(id)
	}
	t.pgpFree(id)
}

// pgpDestroy is pgp_destroy, radix_tree_destroy's slot destructor.
func (t *tmem) pgpDestroy(id int32) {
	t.objs.at(t.pgps.at(id).obj).pgpCount--
	t.pgpDelistFree(id)
}

// pgpAddToObj is pgp_add_to_obj.
func (t *tmem) pgpAddToObj(obj int32, index uint32, id int32) int {
	rc := t.radixInsert(obj, uint64(index), id+1)
	if rc == 0 {
		t.objs.at(obj).pgpCount++
	}
	return rc
}

// pgpDeleteFromObj is pgp_delete_from_obj: the removed pgp, or none.
func (t *tmem) pgpDeleteFromObj(obj int32, index uint32) int32 {
	ref := t.radixDelete(obj, uint64(index))
	if ref == 0 {
		return none
	}
	t.objs.at(obj).pgpCount--
	return ref - 1
}

// putCompress is do_tmem_put_compress: 1 stored compressed, 0 compressed
// poorly (store it whole), -ENOMEM, -EFAULT.
func (t *tmem) putCompress(id int32, x *xfer) int {
	g := t.pgps.at(id)
	p := t.objs.at(g.obj).pool
	if g.page != none {
		t.pgpFreeData(id, p)
	}
	src, ok := t.source(x)
	if !ok {
		return -errEFAULT
	}
	size := t.sim.compressedSize(src)
	if size == 0 || size >= tlsfMaxAlloc {
		return 0
	}
	b := t.malloc(size, p)
	if b == noBlock {
		return -errENOMEM
	}
	g = t.pgps.at(id)
	g.cdata = b
	g.page = t.pages.alloc()
	copy(t.pages.bytes(g.page), src)
	g.size = int32(size)
	p.client.compressedPages++
	p.client.compressedSum += int64(size)
	return 1
}

// storeWhole gives pgp a data page and copies the guest's page into it
// (the copy_uncompressed path): 1, -ENOMEM (no page), -EFAULT.
func (t *tmem) storeWhole(id int32, p *pool, x *xfer) int {
	charged, ok := t.allocDataPage(p)
	if !ok {
		return -errENOMEM
	}
	g := t.pgps.at(id)
	g.page = t.pages.alloc()
	g.charged = charged
	g.size = 0
	return t.copyFromClient(t.pages.bytes(g.page), x)
}

// doPut is do_tmem_put. The object it works on is locked against
// eviction for the duration.
func (t *tmem) doPut(p *pool, oid [3]uint64, index uint32, x *xfer) int {
	rc := t.put(p, oid, index, x)
	t.lockedObj = none
	return rc
}

func (t *tmem) put(p *pool, oid [3]uint64, index uint32, x *xfer) int {
	c := p.client
	ret := -errENOMEM
	if c.frozen {
		ret = -errEFROZEN
	}
	p.puts++
	newobj := false
	obj := t.objFind(p, oid)
	if obj != none {
		if ref := t.radixLookup(t.objs.at(obj), uint64(index)); ref != 0 {
			t.lockedObj = obj
			return t.dupPut(ref-1, x)
		}
		if c.frozen {
			p.noMemPuts++
			return ret
		}
	} else {
		if c.frozen {
			return ret
		}
		if obj = t.objAlloc(p, oid); obj == none {
			return -errENOMEM
		}
		newobj = true
	}
	t.lockedObj = obj
	id := t.pgpAlloc(obj)
	if id == none {
		return t.putUnlock(p, obj, newobj, ret)
	}
	if rc := t.pgpAddToObj(obj, index, id); rc == -errENOMEM {
		t.pgpFree(id)
		return t.putUnlock(p, obj, newobj, rc)
	}
	g := t.pgps.at(id)
	g.index = index
	g.size = 0
	stored := false
	if c.compress {
		switch rc := t.putCompress(id, x); rc {
		case 1:
			stored = true
		case -errENOMEM:
			c.compressNomem++
			return t.putDelete(p, obj, newobj, id, index, rc)
		case 0:
			c.compressPoor++
		default:
			t.stats.failedCopies++
			return t.putDelete(p, obj, newobj, id, index, rc)
		}
	}
	if !stored {
		if rc := t.storeWhole(id, p, x); rc != 1 {
			if rc == -errEFAULT || rc == -errEINVAL {
				t.stats.failedCopies++
			}
			return t.putDelete(p, obj, newobj, id, index, rc)
		}
	}
	if !p.persistent {
		t.gAddTail(t.ephList, id)
		t.ephCount++
		if t.ephCount > t.stats.ephCountMax {
			t.stats.ephCountMax = t.ephCount
		}
		t.cAddTail(c.ephList, id)
		c.ephCount++
		if c.ephCount > c.ephCountMx {
			c.ephCountMx = c.ephCount
		}
	} else {
		t.cAddTail(p.persList, id)
	}
	if p.shared {
		t.objs.at(obj).lastClient = c.id
	}
	p.goodPuts++
	if p.persistent {
		c.succPersPuts++
	} else {
		t.stats.totGoodEphPuts++
	}
	return 1
}

// putDelete is do_tmem_put's del_pgp_from_obj path.
func (t *tmem) putDelete(p *pool, obj int32, newobj bool, id int32, index uint32, ret int) int {
	t.pgpDeleteFromObj(obj, index)
	t.pgpFree(id)
	return t.putUnlock(p, obj, newobj, ret)
}

// putUnlock is do_tmem_put's unlock_obj path.
func (t *tmem) putUnlock(p *pool, obj int32, newobj bool, ret int) int {
	if newobj {
		t.objFree(obj)
	}
	p.noMemPuts++
	return ret
}

// dupPut is do_tmem_dup_put: a put over an existing (object, index).
func (t *tmem) dupPut(id int32, x *xfer) int {
	g := t.pgps.at(id)
	obj := g.obj
	index := g.index
	p := t.objs.at(obj).pool
	c := p.client
	ret := 0
	if c.migrating {
		ret = -errENOSPC
	} else {
		ret = 1
		stored := false
		if c.compress && g.size != 0 {
			switch rc := t.putCompress(id, x); rc {
			case 1:
				stored = true
			case -errENOMEM:
				ret = -errENOSPC
			case -errEFAULT:
				t.stats.failedCopies++
				ret = rc
			}
		}
		if ret == 1 && !stored {
			t.pgpFreeData(id, p)
			if rc := t.storeWhole(id, p, x); rc == -errENOMEM {
				ret = -errENOSPC
			} else if rc != 1 {
				t.stats.failedCopies++
				ret = rc
			}
		}
		if ret == 1 {
			if p.shared {
				t.objs.at(obj).lastClient = c.id
			}
			p.dupPutsReplaced++
			p.goodPuts++
			if p.persistent {
				c.succPersPuts++
			}
			return 1
		}
	}
	found := t.pgpDeleteFromObj(obj, index)
	if found != none {
		t.pgpDelistFree(found)
	}
	if t.objs.at(obj).pgpCount == 0 {
		t.objFree(obj)
	}
	p.dupPutsFlushed++
	return ret
}

// doGet is do_tmem_get: 1 copied, 0 not present, -EEMPTY when the pool
// holds no pages, negative on a copy error. A GET from a private ephemeral
// pool is exclusive.
func (t *tmem) doGet(p *pool, oid [3]uint64, index uint32, x *xfer) int {
	c := p.client
	if p.pgpCount == 0 {
		return -errEEMPTY
	}
	p.gets++
	obj := t.objFind(p, oid)
	if obj == none {
		return 0
	}
	exclusive := !p.shared && !p.persistent
	var id int32
	if exclusive {
		id = t.pgpDeleteFromObj(obj, index)
	} else if ref := t.radixLookup(t.objs.at(obj), uint64(index)); ref != 0 {
		id = ref - 1
	} else {
		id = none
	}
	if id == none {
		return 0
	}
	g := t.pgps.at(id)
	if rc := t.copyToClient(t.pages.bytes(g.page), x); rc <= 0 {
		t.stats.failedCopies++
		if exclusive {
			// Xen leaks the descriptor here (it is off the tree but still
			// on the LRU lists); the simulator drops the page instead.
			t.pgpDelistFree(id)
			if t.objs.at(obj).pgpCount == 0 {
				t.objFree(obj)
			}
		}
		return rc
	}
	if !p.persistent {
		if exclusive {
			t.pgpDelistFree(id)
			if t.objs.at(obj).pgpCount == 0 {
				t.objFree(obj)
			}
		} else {
			t.gDel(id)
			t.gAddTail(t.ephList, id)
			t.cDel(id)
			t.cAddTail(c.ephList, id)
			t.objs.at(obj).lastClient = t.current.id
		}
	}
	p.foundGets++
	if p.persistent {
		c.succPersGets++
	} else {
		c.succEphGets++
	}
	return 1
}

// doFlushPage is do_tmem_flush_page: 1 whether or not the page existed,
// -EFROZEN when the client is frozen (the flush still happens).
func (t *tmem) doFlushPage(p *pool, oid [3]uint64, index uint32) int {
	p.flushs++
	if obj := t.objFind(p, oid); obj != none {
		if id := t.pgpDeleteFromObj(obj, index); id != none {
			t.pgpDelistFree(id)
			if t.objs.at(obj).pgpCount == 0 {
				t.objFree(obj)
			}
			p.flushsFound++
		}
	}
	if p.client.frozen {
		return -errEFROZEN
	}
	return 1
}

// doFlushObject is do_tmem_flush_object.
func (t *tmem) doFlushObject(p *pool, oid [3]uint64) int {
	p.flushObjs++
	if obj := t.objFind(p, oid); obj != none {
		t.objDestroy(obj)
		p.flushObjsFound++
	}
	if p.client.frozen {
		return -errEFROZEN
	}
	return 1
}
