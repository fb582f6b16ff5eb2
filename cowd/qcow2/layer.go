package qcow2

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// maxChainDepth bounds backing chains (QEMU has no fixed limit; a chain
// this deep is a loop or a mistake).
const maxChainDepth = 64

// layer is a read-only image of a backing chain.
type layer interface {
	// readAt fills p from guest offset off; bytes past the layer's
	// virtual size read as zeroes.
	readAt(p []byte, off int64) error
	// zeroRun reports how many bytes from off (at least 1, at most n)
	// share one state, and whether that state reads as zeroes.
	zeroRun(off, n int64) (run int64, zero bool, err error)
	prefetch(off, n int64)
	close() error
	describe() string
}

// rawLayer is a raw backing file or block device.
type rawLayer struct {
	f    *os.File
	size int64
}

func (r *rawLayer) readAt(p []byte, off int64) error {
	n := 0
	if off < r.size {
		var err error
		n, err = r.f.ReadAt(p[:min(int64(len(p)), r.size-off)], off)
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read backing file %s: %w", r.f.Name(), err)
		}
	}
	clear(p[n:])
	return nil
}

func (r *rawLayer) zeroRun(off, n int64) (int64, bool, error) {
	if off >= r.size {
		return n, true, nil
	}
	return min(n, r.size-off), false, nil
}

func (r *rawLayer) prefetch(off, n int64) {
	if off < r.size {
		prefetch(r.f, off, min(n, r.size-off))
	}
}

func (r *rawLayer) close() error     { return r.f.Close() }
func (r *rawLayer) describe() string { return "raw " + r.f.Name() }

// BackingPath resolves a backing file name as QEMU does: a relative name
// is relative to the directory of the image that names it.
func BackingPath(image, name string) string {
	if name == "" || filepath.IsAbs(name) {
		return name
	}
	return filepath.Join(filepath.Dir(image), name)
}

// ProbeFormat reads the start of a file and returns "qcow2" or "raw", the
// way QEMU probes a backing file without a recorded format.
func ProbeFormat(f io.ReaderAt) (string, error) {
	var b [4]byte
	if _, err := f.ReadAt(b[:], 0); err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	if binary.BigEndian.Uint32(b[:]) == Magic {
		return "qcow2", nil
	}
	return "raw", nil
}

// openBacking opens the backing chain of d, read-only. seen holds the
// absolute paths of the images above, to refuse loops.
func (d *Device) openBacking(depth int, seen map[string]bool, lock bool) error {
	name := d.hdr.BackingFile
	if name == "" {
		return nil
	}
	if depth >= maxChainDepth {
		return fmt.Errorf("%w: backing chain deeper than %d", ErrUnsupported, maxChainDepth)
	}
	abs, err := filepath.Abs(d.path)
	if err == nil {
		seen[abs] = true
	}
	path := BackingPath(d.path, name)
	if abs, err := filepath.Abs(path); err == nil && seen[abs] {
		return fmt.Errorf("%w: backing chain loops back to %s", ErrFormat, path)
	}
	l, err := openLayer(path, d.hdr.BackingFormat, depth+1, seen, lock)
	if err != nil {
		return fmt.Errorf("qcow2: backing file of %s: %w", d.path, err)
	}
	d.backing = l
	return nil
}

// openLayer opens one backing file of the given format ("" probes).
func openLayer(path, format string, depth int, seen map[string]bool, lock bool) (layer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	if format == "" {
		if format, err = ProbeFormat(f); err != nil {
			f.Close()
			return nil, fmt.Errorf("probe %s: %w", path, err)
		}
	}
	switch format {
	case "raw":
		if lock {
			if err := lockImage(f, false); err != nil {
				f.Close()
				return nil, err
			}
		}
		size, err := f.Seek(0, io.SeekEnd)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("size of %s: %w", path, err)
		}
		return &rawLayer{f: f, size: size}, nil
	case "qcow2":
		f.Close()
		b, err := openDevice(path, true, lock, DefaultCacheSize/4)
		if err != nil {
			return nil, err
		}
		if err := b.openBacking(depth, seen, lock); err != nil {
			b.closeFiles()
			return nil, err
		}
		return b, nil
	}
	f.Close()
	return nil, fmt.Errorf("%w: backing format %q (only raw and qcow2)", ErrUnsupported, format)
}

// The read-only Device is the qcow2 layer of a chain.

func (d *Device) readAt(p []byte, off int64) error {
	if off >= d.g.size {
		clear(p)
		return nil
	}
	if end := off + int64(len(p)); end > d.g.size {
		clear(p[d.g.size-off:])
		p = p[:d.g.size-off]
	}
	_, err := d.ReadAt(p, off)
	return err
}

func (d *Device) zeroRun(off, n int64) (int64, bool, error) {
	if off >= d.g.size {
		return n, true, nil
	}
	run, _, zero, err := d.statusAt(off, min(n, d.g.size-off))
	return run, zero, err
}

func (d *Device) prefetch(off, n int64) {
	if off < d.g.size {
		d.Cache(off, min(n, d.g.size-off))
	}
}

func (d *Device) close() error     { return d.closeFiles() }
func (d *Device) describe() string { return "qcow2 " + d.path }
