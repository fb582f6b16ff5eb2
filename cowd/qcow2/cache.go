package qcow2

import (
	"errors"
	"fmt"
	"io"
	"sync/atomic"
)

// l2Table is one cached L2 table (its raw big-endian bytes).
type l2Table struct {
	l1i   int64
	off   int64 // host offset
	buf   []byte
	ref   atomic.Bool // CLOCK reference bit; set by lookups under the shared lock
	dirty bool        // changed since last written (or never written)
	gen   uint64      // bumped by every change; a flush marks it clean only if unchanged
}

// l2Cache is a CLOCK cache of L2 tables indexed by L1 index. Dirty tables
// are never evicted: they stay until a flush writes them.
type l2Cache struct {
	byIndex []*l2Table
	ring    []*l2Table
	hand    int
	max     int
	dirty   []*l2Table // tables with dirty set, each once
	spare   [][]byte
}

func (c *l2Cache) init(l1Size int64, max int) {
	c.byIndex = make([]*l2Table, l1Size)
	c.ring = c.ring[:0]
	c.hand = 0
	c.max = max
	c.dirty = c.dirty[:0]
}

// buffer returns a table buffer, reusing evicted ones.
func (c *l2Cache) buffer(size int64) []byte {
	if n := len(c.spare); n > 0 {
		b := c.spare[n-1]
		c.spare = c.spare[:n-1]
		return b
	}
	return make([]byte, size)
}

// insert adds a table, evicting a clean one that was not used since the
// hand last passed. It reports whether the cache had to grow past its
// bound because every table is dirty.
func (c *l2Cache) insert(t *l2Table) (overfull bool) {
	c.byIndex[t.l1i] = t
	if len(c.ring) < c.max {
		c.ring = append(c.ring, t)
		return false
	}
	for range 2 * len(c.ring) {
		v := c.ring[c.hand]
		if !v.dirty && !v.ref.Swap(false) {
			c.byIndex[v.l1i] = nil
			c.spare = append(c.spare, v.buf)
			c.ring[c.hand] = t
			c.hand = (c.hand + 1) % len(c.ring)
			return false
		}
		c.hand = (c.hand + 1) % len(c.ring)
	}
	c.ring = append(c.ring, t)
	return true
}

// markDirty records a change to t; the caller holds d.mu exclusively.
func (d *Device) markDirty(t *l2Table) {
	t.gen++
	if !t.dirty {
		t.dirty = true
		d.cache.dirty = append(d.cache.dirty, t)
		if len(d.cache.dirty) > d.cache.max/2 {
			d.needFlush.Store(true)
		}
	}
}

// entry returns the L2 entry of guest cluster c (bm is the subcluster
// bitmap with extended L2). Unallocated L2 tables read as zero entries.
func (d *Device) entry(c int64) (e, bm uint64, err error) {
	l1i, l2i := d.g.l1Index(c), d.g.l2Index(c)
	d.mu.RLock()
	if t := d.cache.byIndex[l1i]; t != nil {
		t.ref.Store(true)
		e, bm = d.g.entry(t.buf, l2i)
		d.mu.RUnlock()
		return e, bm, nil
	}
	unalloc := d.l1[l1i]&offsetMask == 0
	d.mu.RUnlock()
	if unalloc {
		return 0, 0, nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	t, err := d.table(l1i)
	if err != nil || t == nil {
		return 0, 0, err
	}
	e, bm = d.g.entry(t.buf, l2i)
	return e, bm, nil
}

// table returns the cached L2 table of an L1 index, loading it if needed;
// nil if the L1 entry is unallocated. The caller holds d.mu exclusively.
func (d *Device) table(l1i int64) (*l2Table, error) {
	if t := d.cache.byIndex[l1i]; t != nil {
		t.ref.Store(true)
		return t, nil
	}
	off := int64(d.l1[l1i] & offsetMask)
	if off == 0 {
		return nil, nil
	}
	buf := d.cache.buffer(d.g.clusterSize)
	n, err := d.f.ReadAt(buf, off)
	if err != nil && !errors.Is(err, io.EOF) {
		d.cache.spare = append(d.cache.spare, buf)
		return nil, fmt.Errorf("read L2 table at %#x: %w", off, err)
	}
	clear(buf[n:])
	for i := range d.g.l2Entries() {
		e, bm := d.g.entry(buf, i)
		if e == 0 && bm == 0 {
			continue
		}
		err := d.g.checkL2Entry(e, bm, d.sizeBound())
		if err == nil && d.ref.meta != nil {
			err = d.checkOverlap(e)
		}
		if err != nil {
			d.cache.spare = append(d.cache.spare, buf)
			err = fmt.Errorf("L2 table at %#x, entry %d: %w", off, i, err)
			if !d.ro {
				d.fail(err) // write nothing more into a corrupt image
			}
			return nil, err
		}
	}
	t := &l2Table{l1i: l1i, off: off, buf: buf}
	t.ref.Store(true)
	if d.cache.insert(t) {
		d.needFlush.Store(true)
	}
	return t, nil
}

// tableForWrite returns the L2 table of an L1 index, allocating a new
// one (in memory, zeroed) if the L1 entry is unallocated. The caller holds
// d.mu exclusively.
func (d *Device) tableForWrite(l1i int64) (*l2Table, error) {
	t, err := d.table(l1i)
	if err != nil || t != nil {
		return t, err
	}
	off, err := d.allocMeta()
	if err != nil {
		return nil, err
	}
	buf := d.cache.buffer(d.g.clusterSize)
	clear(buf)
	t = &l2Table{l1i: l1i, off: off, buf: buf}
	t.ref.Store(true)
	if d.cache.insert(t) {
		d.needFlush.Store(true)
	}
	d.markDirty(t)
	d.l1[l1i] = uint64(off) | flagCopied
	d.l1Dirty = true
	return t, nil
}

// checkOverlap refuses an L2 entry that points into metadata (the header,
// L1, refcount structures or an L2 table): writing through it would
// destroy the image.
func (d *Device) checkOverlap(e uint64) error {
	var first, last int64
	if e&flagCompressed != 0 {
		off, n := d.g.compressedRange(e)
		first, last = off>>d.g.clusterBits, (off+n-1)>>d.g.clusterBits
	} else if host := int64(e & offsetMask); host != 0 {
		first, last = host>>d.g.clusterBits, host>>d.g.clusterBits
	} else {
		return nil
	}
	for c := first; c <= last; c++ {
		if _, ok := d.ref.meta[c]; ok {
			return corruptf("L2 entry %#x points into metadata at %#x", e, c<<d.g.clusterBits)
		}
	}
	return nil
}
