package qcow2

import (
	"errors"
	"fmt"
)

// zeroMode says what a whole-cluster discard or zero leaves behind.
type zeroMode uint8

const (
	modeDiscard   zeroMode = iota // Trim: unallocated without a backing file, else zero
	modeZero                      // WriteZeroes: a zero cluster, its host cluster freed
	modeZeroAlloc                 // WriteZeroes with NO_HOLE: a zero cluster that keeps (or gets) a host cluster
)

// maxStatusScan bounds the bytes one BlockStatus call examines.
const maxStatusScan = 4 << 30

// Trim discards the clusters that [off, off+length) covers completely:
// they read as zeroes afterwards (version 2 images with a backing file
// have no zero clusters and are left alone, which NBD permits) and their
// host clusters are freed after the next flush.
func (d *Device) Trim(off, length int64) error {
	if err := d.writable(); err != nil {
		return err
	}
	if err := d.checkRange(off, length); err != nil {
		return err
	}
	first, last := d.wholeClusters(off, length)
	for c := first; c < last; c++ {
		if err := d.zeroWhole(c, modeDiscard); err != nil {
			return opError(opTrim, c<<d.g.clusterBits, err)
		}
	}
	return d.afterUpdate()
}

// WriteZeroes makes [off, off+length) read as zeroes. Whole clusters
// become zero clusters (metadata only; with noHole they keep a host
// cluster); partial clusters, and whole ones in version 2 images with a
// backing file, are written. With fast set, a request that would need data
// writes fails at once, unchanged, with an error wrapping
// errors.ErrUnsupported (NBD FAST_ZERO).
func (d *Device) WriteZeroes(off, length int64, noHole, fast bool) error {
	if err := d.writable(); err != nil {
		return err
	}
	if err := d.checkRange(off, length); err != nil {
		return err
	}
	cb, cs := d.g.clusterBits, d.g.clusterSize
	first, last := d.wholeClusters(off, length)
	meta := d.g.v3 || (d.backing == nil && !noHole)
	end := off + length
	if fast && length > 0 && (!meta || first<<cb != off || min(last<<cb, d.g.size) != end) {
		return fmt.Errorf("qcow2: zeroing needs data writes: %w", errors.ErrUnsupported)
	}
	mode := modeZero
	if noHole {
		mode = modeZeroAlloc
	}
	for pos := off; pos < end; {
		c, in := pos>>cb, pos&(cs-1)
		n := min(end-pos, cs-in)
		var err error
		if c >= first && c < last && meta {
			err = d.zeroWhole(c, mode)
		} else {
			err = d.zeroPartial(c, in, n, noHole)
		}
		if err != nil {
			return opError(opZero, pos, err)
		}
		pos += n
	}
	return d.afterUpdate()
}

// wholeClusters returns the clusters [first, last) that the range covers
// completely; a range that reaches the end of the disk covers a partial
// last cluster.
func (d *Device) wholeClusters(off, length int64) (first, last int64) {
	cb, cs := d.g.clusterBits, d.g.clusterSize
	first = (off + cs - 1) >> cb
	if end := off + length; end == d.g.size {
		last = d.g.clusters()
	} else {
		last = end >> cb
	}
	return first, max(first, last)
}

// zeroWhole replaces the entry of guest cluster c for a discard or zero.
func (d *Device) zeroWhole(c int64, mode zeroMode) error {
	s := d.stripe(c)
	s.Lock()
	defer s.Unlock()
	e, bm, err := d.entry(c)
	if err != nil {
		return err
	}
	host := int64(e & offsetMask)
	var old byteRange
	switch {
	case e&flagCompressed != 0:
		old.off, old.n = d.g.compressedRange(e)
	case host != 0:
		old = byteRange{host, d.g.clusterSize}
	}
	var ne, nbm uint64
	newHost := int64(-1)
	switch {
	case mode == modeZeroAlloc:
		if e&flagCompressed == 0 && host != 0 && e&flagCopied != 0 {
			ne, old = uint64(host)|flagCopied, byteRange{}
		} else {
			if newHost, err = d.allocReserved(); err != nil {
				return err
			}
			ne = uint64(newHost) | flagCopied
		}
		if d.g.extL2 {
			nbm = allZero
		} else {
			ne |= flagZero
		}
	case !d.g.v3:
		if d.backing != nil {
			return nil // no zero clusters in version 2: leave the discarded data
		}
	case d.g.extL2:
		if mode == modeZero || d.backing != nil {
			nbm = allZero
		}
	default:
		if mode == modeZero || d.backing != nil {
			ne = flagZero
		}
	}
	if ne == e && nbm == bm {
		return nil
	}
	return d.publish(c, ne, nbm, old, newHost)
}

// zeroPartial zeroes part of a cluster by writing zeroes, unless it
// already reads as zeroes.
func (d *Device) zeroPartial(c, in, n int64, noHole bool) error {
	s := d.stripe(c)
	s.Lock()
	defer s.Unlock()
	e, bm, err := d.entry(c)
	if err != nil {
		return err
	}
	if !noHole {
		zero, err := d.readsZero(c, in, n, e, bm)
		if err != nil || zero {
			return err
		}
	}
	return d.writeCluster(c, in, d.zeros[:n])
}

// readsZero reports whether [in, in+n) of cluster c is known to read as
// zeroes without looking at data.
func (d *Device) readsZero(c, in, n int64, e, bm uint64) (bool, error) {
	if e&flagCompressed != 0 {
		return false, nil
	}
	scBits := d.g.scBits
	for sc := in >> scBits; sc <= (in+n-1)>>scBits; sc++ {
		switch d.g.kindOf(e, bm, int(sc)) {
		case kindZero:
			continue
		case kindUnalloc:
			if d.backing == nil {
				continue
			}
			lo := max(in, sc<<scBits)
			hi := min(in+n, (sc+1)<<scBits)
			pos := c<<d.g.clusterBits + lo
			run, zero, err := d.backing.zeroRun(pos, hi-lo)
			if err != nil || !zero || run < hi-lo {
				return false, err
			}
			continue
		}
		return false, nil
	}
	return true, nil
}

// BlockStatus reports the run starting at off that shares one state, as
// NBD base:allocation sees it: data in this image or in the backing chain
// is data; zero clusters, and ranges where the chain has nothing, are
// holes reading as zeroes (preallocated zero clusters: zero, not hole).
// The run is at least 1 byte and at most length bytes.
func (d *Device) BlockStatus(off, length int64) (run int64, hole, zero bool, err error) {
	if err := d.checkRange(off, length); err != nil {
		return 0, false, false, err
	}
	if length == 0 {
		return 0, false, false, fmt.Errorf("%w: empty block status request", ErrRange)
	}
	end := off + length
	run, hole, zero, err = d.statusAt(off, length)
	if err != nil {
		return 0, false, false, err
	}
	pos := off + run
	for pos < end && pos-off < maxStatusScan {
		r, h, z, err := d.statusAt(pos, end-pos)
		if err != nil || h != hole || z != zero {
			break
		}
		pos += r
	}
	return pos - off, hole, zero, nil
}

// statusAt reports the state of the run from off, within one cluster and
// at most n bytes.
func (d *Device) statusAt(off, n int64) (run int64, hole, zero bool, err error) {
	cb, cs := d.g.clusterBits, d.g.clusterSize
	c, in := off>>cb, off&(cs-1)
	n = min(n, cs-in)
	e, bm, err := d.entry(c)
	if err != nil {
		return 0, false, false, err
	}
	k := d.g.kindOf(e, bm, int(in>>d.g.scBits))
	if d.g.extL2 && k != kindCompressed {
		scBits, scs := d.g.scBits, d.g.scSize()
		end := (in>>scBits + 1) << scBits
		for end < in+n && d.g.kindOf(e, bm, int(end>>scBits)) == k {
			end += scs
		}
		n = min(n, end-in)
	}
	switch k {
	case kindData, kindCompressed:
		return n, false, false, nil
	case kindZero:
		return n, e&offsetMask == 0, true, nil
	}
	if d.backing == nil {
		return n, true, true, nil
	}
	r, z, err := d.backing.zeroRun(off, n)
	return r, z, z, err
}

// Cache asks the kernel to prefetch the data behind [off, off+length)
// (NBD CACHE). It is a hint and never fails for an in-range request.
func (d *Device) Cache(off, length int64) error {
	if err := d.checkRange(off, length); err != nil {
		return err
	}
	cb, cs := d.g.clusterBits, d.g.clusterSize
	for pos, end := off, off+length; pos < end; {
		c, in := pos>>cb, pos&(cs-1)
		n := min(end-pos, cs-in)
		e, bm, err := d.entry(c)
		if err != nil {
			return nil
		}
		switch d.g.kindOf(e, bm, int(in>>d.g.scBits)) {
		case kindData:
			prefetch(d.f, int64(e&offsetMask)+in, n)
		case kindUnalloc:
			if d.backing != nil {
				d.backing.prefetch(pos, n)
			}
		}
		pos += n
	}
	return nil
}
