package xensim

import (
	"encoding/binary"

	"github.com/xentmem/xentmem/hypercall"
	"github.com/xentmem/xentmem/hypercall/hypercalltest"
)

// Control operations shared by every generation: freeze/thaw, flush,
// weights, save/restore, and the 4.8+ client and pool records. The
// per-generation decoders (tmem_control_a.go, tmem_control_bcd.go) call
// these with the fields of their own layouts. Many of them answer a bare
// -1, which the caller sees as EPERM.

// freezePools is tmemc_freeze_pools; DESTROY behaves like THAW.
func (t *tmem) freezePools(cli uint16, freeze bool) int {
	if cli == allClients {
		for _, c := range t.clients {
			c.frozen = freeze
		}
		return 0
	}
	c := t.clientOf(cli)
	if c == nil {
		return -1
	}
	c.frozen = freeze
	return 0
}

// flushMem is tmemc_flush_mem: all clients only; kb is rounded up to pages
// in 32-bit arithmetic; the result is the KiB given back to Xen.
func (t *tmem) flushMem(cli uint16, kb uint32) int {
	if cli != allClients {
		return -1
	}
	npages := (kb + 3) >> 2
	flushed := uint32(t.flushNPages(uint64(npages)))
	return int(int32(flushed << 2))
}

// freeableMB is QUERY_FREEABLE_MB.
func (t *tmem) freeableMB() int { return int(t.freeablePages() >> 8) }

// setVar is tmemc_set_var (4.0–4.7): SET_WEIGHT, SET_CAP, SET_COMPRESS.
func (t *tmem) setVar(cli uint16, subop uint32, arg uint32) int {
	one := func(c *client) int {
		switch subop {
		case hypercall.TMEMC_SET_WEIGHT:
			t.setWeight(c, arg)
		case hypercall.TMEMC_SET_CAP:
			c.cap = arg
		case hypercall.TMEMC_SET_COMPRESS:
			c.compress = arg != 0
		default:
			return -1
		}
		return 0
	}
	if cli != allClients {
		c := t.clientOf(cli)
		if c == nil {
			return -1
		}
		return one(c)
	}
	if !t.sim.rel.atLeast(4, 5) {
		for _, c := range t.clients {
			one(c)
		}
		return 0
	}
	ret := -1
	for _, c := range t.clients {
		if ret = one(c); ret != 0 {
			break
		}
	}
	return ret
}

func (t *tmem) setWeight(c *client, w uint32) {
	old := c.weight
	c.weight = w
	t.weightTotal += int32(w) - int32(old)
}

// handleSize is sizeof(struct tmem_handle).
func (t *tmem) handleSize() int {
	if t.sim.rel.gen == genA0 {
		return 16
	}
	return 32
}

func (t *tmem) poolOf(cli uint16, id int32) (*client, *pool) {
	c := t.clientOf(cli)
	if c == nil || id < 0 || id >= maxPools {
		return c, nil
	}
	return c, c.pools[id]
}

// saveBegin is SAVE_BEGIN: freeze the client, remember its state, and
// mark it migrating for a live save. A/B return 1/0, C/D 0/-ENOENT.
func (t *tmem) saveBegin(cli uint16, live bool) (started bool) {
	c := t.clientOf(cli)
	if c == nil {
		return false
	}
	any := false
	for _, p := range c.pools {
		any = any || p != nil
	}
	if !any {
		return false
	}
	c.wasFrozen = c.frozen
	c.frozen = true
	if live {
		c.migrating = true
	}
	return true
}

// saveEnd is SAVE_END: the invalidated pages are freed and the freeze
// state restored.
func (t *tmem) saveEnd(c *client) {
	c.migrating = false
	for id := t.gFirst(c.invList); id != none; id = t.gFirst(c.invList) {
		t.gDel(id)
		g := t.pgps.at(id)
		b := g.block
		*g = pgpDesc{}
		t.pgps.release(id)
		c.pers.free(b)
	}
	c.curInv = none
	c.frozen = c.wasFrozen
}

// poolFlags is the pool flags word of SAVE_GET_POOL_FLAGS and GET_POOLS.
func (t *tmem) poolFlags(p *pool, version bool) uint32 {
	var f uint32
	if p.persistent {
		f |= hypercall.TMEM_POOL_PERSIST
	}
	if p.shared {
		f |= hypercall.TMEM_POOL_SHARED
	}
	if version {
		f |= t.sim.rel.specVersion() << hypercall.TMEM_POOL_VERSION_SHIFT
	}
	return f
}

// saveNextPage is SAVE_GET_NEXT_PAGE: a tmem_handle and the page. Xen's
// cursor logic is kept: the first page of the list is never returned, and
// the cursor is not reset at the end.
func (t *tmem) saveNextPage(cli uint16, poolID int32, mem *hypercalltest.Memory, buf uint64, size uint32) int {
	_, p := t.poolOf(cli, poolID)
	if p == nil || !p.persistent {
		return -1
	}
	hs := t.handleSize()
	if int(size) < pageSize+hs {
		return -errENOMEM
	}
	if t.cEmpty(p.persList) {
		return -1
	}
	if p.curPgp == none {
		p.curPgp = t.cFirst(p.persList)
	} else if t.cNext(p.persList, p.curPgp) == none {
		return -1
	}
	next := t.cNext(p.persList, p.curPgp)
	if next == none {
		// Xen reads the list head as a page descriptor here.
		return -1
	}
	p.curPgp = next
	g := t.pgps.at(next)
	o := t.objs.at(g.obj)
	b, err := mem.Bytes(buf, hs)
	if err != nil {
		return -errEFAULT
	}
	t.putHandle(b, uint32(poolID), g.index, o.oid)
	page, err := mem.Bytes(buf+uint64(hs), pageSize)
	if err != nil {
		page = []byte{}
	}
	return t.doGet(p, o.oid, g.index, &xfer{buf: page})
}

func (t *tmem) putHandle(b []byte, pool, index uint32, oid [3]uint64) {
	le := binary.LittleEndian
	le.PutUint32(b[0:], pool)
	le.PutUint32(b[4:], index)
	if t.sim.rel.gen == genA0 {
		le.PutUint64(b[8:], oid[0])
		return
	}
	le.PutUint64(b[8:], oid[0])
	le.PutUint64(b[16:], oid[1])
	le.PutUint64(b[24:], oid[2])
}

// saveNextInv is SAVE_GET_NEXT_INV: one handle of a page invalidated
// during a live save; 1 per entry, 0 at the end.
func (t *tmem) saveNextInv(cli uint16, mem *hypercalltest.Memory, buf uint64, size uint32) int {
	c := t.clientOf(cli)
	hs := t.handleSize()
	if c == nil || int(size) < hs || t.gEmpty(c.invList) {
		return 0
	}
	var id int32
	switch {
	case c.curInv == none:
		id = t.gFirst(c.invList)
	case t.gNext(c.invList, c.curInv) == none:
		c.curInv = none
		return 0
	default:
		id = t.gNext(c.invList, c.curInv)
	}
	c.curInv = id
	g := t.pgps.at(id)
	b, err := mem.Bytes(buf, hs)
	if err != nil {
		return -errEFAULT
	}
	t.putHandle(b, uint32(g.invPool), g.index, g.invOID)
	return 1
}

// restorePutPage is RESTORE_PUT_PAGE: a PUT whose data comes from the
// control buffer.
func (t *tmem) restorePutPage(cli uint16, poolID int32, oid [3]uint64, index uint32, mem *hypercalltest.Memory, buf uint64, size uint32) int {
	_, p := t.poolOf(cli, poolID)
	if p == nil {
		return -1
	}
	if t.sim.rel.atLeast(4, 8) && size != pageSize {
		return -errEINVAL
	}
	page, err := mem.Bytes(buf, pageSize)
	if err != nil {
		page = []byte{}
	}
	return t.doPut(p, oid, index, &xfer{buf: page})
}

// restoreFlushPage is RESTORE_FLUSH_PAGE.
func (t *tmem) restoreFlushPage(cli uint16, poolID int32, oid [3]uint64, index uint32) int {
	_, p := t.poolOf(cli, poolID)
	if p == nil {
		return -1
	}
	return t.doFlushPage(p, oid, index)
}

// clientInfo encodes struct xen_tmem_client (4.8+) for c, or the generic
// record Xen returns for a domain without a client.
func clientInfo(c *client, b []byte) {
	le := binary.LittleEndian
	le.PutUint32(b[0:], 1)
	le.PutUint32(b[4:], maxPools)
	var nr, flags, weight uint32
	if c != nil {
		nr, weight = c.nrPool, c.weight
		if c.frozen {
			flags |= 1
		}
		if c.compress {
			flags |= 2
		}
		if c.migrating {
			flags |= 4
		}
	}
	le.PutUint32(b[8:], nr)
	le.PutUint32(b[12:], flags)
	le.PutUint32(b[16:], weight)
}

// getClientInfo is tmemc_get_client_info.
func (t *tmem) getClientInfo(cli uint16, mem *hypercalltest.Memory, buf uint64) int {
	b, err := mem.Bytes(buf, 20)
	if err != nil {
		return -errEFAULT
	}
	clientInfo(t.clientOf(cli), b)
	return 0
}

// setClientInfo is tmemc_set_client_info: weight and compress only.
func (t *tmem) setClientInfo(cli uint16, mem *hypercalltest.Memory, buf uint64) int {
	one := func(c *client) int {
		b, err := mem.Bytes(buf, 20)
		if err != nil {
			return -errEFAULT
		}
		le := binary.LittleEndian
		switch {
		case le.Uint32(b[0:]) != 1:
			return -errEOPNOTSUPP
		case le.Uint32(b[4:]) > maxPools:
			return -errERANGE
		}
		if w := le.Uint32(b[16:]); w != c.weight {
			t.setWeight(c, w)
		}
		c.compress = le.Uint32(b[12:])&2 != 0
		return 0
	}
	ret := -errENOENT
	if cli == allClients {
		for _, c := range t.clients {
			if ret = one(c); ret != 0 {
				break
			}
		}
		return ret
	}
	if c := t.clientOf(cli); c != nil {
		ret = one(c)
	}
	return ret
}

// poolRecords checks a pool-record array length (GET/SET_POOLS, SET_AUTH).
func poolRecords(length uint32) (int, int) {
	if length%32 != 0 {
		return 0, -errEINVAL
	}
	if length/32 > maxPools {
		return 0, -errE2BIG
	}
	return int(length / 32), 0
}

// getPools is tmemc_get_pool: records in slot order; one record is
// written even when length is 0.
func (t *tmem) getPools(cli uint16, mem *hypercalltest.Memory, buf uint64, length uint32) int {
	nr, rc := poolRecords(length)
	if rc != 0 {
		return rc
	}
	c := t.clientOf(cli)
	if c == nil {
		return -errEINVAL
	}
	idx := 0
	for i, p := range c.pools {
		if p == nil {
			continue
		}
		b, err := mem.Bytes(buf+uint64(idx)*32, 32)
		if err != nil {
			return -errEFAULT
		}
		le := binary.LittleEndian
		le.PutUint32(b[0:], t.poolFlags(p, true))
		le.PutUint32(b[4:], uint32(i))
		le.PutUint64(b[8:], uint64(p.pgpCount))
		le.PutUint64(b[16:], p.uuid[0])
		le.PutUint64(b[24:], p.uuid[1])
		idx++
		if idx >= nr {
			break
		}
	}
	return idx
}

// setPools is tmemc_set_pools (4.9+): create each pool in its slot for
// domain cli, creating the client if needed. It returns the last pool id
// when that is not 0, else the number of records processed.
func (t *tmem) setPools(cli uint16, mem *hypercalltest.Memory, buf uint64, length uint32, auth bool) int {
	nr, rc := poolRecords(length)
	if rc != 0 {
		return rc
	}
	if t.clientOf(cli) == nil && t.clientCreate(cli) == nil {
		return -errENOMEM
	}
	le := binary.LittleEndian
	i := 0
	for ; i < nr; i++ {
		b, err := mem.Bytes(buf+uint64(i)*32, 32)
		if err != nil {
			return -errEFAULT
		}
		if le.Uint64(b[8:]) != 0 {
			return -errEINVAL
		}
		flags, lo, hi := le.Uint32(b[0:]), le.Uint64(b[16:]), le.Uint64(b[24:])
		if auth {
			rc = t.sharedPoolAuth(cli, lo, hi, flags&hypercall.TMEM_POOL_PRECOMPRESSED != 0)
			if rc < 0 {
				break
			}
			continue
		}
		target := int(cli)
		if cli == allClients {
			target = -1
		}
		rc = t.newPool(target, le.Uint32(b[4:]), flags, lo, hi)
		if rc < 0 {
			break
		}
		le.PutUint32(b[4:], uint32(rc))
	}
	if rc != 0 {
		return rc
	}
	return i
}
