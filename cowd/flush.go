package cowd

import (
	"fmt"
	"hash/crc32"
	"slices"
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
	// A later flush than the one wanted also covers the caller.
	return s.err
}

// Sync makes every write, trim and zero that completed before the call
// durable, data and metadata (NBD FLUSH; FUA). Concurrent calls share
// flushes. An error is sticky: see [ErrFailed].
func (d *Device) Sync() error {
	if err := d.writable(); err != nil {
		return err
	}
	if err := d.syncer.do(d.flush); err != nil {
		return fmt.Errorf("cowd: %s: %w", opFlush, err)
	}
	return nil
}

// flush is one metadata commit:
//
//  1. snapshot the dirty blocks' states and the slots freed so far;
//  2. fdatasync the image, so all data those states point to is durable;
//  3. write the changed map pages as one journal transaction and
//     fdatasync it: from here a crash replays it;
//  4. write the pages in place (made durable by the next flush's step 2,
//     before the journal is reused);
//  5. release the freed slots for reuse.
func (d *Device) flush() error {
	if p := d.failed.Load(); p != nil {
		return fmt.Errorf("%w: %w", ErrFailed, *p)
	}
	d.flushMu.Lock()
	defer d.flushMu.Unlock()

	m := &d.meta
	m.mu.Lock()
	dirty, freed := m.dirty, m.pendingFree
	m.dirty, m.pendingFree = d.spareDirty[:0], d.spareFreed[:0]
	for _, b := range dirty {
		m.dirtyBits[b/64] &^= 1 << (b % 64)
	}
	m.mu.Unlock()

	pages := d.pageList[:0]
	for _, b := range dirty {
		st := d.live[b].Load()
		if d.persisted[b] == st {
			continue
		}
		d.persisted[b] = st
		p := b / recordsPerPage
		if w, bit := p/64, uint64(1)<<(p%64); d.pageBits[w]&bit == 0 {
			d.pageBits[w] |= bit
			pages = append(pages, p)
		}
	}
	for _, p := range pages {
		d.pageBits[p/64] &^= 1 << (p % 64)
	}
	d.pageList = pages

	if err := datasync(d.f); err != nil {
		return d.fail(err)
	}
	if len(pages) > 0 {
		slices.Sort(pages)
		if err := d.commitPages(pages); err != nil {
			return d.fail(err)
		}
	}
	for _, s := range freed {
		punchHole(d.f, d.hdr.DataOffset+s*d.bs, d.bs)
	}
	m.mu.Lock()
	m.free = append(m.free, freed...)
	m.mu.Unlock()
	d.spareDirty, d.spareFreed = dirty, freed
	return nil
}

// commitPages writes map pages through the journal, in transactions of at
// most the journal's capacity.
func (d *Device) commitPages(pages []int64) error {
	h := &d.hdr
	capacity := journalCapacity(h)
	if d.txn == nil {
		d.txn = make([]byte, (1+capacity)*pageSize)
	}
	for len(pages) > 0 {
		chunk := pages[:min(len(pages), capacity)]
		pages = pages[len(chunk):]
		images := d.txn[pageSize : (1+len(chunk))*pageSize]
		j := journalHeader{UUID: h.UUID, Seq: d.jseq, State: journalOpen, Pages: make([]uint32, len(chunk))}
		for i, p := range chunk {
			encodePage(images[i*pageSize:(i+1)*pageSize], h, p, d.persisted)
			j.Pages[i] = uint32(p)
		}
		j.DataCRC = crc32.Checksum(images, castagnoli)
		if err := j.marshal(d.txn[:pageSize]); err != nil {
			return err
		}
		d.jseq++
		if _, err := d.f.WriteAt(d.txn[:(1+len(chunk))*pageSize], h.JournalOffset); err != nil {
			return fmt.Errorf("cowd: write journal: %w", err)
		}
		if err := datasync(d.f); err != nil {
			return err
		}
		if err := d.writePages(chunk, images); err != nil {
			return err
		}
		if len(pages) > 0 {
			// The next transaction overwrites the journal: these pages
			// must be durable in place first.
			if err := datasync(d.f); err != nil {
				return err
			}
		}
	}
	return nil
}

// writePages writes page images in place, one write per run of
// consecutive pages.
func (d *Device) writePages(pages []int64, images []byte) error {
	for i := 0; i < len(pages); {
		j := i + 1
		for j < len(pages) && pages[j] == pages[j-1]+1 {
			j++
		}
		if _, err := d.f.WriteAt(images[i*pageSize:j*pageSize], d.hdr.MapOffset+pages[i]*pageSize); err != nil {
			return fmt.Errorf("cowd: write map page %d: %w", pages[i], err)
		}
		i = j
	}
	return nil
}

// ReloadStats reports what [Device.Reload] found.
type ReloadStats struct {
	Blocks, Mapped, Zero int64
	Changed              int64 // blocks whose on-disk state differed from memory
}

// Reload drops every cached mapping and reads the map back from disk
// (cowd's SIGHUP). It first flushes, so nothing acknowledged is lost; a
// non-zero Changed afterwards means something else modified the image. If
// the map on disk is invalid, the in-memory state is kept and the error
// returned.
func (d *Device) Reload() (ReloadStats, error) {
	if err := d.writable(); err != nil {
		return ReloadStats{}, err
	}
	for i := range d.stripes {
		d.stripes[i].Lock()
	}
	defer func() {
		for i := range d.stripes {
			d.stripes[i].Unlock()
		}
	}()
	if err := d.syncer.do(d.flush); err != nil {
		return ReloadStats{}, fmt.Errorf("cowd: %s: %w", opReload, err)
	}
	d.flushMu.Lock()
	defer d.flushMu.Unlock()
	old := make([]uint64, len(d.live))
	for i := range d.live {
		old[i] = d.live[i].Load()
	}
	if err := d.load(false); err != nil {
		return ReloadStats{}, fmt.Errorf("cowd: %s: %w", opReload, err)
	}
	st := ReloadStats{Blocks: d.hdr.Blocks}
	for i := range d.live {
		v := d.live[i].Load()
		switch {
		case v&stateMapped != 0:
			st.Mapped++
		case v&stateZero != 0:
			st.Zero++
		}
		if v != old[i] {
			st.Changed++
		}
	}
	return st, nil
}
