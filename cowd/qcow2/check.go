package qcow2

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// maxReportedErrors bounds the messages a check keeps (all are counted).
const maxReportedErrors = 100

// CheckResult is the outcome of [Image.Check], with the meaning and exit
// codes of qemu-img check: 0 clean, 2 corrupt, 3 leaks only.
type CheckResult struct {
	// Corruptions counts errors: invalid table entries, references past
	// the end of the file, refcounts lower than the references
	// (including overlapping metadata), COPIED flags that disagree with
	// the refcount.
	Corruptions int
	// Errors holds the first messages, in the order found.
	Errors []string
	// Leaks counts clusters whose refcount is higher than their
	// references: wasted space, no harm to data.
	Leaks int64
	// ImageEnd is the end of the last cluster in use.
	ImageEnd           int64
	TotalClusters      int64 // guest clusters
	AllocatedClusters  int64 // guest clusters with data in this image
	CompressedClusters int64
	FragmentedClusters int64
	ZeroClusters       int64
	// Dirty reports the dirty bit: with lazy refcounts, an image that was
	// not closed cleanly has stale refcounts until it is opened for
	// writing (cowd or QEMU rebuild them) or repaired.
	Dirty bool
}

// ExitCode returns 0 (clean), 2 (corrupt) or 3 (leaks only).
func (r *CheckResult) ExitCode() int {
	switch {
	case r.Corruptions > 0:
		return 2
	case r.Leaks > 0:
		return 3
	}
	return 0
}

// refWalk computes every host cluster's references from the metadata on
// disk, as qemu-img check does.
type refWalk struct {
	d    *Device
	refs []uint32
	res  *CheckResult
	// nextData is where the next guest cluster's data would be if it were
	// contiguous with the previous one (fragmentation count).
	nextData int64
	// structural counts corruptions other than refcount mismatches (and
	// the COPIED flags that follow from refcounts): a rebuild cannot fix them.
	structural      int
	firstStructural string
}

// errorf records a structural corruption.
func (w *refWalk) errorf(format string, args ...any) {
	if w.structural == 0 {
		w.firstStructural = fmt.Sprintf(format, args...)
	}
	w.structural++
	w.refErrorf(format, args...)
}

// refErrorf records a refcount error.
func (w *refWalk) refErrorf(format string, args ...any) {
	w.res.Corruptions++
	if len(w.res.Errors) < maxReportedErrors {
		w.res.Errors = append(w.res.Errors, fmt.Sprintf(format, args...))
	}
}

// add counts one reference to each cluster of a host byte range.
func (w *refWalk) add(off, n int64, what string) {
	g := &w.d.g
	if n <= 0 {
		return
	}
	if off+n-w.d.fileSize >= g.clusterSize {
		w.errorf("ERROR %s at %#x (%d bytes) exceeds the end of the file (%d bytes) by a cluster or more", what, off, n, w.d.fileSize)
		return
	}
	last := (off + n - 1) >> g.clusterBits
	if last >= int64(len(w.refs)) {
		grown := make([]uint32, max(last+1, int64(len(w.refs))*2))
		copy(grown, w.refs)
		w.refs = grown
	}
	for c := off >> g.clusterBits; c <= last; c++ {
		if w.refs[c] < ^uint32(0) {
			w.refs[c]++
		}
	}
}

// walk counts the references of the header, the tables and the active
// L1/L2 map, and checks the entries it passes.
func (w *refWalk) walk(ctx context.Context) error {
	d, g := w.d, &w.d.g
	h := &d.hdr
	cs := g.clusterSize
	if h.NbSnapshots > 0 {
		return fmt.Errorf("%w: checking images with internal snapshots", ErrUnsupported)
	}
	if _, ok := h.extension(extBitmaps); ok && h.AutoclearFeatures&AutoclearBitmaps != 0 {
		return fmt.Errorf("%w: checking images with persistent bitmaps", ErrUnsupported)
	}
	w.add(0, cs, "header")
	w.add(int64(h.L1TableOffset), int64(h.L1Size)*8, "L1 table")
	w.add(d.ref.tableOff, d.ref.tableClusters*cs, "refcount table")
	for i, e := range d.ref.table {
		if e != 0 {
			w.add(int64(e&refTableMask), cs, fmt.Sprintf("refcount block %d", i))
		}
	}
	buf := make([]byte, cs)
	for i, l1e := range d.l1 {
		if err := ctx.Err(); err != nil {
			return err
		}
		off := int64(l1e & offsetMask)
		if off == 0 {
			continue
		}
		w.add(off, cs, fmt.Sprintf("L2 table %d", i))
		if err := w.copied(l1e, off, fmt.Sprintf("L2 table %d", i)); err != nil {
			return err
		}
		n, err := d.f.ReadAt(buf, off)
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read L2 table at %#x: %w", off, err)
		}
		clear(buf[n:])
		if err := w.walkL2(buf, int64(i)); err != nil {
			return err
		}
	}
	return nil
}

func (w *refWalk) walkL2(t []byte, l1i int64) error {
	d, g := w.d, &w.d.g
	cs := g.clusterSize
	for j := range g.l2Entries() {
		c := l1i<<g.l2Bits + j
		e, bm := g.entry(t, j)
		if e == 0 && bm == 0 {
			continue
		}
		if c >= g.clusters() {
			w.errorf("ERROR guest cluster %d beyond the virtual size has L2 entry %#x", c, e)
			continue
		}
		if err := g.checkL2Entry(e, bm, d.fileSize); err != nil {
			w.errorf("ERROR guest cluster %d: %v", c, err)
			continue
		}
		if e&flagCompressed != 0 {
			off, n := g.compressedRange(e)
			w.add(off, n, "compressed cluster")
			w.res.AllocatedClusters++
			w.res.CompressedClusters++
			w.nextData = 0
			continue
		}
		host := int64(e & offsetMask)
		if g.kindOf(e, bm, 0) == kindZero && !g.extL2 {
			w.res.ZeroClusters++
		}
		if host == 0 {
			continue
		}
		w.add(host, cs, "data cluster")
		if err := w.copied(e, host, fmt.Sprintf("data cluster of guest cluster %d", c)); err != nil {
			return err
		}
		w.res.AllocatedClusters++
		if w.nextData != 0 && host != w.nextData {
			w.res.FragmentedClusters++
		}
		w.nextData = host + cs
	}
	return nil
}

// copied checks an entry's COPIED flag against the stored refcount.
func (w *refWalk) copied(e uint64, off int64, what string) error {
	v, err := w.d.refcount(off >> w.d.g.clusterBits)
	if err != nil {
		return err
	}
	if (v == 1) != (e&flagCopied != 0) {
		w.refErrorf("ERROR OFLAG_COPIED %s at %#x: refcount %d, COPIED flag %t", what, off, v, e&flagCopied != 0)
	}
	return nil
}

// compare sets the leak and error counts from references and stored
// refcounts, and the image end.
func (w *refWalk) compare(ctx context.Context) error {
	d, g := w.d, &w.d.g
	// As qemu-img check: clusters past the end of the file count only if
	// something references them (refcounts there are not leaks).
	n := max(int64(len(w.refs)), (d.fileSize+g.clusterSize-1)>>g.clusterBits)
	var end int64
	for c := range n {
		if c&0xffff == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		stored, err := d.refcount(c)
		if err != nil {
			return err
		}
		var refs uint64
		if c < int64(len(w.refs)) {
			refs = uint64(w.refs[c])
		}
		switch {
		case stored < refs:
			w.refErrorf("ERROR cluster %d refcount=%d reference=%d", c, stored, refs)
		case stored > refs:
			w.res.Leaks++
			if len(w.res.Errors) < maxReportedErrors {
				w.res.Errors = append(w.res.Errors, fmt.Sprintf("Leaked cluster %d refcount=%d reference=%d", c, stored, refs))
			}
		}
		if stored != 0 || refs != 0 {
			end = c + 1
		}
	}
	w.res.ImageEnd = end << g.clusterBits
	return nil
}

// check runs the whole check on d (opened read-only or not yet written).
func (d *Device) check(ctx context.Context) (*CheckResult, *refWalk, error) {
	res := &CheckResult{TotalClusters: d.g.clusters(), Dirty: d.hdr.IncompatibleFeatures&IncompatDirty != 0}
	w := &refWalk{d: d, res: res}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := w.walk(ctx); err != nil {
		return nil, nil, err
	}
	if err := w.compare(ctx); err != nil {
		return nil, nil, err
	}
	return res, w, nil
}

// rebuildRefcounts recomputes every refcount from the map (the dirty bit
// was set, or a repair was asked for) and writes them. It refuses images
// whose tables are corrupt beyond refcounts.
func (d *Device) rebuildRefcounts() error {
	_, w, err := d.check(context.Background())
	if err != nil {
		return err
	}
	if w.structural > 0 {
		return corruptf("%d errors beyond refcounts, first: %s", w.structural, w.firstStructural)
	}
	refs := w.refs
	for c, n := range refs {
		if n > 1 {
			return corruptf("cluster %#x is referenced %d times; cannot repair", int64(c)<<d.g.clusterBits, n)
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	r := &d.ref
	r.used = refs
	n := int64(len(refs))
	for i := int64(len(r.table)) - 1; i >= 0; i-- {
		if r.table[i] != 0 {
			n = max(n, (i+1)<<d.g.rbBits)
			break
		}
	}
	r.allocEnd = max(r.allocEnd, int64(len(refs)))
	for c := range n {
		want := uint64(0)
		if c < int64(len(r.used)) {
			want = uint64(r.used[c])
		}
		have, err := d.refcount(c)
		if err != nil {
			return err
		}
		if have != want {
			if err := d.setRef(c, want); err != nil {
				return err
			}
		}
	}
	r.used = nil
	r.hint = 0
	if err := d.fixCopied(); err != nil {
		return err
	}
	for c := range r.meta {
		if v, err := d.refcount(c); err != nil || v == 0 {
			delete(r.meta, c)
		}
	}
	return nil
}

// Repair rebuilds the refcounts of the image at path from its L1 and L2
// tables (cowd-img check -r): leaked clusters are freed and missing
// refcounts added. It refuses images whose tables are corrupt in other
// ways.
func Repair(path string) error {
	d, err := openDevice(path, false, true, DefaultCacheSize)
	if err != nil {
		return err
	}
	if err := d.prepareWrites(true); err != nil {
		d.closeFiles()
		return fmt.Errorf("qcow2: %s: %w", path, err)
	}
	return d.Close()
}

// fixCopied sets the COPIED flag on every L1 entry and every L2 entry
// with a host cluster, as a rebuild that found no cluster referenced twice
// leaves every refcount at 1. The caller holds d.mu exclusively.
func (d *Device) fixCopied() error {
	g := &d.g
	for i, e := range d.l1 {
		if e&offsetMask == 0 {
			continue
		}
		if e&flagCopied == 0 {
			d.l1[i] |= flagCopied
			d.l1Dirty = true
		}
		t, err := d.table(int64(i))
		if err != nil {
			return err
		}
		for j := range g.l2Entries() {
			e, bm := g.entry(t.buf, j)
			if e&flagCompressed == 0 && e&offsetMask != 0 && e&flagCopied == 0 {
				g.setEntry(t.buf, j, e|flagCopied, bm)
				d.markDirty(t)
			}
		}
	}
	return nil
}
