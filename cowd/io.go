package cowd

import (
	"errors"
	"fmt"
)

func (d *Device) checkRange(off, length int64) error {
	if off < 0 || length < 0 || off > d.size || length > d.size-off {
		return fmt.Errorf("%w: %d bytes at %d (size %d)", ErrRange, length, off, d.size)
	}
	return nil
}

// blockLen is the number of bytes of block b inside the device (less than
// the block size only for a partial last block).
func (d *Device) blockLen(b int64) int64 { return min(d.bs, d.size-b<<d.shift) }

// ReadAt reads len(p) bytes at off from the CoW view. It implements
// io.ReaderAt and does not allocate.
func (d *Device) ReadAt(p []byte, off int64) (int, error) {
	if d.closed.Load() {
		return 0, ErrClosed
	}
	if err := d.checkRange(off, int64(len(p))); err != nil {
		return 0, err
	}
	n := 0
	for n < len(p) {
		pos := off + int64(n)
		b, in := pos>>d.shift, pos&(d.bs-1)
		chunk := p[n : n+int(min(int64(len(p)-n), d.bs-in))]
		s := d.stripe(b)
		s.RLock()
		var err error
		switch st := d.live[b].Load(); {
		case st&stateMapped != 0:
			_, err = d.f.ReadAt(chunk, d.slotOff(st)+in)
		case st&stateZero != 0:
			clear(chunk)
		default:
			_, err = d.base.ReadAt(chunk, pos)
		}
		s.RUnlock()
		if err != nil {
			return n, opError(opRead, pos, err)
		}
		n += len(chunk)
	}
	return n, nil
}

// WriteAt writes p at off. The first write to a block still in the base
// copies the block into the CoW store (a write covering the whole block
// skips the copy); later writes go to that copy. In sync mode it returns
// only once data and metadata are durable. It implements io.WriterAt.
func (d *Device) WriteAt(p []byte, off int64) (int, error) {
	if err := d.writable(); err != nil {
		return 0, err
	}
	if err := d.checkRange(off, int64(len(p))); err != nil {
		return 0, err
	}
	n := 0
	for n < len(p) {
		pos := off + int64(n)
		b, in := pos>>d.shift, pos&(d.bs-1)
		chunk := p[n : n+int(min(int64(len(p)-n), d.bs-in))]
		if err := d.writeBlock(b, in, chunk, false); err != nil {
			return n, opError(opWrite, pos, err)
		}
		n += len(chunk)
	}
	if d.sync {
		if err := d.Sync(); err != nil {
			return n, err
		}
	}
	return n, nil
}

// writeBlock writes p at offset in of block b; p does not cross the block.
// With zeroing set (p is then all zeroes), a zero block is left as it is;
// NO_HOLE requests clear it so that the block ends up allocated.
func (d *Device) writeBlock(b, in int64, p []byte, zeroing bool) error {
	s := d.stripe(b)
	s.Lock()
	defer s.Unlock()
	st := d.live[b].Load()
	if st&stateMapped != 0 {
		_, err := d.f.WriteAt(p, d.slotOff(st)+in)
		return err
	}
	if zeroing && st&stateZero != 0 {
		return nil
	}
	slot := d.allocSlot()
	dst := d.hdr.DataOffset + slot*d.bs
	var err error
	if in == 0 && int64(len(p)) == d.bs {
		_, err = d.f.WriteAt(p, dst) // whole block: nothing to copy
	} else {
		err = d.copyOnWrite(b, st, in, p, dst)
	}
	if err != nil {
		d.releaseSlot(slot)
		return err
	}
	d.publish(b, uint64(slot)<<stateShift|stateMapped, -1)
	return nil
}

// copyOnWrite builds block b (from the base, or zeroes for a zero block),
// lays p over it at in and writes the whole block to dst.
func (d *Device) copyOnWrite(b int64, st uint64, in int64, p []byte, dst int64) error {
	bp := d.getBuf()
	defer d.putBuf(bp)
	blk := *bp
	valid := d.blockLen(b)
	if st&stateZero != 0 {
		clear(blk)
	} else {
		if _, err := d.base.ReadAt(blk[:valid], b<<d.shift); err != nil {
			return fmt.Errorf("copy from base: %w", err)
		}
		clear(blk[valid:])
	}
	copy(blk[in:], p)
	_, err := d.f.WriteAt(blk, dst)
	return err
}

// Trim discards the blocks that [off, off+length) covers completely: they
// become zero blocks and their data blocks are freed. Partly covered blocks
// are left alone, which NBD permits (a trimmed range reads back undefined).
func (d *Device) Trim(off, length int64) error {
	if err := d.writable(); err != nil {
		return err
	}
	if err := d.checkRange(off, length); err != nil {
		return err
	}
	first, last := d.wholeBlocks(off, length)
	for b := first; b < last; b++ {
		d.zeroBlock(b)
	}
	if d.sync {
		return d.Sync()
	}
	return nil
}

// WriteZeroes makes [off, off+length) read as zeroes. Blocks covered
// completely become zero blocks (metadata only, their data freed) unless
// noHole asks for allocated zeroes; partly covered blocks are written. With
// fast set, a request that would need data writes fails at once with an
// error wrapping errors.ErrUnsupported and changes nothing (NBD FAST_ZERO).
func (d *Device) WriteZeroes(off, length int64, noHole, fast bool) error {
	if err := d.writable(); err != nil {
		return err
	}
	if err := d.checkRange(off, length); err != nil {
		return err
	}
	first, last := d.wholeBlocks(off, length)
	if fast && (noHole || first<<d.shift != off || min(last<<d.shift, d.size) != off+length) {
		return fmt.Errorf("cowd: zeroing needs data writes: %w", errors.ErrUnsupported)
	}
	end := off + length
	for pos := off; pos < end; {
		b, in := pos>>d.shift, pos&(d.bs-1)
		n := min(end-pos, d.bs-in)
		if b >= first && b < last && !noHole {
			d.zeroBlock(b)
		} else if err := d.writeBlock(b, in, d.zeros[:n], !noHole); err != nil {
			return opError(opZero, pos, err)
		}
		pos += n
	}
	if d.sync {
		return d.Sync()
	}
	return nil
}

// wholeBlocks returns the blocks [first, last) that the range covers
// completely; a range that reaches the end of the device covers a partial
// last block.
func (d *Device) wholeBlocks(off, length int64) (first, last int64) {
	first = (off + d.bs - 1) >> d.shift
	end := off + length
	if end == d.size {
		last = d.hdr.Blocks
	} else {
		last = end >> d.shift
	}
	return first, max(first, last)
}

// zeroBlock turns block b into a zero block, freeing its data block once
// the change is durable.
func (d *Device) zeroBlock(b int64) {
	s := d.stripe(b)
	s.Lock()
	defer s.Unlock()
	st := d.live[b].Load()
	if st == stateZero {
		return
	}
	freed := int64(-1)
	if st&stateMapped != 0 {
		freed = int64(st >> stateShift)
	}
	d.publish(b, stateZero, freed)
}

// BlockStatus reports the run of blocks starting at off that share one
// allocation state, as NBD base:allocation sees it: zero blocks are holes
// that read as zeroes; blocks in the CoW store and blocks still in the base
// are data. The returned run is at least 1 byte and at most length bytes.
func (d *Device) BlockStatus(off, length int64) (run int64, hole, zero bool, err error) {
	if err := d.checkRange(off, length); err != nil {
		return 0, false, false, err
	}
	if length == 0 {
		return 0, false, false, fmt.Errorf("%w: empty block status request", ErrRange)
	}
	end := off + length
	b := off >> d.shift
	isZero := d.live[b].Load()&stateZero != 0
	pos := min((b+1)<<d.shift, end)
	for pos < end {
		b = pos >> d.shift
		if (d.live[b].Load()&stateZero != 0) != isZero {
			break
		}
		pos = min(pos+d.bs, end)
	}
	return pos - off, isZero, isZero, nil
}

// Cache asks the kernel to prefetch the data behind [off, off+length)
// (NBD CACHE). It is a hint and never fails for an in-range request.
func (d *Device) Cache(off, length int64) error {
	if err := d.checkRange(off, length); err != nil {
		return err
	}
	for pos, end := off, off+length; pos < end; {
		b, in := pos>>d.shift, pos&(d.bs-1)
		n := min(end-pos, d.bs-in)
		switch st := d.live[b].Load(); {
		case st&stateMapped != 0:
			prefetch(d.f, d.slotOff(st)+in, n)
		case st&stateZero == 0:
			prefetch(d.base, pos, n)
		}
		pos += n
	}
	return nil
}
