package xensim

// The simulator's storage: slabs of page descriptors, objects, radix-tree
// nodes and 4 KiB data pages, indexed by int32 so that the hot path never
// allocates. Each slab keeps a free list of released slots; a slot is
// reused before the slab grows. Links between records (LRU lists, the
// object list of a pool) are slot numbers, -1 meaning none.

const (
	pageSize    = 4096
	chunkPages  = 256 // data pages per slab chunk (1 MiB)
	none        = int32(-1)
	radixShift  = 6
	radixSize   = 1 << radixShift
	radixMask   = radixSize - 1
	maxPools    = 16 // MAX_POOLS_PER_DOMAIN
	maxShared   = 16 // MAX_GLOBAL_SHARED_POOLS
	allClients  = 0xFFFF
	invalidAuth = ^uint64(0)
)

// Sizes of Xen 4.12's tmem structures on x86_64 (release build), which
// decide how many metadata pages the TLSF pools use.
const (
	sizePgp      = 72   // struct tmem_page_descriptor
	sizeObj      = 128  // struct tmem_object_root
	sizeObjNode  = 528  // struct tmem_object_node (obj pointer + radix_tree_node)
	sizeShare    = 24   // struct share_list
	sizeClient   = 568  // struct client (xzalloc'd from the Xen heap)
	sizePool     = 2288 // struct tmem_pool (xzalloc'd from the Xen heap)
	xmemPoolPgs  = 2    // pages of one struct xmem_pool (order-1 xenheap allocation)
	xenpoolSlack = 2912 // free bytes of the Xen heap's xmalloc pool at start (calibration)
)

// pgpDesc is a struct tmem_page_descriptor.
type pgpDesc struct {
	obj     int32
	index   uint32
	size    int32 // -1 no data, 0 a whole page, >0 compressed bytes
	page    int32 // data page in the page store, or none
	cdata   blockRef
	block   blockRef
	charged uint16 // domain a persistent data page is charged to
	// g links the global ephemeral list (or the client's invalidated
	// list); c links the client's ephemeral list (or the pool's
	// persistent list).
	gPrev, gNext int32
	cPrev, cNext int32
	onG, onC     bool
	invPool      int32
	invOID       [3]uint64
}

// object is a struct tmem_object_root.
type object struct {
	oid          [3]uint64
	pool         *pool
	rootHeight   int
	rootNode     int32 // node slot+1, or item (pgp slot+1) when rootHeight is 0; 0 = empty
	pgpCount     int64
	objnodeCount int64
	lastClient   uint16
	block        blockRef
	prev, next   int32 // the pool's object list
}

// radixNode is a struct radix_tree_node (64 slots) plus the TLSF block of
// the tmem_object_node that holds it.
type radixNode struct {
	slots  [radixSize]int32 // child node slot+1 or pgp slot+1; 0 = empty
	count  int32
	height int32
	block  blockRef
}

type objKey struct {
	pool int32
	oid  [3]uint64
}

// slab is a growable array with a free list.
type slab[T any] struct {
	items []T
	free  []int32
}

func (s *slab[T]) alloc() int32 {
	if n := len(s.free); n > 0 {
		id := s.free[n-1]
		s.free = s.free[:n-1]
		return id
	}
	var zero T
	s.items = append(s.items, zero)
	return int32(len(s.items) - 1)
}

func (s *slab[T]) release(id int32) { s.free = append(s.free, id) }
func (s *slab[T]) at(id int32) *T   { return &s.items[id] }
func (s *slab[T]) live() int        { return len(s.items) - len(s.free) }

// pageStore holds the contents of tmem's data pages.
type pageStore struct {
	chunks [][]byte
	free   []int32
	next   int32
}

func (ps *pageStore) alloc() int32 {
	if n := len(ps.free); n > 0 {
		id := ps.free[n-1]
		ps.free = ps.free[:n-1]
		return id
	}
	id := ps.next
	if int(id/chunkPages) >= len(ps.chunks) {
		ps.chunks = append(ps.chunks, make([]byte, chunkPages*pageSize))
	}
	ps.next++
	return id
}

func (ps *pageStore) release(id int32) { ps.free = append(ps.free, id) }

func (ps *pageStore) bytes(id int32) []byte {
	off := int(id%chunkPages) * pageSize
	return ps.chunks[id/chunkPages][off : off+pageSize : off+pageSize]
}

// The pgp lists are Linux-style circular lists: a list head is a sentinel
// slot of the pgp slab, so an element can be removed without knowing which
// list holds it (Xen splices one client's list into another's). Each pgp
// has two sets of links: g (global ephemeral list, or the client's
// invalidated list) and c (client ephemeral list, or the pool's persistent
// list).

// newHead allocates an empty list head.
func (t *tmem) newHead() int32 {
	id := t.pgps.alloc()
	*t.pgps.at(id) = pgpDesc{gPrev: id, gNext: id, cPrev: id, cNext: id, page: none, obj: none}
	return id
}

func (t *tmem) freeHead(id int32) {
	*t.pgps.at(id) = pgpDesc{}
	t.pgps.release(id)
}

func (t *tmem) gEmpty(head int32) bool { return t.pgps.at(head).gNext == head }
func (t *tmem) cEmpty(head int32) bool { return t.pgps.at(head).cNext == head }

// gFirst and gNext walk a g-list; none ends the walk.
func (t *tmem) gFirst(head int32) int32 { return t.gNext(head, head) }
func (t *tmem) gNext(head, id int32) int32 {
	if n := t.pgps.at(id).gNext; n != head {
		return n
	}
	return none
}

func (t *tmem) cFirst(head int32) int32 { return t.cNext(head, head) }
func (t *tmem) cNext(head, id int32) int32 {
	if n := t.pgps.at(id).cNext; n != head {
		return n
	}
	return none
}

func (t *tmem) gAddTail(head, id int32) {
	prev := t.pgps.at(head).gPrev
	e := t.pgps.at(id)
	e.gPrev, e.gNext, e.onG = prev, head, true
	t.pgps.at(prev).gNext = id
	t.pgps.at(head).gPrev = id
}

func (t *tmem) gDel(id int32) {
	e := t.pgps.at(id)
	if !e.onG {
		return
	}
	prev, next := e.gPrev, e.gNext
	e.gPrev, e.gNext, e.onG = none, none, false
	t.pgps.at(prev).gNext = next
	t.pgps.at(next).gPrev = prev
}

func (t *tmem) cAddTail(head, id int32) {
	prev := t.pgps.at(head).cPrev
	e := t.pgps.at(id)
	e.cPrev, e.cNext, e.onC = prev, head, true
	t.pgps.at(prev).cNext = id
	t.pgps.at(head).cPrev = id
}

func (t *tmem) cDel(id int32) {
	e := t.pgps.at(id)
	if !e.onC {
		return
	}
	prev, next := e.cPrev, e.cNext
	e.cPrev, e.cNext, e.onC = none, none, false
	t.pgps.at(prev).cNext = next
	t.pgps.at(next).cPrev = prev
}

// cSpliceInit is list_splice_init on c-lists: every element of from goes
// to the front of to, and from becomes empty.
func (t *tmem) cSpliceInit(from, to int32) {
	if t.cEmpty(from) {
		return
	}
	first, last := t.pgps.at(from).cNext, t.pgps.at(from).cPrev
	at := t.pgps.at(to).cNext
	t.pgps.at(first).cPrev = to
	t.pgps.at(to).cNext = first
	t.pgps.at(last).cNext = at
	t.pgps.at(at).cPrev = last
	f := t.pgps.at(from)
	f.cNext, f.cPrev = from, from
}
