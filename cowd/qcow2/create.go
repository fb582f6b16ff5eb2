package qcow2

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"
	"path/filepath"
)

// DefaultClusterSize is the cluster size of new images, as in QEMU.
const DefaultClusterSize = 64 << 10

// CreateOptions configures [Create]. A nil *CreateOptions means a
// version 3 image with 64 KiB clusters and no backing file, which needs Size.
type CreateOptions struct {
	// Size is the virtual size in bytes; 0 means the backing file's.
	Size int64
	// BackingFile is stored as given: a relative name is relative to the
	// new image's directory. It must exist (its size is needed only when
	// Size is 0, but a typo should fail now rather than at open).
	BackingFile string
	// BackingFormat is "raw" or "qcow2"; "" probes and records the result.
	BackingFormat string
	// ClusterSize in bytes, a power of two from 512 B to 2 MiB (0: 64 KiB).
	ClusterSize int
	// Version is 2 (compat=0.10) or 3 (compat=1.1, the default).
	Version int
	// ExtendedL2 gives each cluster 32 subclusters (version 3, clusters of
	// 16 KiB or more), so a small first write copies one subcluster, not a
	// whole cluster, from the backing file.
	ExtendedL2 bool
	// LazyRefcounts sets the lazy refcounts feature (version 3).
	LazyRefcounts bool
	// RefcountBits is the refcount width, a power of two up to 64 (0: 16;
	// version 2 allows only 16).
	RefcountBits int
	// Force overwrites an existing file instead of failing.
	Force bool
}

// Create writes a new, empty qcow2 image at path and returns its header.
// The image is what qemu-img create would write: header, refcount table,
// refcount block and L1 table in that order, each cluster refcounted.
func Create(path string, opts *CreateOptions) (_ Header, err error) {
	if opts == nil {
		opts = &CreateOptions{}
	}
	h, err := newHeader(path, opts)
	if err != nil {
		return Header{}, err
	}
	flags := os.O_RDWR | os.O_CREATE
	if !opts.Force {
		flags |= os.O_EXCL
	}
	f, err := os.OpenFile(path, flags, 0o644)
	if err != nil {
		return Header{}, fmt.Errorf("qcow2: create image: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("qcow2: create image: %w", cerr)
		}
		if err != nil {
			os.Remove(path)
		}
	}()
	if err := lockImage(f, true); err != nil {
		return Header{}, err
	}
	if err := f.Truncate(0); err != nil {
		return Header{}, fmt.Errorf("qcow2: create image: %w", err)
	}
	if err := writeLayout(f, &h); err != nil {
		return Header{}, err
	}
	if err := f.Sync(); err != nil {
		return Header{}, fmt.Errorf("qcow2: create image: %w", err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return h, nil
}

// newHeader validates the options and fills in a header, without the
// table placement.
func newHeader(path string, o *CreateOptions) (Header, error) {
	cs := o.ClusterSize
	if cs == 0 {
		cs = DefaultClusterSize
	}
	version := o.Version
	if version == 0 {
		version = 3
	}
	rb := o.RefcountBits
	if rb == 0 {
		rb = 16
	}
	switch {
	case cs < 1<<minClusterBits || cs > 1<<maxClusterBits || bits.OnesCount(uint(cs)) != 1:
		return Header{}, fmt.Errorf("%w: cluster size %d must be a power of two from 512 to 2097152", ErrFormat, cs)
	case version != 2 && version != 3:
		return Header{}, fmt.Errorf("%w: version %d (want 2 or 3)", ErrFormat, version)
	case rb > 64 || bits.OnesCount(uint(rb)) != 1:
		return Header{}, fmt.Errorf("%w: refcount bits %d (want a power of two up to 64)", ErrFormat, rb)
	case version == 2 && (o.ExtendedL2 || o.LazyRefcounts || rb != 16):
		return Header{}, fmt.Errorf("%w: version 2 images have no extended L2, lazy refcounts or refcount width other than 16", ErrFormat)
	case o.ExtendedL2 && cs < 16<<10:
		return Header{}, fmt.Errorf("%w: extended L2 entries need clusters of 16 KiB or more", ErrFormat)
	case o.Size < 0 || o.Size > maxVirtualSize:
		return Header{}, fmt.Errorf("%w: size %d out of range", ErrFormat, o.Size)
	}
	h := Header{
		Version:       uint32(version),
		ClusterBits:   uint32(bits.TrailingZeros(uint(cs))),
		Size:          uint64(o.Size),
		RefcountOrder: uint32(bits.TrailingZeros(uint(rb))),
		BackingFile:   o.BackingFile,
		BackingFormat: o.BackingFormat,
	}
	if version == 3 {
		h.HeaderLength = defaultHeaderBytes
		h.Extensions = []Extension{{Type: extFeatureTable, Data: featureTable()}}
		if o.ExtendedL2 {
			h.IncompatibleFeatures |= IncompatExtendedL2
		}
		if o.LazyRefcounts {
			h.CompatibleFeatures |= CompatLazyRefcounts
		}
	}
	if o.BackingFile != "" {
		format, size, err := backingInfo(BackingPath(path, o.BackingFile), o.BackingFormat)
		if err != nil {
			return Header{}, fmt.Errorf("qcow2: backing file: %w", err)
		}
		h.BackingFormat = format
		if h.Size == 0 {
			h.Size = uint64(size)
		}
	} else if o.BackingFormat != "" {
		return Header{}, fmt.Errorf("%w: backing format without a backing file", ErrFormat)
	}
	if h.Size%512 != 0 {
		h.Size = (h.Size + 511) &^ 511 // QEMU rounds up to sectors too
	}
	return h, nil
}

// backingInfo checks a backing file and returns its format and size.
func backingInfo(path, format string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	if format == "" {
		if format, err = ProbeFormat(f); err != nil {
			return "", 0, err
		}
	}
	switch format {
	case "raw":
		size, err := f.Seek(0, io.SeekEnd)
		return format, size, err
	case "qcow2":
		b := make([]byte, 4096)
		n, err := f.ReadAt(b, 0)
		if err != nil && !errors.Is(err, io.EOF) {
			return "", 0, err
		}
		bh, err := ParseHeader(b[:n])
		if err != nil {
			return "", 0, err
		}
		return format, int64(bh.Size), nil
	}
	return "", 0, fmt.Errorf("%w: backing format %q (only raw and qcow2)", ErrUnsupported, format)
}

// writeLayout places and writes the tables of an empty image: cluster 0
// the header, then the refcount table, the refcount blocks covering all of
// these, and the L1 table.
func writeLayout(f *os.File, h *Header) error {
	g := newGeometry(h)
	cs := g.clusterSize
	perL1 := cs << g.l2Bits
	l1 := (int64(h.Size) + perL1 - 1) / perL1
	l1Clusters := max(1, (l1*8+cs-1)/cs)
	perBlock := int64(1) << g.rbBits
	t, b := int64(1), int64(1)
	for {
		n := 1 + t + b + l1Clusters
		nb := (n + perBlock - 1) / perBlock
		nt := (nb*8 + cs - 1) / cs
		if nb == b && nt == t {
			break
		}
		b, t = nb, nt
	}
	if t*cs > maxRefTableBytes || l1*8 > maxL1Bytes {
		return fmt.Errorf("%w: image too large for cluster size %d", ErrFormat, cs)
	}
	h.L1Size = uint32(l1)
	h.RefcountTableOffset = uint64(cs)
	h.RefcountTableClusters = uint32(t)
	h.L1TableOffset = uint64((1 + t + b) * cs)
	n := 1 + t + b + l1Clusters
	img := make([]byte, n*cs)
	hb, err := h.MarshalBinary()
	if err != nil {
		return err
	}
	if _, err := ParseHeader(hb); err != nil {
		return fmt.Errorf("qcow2: new header does not validate: %w", err)
	}
	copy(img, hb)
	for i := range b {
		binary.BigEndian.PutUint64(img[cs+i*8:], uint64((1+t+i)*cs))
	}
	for c := range n {
		blk := img[(1+t+c/perBlock)*cs:]
		setRefcount(blk, c%perBlock, g.refOrder, 1)
	}
	if _, err := f.WriteAt(img, 0); err != nil {
		return fmt.Errorf("qcow2: write image: %w", err)
	}
	return nil
}
