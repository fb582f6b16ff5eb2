package cowd

import (
	"errors"
	"fmt"
	"math/bits"
	"os"
	"sync"
	"sync/atomic"
)

// Options configures [Open]. A nil *Options means defaults.
type Options struct {
	// Sync selects sync mode (cowd -s): a write, trim or zero completes
	// only once its data and mapping metadata are durable. Otherwise
	// metadata becomes durable at Sync (NBD FLUSH, FUA) and at Close.
	Sync bool
	// BlockSize, if not 0, must equal the image's block size (cowd -b).
	BlockSize int
}

// Device is an open dscow image: the copy-on-write view of its base.
//
// A Device is safe for concurrent use. Requests touching the same block are
// serialised by that block's lock stripe (reads share it); requests to
// different blocks run in parallel.
type Device struct {
	f, base *os.File
	hdr     Header
	bs      int64
	shift   uint
	size    int64
	sync    bool

	// live holds each block's current state. A block's entry changes only
	// with its stripe locked for writing; readers of the map (flush,
	// BlockStatus) load it atomically.
	live    []atomic.Uint64
	stripes []stripe

	meta meta

	// flushMu serialises flushes and guards persisted, pageBits, pageList,
	// txn, jseq and the spare slices.
	flushMu    sync.Mutex
	persisted  []uint64 // state of each block as last written to the journal
	pageBits   []uint64
	pageList   []int64
	txn        []byte
	jseq       uint64
	spareDirty []int64
	spareFreed []int64

	syncer   syncer
	bufs     sync.Pool // *[]byte of bs bytes
	zeros    []byte    // bs zero bytes, never written
	failed   atomic.Pointer[error]
	closed   atomic.Bool
	warnings []string
}

// meta is the allocation and dirty-tracking state shared by all writers.
type meta struct {
	mu          sync.Mutex // guards the fields below; held briefly, never across I/O
	dirty       []int64    // blocks whose state changed since the last flush snapshot
	dirtyBits   []uint64   // membership bitmap of dirty
	pendingFree []int64    // slots freed since the last snapshot; reusable after its flush
	free        []int64    // reusable slots
	nslots      int64      // slots [0, nslots) exist in the data area (some free)
}

// stripe is one lock of the striped per-block locks, padded to a cache line.
type stripe struct {
	sync.RWMutex
	_ [64 - 24]byte
}

const stripeCount = 4096

// Open opens the dscow image at path for serving. It takes an exclusive
// lock on the image, checks the base against the recorded identity
// (failing with [ErrBaseChanged] or [ErrBaseShort]), replays a committed
// journal transaction, validates the whole map (failing with [ErrCorrupt])
// and drops data blocks left unreferenced by a crash.
func Open(path string, opts *Options) (_ *Device, err error) {
	if opts == nil {
		opts = &Options{}
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("cowd: open image: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
		}
	}()
	if err := lockFile(f, true); err != nil {
		return nil, err
	}
	h, err := readHeader(f)
	if err != nil {
		return nil, err
	}
	if h.Features&FeatureCommitting != 0 {
		return nil, fmt.Errorf("cowd: %s: %w", path, ErrCommitting)
	}
	if opts.BlockSize != 0 && opts.BlockSize != int(h.BlockSize) {
		return nil, fmt.Errorf("cowd: block size %d KiB requested but %s has %d KiB blocks (use -I to re-initialise)",
			opts.BlockSize>>10, path, h.BlockSize>>10)
	}
	base, err := os.Open(h.Base.Path)
	if err != nil {
		return nil, fmt.Errorf("cowd: open base: %w", err)
	}
	defer func() {
		if err != nil {
			base.Close()
		}
	}()
	warnings, err := verifyBase(base, h.Base)
	if err != nil {
		return nil, fmt.Errorf("cowd: refusing %s: %w", path, err)
	}
	d := &Device{f: f, base: base, hdr: h, bs: int64(h.BlockSize), size: h.Size, sync: opts.Sync, warnings: warnings}
	d.shift = uint(bits.TrailingZeros32(h.BlockSize))
	if err := d.load(true); err != nil {
		return nil, err
	}
	if err := writeJournalHeader(f, &h, d.jseq, journalOpen); err != nil {
		return nil, err
	}
	if err := datasync(f); err != nil {
		return nil, err
	}
	d.stripes = make([]stripe, stripeCount)
	d.bufs.New = func() any { b := make([]byte, d.bs); return &b }
	d.zeros = make([]byte, d.bs)
	return d, nil
}

// load replays the journal, reads and validates the map, trims the data
// area after the last referenced block and (re)builds the in-memory state.
// The caller excludes all I/O.
func (d *Device) load(replay bool) error {
	h := &d.hdr
	j, images, js, err := readJournal(d.f, h)
	if err != nil {
		return err
	}
	if images != nil && replay {
		if err := replayJournal(d.f, h, &j, images); err != nil {
			return err
		}
	}
	states, errs, err := loadMap(d.f, h, &j, images)
	if err != nil {
		return err
	}
	fi, err := d.f.Stat()
	if err != nil {
		return fmt.Errorf("cowd: stat image: %w", err)
	}
	u, serrs := scanSlots(states, h, fi.Size())
	if errs = append(errs, serrs...); len(errs) > 0 {
		return fmt.Errorf("%w: %d bad map entries, first: %w (run cowd-img check)", ErrCorrupt, len(errs), errs[0])
	}
	end := h.DataOffset + (u.highest+1)*d.bs
	if fi.Size() != end {
		if err := d.f.Truncate(end); err != nil {
			return fmt.Errorf("cowd: drop unreferenced data blocks: %w", err)
		}
	}
	d.jseq = max(d.jseq, js.Seq+1)
	if d.live == nil {
		d.live = make([]atomic.Uint64, h.Blocks)
	}
	for b, st := range states {
		d.live[b].Store(st)
	}
	d.persisted = states
	d.pageBits = make([]uint64, (mapPages(h.Blocks)+63)/64)
	d.meta.mu.Lock()
	defer d.meta.mu.Unlock()
	d.meta.dirty = d.meta.dirty[:0]
	d.meta.dirtyBits = make([]uint64, (h.Blocks+63)/64)
	d.meta.pendingFree = d.meta.pendingFree[:0]
	d.meta.free = d.meta.free[:0]
	d.meta.nslots = u.highest + 1
	for s := range u.highest + 1 {
		if u.used[s/64]&(1<<(s%64)) == 0 {
			d.meta.free = append(d.meta.free, s)
		}
	}
	return nil
}

// Size returns the virtual size of the device in bytes.
func (d *Device) Size() int64 { return d.size }

// BlockSize returns the CoW block size in bytes.
func (d *Device) BlockSize() int { return int(d.bs) }

// Header returns the image header.
func (d *Device) Header() Header { return d.hdr }

// Warnings returns non-fatal findings of Open, such as a base whose
// modification time changed while its content did not.
func (d *Device) Warnings() []string { return d.warnings }

// Stats counts the blocks of the device by state.
type Stats struct {
	Blocks, Mapped, Zero, Base int64
	DataBlocks                 int64 // slots in the data area, used or free
}

// Stats returns a snapshot of the block counts.
func (d *Device) Stats() Stats {
	s := Stats{Blocks: d.hdr.Blocks}
	for i := range d.live {
		switch st := d.live[i].Load(); {
		case st&stateMapped != 0:
			s.Mapped++
		case st&stateZero != 0:
			s.Zero++
		default:
			s.Base++
		}
	}
	d.meta.mu.Lock()
	s.DataBlocks = d.meta.nslots
	d.meta.mu.Unlock()
	return s
}

// Close makes all metadata durable, drops free space at the end of the
// data area, marks the image clean and releases it. The caller must have
// stopped all I/O.
func (d *Device) Close() error {
	if d.closed.Swap(true) {
		return ErrClosed
	}
	err := d.flush()
	if err == nil {
		err = d.closeClean()
	}
	return errors.Join(err, d.base.Close(), d.f.Close())
}

func (d *Device) closeClean() error {
	d.flushMu.Lock()
	defer d.flushMu.Unlock()
	var highest int64 = -1
	for i := range d.persisted {
		if st := d.persisted[i]; st&stateMapped != 0 {
			highest = max(highest, int64(st>>stateShift))
		}
	}
	if err := d.f.Truncate(d.hdr.DataOffset + (highest+1)*d.bs); err != nil {
		return fmt.Errorf("cowd: close: %w", err)
	}
	if err := datasync(d.f); err != nil {
		return err
	}
	if err := writeJournalHeader(d.f, &d.hdr, d.jseq, journalClean); err != nil {
		return err
	}
	return datasync(d.f)
}

// fail records the first error that makes durability uncertain.
func (d *Device) fail(err error) error {
	d.failed.CompareAndSwap(nil, &err)
	return fmt.Errorf("%w: %w", ErrFailed, err)
}

// writable returns the error that forbids writes, if any.
func (d *Device) writable() error {
	if d.closed.Load() {
		return ErrClosed
	}
	if p := d.failed.Load(); p != nil {
		return fmt.Errorf("%w: %w", ErrFailed, *p)
	}
	return nil
}

func (d *Device) stripe(b int64) *stripe { return &d.stripes[b&(stripeCount-1)] }

func (d *Device) slotOff(st uint64) int64 { return d.hdr.DataOffset + int64(st>>stateShift)*d.bs }

func (d *Device) getBuf() *[]byte { return d.bufs.Get().(*[]byte) }

func (d *Device) putBuf(b *[]byte) { d.bufs.Put(b) }
