package qcow2

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
)

// syncer runs flushes with group commit: a caller needs a flush that
// starts after it arrived; all callers waiting for the same flush share it.
type syncer struct {
	mu      sync.Mutex // guards the fields below
	cond    *sync.Cond
	running bool
	started uint64 // flushes started
	done    uint64 // number of the last flush completed
	err     error  // its result
}

func (s *syncer) do(flush func() error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cond == nil {
		s.cond = sync.NewCond(&s.mu)
	}
	want := s.started + 1
	for s.done < want {
		if s.running {
			s.cond.Wait()
			continue
		}
		s.running = true
		s.started++
		n := s.started
		s.mu.Unlock()
		err := flush()
		s.mu.Lock()
		s.running, s.done, s.err = false, n, err
		s.cond.Broadcast()
	}
	return s.err
}

// flushSnapshot is what one flush writes, copied under the metadata lock.
// Its buffers are reused from flush to flush.
type flushSnapshot struct {
	arena  []byte
	l2     []l2Snap
	blocks []int64 // host offsets of the refcount blocks, in arena order after the L2 tables
	free   []byteRange
	spare  []byteRange

	table         bool // the refcount table is in the arena after the blocks
	tableOff      int64
	tableClusters int64
	tableMoved    bool
	l1            bool // the L1 table is in the arena last
}

type l2Snap struct {
	t   *l2Table
	gen uint64
	off int64
}

// Sync makes every write, trim and zero that completed before the call
// durable, data and metadata (NBD FLUSH; FUA). Concurrent calls share
// flushes. An error is sticky: see [ErrFailed].
func (d *Device) Sync() error {
	if err := d.writable(); err != nil {
		return err
	}
	if err := d.syncer.do(d.flushNormal); err != nil {
		return fmt.Errorf("qcow2: %s: %w", opFlush, err)
	}
	return nil
}

func (d *Device) flushNormal() error  { return d.flush(false) }
func (d *Device) flushClosing() error { return d.flush(true) }

// flushAll flushes until nothing is left dirty: freeing clusters after a
// flush dirties refcount blocks again. Refcount blocks are written even
// with lazy refcounts.
func (d *Device) flushAll() error {
	for range 8 {
		if err := d.syncer.do(d.flushClosing); err != nil {
			return fmt.Errorf("qcow2: %s: %w", opFlush, err)
		}
		d.mu.Lock()
		clean := len(d.cache.dirty) == 0 && len(d.ref.dirtyBlocks) == 0 && !d.ref.tableDirty &&
			!d.l1Dirty && len(d.ref.pending) == 0
		d.mu.Unlock()
		if clean {
			return nil
		}
	}
	return nil
}

// flush is one metadata commit. Every change is published in memory only
// after the data it points to was written, so a snapshot taken under the
// lock is consistent; the writes then go in an order that a crash (process
// or power) can only turn into leaked clusters:
//
//  1. write changed refcount blocks (skipped with lazy refcounts);
//  2. fdatasync: guest data and refcounts are durable;
//  3. write the refcount table if it changed, fdatasync; if it moved,
//     point the header at it, fdatasync;
//  4. write changed L2 tables; if the L1 table changed (new L2 tables),
//     fdatasync, then write it;
//  5. fdatasync;
//  6. drop the references that the durable map no longer holds.
//
// Every cluster a table can point to exists in the file by then: data
// clusters were written, metadata and preallocated zero clusters reserved
// when allocated.
func (d *Device) flush(closing bool) error {
	if p := d.failed.Load(); p != nil {
		return fmt.Errorf("%w: %w", ErrFailed, *p)
	}
	d.flushMu.Lock()
	defer d.flushMu.Unlock()
	s := &d.snap
	cs := d.g.clusterSize
	d.takeSnapshot(s, !d.lazy || closing)

	at := int64(len(s.l2)) * cs
	for _, off := range s.blocks {
		if err := d.flushWrite(s.arena[at:at+cs], off, "refcount block"); err != nil {
			return err
		}
		at += cs
	}
	if err := d.flushSync(); err != nil {
		return err
	}
	if s.table {
		n := s.tableClusters * cs
		if err := d.flushWrite(s.arena[at:at+n], s.tableOff, "refcount table"); err != nil {
			return err
		}
		at += n
		if err := d.flushSync(); err != nil {
			return err
		}
		if s.tableMoved {
			var b [12]byte
			binary.BigEndian.PutUint64(b[0:], uint64(s.tableOff))
			binary.BigEndian.PutUint32(b[8:], uint32(s.tableClusters))
			if err := d.flushWrite(b[:], 48, "header"); err != nil {
				return err
			}
			if err := d.flushSync(); err != nil {
				return err
			}
			d.mu.Lock()
			d.hdr.RefcountTableOffset, d.hdr.RefcountTableClusters = uint64(s.tableOff), uint32(s.tableClusters)
			d.mu.Unlock()
		}
	}
	if len(s.l2) > 0 || s.l1 {
		for i, x := range s.l2 {
			if err := d.flushWrite(s.arena[int64(i)*cs:int64(i+1)*cs], x.off, "L2 table"); err != nil {
				return err
			}
		}
		if s.l1 {
			if len(s.l2) > 0 {
				if err := d.flushSync(); err != nil {
					return err
				}
			}
			if err := d.flushWrite(s.arena[at:], int64(d.hdr.L1TableOffset), "L1 table"); err != nil {
				return err
			}
		}
		if err := d.flushSync(); err != nil {
			return err
		}
	}
	if err := d.crashPoint(); err != nil {
		return d.fail(err)
	}
	return d.afterFlush(s)
}

// takeSnapshot copies what the flush writes and clears the dirty state
// (L2 tables stay dirty until written: a clean table may be evicted and
// read back).
func (d *Device) takeSnapshot(s *flushSnapshot, writeRefs bool) {
	s.arena, s.l2, s.blocks = s.arena[:0], s.l2[:0], s.blocks[:0]
	s.table, s.tableMoved, s.l1 = false, false, false
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, t := range d.cache.dirty {
		s.l2 = append(s.l2, l2Snap{t: t, gen: t.gen, off: t.off})
		s.arena = append(s.arena, t.buf...)
	}
	r := &d.ref
	if writeRefs {
		for _, b := range r.dirtyBlocks {
			s.blocks = append(s.blocks, b.off)
			s.arena = append(s.arena, b.buf...)
			b.dirty = false
		}
		r.dirtyBlocks = r.dirtyBlocks[:0]
		if r.tableDirty {
			s.table, s.tableOff, s.tableClusters, s.tableMoved = true, r.tableOff, r.tableClusters, r.tableMoved
			for _, e := range r.table {
				s.arena = binary.BigEndian.AppendUint64(s.arena, e)
			}
			r.tableDirty, r.tableMoved = false, false
		}
	}
	if d.l1Dirty {
		s.l1 = true
		for _, e := range d.l1 {
			s.arena = binary.BigEndian.AppendUint64(s.arena, e)
		}
		d.l1Dirty = false
	}
	s.free, r.pending = r.pending, s.spare[:0]
}

// afterFlush marks the written tables clean and drops the references the
// durable map no longer holds.
func (d *Device) afterFlush(s *flushSnapshot) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, x := range s.l2 {
		if x.t.gen == x.gen {
			x.t.dirty = false
		}
	}
	keep := d.cache.dirty[:0]
	for _, t := range d.cache.dirty {
		if t.dirty {
			keep = append(keep, t)
		}
	}
	clear(d.cache.dirty[len(keep):])
	d.cache.dirty = keep
	for _, br := range s.free {
		if err := d.decRef(br); err != nil {
			return d.fail(err)
		}
	}
	s.spare, s.free = s.free[:0], nil
	if len(d.cache.dirty) <= d.cache.max/2 {
		d.needFlush.Store(false)
	}
	return nil
}

// flushWrite writes metadata during a flush; an error fails the Device.
func (d *Device) flushWrite(p []byte, off int64, what string) error {
	if err := d.crashPoint(); err != nil {
		return d.fail(err)
	}
	if _, err := d.f.WriteAt(p, off); err != nil {
		return d.fail(fmt.Errorf("write %s: %w", what, err))
	}
	return nil
}

// flushSync is fdatasync during a flush; an error fails the Device.
func (d *Device) flushSync() error {
	if err := d.crashPoint(); err != nil {
		return d.fail(err)
	}
	if err := datasync(d.f); err != nil {
		return d.fail(err)
	}
	return nil
}

// errCrashed is what a test's crash hook makes a flush return.
var errCrashed = errors.New("qcow2: simulated crash")

// crashPoint lets tests stop a flush before any of its steps, leaving the
// file as a process killed at that moment would.
func (d *Device) crashPoint() error {
	if d.crashHook != nil && d.crashHook() {
		return errCrashed
	}
	return nil
}
