package xensim

// The radix tree of pages inside one object, as in Xen's
// xen/common/radix-tree.c (64-way, height grows on demand, item at the
// root when only index 0 is used, shrink on delete). tmem counts every node
// it allocates (Nc/Nm in LIST) and takes each node from a TLSF pool, so the
// tree is emulated exactly, with the same allocation and free order.

func radixMaxIndex(h int) uint64 {
	if h*radixShift >= 64 {
		return ^uint64(0)
	}
	return uint64(1)<<(uint(h)*radixShift) - 1
}

// nodeAlloc is rtn_alloc: a tmem_object_node from the object's pool
// allocator. It returns the node slot+1, or 0 when memory ran out.
func (t *tmem) nodeAlloc(obj int32) int32 {
	p := t.objs.at(obj).pool
	b := t.malloc(sizeObjNode, p)
	if b == noBlock {
		return 0
	}
	id := t.nodes.alloc()
	*t.nodes.at(id) = radixNode{block: b}
	p.objnodeCount++
	if p.objnodeCount > p.objnodeCountMax {
		p.objnodeCountMax = p.objnodeCount
	}
	t.stats.nodeCount++
	if t.stats.nodeCount > t.stats.nodeCountMax {
		t.stats.nodeCountMax = t.stats.nodeCount
	}
	t.objs.at(obj).objnodeCount++
	return id + 1
}

// nodeFree is rtn_free.
func (t *tmem) nodeFree(obj int32, ref int32) {
	o := t.objs.at(obj)
	p := o.pool
	p.objnodeCount--
	o.objnodeCount--
	b := t.nodes.at(ref - 1).block
	t.nodes.release(ref - 1)
	t.free(b, p)
	t.stats.nodeCount--
}

// radixInsert is radix_tree_insert: 0, -ENOMEM (possibly leaving a stump
// of nodes, as Xen does) or -EEXIST.
func (t *tmem) radixInsert(obj int32, index uint64, item int32) int {
	o := t.objs.at(obj)
	if index > radixMaxIndex(o.rootHeight) {
		height := o.rootHeight + 1
		for index > radixMaxIndex(height) {
			height++
		}
		if o.rootNode == 0 {
			o.rootHeight = height
		} else {
			for {
				ref := t.nodeAlloc(obj)
				if ref == 0 {
					return -errENOMEM
				}
				o = t.objs.at(obj)
				n := t.nodes.at(ref - 1)
				n.slots[0] = o.rootNode
				o.rootHeight++
				n.height = int32(o.rootHeight)
				n.count = 1
				o.rootNode = ref
				if height <= o.rootHeight {
					break
				}
			}
		}
	}
	height := o.rootHeight
	slot := o.rootNode
	parent := int32(0)
	offset := 0
	shift := uint(0)
	if height > 0 {
		shift = uint(height-1) * radixShift
	}
	for height > 0 {
		if slot == 0 {
			ref := t.nodeAlloc(obj)
			if ref == 0 {
				return -errENOMEM
			}
			t.nodes.at(ref - 1).height = int32(height)
			if parent != 0 {
				pn := t.nodes.at(parent - 1)
				pn.slots[offset] = ref
				pn.count++
			} else {
				t.objs.at(obj).rootNode = ref
			}
			slot = ref
		}
		offset = int(index>>shift) & radixMask
		parent = slot
		slot = t.nodes.at(slot - 1).slots[offset]
		shift -= radixShift
		height--
	}
	if slot != 0 {
		return -errEEXIST
	}
	if parent != 0 {
		pn := t.nodes.at(parent - 1)
		pn.count++
		pn.slots[offset] = item
	} else {
		t.objs.at(obj).rootNode = item
	}
	return 0
}

// radixLookup is radix_tree_lookup: the item (pgp slot+1) or 0.
func (t *tmem) radixLookup(o *object, index uint64) int32 {
	ref := o.rootNode
	if ref == 0 {
		return 0
	}
	h := o.rootHeight
	if h == 0 {
		if index > 0 {
			return 0
		}
		return ref
	}
	if index > radixMaxIndex(h) {
		return 0
	}
	shift := uint(h-1) * radixShift
	for h > 0 {
		ref = t.nodes.at(ref - 1).slots[int(index>>shift)&radixMask]
		if ref == 0 {
			return 0
		}
		shift -= radixShift
		h--
	}
	return ref
}

// radixDelete is radix_tree_delete: it returns the removed item or 0.
func (t *tmem) radixDelete(obj int32, index uint64) int32 {
	o := t.objs.at(obj)
	height := o.rootHeight
	if index > radixMaxIndex(height) {
		return 0
	}
	slot := o.rootNode
	if height == 0 {
		o.rootNode = 0
		return slot
	}
	type step struct {
		node   int32
		offset int
	}
	var path [12]step
	pi := 0
	shift := uint(height-1) * radixShift
	for {
		if slot == 0 {
			return 0
		}
		pi++
		off := int(index>>shift) & radixMask
		path[pi] = step{slot, off}
		slot = t.nodes.at(slot - 1).slots[off]
		shift -= radixShift
		height--
		if height == 0 {
			break
		}
	}
	if slot == 0 {
		return 0
	}
	toFree := int32(0)
	for path[pi].node != 0 {
		n := t.nodes.at(path[pi].node - 1)
		n.slots[path[pi].offset] = 0
		n.count--
		count := n.count
		if toFree != 0 {
			t.nodeFree(obj, toFree)
		}
		if count != 0 {
			if path[pi].node == t.objs.at(obj).rootNode {
				t.radixShrink(obj)
			}
			return slot
		}
		toFree = path[pi].node
		pi--
	}
	o = t.objs.at(obj)
	o.rootHeight, o.rootNode = 0, 0
	if toFree != 0 {
		t.nodeFree(obj, toFree)
	}
	return slot
}

// radixShrink is radix_tree_shrink.
func (t *tmem) radixShrink(obj int32) {
	o := t.objs.at(obj)
	for o.rootHeight > 0 {
		ref := o.rootNode
		n := t.nodes.at(ref - 1)
		if n.count != 1 || n.slots[0] == 0 {
			break
		}
		o.rootNode = n.slots[0]
		o.rootHeight--
		t.nodeFree(obj, ref)
		o = t.objs.at(obj)
	}
}

// radixDestroy is radix_tree_destroy with pgp_destroy as the slot
// destructor.
func (t *tmem) radixDestroy(obj int32) {
	o := t.objs.at(obj)
	if o.rootNode == 0 {
		return
	}
	if o.rootHeight == 0 {
		t.pgpDestroy(o.rootNode - 1)
	} else {
		t.radixNodeDestroy(obj, o.rootNode)
	}
	o = t.objs.at(obj)
	o.rootNode, o.rootHeight = 0, 0
}

func (t *tmem) radixNodeDestroy(obj int32, ref int32) {
	for i := 0; i < radixSize; i++ {
		n := t.nodes.at(ref - 1)
		s := n.slots[i]
		if s == 0 {
			continue
		}
		if n.height == 1 {
			t.pgpDestroy(s - 1)
		} else {
			t.radixNodeDestroy(obj, s)
		}
	}
	t.nodeFree(obj, ref)
}
