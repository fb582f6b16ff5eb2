package qcow2

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
)

// commitChunk is the most bytes Commit copies per request.
const commitChunk = 1 << 20

// Commit writes everything the image at path holds (data, compressed
// and zero clusters) into its backing file, which may be raw or qcow2,
// makes the backing file durable, and then empties the image so that
// every cluster reads from the backing file again (qemu-img commit).
// An interrupted commit can simply be run again: the image keeps its
// clusters until the backing file holds them durably. progress, if not
// nil, is called with bytes done and bytes to do.
func Commit(ctx context.Context, path string, progress func(done, total int64)) (err error) {
	d, err := openDevice(path, false, true, DefaultCacheSize)
	if err != nil {
		return err
	}
	if err := d.prepareWrites(false); err != nil {
		d.closeFiles()
		return fmt.Errorf("qcow2: %s: %w", path, err)
	}
	defer func() { err = errors.Join(err, d.Close()) }()
	if d.hdr.BackingFile == "" {
		return fmt.Errorf("qcow2: %s: %s has no backing file", opCommit, path)
	}
	target, err := openCommitTarget(BackingPath(path, d.hdr.BackingFile), d.hdr.BackingFormat, d.g.size)
	if err != nil {
		return fmt.Errorf("qcow2: %s: %w", opCommit, err)
	}
	defer func() { err = errors.Join(err, target.close()) }()
	exts, err := d.extents(ctx)
	if err != nil {
		return err
	}
	var total, done int64
	for _, e := range exts {
		if e.State != ExtentBacking {
			total += e.Length
		}
	}
	if progress != nil {
		progress(0, total)
	}
	buf := make([]byte, commitChunk)
	for _, e := range exts {
		if e.State == ExtentBacking {
			continue
		}
		for off := e.Start; off < e.Start+e.Length; {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("qcow2: %s interrupted (run it again to finish): %w", opCommit, err)
			}
			n := min(e.Start+e.Length-off, commitChunk)
			if e.State == ExtentZero {
				err = target.zero(off, n)
			} else if _, err = d.ReadAt(buf[:n], off); err == nil {
				err = target.write(buf[:n], off)
			}
			if err != nil {
				return fmt.Errorf("qcow2: %s at %d: %w", opCommit, off, err)
			}
			off += n
			done += n
			if progress != nil {
				progress(done, total)
			}
		}
	}
	if err := target.sync(); err != nil {
		return fmt.Errorf("qcow2: %s: %w", opCommit, err)
	}
	return d.makeEmpty(ctx)
}

// commitTarget is the backing file Commit writes into.
type commitTarget struct {
	raw  *os.File
	qcow *Device
}

func openCommitTarget(path, format string, size int64) (*commitTarget, error) {
	if format == "" {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		format, err = ProbeFormat(f)
		f.Close()
		if err != nil {
			return nil, err
		}
	}
	switch format {
	case "raw":
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			return nil, err
		}
		if err := lockImage(f, true); err != nil {
			f.Close()
			return nil, err
		}
		return &commitTarget{raw: f}, nil
	case "qcow2":
		q, err := Open(path, nil)
		if err != nil {
			return nil, err
		}
		if q.Size() < size {
			q.Close()
			return nil, fmt.Errorf("backing file %s (%d bytes) is smaller than the image (%d bytes)", path, q.Size(), size)
		}
		return &commitTarget{qcow: q}, nil
	}
	return nil, fmt.Errorf("%w: backing format %q", ErrUnsupported, format)
}

func (t *commitTarget) write(p []byte, off int64) error {
	if t.qcow != nil {
		_, err := t.qcow.WriteAt(p, off)
		return err
	}
	_, err := t.raw.WriteAt(p, off)
	return err
}

func (t *commitTarget) zero(off, n int64) error {
	if t.qcow != nil {
		return t.qcow.WriteZeroes(off, n, false, false)
	}
	var zeros [64 << 10]byte
	for n > 0 {
		k := min(n, int64(len(zeros)))
		if _, err := t.raw.WriteAt(zeros[:k], off); err != nil {
			return err
		}
		off, n = off+k, n-k
	}
	return nil
}

func (t *commitTarget) sync() error {
	if t.qcow != nil {
		return t.qcow.Sync()
	}
	return datasync(t.raw)
}

func (t *commitTarget) close() error {
	if t.qcow != nil {
		return t.qcow.Close()
	}
	return t.raw.Close()
}

// MakeEmpty drops every cluster of the image at path, so that all of it
// reads from the backing file (or as zeroes without one) again (cowd -I).
func MakeEmpty(ctx context.Context, path string) (err error) {
	d, err := openDevice(path, false, true, DefaultCacheSize)
	if err != nil {
		return err
	}
	if err := d.prepareWrites(false); err != nil {
		d.closeFiles()
		return fmt.Errorf("qcow2: %s: %w", path, err)
	}
	defer func() { err = errors.Join(err, d.Close()) }()
	return d.makeEmpty(ctx)
}

// makeEmpty unallocates every cluster, flushes, and truncates the file
// after the last cluster still in use.
func (d *Device) makeEmpty(ctx context.Context) error {
	var cs []int64
	if err := d.forEachEntry(ctx, func(c int64, _, _ uint64) { cs = append(cs, c) }); err != nil {
		return err
	}
	for _, c := range cs {
		e, _, err := d.entry(c)
		if err != nil {
			return err
		}
		var old byteRange
		switch host := int64(e & offsetMask); {
		case e&flagCompressed != 0:
			old.off, old.n = d.g.compressedRange(e)
		case host != 0:
			old = byteRange{host, d.g.clusterSize}
		}
		if err := d.publish(c, 0, 0, old, -1); err != nil {
			return err
		}
	}
	if err := d.flushAll(); err != nil {
		return err
	}
	return d.truncateFree()
}

// truncateFree cuts the file after the last cluster with a refcount.
func (d *Device) truncateFree() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	r, g := &d.ref, &d.g
	end := int64(0)
	for c := r.allocEnd - 1; c >= 0; c-- {
		v, err := d.refcount(c)
		if err != nil {
			return err
		}
		if v != 0 {
			end = c + 1
			break
		}
	}
	if end<<g.clusterBits >= d.fileSize {
		return nil
	}
	if err := d.f.Truncate(end << g.clusterBits); err != nil {
		return fmt.Errorf("qcow2: truncate free space: %w", err)
	}
	d.fileSize = end << g.clusterBits
	r.allocEnd = end
	r.hint = min(r.hint, end)
	return datasync(d.f)
}

// Reload flushes, then drops every cached table and reads the header,
// L1 and refcount tables back from disk (cowd's SIGHUP). The geometry must
// not have changed.
func (d *Device) Reload() error {
	if err := d.writable(); err != nil {
		return err
	}
	for i := range d.stripes {
		d.stripes[i].Lock()
	}
	defer func() {
		for i := range d.stripes {
			d.stripes[i].Unlock()
		}
	}()
	if err := d.flushAll(); err != nil {
		return err
	}
	d.flushMu.Lock()
	defer d.flushMu.Unlock()
	size, err := d.f.Seek(0, io.SeekEnd)
	if err != nil {
		return fmt.Errorf("qcow2: reload: %w", err)
	}
	h, err := readHeader(d.f, size)
	if err != nil {
		return fmt.Errorf("qcow2: reload: %w", err)
	}
	if newGeometry(&h) != d.g || h.L1TableOffset != d.hdr.L1TableOffset || h.L1Size != d.hdr.L1Size {
		return fmt.Errorf("%w: reload: the image geometry changed on disk", ErrCorrupt)
	}
	n := &Device{f: d.f, path: d.path, hdr: h, g: d.g, fileSize: size}
	if err := n.loadTables(); err != nil {
		return fmt.Errorf("qcow2: reload: %w", err)
	}
	if err := n.initAllocator(true); err != nil {
		return fmt.Errorf("qcow2: reload: %w", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.hdr, d.fileSize, d.l1, d.ref = h, size, n.l1, n.ref
	d.cache.init(int64(len(d.l1)), d.cache.max)
	return nil
}
