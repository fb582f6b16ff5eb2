package qcow2

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// refcounts is the in-memory refcount state of a writable Device. Refcount
// blocks are loaded on first use and stay cached (2 bytes per host cluster
// with 16-bit refcounts). All fields are guarded by Device.mu.
type refcounts struct {
	table         []uint64 // refcount table entries
	tableOff      int64
	tableClusters int64
	tableDirty    bool // entries changed since last written
	tableMoved    bool // the table moved: write it whole, then the header

	blocks      []*refBlock // by table index; nil until loaded
	dirtyBlocks []*refBlock

	hint     int64              // no free cluster below this one
	allocEnd int64              // clusters [0, allocEnd) may be in use; the rest are free
	meta     map[int64]struct{} // clusters holding metadata: never handed out
	pending  []byteRange        // freed by map changes; decremented after the next flush

	// During a refcount rebuild, used[c] is the number of references to
	// cluster c; allocation skips referenced clusters and counts new ones.
	used []uint32
}

type refBlock struct {
	idx   int64
	off   int64
	buf   []byte
	dirty bool
}

type byteRange struct{ off, n int64 }

// initAllocator loads what allocation needs: the end of the used area and
// the set of metadata clusters. With verify it also checks that every
// metadata cluster has a refcount, and that L2 tables are writable in place.
func (d *Device) initAllocator(verify bool) error {
	r, g := &d.ref, &d.g
	r.meta = make(map[int64]struct{})
	cs := g.clusterSize
	addRange := func(off, n int64) {
		for c := off >> g.clusterBits; c < (off+n+cs-1)>>g.clusterBits; c++ {
			r.meta[c] = struct{}{}
		}
	}
	addRange(0, cs)
	addRange(int64(d.hdr.L1TableOffset), int64(len(d.l1))*8)
	addRange(r.tableOff, r.tableClusters*cs)
	for _, e := range r.table {
		if e != 0 {
			addRange(int64(e&refTableMask), cs)
		}
	}
	for _, e := range d.l1 {
		if e&offsetMask != 0 {
			addRange(int64(e&offsetMask), cs)
		}
	}
	// The used area ends at the file's end or after the last cluster with
	// a refcount, whichever is later.
	r.allocEnd = (d.fileSize + cs - 1) >> g.clusterBits
	for i := int64(len(r.table)) - 1; i >= 0; i-- {
		if r.table[i] == 0 {
			continue
		}
		b, err := d.refBlock(i)
		if err != nil {
			return err
		}
		for j := int64(1)<<g.rbBits - 1; j >= 0; j-- {
			if getRefcount(b.buf, j, g.refOrder) != 0 {
				r.allocEnd = max(r.allocEnd, i<<g.rbBits+j+1)
				break
			}
		}
		break
	}
	if !verify {
		return nil
	}
	for c := range r.meta {
		if c >= r.allocEnd {
			return corruptf("metadata cluster %#x lies past the end of the image", c<<g.clusterBits)
		}
		v, err := d.refcount(c)
		if err != nil {
			return err
		}
		if v == 0 {
			return corruptf("metadata cluster %#x has refcount 0 (repair with qemu-img check -r all)", c<<g.clusterBits)
		}
	}
	for i, e := range d.l1 {
		if off := int64(e & offsetMask); off != 0 {
			v, err := d.refcount(off >> g.clusterBits)
			if err != nil {
				return err
			}
			if v != 1 || e&flagCopied == 0 {
				return corruptf("L2 table %d at %#x: refcount %d, COPIED flag %t (repair with qemu-img check -r all)",
					i, off, v, e&flagCopied != 0)
			}
		}
	}
	return nil
}

// refBlock returns the refcount block of table index i, loading it; the
// table entry must be non-zero. The caller holds d.mu exclusively.
func (d *Device) refBlock(i int64) (*refBlock, error) {
	r := &d.ref
	if b := r.blocks[i]; b != nil {
		return b, nil
	}
	off := int64(r.table[i] & refTableMask)
	buf := make([]byte, d.g.clusterSize)
	n, err := d.f.ReadAt(buf, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read refcount block at %#x: %w", off, err)
	}
	clear(buf[n:])
	b := &refBlock{idx: i, off: off, buf: buf}
	r.blocks[i] = b
	return b, nil
}

// refcount returns the refcount of host cluster c.
func (d *Device) refcount(c int64) (uint64, error) {
	r, g := &d.ref, &d.g
	i := c >> g.rbBits
	if i >= int64(len(r.table)) || r.table[i] == 0 {
		return 0, nil
	}
	b, err := d.refBlock(i)
	if err != nil {
		return 0, err
	}
	return getRefcount(b.buf, c&(1<<g.rbBits-1), g.refOrder), nil
}

func (d *Device) markRefDirty(b *refBlock) {
	if !b.dirty {
		b.dirty = true
		d.ref.dirtyBlocks = append(d.ref.dirtyBlocks, b)
	}
}

// isFree reports whether cluster c may be handed out.
func (d *Device) isFree(c int64) (bool, error) {
	r := &d.ref
	if r.used != nil && c < int64(len(r.used)) && r.used[c] != 0 {
		return false, nil
	}
	v, err := d.refcount(c)
	if err != nil || v != 0 {
		return false, err
	}
	if _, ok := r.meta[c]; ok {
		return false, corruptf("metadata cluster %#x has refcount 0", c<<d.g.clusterBits)
	}
	return true, nil
}

// alloc hands out a free cluster with refcount 1 and returns its offset.
// The caller holds d.mu exclusively.
func (d *Device) alloc() (int64, error) {
	r, g := &d.ref, &d.g
	for c := r.hint; ; c++ {
		if r.used != nil || c < r.allocEnd {
			free, err := d.isFree(c)
			if err != nil {
				return 0, err
			}
			if !free {
				continue
			}
		}
		if err := d.setRef(c, 1); err != nil {
			return 0, err
		}
		r.hint = c + 1
		r.allocEnd = max(r.allocEnd, c+1)
		d.noteUsed(c)
		return c << g.clusterBits, nil
	}
}

// allocMeta allocates a cluster for metadata and reserves its storage at
// once, so that running out of space fails the request that needed it
// rather than a later flush, and the file covers every cluster a flushed
// table points to.
func (d *Device) allocMeta() (int64, error) {
	off, err := d.alloc()
	if err != nil {
		return 0, err
	}
	if err := reserve(d.f, off, d.g.clusterSize, d.zeros); err != nil {
		d.release(off)
		return 0, err
	}
	d.ref.meta[off>>d.g.clusterBits] = struct{}{}
	return off, nil
}

// release frees a cluster that no table ever pointed to (its data write
// failed): its refcount drops at once.
func (d *Device) release(off int64) {
	c := off >> d.g.clusterBits
	delete(d.ref.meta, c)
	if err := d.setRef(c, 0); err != nil {
		d.fail(err)
	}
}

func (d *Device) noteUsed(c int64) {
	if u := d.ref.used; u != nil && c < int64(len(u)) {
		u[c]++
	}
}

// setRef sets the refcount of cluster c, creating its refcount block (and
// growing the refcount table) if needed. The caller holds d.mu exclusively.
func (d *Device) setRef(c int64, v uint64) error {
	r, g := &d.ref, &d.g
	if v > maxRefcount(g.refOrder) {
		return corruptf("refcount %d of cluster %#x overflows %d bits", v, c<<g.clusterBits, 1<<g.refOrder)
	}
	i := c >> g.rbBits
	if i >= int64(len(r.table)) || r.table[i] == 0 {
		if v == 0 {
			return nil
		}
		if i >= int64(len(r.table)) {
			if err := d.growRefTable(i, c); err != nil {
				return err
			}
		}
		if r.table[i] == 0 {
			if err := d.newRefBlock(i, c); err != nil {
				return err
			}
		}
	}
	b, err := d.refBlock(i)
	if err != nil {
		return err
	}
	setRefcount(b.buf, c&(1<<g.rbBits-1), g.refOrder, v)
	d.markRefDirty(b)
	if v == 0 && c < r.hint {
		r.hint = c
	}
	return nil
}

// newRefBlock creates the refcount block of table index i inside the
// range it covers (all of which is free, having no block), avoiding
// cluster avoid, which the caller is about to use.
func (d *Device) newRefBlock(i, avoid int64) error {
	r, g := &d.ref, &d.g
	first := i << g.rbBits
	for c := first; c < first+1<<g.rbBits; c++ {
		if c == avoid {
			continue
		}
		if _, ok := r.meta[c]; ok {
			continue
		}
		if r.used != nil && c < int64(len(r.used)) && r.used[c] != 0 {
			continue
		}
		off := c << g.clusterBits
		if err := reserve(d.f, off, g.clusterSize, d.zeros); err != nil {
			return err
		}
		b := &refBlock{idx: i, off: off, buf: make([]byte, g.clusterSize)}
		setRefcount(b.buf, c-first, g.refOrder, 1)
		r.blocks[i] = b
		r.table[i] = uint64(off)
		r.tableDirty = true
		d.markRefDirty(b)
		r.meta[c] = struct{}{}
		r.allocEnd = max(r.allocEnd, c+1)
		d.noteUsed(c)
		return nil
	}
	return fmt.Errorf("qcow2: no free cluster for the refcount block of %#x", first<<g.clusterBits)
}

// growRefTable replaces the refcount table by a larger one covering table
// index need. The new table and the refcount blocks for its own clusters go
// after everything in use; the old table is freed after the next flush.
func (d *Device) growRefTable(need, avoid int64) error {
	r, g := &d.ref, &d.g
	perCluster := g.clusterSize / 8
	start := max(r.allocEnd, avoid+1)
	entries := max(need+1, int64(len(r.table))*2)
	var k int64
	var blocks []int64
	for range 64 {
		k = (entries + perCluster - 1) / perCluster
		m := int64(len(blocks))
		blocks = blocks[:0]
		last := need
		for idx := start >> g.rbBits; idx <= (start+k+m-1)>>g.rbBits; idx++ {
			if idx >= int64(len(r.table)) || r.table[idx] == 0 {
				blocks = append(blocks, idx)
				last = max(last, idx)
			}
		}
		if int64(len(blocks)) == m && last < entries {
			break
		}
		entries = max(entries, last+1)
	}
	if k*g.clusterSize > maxRefTableBytes {
		return fmt.Errorf("qcow2: image too large: refcount table would need %d clusters", k)
	}
	table := make([]uint64, k*perCluster)
	copy(table, r.table)
	bl := make([]*refBlock, len(table))
	copy(bl, r.blocks)
	end := start + k + int64(len(blocks))
	if err := reserve(d.f, start<<g.clusterBits, (end-start)<<g.clusterBits, d.zeros); err != nil {
		return err
	}
	for j, idx := range blocks {
		off := (start + k + int64(j)) << g.clusterBits
		table[idx] = uint64(off)
		bl[idx] = &refBlock{idx: idx, off: off, buf: make([]byte, g.clusterSize)}
		d.markRefDirty(bl[idx])
	}
	oldOff, oldClusters := r.tableOff, r.tableClusters
	r.table, r.blocks = table, bl
	r.tableOff, r.tableClusters = start<<g.clusterBits, k
	r.tableDirty, r.tableMoved = true, true
	for c := start; c < end; c++ {
		b, err := d.refBlock(c >> g.rbBits)
		if err != nil {
			return err
		}
		setRefcount(b.buf, c&(1<<g.rbBits-1), g.refOrder, 1)
		d.markRefDirty(b)
		r.meta[c] = struct{}{}
		d.noteUsed(c)
	}
	r.allocEnd = max(r.allocEnd, end)
	r.pending = append(r.pending, byteRange{oldOff, oldClusters << g.clusterBits})
	return nil
}

// decRef drops one reference to each cluster of a host byte range (after
// the map change that stopped using it is durable) and punches freed
// clusters out of the file.
func (d *Device) decRef(br byteRange) error {
	g := &d.g
	for c := br.off >> g.clusterBits; c <= (br.off+br.n-1)>>g.clusterBits; c++ {
		v, err := d.refcount(c)
		if err != nil {
			return err
		}
		if v == 0 {
			return corruptf("freeing cluster %#x whose refcount is already 0", c<<g.clusterBits)
		}
		if err := d.setRef(c, v-1); err != nil {
			return err
		}
		if v == 1 {
			delete(d.ref.meta, c)
			punchHole(d.f, c<<g.clusterBits, g.clusterSize)
		}
	}
	return nil
}

// writeZeros writes zeroes over a range, a cluster-sized buffer at a time.
func writeZeros(f *os.File, off, n int64, zeros []byte) error {
	for n > 0 {
		k := min(n, int64(len(zeros)))
		if _, err := f.WriteAt(zeros[:k], off); err != nil {
			return fmt.Errorf("qcow2: reserve space: %w", err)
		}
		off, n = off+k, n-k
	}
	return nil
}

// allocReserved allocates a cluster that no data write will fill (a
// preallocated zero cluster) and reserves its storage.
func (d *Device) allocReserved() (int64, error) {
	d.mu.Lock()
	off, err := d.alloc()
	d.mu.Unlock()
	if err != nil {
		return 0, err
	}
	if err := reserve(d.f, off, d.g.clusterSize, d.zeros); err != nil {
		d.mu.Lock()
		d.release(off)
		d.mu.Unlock()
		return 0, err
	}
	return off, nil
}

// sizeBound is the offset no valid table entry reaches: the end of the
// file at open, or of the clusters allocated since. The caller holds d.mu.
func (d *Device) sizeBound() int64 {
	return max(d.fileSize, d.ref.allocEnd<<d.g.clusterBits)
}
