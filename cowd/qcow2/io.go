package qcow2

import (
	"errors"
	"fmt"
	"io"
)

// ReadAt reads len(p) bytes of the guest disk at off. It implements
// io.ReaderAt and does not allocate (compressed clusters aside).
func (d *Device) ReadAt(p []byte, off int64) (int, error) {
	if d.closed.Load() {
		return 0, ErrClosed
	}
	if err := d.checkRange(off, int64(len(p))); err != nil {
		return 0, err
	}
	cb, cs := d.g.clusterBits, d.g.clusterSize
	n := 0
	for n < len(p) {
		pos := off + int64(n)
		c, in := pos>>cb, pos&(cs-1)
		chunk := p[n : n+int(min(int64(len(p)-n), cs-in))]
		if err := d.readCluster(c, in, chunk); err != nil {
			return n, opError(opRead, pos, err)
		}
		n += len(chunk)
	}
	return n, nil
}

func (d *Device) readCluster(c, in int64, p []byte) error {
	if d.stripes != nil {
		s := d.stripe(c)
		s.RLock()
		defer s.RUnlock()
	}
	e, bm, err := d.entry(c)
	if err != nil {
		return err
	}
	return d.readEntry(c, in, p, e, bm)
}

// readEntry reads p at offset in of guest cluster c, as entry (e, bm)
// describes it.
func (d *Device) readEntry(c, in int64, p []byte, e, bm uint64) error {
	if e&flagCompressed != 0 {
		return d.readCompressed(e, in, p)
	}
	if !d.g.extL2 {
		return d.readRun(d.g.kindOf(e, 0, 0), c, in, p, e)
	}
	scBits, scs := d.g.scBits, d.g.scSize()
	for len(p) > 0 {
		k := d.g.kindOf(e, bm, int(in>>scBits))
		end := (in>>scBits + 1) << scBits
		for end < in+int64(len(p)) && d.g.kindOf(e, bm, int(end>>scBits)) == k {
			end += scs
		}
		n := min(int64(len(p)), end-in)
		if err := d.readRun(k, c, in, p[:n], e); err != nil {
			return err
		}
		p, in = p[n:], in+n
	}
	return nil
}

func (d *Device) readRun(k kind, c, in int64, p []byte, e uint64) error {
	switch k {
	case kindData:
		return d.pread(p, int64(e&offsetMask)+in)
	case kindUnalloc:
		if d.backing != nil {
			return d.backing.readAt(p, c<<d.g.clusterBits+in)
		}
	}
	clear(p)
	return nil
}

// pread reads host data; bytes past the end of the file read as zeroes
// (QEMU leaves the last cluster of a file short).
func (d *Device) pread(p []byte, off int64) error {
	n, err := d.f.ReadAt(p, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	clear(p[n:])
	return nil
}

// WriteAt writes p at off. The first write to a cluster not allocated in
// this image allocates one and copies the untouched part from the backing
// chain (with extended L2, only the touched subclusters are written). In
// sync mode it returns once data and metadata are durable. It implements
// io.WriterAt.
func (d *Device) WriteAt(p []byte, off int64) (int, error) {
	if err := d.writable(); err != nil {
		return 0, err
	}
	if err := d.checkRange(off, int64(len(p))); err != nil {
		return 0, err
	}
	cb, cs := d.g.clusterBits, d.g.clusterSize
	n := 0
	for n < len(p) {
		pos := off + int64(n)
		c, in := pos>>cb, pos&(cs-1)
		chunk := p[n : n+int(min(int64(len(p)-n), cs-in))]
		s := d.stripe(c)
		s.Lock()
		err := d.writeCluster(c, in, chunk)
		s.Unlock()
		if err != nil {
			return n, opError(opWrite, pos, err)
		}
		n += len(chunk)
	}
	return n, d.afterUpdate()
}

// afterUpdate flushes in sync mode, or when dirty tables fill the cache.
func (d *Device) afterUpdate() error {
	if d.sync || d.needFlush.Load() {
		return d.Sync()
	}
	return nil
}

// writeCluster writes p at offset in of guest cluster c, whose stripe
// the caller holds for writing.
func (d *Device) writeCluster(c, in int64, p []byte) error {
	e, bm, err := d.entry(c)
	if err != nil {
		return err
	}
	host := int64(e & offsetMask)
	inPlace := e&flagCompressed == 0 && host != 0 && e&flagCopied != 0
	if d.g.extL2 && e&flagCompressed == 0 && (host == 0 || inPlace) {
		return d.writeSubclusters(c, in, p, e, bm)
	}
	if inPlace && !d.g.extL2 && e&flagZero == 0 {
		return d.pwrite(p, host+in)
	}
	return d.cowCluster(c, in, p, e, bm)
}

func (d *Device) pwrite(p []byte, off int64) error {
	_, err := d.f.WriteAt(p, off)
	return err
}

// cowCluster writes a whole new cluster: the current content of c with p
// laid over it at in. A preallocated zero cluster is rewritten in place;
// anything else (unallocated, zero, compressed, shared) gets a new cluster
// and the old one is freed after the next flush.
func (d *Device) cowCluster(c, in int64, p []byte, e, bm uint64) error {
	cs, cl := d.g.clusterSize, d.g.clusterLen(c)
	data := p
	if in != 0 || int64(len(p)) != cs {
		bp := d.getBuf()
		defer d.putBuf(bp)
		buf := *bp
		if in != 0 || in+int64(len(p)) < cl {
			if err := d.readEntry(c, 0, buf[:cl], e, bm); err != nil {
				return fmt.Errorf("copy-on-write: %w", err)
			}
		}
		clear(buf[cl:])
		copy(buf[in:], p)
		data = buf
	}
	host := int64(e & offsetMask)
	newBm := uint64(0)
	if d.g.extL2 {
		newBm = allAlloc
	}
	if e&flagCompressed == 0 && host != 0 && e&flagCopied != 0 {
		if err := d.pwrite(data, host); err != nil {
			return err
		}
		return d.publish(c, uint64(host)|flagCopied, newBm, byteRange{}, -1)
	}
	var old byteRange
	switch {
	case e&flagCompressed != 0:
		old.off, old.n = d.g.compressedRange(e)
	case host != 0:
		old = byteRange{host, cs}
	}
	return d.writeNew(c, data, 0, newBm, old)
}

// writeNew allocates a cluster for c, writes data at offset at of it and
// publishes the entry; on failure the new cluster is released.
func (d *Device) writeNew(c int64, data []byte, at int64, bm uint64, old byteRange) error {
	d.mu.Lock()
	host, err := d.alloc()
	d.mu.Unlock()
	if err != nil {
		return err
	}
	if err := d.pwrite(data, host+at); err != nil {
		d.mu.Lock()
		d.release(host)
		d.mu.Unlock()
		return err
	}
	return d.publish(c, uint64(host)|flagCopied, bm, old, host)
}

// writeSubclusters writes into a cluster with extended L2 entries that is
// unallocated or writable in place: the subclusters p touches are written
// (partial ones completed from their current content), the others keep
// their state.
func (d *Device) writeSubclusters(c, in int64, p []byte, e, bm uint64) error {
	scBits := d.g.scBits
	first, last := int(in>>scBits), int((in+int64(len(p))-1)>>scBits)
	mask := subclusterMask(first, last)
	host := int64(e & offsetMask)
	if host != 0 && bm&mask == mask {
		return d.pwrite(p, host+in)
	}
	lo, hi := int64(first)<<scBits, int64(last+1)<<scBits
	bp := d.getBuf()
	defer d.putBuf(bp)
	buf := (*bp)[:hi-lo]
	if in > lo {
		if err := d.readEntry(c, lo, buf[:in-lo], e, bm); err != nil {
			return fmt.Errorf("copy-on-write: %w", err)
		}
	}
	copy(buf[in-lo:], p)
	if end := in + int64(len(p)); end < hi {
		if err := d.readEntry(c, end, buf[end-lo:], e, bm); err != nil {
			return fmt.Errorf("copy-on-write: %w", err)
		}
	}
	newBm := (bm | mask) &^ (mask << subclusters)
	if host != 0 {
		if err := d.pwrite(buf, host+lo); err != nil {
			return err
		}
		return d.publish(c, e, newBm, byteRange{}, -1)
	}
	return d.writeNew(c, buf, lo, newBm, byteRange{})
}

// publish sets the L2 entry of guest cluster c, whose stripe the caller
// holds, after the data it points to was written. old is the host range
// the previous entry used, freed after the next flush. If publishing
// fails, newHost (if >= 0) is released.
func (d *Device) publish(c int64, e, bm uint64, old byteRange, newHost int64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	t, err := d.tableForWrite(d.g.l1Index(c))
	if err != nil {
		if newHost >= 0 {
			d.release(newHost)
		}
		return err
	}
	d.g.setEntry(t.buf, d.g.l2Index(c), e, bm)
	d.markDirty(t)
	if old.n > 0 {
		d.ref.pending = append(d.ref.pending, old)
	}
	return nil
}

func (d *Device) readCompressed(e uint64, in int64, p []byte) error {
	bp := d.getBuf()
	defer d.putBuf(bp)
	if err := d.decompress(e, *bp); err != nil {
		return err
	}
	copy(p, (*bp)[in:])
	return nil
}
