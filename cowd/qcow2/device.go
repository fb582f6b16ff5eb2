package qcow2

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
)

// DefaultCacheSize is the default L2 cache size of a Device (as QEMU's
// default on Linux: enough for 256 GiB of guest disk with 64 KiB clusters).
const DefaultCacheSize = 32 << 20

// Options configures [Open]. A nil *Options means defaults.
type Options struct {
	// Sync selects sync mode (cowd -s): a write, trim or zero completes
	// only once its data and metadata are durable.
	Sync bool
	// CacheSize bounds the L2 table cache in bytes (0: DefaultCacheSize).
	// Tables with changes not yet flushed stay cached; when they fill half
	// the cache, the writer that noticed flushes.
	CacheSize int64
	// Repair rebuilds the refcounts from the L1 and L2 tables at open even
	// if the image is not marked dirty (cowd-img check -r).
	Repair bool
}

// Device is an open qcow2 image: the guest disk it describes, over its
// backing chain. It implements io.ReaderAt, io.WriterAt and Sync plus
// Trim, WriteZeroes, BlockStatus and Cache, which is what package cowd/nbd
// serves.
//
// A Device is safe for concurrent use. Requests touching the same guest
// cluster are serialised by that cluster's lock stripe (reads share it);
// metadata (L1, the L2 cache, refcounts) is guarded by one lock that is
// never held across guest data I/O.
type Device struct {
	f       *os.File
	path    string
	hdr     Header
	g       geometry
	backing layer // nil: no backing file
	ro      bool
	sync    bool
	lazy    bool // lazy refcounts: refcount blocks are written at close only
	setDirt bool // this Device set the dirty bit and clears it at close

	stripes []stripe // nil when read-only

	// mu guards the metadata below and the cached tables' contents.
	// Readers of L2 entries hold it shared; everything else exclusively.
	mu       sync.RWMutex
	l1       []uint64
	l1Dirty  bool
	cache    l2Cache
	ref      refcounts
	fileSize int64 // as far as this Device knows; it only grows while open

	flushMu sync.Mutex // serialises flushes and guards snap
	snap    flushSnapshot
	syncer  syncer

	bufs      sync.Pool // *[]byte of one cluster
	zbufs     sync.Pool // *inflater
	zeros     []byte    // one cluster of zeroes, never written
	needFlush atomic.Bool
	failed    atomic.Pointer[error]
	closed    atomic.Bool
	crashHook func() bool // tests: stop the flush here, as a kill would
}

// stripe is one lock of the striped per-cluster locks, padded to a cache line.
type stripe struct {
	sync.RWMutex
	_ [64 - 24]byte
}

const stripeCount = 4096

// Open opens the qcow2 image at path for reading and writing, with its
// backing chain (raw or qcow2 files, opened read-only). It takes
// QEMU-compatible locks, so it fails with [ErrInUse] while QEMU or another
// cowd uses the image. It refuses ([ErrUnsupported], [ErrCorrupt],
// [ErrFormat]) before writing anything: encryption, external data files,
// unknown incompatible features, zstd compression, internal snapshots,
// persistent bitmaps, the corrupt bit, and L1 or refcount tables that do
// not validate. A dirty image (lazy refcounts, not closed cleanly) gets its
// refcounts rebuilt.
func Open(path string, opts *Options) (*Device, error) {
	if opts == nil {
		opts = &Options{}
	}
	d, err := openDevice(path, false, true, opts.CacheSize)
	if err != nil {
		return nil, err
	}
	if err := d.openBacking(0, map[string]bool{}, true); err != nil {
		d.closeFiles()
		return nil, err
	}
	d.sync = opts.Sync
	if err := d.prepareWrites(opts.Repair); err != nil {
		d.closeFiles()
		return nil, fmt.Errorf("qcow2: %s: %w", path, err)
	}
	return d, nil
}

// openDevice opens and validates an image without its backing chain.
func openDevice(path string, ro, lock bool, cacheSize int64) (_ *Device, err error) {
	flags := os.O_RDWR
	if ro {
		flags = os.O_RDONLY
	}
	f, err := os.OpenFile(path, flags, 0)
	if err != nil {
		return nil, fmt.Errorf("qcow2: open image: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
		}
	}()
	if lock {
		if err := lockImage(f, !ro); err != nil {
			return nil, err
		}
	}
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, fmt.Errorf("qcow2: size of %s: %w", path, err)
	}
	h, err := readHeader(f, size)
	if err != nil {
		return nil, fmt.Errorf("qcow2: %s: %w", path, err)
	}
	d := &Device{f: f, path: path, hdr: h, g: newGeometry(&h), ro: ro, fileSize: size}
	if err := d.checkSupport(); err != nil {
		return nil, fmt.Errorf("qcow2: %s: %w", path, err)
	}
	if err := d.loadTables(); err != nil {
		return nil, fmt.Errorf("qcow2: %s: %w", path, err)
	}
	if cacheSize <= 0 {
		cacheSize = DefaultCacheSize
	}
	d.cache.init(int64(len(d.l1)), max(int(cacheSize>>d.g.clusterBits), 8))
	cs := d.g.clusterSize
	d.bufs.New = func() any { b := make([]byte, cs); return &b }
	d.zeros = make([]byte, cs)
	if !ro {
		d.stripes = make([]stripe, stripeCount)
	}
	return d, nil
}

// readHeader reads the first cluster (or what the file has of it) and
// decodes the header.
func readHeader(f *os.File, size int64) (Header, error) {
	b := make([]byte, min(size, 1<<maxClusterBits))
	if _, err := f.ReadAt(b, 0); err != nil && !errors.Is(err, io.EOF) {
		return Header{}, fmt.Errorf("read header: %w", err)
	}
	if len(b) >= 24 {
		if cb := binary.BigEndian.Uint32(b[20:]); cb >= minClusterBits && cb < maxClusterBits && int64(len(b)) > 1<<cb {
			b = b[:1<<cb]
		}
	}
	return ParseHeader(b)
}

// checkSupport refuses what this package does not implement.
func (d *Device) checkSupport() error {
	h := &d.hdr
	if unknown := h.IncompatibleFeatures &^ knownIncompat; unknown != 0 {
		var names []string
		for bit := range uint8(64) {
			if unknown&(1<<bit) != 0 {
				name := h.FeatureName(0, bit)
				if name == "" {
					name = fmt.Sprintf("bit %d", bit)
				}
				names = append(names, name)
			}
		}
		return fmt.Errorf("%w: unknown incompatible features %v", ErrUnsupported, names)
	}
	switch {
	case h.CryptMethod != 0:
		return fmt.Errorf("%w: encrypted image (method %d)", ErrUnsupported, h.CryptMethod)
	case h.IncompatibleFeatures&IncompatDataFile != 0 || h.DataFile() != "":
		return fmt.Errorf("%w: external data file %q", ErrUnsupported, h.DataFile())
	case h.CompressionType != CompressionZlib:
		return fmt.Errorf("%w: compression type %d (only zlib)", ErrUnsupported, h.CompressionType)
	case d.ro:
		return nil
	case h.IncompatibleFeatures&IncompatCorrupt != 0:
		return fmt.Errorf("%w: the image is marked corrupt (repair it with qemu-img check -r all)", ErrCorrupt)
	case h.NbSnapshots > 0:
		return fmt.Errorf("%w: %d internal snapshots (writing needs shared-cluster copy-on-write)", ErrUnsupported, h.NbSnapshots)
	}
	if _, ok := h.extension(extBitmaps); ok && h.AutoclearFeatures&AutoclearBitmaps != 0 {
		return fmt.Errorf("%w: persistent dirty bitmaps (writing would invalidate them)", ErrUnsupported)
	}
	return nil
}

// loadTables reads and validates the L1 and refcount tables.
func (d *Device) loadTables() error {
	h, g := &d.hdr, &d.g
	l1, err := d.readTable(int64(h.L1TableOffset), int64(h.L1Size), "L1")
	if err != nil {
		return err
	}
	for i, e := range l1 {
		if err := g.checkL1Entry(e, d.fileSize); err != nil {
			return fmt.Errorf("L1 entry %d: %w", i, err)
		}
	}
	rtEntries := int64(h.RefcountTableClusters) << g.clusterBits / 8
	rt, err := d.readTable(int64(h.RefcountTableOffset), rtEntries, "refcount")
	if err != nil {
		return err
	}
	for i, e := range rt {
		if e == 0 {
			continue
		}
		if err := g.checkRefTableEntry(e, d.fileSize); err != nil {
			return fmt.Errorf("refcount table entry %d: %w", i, err)
		}
	}
	d.l1 = l1
	d.ref = refcounts{
		table:         rt,
		tableOff:      int64(h.RefcountTableOffset),
		tableClusters: int64(h.RefcountTableClusters),
		blocks:        make([]*refBlock, len(rt)),
	}
	return nil
}

// readTable reads a table of big-endian 64-bit entries; the part past the
// end of the file reads as zeroes, as in QEMU.
func (d *Device) readTable(off, n int64, name string) ([]uint64, error) {
	if off >= d.fileSize && n > 0 {
		return nil, corruptf("%s table at %#x is past the end of the file (%d bytes)", name, off, d.fileSize)
	}
	b := make([]byte, n*8)
	if _, err := d.f.ReadAt(b, off); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read %s table: %w", name, err)
	}
	t := make([]uint64, n)
	for i := range t {
		t[i] = binary.BigEndian.Uint64(b[i*8:])
	}
	return t, nil
}

// prepareWrites is the last step of opening for writing: it checks the
// metadata clusters' refcounts, then (only now writing) clears unknown
// autoclear bits, rebuilds the refcounts of a dirty image and sets the
// dirty bit for lazy refcounts.
func (d *Device) prepareWrites(repair bool) error {
	h := &d.hdr
	dirty := h.IncompatibleFeatures&IncompatDirty != 0
	if err := d.initAllocator(!dirty && !repair); err != nil {
		return err
	}
	if h.Version >= 3 && h.AutoclearFeatures != 0 {
		h.AutoclearFeatures = 0
		if err := d.writeHeaderField(88, 0); err != nil {
			return err
		}
		if err := datasync(d.f); err != nil {
			return err
		}
	}
	lazy := h.Version >= 3 && h.CompatibleFeatures&CompatLazyRefcounts != 0
	if dirty || repair {
		if err := d.rebuildRefcounts(); err != nil {
			return fmt.Errorf("%s: %w", opRepair, err)
		}
		if err := d.flushAll(); err != nil {
			return err
		}
		if dirty && !lazy {
			if err := d.setIncompat(h.IncompatibleFeatures &^ IncompatDirty); err != nil {
				return err
			}
		}
	}
	if lazy && h.IncompatibleFeatures&IncompatDirty == 0 {
		if err := d.setIncompat(h.IncompatibleFeatures | IncompatDirty); err != nil {
			return err
		}
	}
	d.lazy, d.setDirt = lazy, lazy
	return nil
}

// setIncompat writes the incompatible feature bits and makes them durable.
func (d *Device) setIncompat(v uint64) error {
	if err := d.writeHeaderField(72, v); err != nil {
		return err
	}
	if err := datasync(d.f); err != nil {
		return err
	}
	d.hdr.IncompatibleFeatures = v
	return nil
}

// writeHeaderField writes one 64-bit header field in place.
func (d *Device) writeHeaderField(off int64, v uint64) error {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	if _, err := d.f.WriteAt(b[:], off); err != nil {
		return fmt.Errorf("qcow2: write header: %w", err)
	}
	return nil
}

// Size returns the virtual size of the device in bytes.
func (d *Device) Size() int64 { return d.g.size }

// ClusterSize returns the cluster size in bytes.
func (d *Device) ClusterSize() int { return int(d.g.clusterSize) }

// Header returns the image header as read at open (feature bits as
// currently on disk).
func (d *Device) Header() Header {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.hdr
}

// Backing describes the backing chain, top first ("qcow2 /x/base.qcow2",
// "raw /x/base.img"); empty without a backing file.
func (d *Device) Backing() []string {
	var out []string
	for l := d.backing; l != nil; {
		out = append(out, l.describe())
		next, ok := l.(*Device)
		if !ok {
			break
		}
		l = next.backing
	}
	return out
}

// Close makes all metadata durable, clears the dirty bit it set (lazy
// refcounts) and releases the image and its backing chain. The caller must
// have stopped all I/O.
func (d *Device) Close() error {
	if d.closed.Swap(true) {
		return ErrClosed
	}
	var err error
	if !d.ro {
		if err = d.flushAll(); err == nil && d.setDirt {
			err = d.setIncompat(d.hdr.IncompatibleFeatures &^ IncompatDirty)
		}
	}
	return errors.Join(err, d.closeFiles())
}

func (d *Device) closeFiles() error {
	var err error
	if d.backing != nil {
		err = d.backing.close()
	}
	return errors.Join(err, d.f.Close())
}

// fail records the first error that makes durability or the metadata
// uncertain; the Device accepts no more writes.
func (d *Device) fail(err error) error {
	d.failed.CompareAndSwap(nil, &err)
	return fmt.Errorf("%w: %w", ErrFailed, err)
}

// writable returns the error that forbids writes, if any.
func (d *Device) writable() error {
	switch {
	case d.closed.Load():
		return ErrClosed
	case d.ro:
		return fmt.Errorf("qcow2: %s is open read-only: %w", d.path, os.ErrPermission)
	}
	if p := d.failed.Load(); p != nil {
		return fmt.Errorf("%w: %w", ErrFailed, *p)
	}
	return nil
}

func (d *Device) stripe(c int64) *stripe { return &d.stripes[c&(stripeCount-1)] }

func (d *Device) getBuf() *[]byte  { return d.bufs.Get().(*[]byte) }
func (d *Device) putBuf(b *[]byte) { d.bufs.Put(b) }

func (d *Device) checkRange(off, length int64) error {
	if off < 0 || length < 0 || off > d.g.size || length > d.g.size-off {
		return fmt.Errorf("%w: %d bytes at %d (size %d)", ErrRange, length, off, d.g.size)
	}
	return nil
}

// SubclusterSize returns the unit of copy-on-write: the subcluster size
// with extended L2 entries, else the cluster size. Aligned writes of
// whole units copy nothing from the backing chain.
func (d *Device) SubclusterSize() int { return int(d.g.scSize()) }
