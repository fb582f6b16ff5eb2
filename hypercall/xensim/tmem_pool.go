package xensim

import (
	"sort"

	"github.com/xentmem/xentmem/hypercall"
)

// Pools: creation with its flag checks, shared pools and their
// authorisation, destruction (Xen 4.12 do_tmem_new_pool,
// do_tmem_destroy_pool, pool_flush, shared_pool_join/quit/reassign,
// tmemc_shared_pool_auth, with the older releases' differences).

// sharer is one entry of a shared pool's share_list.
type sharer struct {
	c     *client
	block blockRef
}

// poolAlloc is pool_alloc: the struct comes from Xen's xmalloc pool.
func (t *tmem) poolAlloc() *pool {
	b := t.xenpool.alloc(sizePool)
	if b == noBlock {
		return nil
	}
	t.poolSeq++
	return &pool{gid: t.poolSeq, block: b, objHead: none, lastObj: none, persList: t.newHead(), curPgp: none}
}

// poolFree is pool_free.
func (t *tmem) poolFree(p *pool) {
	t.freeHead(p.persList)
	t.xenpool.free(p.block)
	p.client = nil
}

// newPool is do_tmem_new_pool. cli is the target domain for
// TMEM_RESTORE_NEW and SET_POOLS, or -1 for the calling domain (which
// then gets the first free slot).
func (t *tmem) newPool(cli int, slot uint32, flags uint32, uuidLo, uuidHi uint64) int {
	rel := t.sim.rel
	persistent := flags&hypercall.TMEM_POOL_PERSIST != 0
	shared := flags&hypercall.TMEM_POOL_SHARED != 0
	pagebits := flags >> hypercall.TMEM_POOL_PAGESIZE_SHIFT & hypercall.TMEM_POOL_PAGESIZE_MASK
	spec := flags >> hypercall.TMEM_POOL_VERSION_SHIFT & hypercall.TMEM_POOL_VERSION_MASK
	switch {
	case spec != rel.specVersion():
		return -errEPERM
	case shared && persistent && rel.atLeast(4, 5):
		return -errEPERM
	case pagebits != 0:
		return -errEPERM
	case rel.gen != genA0 && flags&hypercall.TMEM_POOL_PRECOMPRESSED != 0:
		return -errEPERM
	case rel.gen != genA0 && flags&hypercall.TMEM_POOL_RESERVED_BITS != 0:
		return -errEPERM
	}
	var c *client
	if cli >= 0 {
		c = t.clientOf(uint16(cli))
		if c == nil || slot >= maxPools || c.pools[slot] != nil {
			return -errEPERM
		}
	} else {
		c = t.current.tmem
		for slot = 0; slot < maxPools && c.pools[slot] != nil; slot++ {
		}
		if slot >= maxPools {
			return -errEPERM
		}
	}
	p := t.poolAlloc()
	if p == nil {
		return -errENOMEM
	}
	c.pools[slot] = p
	p.client, p.id, p.shared, p.persistent = c, int(slot), shared, persistent
	p.uuid = [2]uint64{uuidLo, uuidHi}
	if shared {
		switch {
		case uuidLo == ^uint64(0) && uuidHi == ^uint64(0):
			p.shared = false
		case c.sharedAuthRequired && !t.sharedAuth && !c.authorised(uuidLo, uuidHi):
			p.shared = false
		default:
			if rc := t.sharedPoolAttach(c, p, slot); rc < 0 {
				c.pools[slot] = nil
				t.poolFree(p)
				return rc
			}
		}
	}
	c.nrPool++
	return int(slot)
}

// sharedPoolAttach joins the global shared pool with p's uuid, or makes p
// one. On a join the new pool struct is freed and the slot points to the
// shared pool, whose pool_id stays the owner's slot.
func (t *tmem) sharedPoolAttach(c *client, p *pool, slot uint32) int {
	first := -1
	for i, sp := range t.shared {
		if sp == nil {
			if first < 0 {
				first = i
			}
			continue
		}
		if sp.uuid == p.uuid {
			c.pools[slot] = sp
			if !t.sharedPoolJoin(sp, c) {
				return -errEPERM
			}
			t.poolFree(p)
			return 0
		}
	}
	if first < 0 {
		return -errEPERM
	}
	if !t.sharedPoolJoin(p, c) {
		return -errEPERM
	}
	t.shared[first] = p
	return 0
}

func (c *client) authorised(lo, hi uint64) bool {
	for _, u := range c.authUUID {
		if u == [2]uint64{lo, hi} {
			return true
		}
	}
	return false
}

// sharedPoolJoin is shared_pool_join.
func (t *tmem) sharedPoolJoin(p *pool, c *client) bool {
	b := t.malloc(sizeShare, nil)
	if b == noBlock {
		return false
	}
	p.sharers = append(p.sharers, sharer{c, b})
	p.sharedCount++
	return true
}

// sharedPoolReassign is shared_pool_reassign: ownership passes to the
// first remaining sharer, which also inherits the whole ephemeral list of
// the old owner (list_splice_init, as in Xen).
func (t *tmem) sharedPoolReassign(p *pool) {
	if len(p.sharers) == 0 {
		return
	}
	old := p.client
	old.pools[p.id] = nil
	nc := p.sharers[0].c
	p.client = nc
	id := 0
	for id < maxPools && nc.pools[id] != p {
		id++
	}
	nc.ephCount += p.pgpCount
	old.ephCount -= p.pgpCount
	t.cSpliceInit(old.ephList, nc.ephList)
	p.id = id
}

// sharedPoolQuit is shared_pool_quit: drop the objects cli wrote last
// (which marks the pool dying, for good) and cli's share entry. It returns
// the sharers left, 0 when none is (the pool leaves the global table) or -1.
func (t *tmem) sharedPoolQuit(p *pool, cli uint16) int {
	t.poolDestroyObjs(p, cli)
	for i, sl := range p.sharers {
		if sl.c.id != cli {
			continue
		}
		p.sharers = append(p.sharers[:i], p.sharers[i+1:]...)
		t.free(sl.block, p)
		p.sharedCount--
		if p.client.id == cli {
			t.sharedPoolReassign(p)
		}
		if p.sharedCount > 0 {
			return p.sharedCount
		}
		for s := range t.shared {
			if t.shared[s] == p {
				t.shared[s] = nil
				break
			}
		}
		return 0
	}
	return -1
}

// poolFlush is pool_flush: leave a shared pool others still use, else
// destroy every object and free the pool.
func (t *tmem) poolFlush(p *pool, cli uint16) {
	if p.shared && t.sharedPoolQuit(p, cli) > 0 {
		return
	}
	if p.client.migrating {
		return
	}
	t.poolDestroyObjs(p, allClients)
	p.client.pools[p.id] = nil
	t.poolFree(p)
}

// poolDestroyObjs is pool_destroy_objs: objects are visited in Xen's order
// (hash bucket of oid0^oid1^oid2, then red-black order by oid[2], oid[1],
// oid[0]), because that order decides how the allocators' free lists end.
func (t *tmem) poolDestroyObjs(p *pool, cli uint16) {
	p.dying = true
	var ids []int32
	for id := p.objHead; id != none; id = t.objs.at(id).next {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool {
		a, b := t.objs.at(ids[i]).oid, t.objs.at(ids[j]).oid
		ha, hb := (a[0]^a[1]^a[2])&0xFF, (b[0]^b[1]^b[2])&0xFF
		if ha != hb {
			return ha < hb
		}
		for k := 2; k >= 0; k-- {
			if a[k] != b[k] {
				return a[k] < b[k]
			}
		}
		return false
	})
	for _, id := range ids {
		if t.objs.at(id).lastClient == cli {
			t.objDestroy(id)
		}
	}
}

// destroyPool is do_tmem_destroy_pool: 1, or 0 for an empty or
// out-of-range slot.
func (t *tmem) destroyPool(c *client, id int32) int {
	if id < 0 || id >= maxPools || c.pools[id] == nil {
		return 0
	}
	p := c.pools[id]
	c.pools[id] = nil
	t.poolFlush(p, c.id)
	c.nrPool--
	return 1
}

// sharedPoolAuth is tmemc_shared_pool_auth: authorise (auth) or revoke a
// uuid for domain cli; cli = all switches global authorisation.
func (t *tmem) sharedPoolAuth(cli uint16, lo, hi uint64, auth bool) int {
	if cli == allClients {
		t.sharedAuth = auth
		return 1
	}
	c := t.clientOf(cli)
	if c == nil {
		return -errEINVAL
	}
	u := [2]uint64{lo, hi}
	unset := [2]uint64{invalidAuth, invalidAuth}
	if !t.sim.rel.atLeast(4, 2) {
		// 4.1: an authorised uuid is not stored twice.
		free := -1
		for i := range c.authUUID {
			if c.authUUID[i] == u {
				if !auth {
					c.authUUID[i] = unset
				}
				return 1
			}
			if auth && c.authUUID[i] == unset && free < 0 {
				free = i
			}
		}
		switch {
		case !auth:
			return 0
		case free < 0:
			return -errENOMEM
		}
		c.authUUID[free] = u
		return 1
	}
	free := -1
	for i := range c.authUUID {
		if !auth {
			if c.authUUID[i] == u {
				c.authUUID[i] = unset
				return 1
			}
		} else if c.authUUID[i] == unset {
			free = i
			break
		}
	}
	switch {
	case !auth:
		return 0
	case free < 0:
		return -errENOMEM
	}
	c.authUUID[free] = u
	return 1
}
